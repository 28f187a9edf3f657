import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { Decimal } from '../../src/core/money/decimal.js';
import { eventually, startMoneyWorld, type MoneyWorld } from '../helpers/money-world.js';
import { MOBILE, trunk10Cdr } from '../helpers/cdrs.js';
import { forEachEngine } from '../helpers/engines.js';

/**
 * Three nodes admitting calls of one prepaid account at once, each within the
 * credit lease the centre granted it: what they admit together never exceeds
 * the balance, and once every call is billed the balance is exactly what it
 * was less the rated costs. On each engine of the centre's store: on PostgreSQL the rounds of the three
 * nodes run at once, and only the ledger's row locks keep the leases within the balance.
 */
const START = Date.parse('2026-01-15T08:30:00Z');

forEachEngine('money path: three nodes, one prepaid account', (engine) => {
  let world: MoneyWorld;
  before(async () => {
    // Short calls and small leases, so that the nodes run out and come back to the centre many times.
    // Calls are admitted and never end until the CDRs below: trunk 10's ports must not be what refuses them.
    world = await startMoneyWorld({
      engine,
      sidecars: 3,
      sidecarArgs: ['--admission-seconds', '60', '--lease-chunk', '0.30'],
      change: (description) => {
        description.customer_trunks.find((trunk) => trunk.id === 10)!.port_limit = 10_000;
      },
    });
    assert.equal((await world.control.post('/api/balances/customer/1/balance/credit', { amount: '2.00' })).status, 200);
  });
  after(() => world.stop());

  it('never admits more than the balance, and bills exactly the rated costs', async () => {
    const admitted: { node: number; callId: string; maxDuration: number }[] = [];
    let refused = 0;
    await Promise.all(
      Array.from({ length: 30 }, async (_, worker) => {
        for (let i = 0; i < 8; i++) {
          const node = (worker + i) % 3;
          const callId = `w${worker}-c${i}@concurrency`;
          const answer = await world.sidecars[node].post('/api/opensips/call/admit', {
            customer_trunk_id: 10,
            dnis: MOBILE,
            call_id: callId,
          });
          assert.equal(answer.status, 200);
          if (answer.body.allowed) admitted.push({ node, callId, maxDuration: answer.body.max_duration_seconds });
          else {
            assert.equal(answer.body.reject_code, 402);
            refused++;
          }
        }
      }),
    );
    // What each admission reserved: the cost of its longest call at 0.0250/min (6/6), plus one unit of rounding slack.
    const reserved = admitted.reduce(
      (sum, call) => sum.plus(new Decimal('0.025').mul(call.maxDuration).div(60).toDecimalPlaces(4, Decimal.ROUND_UP).plus('0.0001')),
      new Decimal(0),
    );
    assert.ok(reserved.lessThanOrEqualTo(2), `admitted calls reserve ${reserved.toFixed()} of a 2.00 balance`);
    assert.ok(admitted.length > 0 && refused > 0, `${admitted.length} admitted, ${refused} refused`);
    assert.ok(new Set(admitted.map((call) => call.node)).size >= 2, 'more than one node admitted calls');
    const centre = (await world.control.get('/api/balances/customer/1/balance')).body;
    assert.ok(
      new Decimal(centre.reserved).lessThanOrEqualTo(centre.balance),
      `leases ${centre.reserved} exceed the balance ${centre.balance}`,
    );

    // Every admitted call runs its full allowed length: the worst case for the account.
    let billed = new Decimal(0);
    await Promise.all(
      admitted.map(async (call) => {
        const ingested = await world.sidecars[call.node].post(
          '/api/cdrs/ingest',
          trunk10Cdr(call.callId, call.maxDuration, { startMs: START, ringMs: 0 }),
        );
        assert.equal(ingested.status, 201, JSON.stringify(ingested.body));
        billed = billed.plus(ingested.body.customer_cost);
      }),
    );
    assert.ok(billed.lessThanOrEqualTo(2));
    await eventually(async () => {
      const state = (await world.control.get('/api/balances/customer/1/balance')).body;
      assert.equal(new Decimal(state.balance).toFixed(4), new Decimal(2).minus(billed).toFixed(4));
    }, 15_000);
    const cdrs = (await world.control.get('/api/cdrs/search?customer_trunk_id=10')).body;
    assert.equal(cdrs.length, admitted.length);
  });
});

forEachEngine('money path: a small balance is not taken whole by the first node to ask', (engine) => {
  let world: MoneyWorld;
  before(async () => {
    // An hour's call at 0.0250/min reserves 1.5001; the lease chunk (10.00) is more than the whole balance.
    world = await startMoneyWorld({ engine, sidecars: 2, sidecarArgs: ['--admission-seconds', '3600', '--lease-chunk', '10.00'] });
    assert.equal((await world.control.post('/api/balances/customer/1/balance/credit', { amount: '3.00' })).status, 200);
  });
  after(() => world.stop());

  it('admits a call on the second node while the first holds what its own call needs', async () => {
    const first = await world.sidecars[0].post('/api/opensips/call/admit', {
      customer_trunk_id: 10,
      dnis: MOBILE,
      call_id: 'first@fair-share',
    });
    assert.equal(first.body.allowed, true);
    assert.equal(first.body.max_duration_seconds, 3600);
    // Before the centre kept headroom beyond a call's need, the first node took all 3.00 and this was a 402.
    const second = await world.sidecars[1].post('/api/opensips/call/admit', {
      customer_trunk_id: 10,
      dnis: MOBILE,
      call_id: 'second@fair-share',
    });
    assert.equal(second.body.allowed, true, JSON.stringify(second.body));
    // What is left after the first call: all of it, or half if the first node's top-up got to the centre first.
    assert.ok(second.body.max_duration_seconds >= 1700, `second call capped at ${second.body.max_duration_seconds} s`);
    const centre = (await world.control.get('/api/balances/customer/1/balance')).body;
    assert.ok(new Decimal(centre.reserved).lessThanOrEqualTo('3.00'), `leases ${centre.reserved} exceed the balance`);
  });
});
