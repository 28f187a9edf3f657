import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
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
      const store = stores.config;
      const now = new Date().toISOString();
      await seedRows(store, CUSTOMER_ACCOUNTS, [prepaidAccount(1, 'Prepaid')]);
      await store.insert('opensips_nodes', {
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
      // The round applied and recorded as node-round.ts does (without the node's secret): its row says when node-a was last heard.
      const reply = await stores.ledger.run(function* (tx) {
        const applied = yield* applyNodeSync(tx, {
          node: 'node-a',
          seq: 1,
          settlements: [],
          leases: [{ entity_type: 'customer', entity_id: 1, want: '4.00', give_back: '0' }],
        });
        yield* tx.recordRound('node-a', 1, 'test', JSON.stringify(applied));
        return applied;
      });
      assert.equal(reply.leases[0].granted, '4');

      let clock = 0;
      const silence = new NodeSilence(2400, () => clock);
      silence.heard('node-a');
      // The wall clock jumps an hour ahead: in the store, node-a's last round is now an hour old.
      await stores.ledger.run(() => runSql('UPDATE node_money_rounds SET updated_at = ?', new Date(Date.now() - 3_600_000).toISOString()));
      const silentSince = new Date(Date.now() - 2400).toISOString();

      clock = 1000; // heard a second ago
      const early = await stores.ledger.run((tx) => reclaimSilentNodesLeases(tx, silentSince, (node) => silence.silent(node)));
      assert.deepEqual(early, []);
      assert.equal(await stores.ledger.run((tx) => tx.lease('node-a', 'customer', 1)), '4');
      assert.equal((await stores.ledger.getBalance('customer', 1)).reserved, '4.00');

      clock = 2400; // unheard for the whole reclaim time: both clocks agree
      const late = await stores.ledger.run((tx) => reclaimSilentNodesLeases(tx, silentSince, (node) => silence.silent(node)));
      assert.deepEqual(late, [{ node: 'node-a', entityType: 'customer', entityId: 1, amount: '4' }]);
      assert.equal(await stores.ledger.run((tx) => tx.lease('node-a', 'customer', 1)), '0');
      const balance = await stores.ledger.getBalance('customer', 1);
      assert.equal(balance.reserved, '0.00');
      assert.equal(balance.balance, '10.00');
    });
  });
}

it('counts a node it has not heard yet as silent only from its own start', () => {
  let clock = 500;
  const silence = new NodeSilence(2400, () => clock);
  clock = 2800;
  assert.equal(silence.silent('node-b'), false, 'up 2.3 s: a node silent in the store may have been heard just before the restart');
  clock = 2900;
  assert.equal(silence.silent('node-b'), true);
});
