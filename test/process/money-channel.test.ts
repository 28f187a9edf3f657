import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Decimal } from '../../src/core/money/decimal.js';
import { MOBILE, trunk10Cdr } from '../helpers/cdrs.js';
import { eventually, startMoneyWorld, type MoneyWorld } from '../helpers/money-world.js';
import type { SidecarProcess } from '../helpers/sidecar.js';

/**
 * Money rides the live channel (issue 18): the centre recalls a node's unused lease, and tells nodes of a
 * changed balance, at once over the nodes' held delta asks, instead of at their next money round. The nodes
 * here never return an idle lease (--lease-idle-seconds 3600) and have no CDRs in flight, so without the
 * channel nothing would reach them: each test below fails without it.
 *
 * A call is the longest the admission allows (7,200 s at 0.0250/min billed 6/6: 3.0000, plus 0.0001 of
 * rounding slack): 3.0001 reserved.
 */
const CALL = new Decimal('3.0001');
const QUIET = ['--lease-idle-seconds', '3600'];

interface Balance {
  balance: string;
  reserved: string;
  headroom: string;
}

async function balance(world: MoneyWorld): Promise<Balance> {
  return (await world.control.get('/api/balances/customer/1/balance')).body as Balance;
}

async function post(world: MoneyWorld, kind: 'credit' | 'debit', amount: Decimal): Promise<{ status: number; body: any }> {
  return world.control.post(`/api/balances/customer/1/balance/${kind}`, { amount: amount.toFixed(4) });
}

async function admit(node: SidecarProcess, callId: string): Promise<any> {
  const answer = await node.post('/api/opensips/call/admit', { customer_trunk_id: 10, dnis: MOBILE, call_id: callId });
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  return answer.body;
}

async function gauge(node: SidecarProcess, name: string): Promise<number> {
  return Number(new RegExp(`^${name} (\\S+)$`, 'm').exec((await node.get('/metrics')).text)?.[1] ?? NaN);
}

async function admitted(node: SidecarProcess, outcome: string): Promise<number> {
  const pattern = new RegExp(`^sidecar_decisions_total\\{endpoint="call_admit",outcome="${outcome}"\\} (\\d+)$`, 'm');
  return Number(pattern.exec((await node.get('/metrics')).text)?.[1] ?? 0);
}

/** What each node holds on account 1, as the centre's ledger has it (the console's read; no zero leases). */
async function leases(world: MoneyWorld): Promise<Map<string, Decimal>> {
  const answer = await world.control.get('/api/console/accounts/customer/1/leases');
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  return new Map(
    (answer.body as { data: { node: string; amount: string }[] }).data.map((lease) => [lease.node, new Decimal(lease.amount)]),
  );
}

describe('money channel: a small balance stranded on one node', () => {
  let world: MoneyWorld;
  before(async () => {
    world = await startMoneyWorld({ sidecars: 3, sidecarArgs: QUIET });
    assert.equal((await post(world, 'credit', CALL)).status, 200);
  });
  after(() => world.stop());

  it('is recalled from the node holding it while a call on another node waits, and that call is admitted', async () => {
    // Node 1 is leased one call's worth; its call ends after 6 s and costs 0.0025, so it holds 2.9976 unused,
    // all the account has left.
    assert.equal((await admit(world.sidecars[0], 'first@stranded')).allowed, true);
    const ingested = await world.sidecars[0].post('/api/cdrs/ingest', trunk10Cdr('first@stranded', 6));
    assert.equal(ingested.status, 201, JSON.stringify(ingested.body));
    const charge = new Decimal(ingested.body.customer_cost as string);
    const left = CALL.minus(charge);
    await eventually(async () => {
      const state = await balance(world);
      assert.equal(new Decimal(state.balance).toFixed(4), left.toFixed(4));
      assert.equal(new Decimal(state.headroom).toFixed(4), '0.0000', 'node 1 holds the rest');
    });

    // Node 2's call: the centre has nothing, recalls node 1's lease over the channel, and the call (waiting
    // at most --recall-wait-ms) is admitted on it, as long as what is left affords.
    const call = await admit(world.sidecars[1], 'second@stranded');
    assert.equal(call.allowed, true, JSON.stringify(call));
    assert.ok(call.max_duration_seconds > 0 && call.max_duration_seconds < 7200, JSON.stringify(call));
    assert.equal(await admitted(world.sidecars[1], 'admitted_after_recall'), 1);
    assert.match((await world.sidecars[0].get('/metrics')).text, /^sidecar_money_signals_total\{kind="recall"\} 1$/m);

    // No overspend: the whole of what is left is node 2's, node 1 holds nothing.
    const state = await balance(world);
    assert.equal(new Decimal(state.balance).toFixed(4), left.toFixed(4));
    assert.ok(new Decimal(state.reserved).lessThanOrEqualTo(state.balance), JSON.stringify(state));
    const held = await leases(world);
    assert.equal((held.get('node-1') ?? new Decimal(0)).toFixed(4), '0.0000');
    assert.equal((held.get('node-2') ?? new Decimal(0)).toFixed(4), new Decimal(state.reserved).toFixed(4));

    // A third call anywhere: nothing is left to recall, and it is refused.
    const third = await admit(world.sidecars[2], 'third@stranded');
    assert.deepEqual([third.allowed, third.reason_code], [false, 'insufficient_balance']);
  });
});

