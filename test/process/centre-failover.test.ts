import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { MOBILE, trunk10Cdr } from '../helpers/cdrs.js';
import { eventually, startMoneyWorld, type MoneyWorld } from '../helpers/money-world.js';

/** A loopback port nothing listens on (taken, then given back): a control plane that is down. */
async function deadPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * A node given two control planes (--control-url a,b) whose first is down: its money rounds and its live
 * changes reach the second, so a prepaid call is admitted and billed there (issue 21: nodes use either centre).
 */
describe('a node with two control planes, the first down', () => {
  let world: MoneyWorld;

  before(async () => {
    const dead = `http://127.0.0.1:${await deadPort()}`;
    world = await startMoneyWorld({ sidecars: 1, controlUrl: (control) => `${dead},${control}` });
    const credit = await world.control.post('/api/balances/customer/1/balance/credit', { amount: '1.00', description: 'top-up' });
    assert.equal(credit.status, 200);
  });
  after(() => world.stop());

  it('takes its lease from the second, and its CDR is billed there once', async () => {
    const node = world.sidecars[0];
    const admitted = await node.post('/api/opensips/call/admit', { customer_trunk_id: 10, dnis: MOBILE, call_id: 'failover@test' });
    assert.equal(admitted.status, 200, JSON.stringify(admitted.body));
    assert.equal(admitted.body.allowed, true, JSON.stringify(admitted.body));
    const ingested = await node.post('/api/cdrs/ingest', trunk10Cdr('failover@test', 73));
    assert.equal(ingested.status, 201, JSON.stringify(ingested.body));
    await eventually(async () => {
      const state = (await world.control.get('/api/balances/customer/1/balance')).body;
      assert.equal(state.balance, '0.9675');
    });
  });

  it('follows live changes from the second', async () => {
    const rule = await world.control.post('/api/block-rules', {
      scope: 'global',
      block_type: 'dnis',
      pattern: '61400999',
      match_type: 'prefix',
    });
    assert.equal(rule.status, 201, JSON.stringify(rule.body));
    const last = (await world.control.get('/api/opensips/deltas')).body.last_seq as number;
    assert.ok(last > 0);
    await eventually(async () => assert.equal((await world.sidecars[0].get('/api/health')).body.delta_seq, last));
  });
});
