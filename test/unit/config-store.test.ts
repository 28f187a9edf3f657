import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
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
  it('migrates a new file to the latest schema, and again on reopening without harm', () => {
    const path = join(mkdtempSync(join(tmpdir(), 'store-')), 'config.db');
    // The last migration's number, whatever it is: branches that each add one are renumbered when merged.
    const first = openCentreStores(path);
    assert.equal(first.schemaVersion(), LATEST);
    first.close();
    const again = openCentreStores(path);
    assert.equal(again.schemaVersion(), LATEST);
    again.close();
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
    other.close();
    assert.equal(await rateOf(store, '614', 1), '0.0270');
    // A write elsewhere leaves the cache alone.
    const cached = (await store.readRoutingData([])).rates;
    await store.update('customer_trunks', 10, { name: 'Renamed' });
    assert.equal((await store.readRoutingData([])).rates, cached);
    stores.close();
  });
});
