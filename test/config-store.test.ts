import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { rowRate } from '../src/snapshot/codec.js';
import { SqliteConfigStore } from '../sync/store/config-store.js';
import { seedStore } from '../sync/store/seed.js';
import { routingTables } from './fixtures/routing.js';

const rateOf = async (store: SqliteConfigStore, prefix: string, deck: number): Promise<string | null> => {
  const { rates } = await store.readRoutingData([]);
  for (let i = 0; i < rates.prefix_end.length; i++) {
    const start = i === 0 ? 0 : rates.prefix_end[i - 1];
    if (rates.rate_deck_id[i] === deck && rates.prefix_digits.slice(start, rates.prefix_end[i]) === prefix) return rowRate(rates, i);
  }
  return null;
};

describe('config store', () => {
  it('migrates a new file to the latest schema, and again on reopening without harm', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'store-')), 'config.db');
    const first = new SqliteConfigStore(path);
    assert.equal(first.schemaVersion(), 4);
    await first.close();
    const again = new SqliteConfigStore(path);
    assert.equal(again.schemaVersion(), 4);
    await again.close();
  });

  it('reuses the rate columns until a rate changes, here or in another process\'s connection', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'store-')), 'config.db');
    const store = new SqliteConfigStore(path);
    await seedStore(store, routingTables());
    const first = (await store.readRoutingData([])).rates;
    assert.equal((await store.readRoutingData([])).rates, first, 'unchanged: the same columns');
    assert.equal(await rateOf(store, '614', 1), '0.0250');
    // Our own write.
    const row = (await store.list('rate_deck_rates', { where: { rate_deck_id: 1, prefix: '614' }, limit: 1, offset: 0 })).rows[0];
    await store.update('rate_deck_rates', row.id as number, { rate_per_minute: '0.0260' });
    assert.equal(await rateOf(store, '614', 1), '0.0260');
    // Another connection's write (the sync-run command, a second control plane process).
    const other = new SqliteConfigStore(path);
    await other.update('rate_deck_rates', row.id as number, { rate_per_minute: '0.0270' });
    await other.close();
    assert.equal(await rateOf(store, '614', 1), '0.0270');
    // A write elsewhere leaves the cache alone.
    const cached = (await store.readRoutingData([])).rates;
    await store.update('customer_trunks', 10, { name: 'Renamed' });
    assert.equal((await store.readRoutingData([])).rates, cached);
    await store.close();
  });
});
