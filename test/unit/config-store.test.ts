import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { rowRate } from '../../src/core/snapshot/codec.js';
import type { ConfigStore } from '../../sync/store/config-store.js';
import { MIGRATIONS } from '../../sync/store/migrations.js';
import { openCentreStores } from '../../sync/stores.js';
import { seedStore } from '../../sync/admin/seed.js';
import { routingTables } from '../fixtures/routing.js';

const rateOf = async (store: ConfigStore, prefix: string, deck: number): Promise<string | null> => {
  const { rates } = await store.readRoutingData([]);
  for (let i = 0; i < rates.prefix_end.length; i++) {
    const start = i === 0 ? 0 : rates.prefix_end[i - 1];
    if (rates.rate_deck_id[i] === deck && rates.prefix_digits.slice(start, rates.prefix_end[i]) === prefix) return rowRate(rates, i);
  }
  return null;
};

/** The last migration's version: whichever branch adds one, this test follows. */
const LATEST = MIGRATIONS[MIGRATIONS.length - 1].version;

describe('config store', () => {
  it('migrates a new file to the latest schema, and again on reopening without harm', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'store-')), 'config.db');
    // The last migration's number, whatever it is: branches that each add one are renumbered when merged.
    const first = openCentreStores(path);
    assert.equal(first.schemaVersion(), LATEST);
    await first.close();
    const again = openCentreStores(path);
    assert.equal(again.schemaVersion(), LATEST);
    await again.close();
  });

  it("migration 10 rewrites stored spellings to the contract's: hash_algorithm lowercase, node statuses within its enum", async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'store-')), 'config.db');
    const stores = openCentreStores(path);
    await seedStore(stores.config, routingTables());
    await stores.close();
    // A store as version 9 left it: the spellings it accepted then, and migration 10 not yet applied.
    const raw = new Database(path);
    raw.prepare("UPDATE trunk_sip_registrations SET hash_algorithm = 'MD5' WHERE id = 1").run();
    raw.prepare("UPDATE trunk_sip_registrations SET hash_algorithm = 'SHA-512-256' WHERE id = 2").run();
    const now = new Date().toISOString();
    const node = raw.prepare(
      "INSERT INTO opensips_nodes (hostname, mi_socket_address, status, created_at, updated_at) VALUES (?, 'udp:127.0.0.1:8890', ?, ?, ?)",
    );
    node.run('n-draining', 'draining', now, now);
    node.run('n-offline', 'offline', now, now);
    raw.prepare('DELETE FROM schema_migrations WHERE version = 10').run();
    raw.close();
    const reopened = openCentreStores(path);
    assert.equal(reopened.schemaVersion(), LATEST);
    const registrations = (await reopened.config.list('trunk_sip_registrations', { where: {}, limit: 10, offset: 0 })).rows;
    assert.deepEqual(
      registrations.map((row) => [row.id, row.hash_algorithm]),
      [
        [1, 'md5'],
        [2, 'sha512-256'],
      ],
    );
    const nodes = (await reopened.config.list('opensips_nodes', { where: {}, limit: 10, offset: 0 })).rows;
    assert.deepEqual(
      nodes.map((row) => [row.hostname, row.status]),
      [
        ['n-draining', 'suspended'],
        ['n-offline', 'disabled'],
      ],
    );
    await reopened.close();
  });

  it("reuses the rate columns until a rate changes, here or in another process's connection", async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'store-')), 'config.db');
    const stores = openCentreStores(path);
    const store = stores.config;
    await seedStore(store, routingTables());
    const first = (await store.readRoutingData([])).rates;
    assert.equal((await store.readRoutingData([])).rates, first, 'unchanged: the same columns');
    assert.equal(await rateOf(store, '614', 1), '0.0250');
    // Our own write.
    const row = (await store.list('rate_deck_rates', { where: { rate_deck_id: 1, prefix: '614' }, limit: 1, offset: 0 })).rows[0];
    await store.update('rate_deck_rates', row.id as number, { rate_per_minute: '0.0260' });
    assert.equal(await rateOf(store, '614', 1), '0.0260');
    // Another connection's write (the sync-run command, a second control plane process).
    const other = openCentreStores(path);
    await other.config.update('rate_deck_rates', row.id as number, { rate_per_minute: '0.0270' });
    await other.close();
    assert.equal(await rateOf(store, '614', 1), '0.0270');
    // A write elsewhere leaves the cache alone.
    const cached = (await store.readRoutingData([])).rates;
    await store.update('customer_trunks', 10, { name: 'Renamed' });
    assert.equal((await store.readRoutingData([])).rates, cached);
    await stores.close();
  });
});
