import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { reviseRate } from '../../sync/admin/rate-revision.js';
import { buildSnapshotTables } from '../../sync/snapshot/build.js';
import type { ConfigStore, Row } from '../../sync/store/config-store.js';
import { engineFor } from '../helpers/engine.js';
import { postgresUnreachable } from '../helpers/postgres.js';
import { openSeededStore, type SeededStore } from '../helpers/seeded-store.js';

/**
 * Rate edits with the clock given (sync/admin/rate-revision.ts), read back the way CDR rating reads them:
 * the store's snapshot, compiled, and LcrEngine.rowAt at a call's start.
 */
const MOBILE = '61400123456';
const EDIT = new Date('2026-03-01T12:00:00.000Z');
const ms = (iso: string): number => Date.parse(iso);
const unreachable = await postgresUnreachable();

for (const engine of ['sqlite', 'postgres'] as const) describeOn(engine);

function describeOn(engine: 'sqlite' | 'postgres'): void {
  describe(`rate revision on ${engine}`, { skip: engine === 'postgres' ? (unreachable ?? false) : false }, () => {
    let seeded: SeededStore;
    let store: ConfigStore;
    before(async () => {
      seeded = await openSeededStore(engine, 'revision');
      store = seeded.store;
    });
    after(() => seeded.close());

    const rateRow = async (deck: number, prefix: string): Promise<Row> => {
      const { rows } = await store.list('rate_deck_rates', {
        where: { rate_deck_id: deck, prefix, superseded_by: null },
        limit: null,
        offset: 0,
      });
      return rows.sort((a, b) => ms(a.effective_at as string) - ms(b.effective_at as string))[0];
    };
    /** The price of deck `deck`'s row for MOBILE in force at `at`, as a CDR starting then is rated. */
    const priceAt = async (deckId: number, at: string): Promise<string> => {
      const engine = engineFor((await buildSnapshotTables(store)).tables);
      const deck = engine.snapshot.decks.findIndex((candidate) => candidate.id === deckId);
      const row = engine.lcr.rowAt(deck, MOBILE, ms(at));
      return (engine.snapshot.rates.rateNano[row] / 1e9).toFixed(4);
    };

    it('keeps the old price for calls before the edit, even when the body resends the rate’s own date', async () => {
      const rate = await rateRow(1, '614');
      const revised = await reviseRate(store, rate, { rate_per_minute: '0.0300', effective_at: rate.effective_at }, EDIT);
      assert.equal(revised.id, rate.id);
      assert.equal(revised.effective_at, EDIT.toISOString());
      assert.equal(await priceAt(1, '2026-03-01T11:59:59.000Z'), '0.0250');
      assert.equal(await priceAt(1, '2026-03-01T12:00:01.000Z'), '0.0300');
    });

    it('applies a later effective_at from the body, the old price holding until then', async () => {
      const rate = await rateRow(102, '614');
      await reviseRate(store, rate, { rate_per_minute: '0.0130', effective_at: '2026-06-01T00:00:00.000Z' }, EDIT);
      assert.equal(await priceAt(102, '2026-05-31T23:59:59.000Z'), '0.0120');
      assert.equal(await priceAt(102, '2026-06-01T00:00:00.000Z'), '0.0130');
    });

    it('edits in place what prices nothing yet: a new name, a rate not in force', async () => {
      const rate = await rateRow(1, '614');
      const renamed = await reviseRate(store, rate, { destination_name: 'AU mobile' }, new Date(ms(EDIT.toISOString()) + 60_000));
      assert.deepEqual([renamed.destination_name, renamed.effective_at], ['AU mobile', EDIT.toISOString()]);
      const before = (await store.list('rate_deck_rates', { where: {}, limit: null, offset: 0 })).total;
      const future = (await store.list('rate_deck_rates', { where: { rate_deck_id: 1, prefix: '6140' }, limit: null, offset: 0 })).rows[0];
      await reviseRate(store, future, { rate_per_minute: '0.0110' }, EDIT);
      assert.equal((await store.list('rate_deck_rates', { where: {}, limit: null, offset: 0 })).total, before, 'no history row');
    });

    it('refuses to edit a rate a newer one of its prefix has replaced', async () => {
      // Deck 101 holds 614 from 2024 (0.0220), replaced from 2025 (0.0200): editing the 2024 row would reprice only old calls.
      const { rows } = await store.list('rate_deck_rates', { where: { rate_deck_id: 101, prefix: '614' }, limit: null, offset: 0 });
      const old = rows.find((row) => (row.effective_at as string).startsWith('2024'))!;
      await assert.rejects(reviseRate(store, old, { rate_per_minute: '0.0100' }, EDIT), /is no longer in force: rate \d+ replaced it/);
    });
  });
}
