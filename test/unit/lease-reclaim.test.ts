import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it, mock } from 'node:test';
import { CUSTOMER_ACCOUNTS } from '../../sync/admin/resources.js';
import { NodeSilence } from '../../sync/ledger/lease-reclaim.js';
import { applyNodeSync, reclaimSilentNodesLeases } from '../../sync/ledger/settlement.js';
import { runSql } from '../../sync/ledger/sql-steps.js';
import { parseStoreLocation } from '../../sync/store/store-location.js';
import { openConfigStore, type ConfigStoreHandle } from '../../sync/stores.js';
import { seedRows } from '../../sync/admin/seed.js';
import { prepaidAccount } from '../../src/devkit/ledger-world.js';
import { postgresUnreachable, scratchSchema, type ScratchSchema } from '../helpers/postgres.js';

const unreachable = await postgresUnreachable();

/** node-a's round asking 4.00 of account 1, applied and recorded as node-round.ts does (without the node's secret): its row says when node-a was last heard. */
function leaseRound(stores: ConfigStoreHandle) {
  return stores.ledger.run(function* (tx) {
    const applied = yield* applyNodeSync(tx, {
      node: 'node-a',
      seq: 1,
      settlements: [],
      leases: [{ entity_type: 'customer', entity_id: 1, want: '4.00', give_back: '0' }],
    });
    yield* tx.recordRound('node-a', 1, 'test', JSON.stringify(applied));
    return applied;
  });
}

/** What a node's round finds: prepaid account 1 funded with 10.00, and node-a active. */
async function seedFundedNode(stores: ConfigStoreHandle): Promise<void> {
  const now = new Date().toISOString();
  await seedRows(stores.config, CUSTOMER_ACCOUNTS, [prepaidAccount(1, 'Prepaid')]);
  await stores.config.insert('opensips_nodes', {
    hostname: 'node-a',
    mi_socket_address: 'http://127.0.0.1:9/mi',
    region: 'test',
    status: 'active',
    created_at: now,
    updated_at: now,
  });
  await stores.ledger.changeBalance({ entityType: 'customer', entityId: 1, currency: 'AUD' }, () => ({
    next: { balance: '10.00', reserved: '0' },
    transaction: { transaction_type: 'credit', amount: '10.00', description: 'funding', cdr_id: null, call_id: null },
  }));
}

/**
 * On both engines (PostgreSQL skipped only when its server does not answer): the centre's wall clock stepping forward must not take back a live node's lease: the store's record
 * of the node's last round then looks old, but this process heard the node moments ago on its own
 * monotonic clock, and the lease is reclaimed only once that clock agrees.
 */
for (const engine of ['sqlite', 'postgres'] as const) {
  describe(`the silent-node reclaim on ${engine}`, { skip: engine === 'postgres' ? (unreachable ?? false) : false }, () => {
    let scratch: ScratchSchema | null = null;
    let stores: ConfigStoreHandle;
    before(async () => {
      scratch = engine === 'postgres' ? await scratchSchema('lease_reclaim') : null;
      const location = scratch?.url ?? `sqlite:${join(mkdtempSync(join(tmpdir(), 'lease-reclaim-')), 'config.db')}`;
      stores = await openConfigStore(parseStoreLocation(location));
    });
    after(async () => {
      await stores.close();
      await scratch?.drop();
    });

    it("takes back a node's lease only when its own monotonic clock agrees the node is silent, whatever the wall clock did", async () => {
      await seedFundedNode(stores);
      const reply = await leaseRound(stores);
      assert.equal(reply.leases[0].granted, '4');

      let clock = 0;
      const silence = new NodeSilence(2400, () => clock);
      silence.heard('node-a');
      // The wall clock jumps an hour ahead: in the store, node-a's last round is now an hour old.
      await stores.ledger.run(() => runSql('UPDATE node_money_rounds SET updated_at = ?', new Date(Date.now() - 3_600_000).toISOString()));

      clock = 1000; // heard a second ago
      const early = await stores.ledger.run((tx) => reclaimSilentNodesLeases(tx, 2400, (node) => silence.silent(node)));
      assert.deepEqual(early, []);
      assert.equal(await stores.ledger.run((tx) => tx.lease('node-a', 'customer', 1)), '4');
      assert.equal((await stores.ledger.getBalance('customer', 1)).reserved, '4.00');

      clock = 2400; // unheard for the whole reclaim time: both clocks agree
      const late = await stores.ledger.run((tx) => reclaimSilentNodesLeases(tx, 2400, (node) => silence.silent(node)));
      assert.deepEqual(
        late.map(({ node, entityType, entityId, amount }) => ({ node, entityType, entityId, amount })),
        [{ node: 'node-a', entityType: 'customer', entityId: 1, amount: '4' }],
      );
      assert.equal(await stores.ledger.run((tx) => tx.lease('node-a', 'customer', 1)), '0');
      const balance = await stores.ledger.getBalance('customer', 1);
      assert.equal(balance.reserved, '0.00');
      assert.equal(balance.balance, '10.00');
    });
  });
}

/**
 * Two control planes sharing one PostgreSQL store, their clocks ten minutes apart (an NTP outage, a VM resumed).
 * A node answered by centre B moments ago is live; centre A, which has not heard it (the node failed over to B),
 * has only the store's time of the node's last round to go by. Written by B's clock and compared with A's, that
 * round looked ten minutes old and A took back the lease the node was still admitting calls on.
 */
describe('the silent-node reclaim with two control planes on one PostgreSQL store', { skip: unreachable ?? false }, () => {
  let scratch: ScratchSchema;
  let centreA: ConfigStoreHandle;
  let centreB: ConfigStoreHandle;
  before(async () => {
    scratch = await scratchSchema('lease_reclaim_two');
    centreA = await openConfigStore(parseStoreLocation(scratch.url));
    centreB = await openConfigStore(parseStoreLocation(scratch.url));
  });
  after(async () => {
    await centreA.close();
    await centreB.close();
    await scratch.drop();
  });

  it("does not take back the lease of a node another control plane answered, whatever that centre's clock says", async () => {
    await seedFundedNode(centreA);

    // Centre B answers node-a's round, its clock ten minutes behind centre A's.
    mock.timers.enable({ apis: ['Date'], now: Date.now() - 600_000 });
    try {
      await leaseRound(centreB);
    } finally {
      mock.timers.reset();
    }

    // Centre A has not heard node-a for its whole reclaim time (the node talks to B): only the store can say it is live.
    const taken = await centreA.ledger.run((tx) => reclaimSilentNodesLeases(tx, 60_000, () => true));
    assert.deepEqual(taken, [], 'node-a was answered by centre B moments ago');
    assert.equal(await centreA.ledger.run((tx) => tx.lease('node-a', 'customer', 1)), '4');
    assert.equal((await centreA.ledger.getBalance('customer', 1)).reserved, '4.00');
  });
});

it('counts a node it has not heard yet as silent only from its own start', () => {
  let clock = 500;
  const silence = new NodeSilence(2400, () => clock);
  clock = 2800;
  assert.equal(silence.silent('node-b'), false, 'up 2.3 s: a node silent in the store may have been heard just before the restart');
  clock = 2900;
  assert.equal(silence.silent('node-b'), true);
});
