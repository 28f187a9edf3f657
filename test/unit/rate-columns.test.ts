import Database from 'better-sqlite3';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { ImportedRate } from '../../sync/store/config-store.js';
import { openCentreStores } from '../../sync/stores.js';
import { readRateColumns, readRateColumnsByRow, readRateColumnsChunked } from '../../sync/store/rate-columns.js';

// The chunked read (SQLite concatenates columns, JS cuts them) must give exactly the row-by-row columns.

async function storeWithRates(): Promise<string> {
  const path = join(mkdtempSync(join(tmpdir(), 'rate-columns-')), 'config.db');
  const stores = openCentreStores(path);
  const store = stores.config;
  const now = new Date().toISOString();
  const decks = [];
  for (const name of ['Retail', 'Carrier A', 'Carrier B']) {
    decks.push(await store.insert('rate_decks', { name, deck_type: 'carrier', currency: 'USD', created_at: now, updated_at: now }));
  }
  const names = ['Australia Mobile', 'Germany, Fixed "Berlin"', 'Côte d’Ivoire', 'Émirats – Dubaï 📞', '', 'Japan'];
  const dates = ['2026-01-01T00:00:00Z', '2026-03-15T12:30:00.250Z', '2026-06-01T00:00:00+02:00'];
  // Interleaved decks, so ids and decks do not follow each other.
  for (let round = 0; round < 3; round++) {
    for (const [index, deck] of decks.entries()) {
      const rows: ImportedRate[] = [];
      for (let i = 0; i < 40; i++) {
        rows.push({
          prefix: `${61 + index}${round}${i}`,
          destination_name: names[(i + round) % names.length],
          rate_per_minute: i % 7 === 0 ? '0' : `0.${String(1000 + i * 37 + round).padStart(6, '0')}`,
          rate_type: i % 10 === 0 ? 'per_call' : 'per_minute',
          billing_increment_initial: i % 4 === 0 ? null : [1, 6, 30, 60][i % 4],
          billing_increment_step: i % 4 === 0 ? null : [1, 6, 6, 60][i % 4],
          effective_at: dates[(i + index) % dates.length],
        });
      }
      await store.importRates(deck.id as number, rows, 'error');
    }
  }
  await stores.close();
  return path;
}

test('the chunked read gives the same columns as the row-by-row read, at any chunk size', async () => {
  const db = new Database(await storeWithRates(), { readonly: true });
  const byRow = readRateColumnsByRow(db);
  assert.equal(byRow.rate_deck_id.length, 360);
  for (const chunkRows of [1, 7, 100, 359, 360, 100_000]) {
    assert.deepStrictEqual(readRateColumnsChunked(db, chunkRows), byRow, `chunks of ${chunkRows}`);
  }
  db.close();
});

for (const [what, update] of [
  ['a separator inside a destination name', `UPDATE rate_deck_rates SET destination_name = 'Odd\u0001Name' WHERE id = 5`],
  ['a fractional increment', 'UPDATE rate_deck_rates SET billing_increment_initial = 6.5 WHERE id = 200'],
]) {
  test(`text the chunked read cannot cut (${what}) is read row by row instead`, async () => {
    const path = await storeWithRates();
    const writer = new Database(path);
    writer.prepare(update).run();
    writer.close();
    const db = new Database(path, { readonly: true });
    assert.equal(readRateColumnsChunked(db, 50), null);
    assert.deepStrictEqual(readRateColumns(db, 50), readRateColumnsByRow(db));
    db.close();
  });
}

test('an empty rate table reads as empty columns', async () => {
  const path = join(mkdtempSync(join(tmpdir(), 'rate-columns-')), 'config.db');
  await openCentreStores(path).close();
  const db = new Database(path, { readonly: true });
  const columns = readRateColumns(db);
  assert.equal(columns.rate_deck_id.length, 0);
  assert.equal(columns.prefix_digits, '');
  db.close();
});
