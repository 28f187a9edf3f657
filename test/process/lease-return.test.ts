import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { Decimal } from '../../src/core/money/decimal.js';
import { forEachEngine } from '../helpers/engines.js';
import { startMoneyWorld, type MoneyWorld } from '../helpers/money-world.js';

/**
 * A node stopped on purpose (SIGTERM) hands back the lease its live calls do not hold before it exits:
 * otherwise that credit stays leased to a node that is gone, refused to every other, until the centre
 * takes it back after the lease validity (15 minutes by default).
 */
forEachEngine('a node that stops', (engine) => {
  let world: MoneyWorld;
  before(async () => {
    world = await startMoneyWorld({ engine, sidecars: 1 });
    assert.equal((await world.control.post('/api/balances/customer/1/balance/credit', { amount: '10.00' })).status, 200);
  });
  after(() => world.stop());

  const reserved = async (): Promise<Decimal> =>
    new Decimal(((await world.control.get('/api/balances/customer/1/balance')).body as { reserved: string }).reserved);

  it('gives back the lease its calls do not hold, and keeps what they do', async () => {
    const node = world.sidecars[0];
    for (const callId of ['held@stop', 'released@stop']) {
      const admitted = await node.post('/api/opensips/call/admit', { customer_trunk_id: 10, dnis: '61400123456', call_id: callId });
      assert.equal(admitted.body.allowed, true, JSON.stringify(admitted.body));
    }
    assert.equal((await node.post('/api/opensips/call/release', { call_id: 'released@stop' })).body.released, true);
    const leased = await reserved();
    assert.ok(leased.greaterThan(0), 'the node holds a lease');

    await node.kill('SIGTERM');
    const after = await reserved();
    // What is left leased is the live call's reservation: 7,200 s at 0.0250/min billed 6/6 is 3.0000, plus 0.0001 of slack.
    assert.equal(after.toFixed(4), '3.0001', `leased ${leased.toFixed()} before the stop, ${after.toFixed()} after`);
  });
});