describe('money channel: a top-up', () => {
  let world: MoneyWorld;
  before(async () => {
    world = await startMoneyWorld({ sidecars: 3, sidecarArgs: QUIET });
  });
  after(() => world.stop());

  it('is leased by the node that refused the account before its next call arrives, and that call is admitted on its lease', async () => {
    const refused = await admit(world.sidecars[1], 'refused@top-up');
    assert.deepEqual([refused.allowed, refused.reason_code], [false, 'insufficient_balance']);

    assert.equal((await post(world, 'credit', CALL.mul(100))).status, 200);
    // Node 2 is told over the channel and takes a lease sized to its demand, with no call asking.
    await eventually(async () => assert.ok(new Decimal((await balance(world)).reserved).greaterThan(CALL), 'node 2 leased the top-up'));
    const held = await leases(world);
    assert.deepEqual([...held.keys()], ['node-2']);
    // The centre committed the lease before answering the round: the node holds it once it has the answer.
    await eventually(async () => assert.equal(await gauge(world.sidecars[1], 'sidecar_credit_leases_held'), 1));

    const next = await admit(world.sidecars[1], 'next@top-up');
    assert.equal(next.allowed, true, JSON.stringify(next));
    assert.equal(next.max_duration_seconds, 7200);
    assert.equal(await admitted(world.sidecars[1], 'admitted'), 1, 'admitted within its lease, no round with the centre');
  });
});

describe('money channel: a debit beyond what is not leased', () => {
  let world: MoneyWorld;
  const BALANCE = CALL.mul(50);
  before(async () => {
    world = await startMoneyWorld({ sidecars: 3, sidecarArgs: QUIET });
    assert.equal((await post(world, 'credit', BALANCE)).status, 200);
  });
  after(() => world.stop());

  it('recalls the nodes’ unused lease and succeeds, exactly, leaving what live calls hold', async () => {
    // Nodes 1 and 3 each admit a call and are leased more than it holds; the calls stay up.
    for (const [index, callId] of [
      [0, 'one@debit'],
      [2, 'three@debit'],
    ] as const)
      assert.equal((await admit(world.sidecars[index], callId)).allowed, true);
    const before = await balance(world);
    assert.ok(new Decimal(before.reserved).greaterThan(CALL.mul(2)), JSON.stringify(before));

    // Everything but the two live calls: more than the headroom, which the leases stand in the way of.
    const debit = BALANCE.minus(CALL.mul(2));
    assert.ok(debit.greaterThan(before.headroom));
    const answer = await post(world, 'debit', debit);
    assert.equal(answer.status, 200, JSON.stringify(answer.body));

    const after = await balance(world);
    assert.equal(new Decimal(after.balance).toFixed(4), CALL.mul(2).toFixed(4), 'the balance less the debit, exactly');
    assert.equal(new Decimal(after.reserved).toFixed(4), CALL.mul(2).toFixed(4), 'the live calls keep what they hold');
    assert.equal(new Decimal(after.headroom).toFixed(4), '0.0000');

    // One more unit is beyond what the calls hold: refused after the recall finds nothing, and nothing changes.
    const refused = await post(world, 'debit', new Decimal('0.0001'));
    assert.equal(refused.status, 400, JSON.stringify(refused.body));
    assert.equal(refused.body.reason_code, 'insufficient_balance');
    assert.deepEqual(await balance(world), after);

    // The calls are still billed within what was kept for them: no overspend.
    for (const [index, callId] of [
      [0, 'one@debit'],
      [2, 'three@debit'],
    ] as const) {
      const ingested = await world.sidecars[index].post('/api/cdrs/ingest', trunk10Cdr(callId, 60));
      assert.equal(ingested.status, 201, JSON.stringify(ingested.body));
    }
    await eventually(async () => {
      const settled = await balance(world);
      assert.equal(new Decimal(settled.balance).toFixed(4), CALL.mul(2).minus('0.0500').toFixed(4));
      assert.ok(new Decimal(settled.balance).greaterThanOrEqualTo(0));
    });
  });
});
