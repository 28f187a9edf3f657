import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { Decimal } from '../../src/core/money/decimal.js';
import { eventually, startMoneyWorld, type MoneyWorld } from '../helpers/money-world.js';
import { MOBILE } from '../helpers/cdrs.js';
import { forEachEngine } from '../helpers/engines.js';

/**
 * One prepaid balance, three nodes: the credit goes to the node whose call needs it, not to the first node
 * that asked. A call here is the longest the admission allows (7,200 s at 0.0250/min billed 6/6: 3.0000,
 * plus 0.0001 of rounding slack), so every admitted call reserves the same 3.0001 and a balance of 30.0010
 * pays for exactly ten of them.
 */
const CALL = new Decimal('3.0001');

async function balance(world: MoneyWorld): Promise<{ balance: string; reserved: string; headroom: string }> {
  return (await world.control.get('/api/balances/customer/1/balance')).body as { balance: string; reserved: string; headroom: string };
}

async function credit(world: MoneyWorld, amount: Decimal): Promise<void> {
  assert.equal((await world.control.post('/api/balances/customer/1/balance/credit', { amount: amount.toFixed(4) })).status, 200);
}

async function admit(world: MoneyWorld, node: number, callId: string): Promise<any> {
  const answer = await world.sidecars[node].post('/api/opensips/call/admit', { customer_trunk_id: 10, dnis: MOBILE, call_id: callId });
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  return answer.body;
}

forEachEngine('lease sharing: three nodes, a balance for exactly ten calls', (engine) => {
  let world: MoneyWorld;
  before(async () => {
    world = await startMoneyWorld({ engine, sidecars: 3 });
    await credit(world, CALL.mul(10));
  });
  after(() => world.stop());

  it('admits all ten calls alternating across the nodes, each for its whole length, and refuses the eleventh', async () => {
    // Before leases were shared by call, the first node was leased half the balance and each next one half of
    // what was left, and kept what they did not use: the sixth call found its node holding only part of a call
    // (admitted for 1,794 s), and later calls were refused with credit still leased, unused, to other nodes.
    for (let call = 0; call < 10; call++) {
      const answer = await admit(world, call % 3, `call-${call}@sharing`);
      assert.equal(answer.allowed, true, `call ${call + 1} on node ${(call % 3) + 1}: ${JSON.stringify(answer)}`);
      assert.equal(answer.max_duration_seconds, 7200, `call ${call + 1} was shortened: its node held only part of a call`);
    }
    const eleventh = await admit(world, 10 % 3, 'call-10@sharing');
    assert.deepEqual([eleventh.allowed, eleventh.reject_code, eleventh.reason_code], [false, 402, 'insufficient_balance']);

    // Nothing overspent: the nodes' leases are the ten calls' reservations, no more than the balance.
    const state = await balance(world);
    assert.equal(new Decimal(state.reserved).toFixed(4), CALL.mul(10).toFixed(4));
    assert.equal(new Decimal(state.headroom).toFixed(4), '0.0000');
  });
});

forEachEngine('lease sharing: a top-up', (engine) => {
  let world: MoneyWorld;
  before(async () => {
    world = await startMoneyWorld({ engine, sidecars: 3 });
    await credit(world, CALL);
  });
  after(() => world.stop());

  it('is usable at the next admission, on the node that was just refused', async () => {
    assert.equal((await admit(world, 0, 'paid@top-up')).allowed, true);
    const refused = await admit(world, 1, 'refused@top-up');
    assert.deepEqual([refused.allowed, refused.reason_code], [false, 'insufficient_balance']);
    await credit(world, CALL);
    // Node 2 was told a moment ago that nothing was left; it used to take the account for dry and refuse
    // again for a second without asking the centre.
    const next = await admit(world, 1, 'next@top-up');
    assert.equal(next.allowed, true, JSON.stringify(next));
    assert.equal(next.max_duration_seconds, 7200);
    const state = await balance(world);
    assert.equal(new Decimal(state.reserved).toFixed(4), CALL.mul(2).toFixed(4));
    assert.equal(new Decimal(state.balance).toFixed(4), CALL.mul(2).toFixed(4));
  });
});

forEachEngine('lease sharing: a node holding more than its calls need gives the rest back when another node is short', (engine) => {
  let world: MoneyWorld;
  before(async () => {
    // Calls refused at once rather than waiting for the recall (money-channel.test.ts has the wait).
    world = await startMoneyWorld({ engine, sidecars: 3, sidecarArgs: ['--recall-wait-ms', '0'] });
    await credit(world, CALL.mul(200));
  });
  after(() => world.stop());

  it('recalls the spare lease over the live channel, and the short node then admits', async () => {
    // Plenty: the first node is leased a batch of calls (its demand), far from the whole balance.
    assert.equal((await admit(world, 0, 'first@recall')).allowed, true);
    const leased = new Decimal((await balance(world)).reserved);
    assert.ok(leased.greaterThan(CALL) && leased.lessThan(CALL.mul(200)), `node 1 leased ${leased.toFixed()}`);
    // The operator takes everything else: what is left is what node 1 holds.
    const debit = await world.control.post('/api/balances/customer/1/balance/debit', { amount: CALL.mul(200).minus(leased).toFixed(4) });
    assert.equal(debit.status, 200, JSON.stringify(debit.body));

    // Node 2's call finds nothing at the centre: refused (it may not wait), and node 1 is recalled.
    assert.equal((await admit(world, 1, 'short@recall')).allowed, false);
    // Node 1 gives back all it does not hold for its live call, with no round of its own due (no CDR, not
    // idle): the recall reached it over the live channel. What its call holds stays.
    await eventually(async () => assert.equal(new Decimal((await balance(world)).reserved).toFixed(4), CALL.toFixed(4)), 20_000);
    const retried = await admit(world, 1, 'retried@recall');
    assert.equal(retried.allowed, true, JSON.stringify(retried));
  });
});
