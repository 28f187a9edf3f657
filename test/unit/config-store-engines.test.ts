import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { rowPrefix, rowRate } from '../../src/core/snapshot/codec.js';
import type { SnapshotTables } from '../../src/core/snapshot/schema.js';
import { RequestError } from '../../src/core/http/errors.js';
import { constraintRefusal } from '../../sync/http/handlers.js';
import { buildSnapshotTables } from '../../sync/snapshot/build.js';
import { RateConflictError, type ConfigStore, type ImportedRate, type Row } from '../../sync/store/config-store.js';
import { MIGRATIONS } from '../../sync/store/migrations.js';
import { parseStoreLocation } from '../../sync/store/store-location.js';
import { openConfigStore, type ConfigStoreHandle } from '../../sync/stores.js';
import { postgresUnreachable } from '../helpers/postgres.js';
import { openSeededStore, type SeededStore } from '../helpers/seeded-store.js';

/**
 * The ConfigStore contract, run on each engine: SQLite (a temporary file) and PostgreSQL (a scratch schema
 * on the machine's server; skipped, with its reason shown, only when the server does not answer). What one
 * engine answers, the other must answer the same, down to the snapshot built from the same seed.
 */
const LATEST = MIGRATIONS[MIGRATIONS.length - 1].version;
const unreachable = await postgresUnreachable();

const rate = (prefix: string, price: string, effectiveAt = '2026-01-01T00:00:00.000Z'): ImportedRate => ({
  prefix,
  destination_name: `Dest ${prefix}`,
  rate_per_minute: price,
  rate_type: 'per_minute',
  billing_increment_initial: null,
  billing_increment_step: null,
  effective_at: effectiveAt,
});

/** A deck's live rows (history left out), prefix -> price. */
async function deckPrices(store: ConfigStore, deck: number): Promise<Record<string, string>> {
  const { rows } = await store.list('rate_deck_rates', { where: { rate_deck_id: deck, superseded_by: null }, limit: null, offset: 0 });
  return Object.fromEntries(
    rows.map((row) => [`${row.prefix as string}@${(row.effective_at as string).slice(0, 10)}`, row.rate_per_minute as string]),
  );
}

async function newDeck(store: ConfigStore, name: string): Promise<number> {
  const now = new Date().toISOString();
  const deck = await store.insert('rate_decks', {
    name,
    deck_type: 'sell',
    currency: 'AUD',
    description: null,
    created_at: now,
    updated_at: now,
  });
  return deck.id as number;
}

/** The value with every timestamp the seed stamped (its clock, not the engine's) taken out. */
function withoutTimes(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutTimes);
  if (value === null || typeof value !== 'object' || ArrayBuffer.isView(value)) return value;
  return Object.fromEntries(
    Object.entries(value)
      .filter(([key]) => !['created_at', 'updated_at', 'assigned_at', 'superseded_at'].includes(key))
      .map(([key, inner]) => [key, withoutTimes(inner)]),
  );
}

/** The snapshot every engine must build from the fixture: SQLite's, the reference. */
async function referenceSnapshot(): Promise<SnapshotTables> {
  const reference = await openSeededStore('sqlite', 'store-ref');
  const built = await buildSnapshotTables(reference.store);
  await reference.close();
  return built.tables;
}

for (const engine of ['sqlite', 'postgres'] as const) {
  describe(`config store on ${engine}`, { skip: engine === 'postgres' ? (unreachable ?? false) : false }, () => {
    let seeded: SeededStore;
    let location: string;
    let handle: ConfigStoreHandle;
    let store: ConfigStore;
    before(async () => {
      seeded = await openSeededStore(engine, 'config');
      ({ location, handle, store } = seeded);
    });
    after(() => seeded.close());

    it('migrates to the latest schema, and reopening applies nothing again', async () => {
      assert.equal(await handle.schemaVersion(), LATEST);
      const again = await openConfigStore(parseStoreLocation(location));
      assert.equal(await again.schemaVersion(), LATEST);
      const trunks = (await store.list('customer_trunks', { where: {}, limit: null, offset: 0 })).total;
      assert.equal((await again.config.list('customer_trunks', { where: {}, limit: null, offset: 0 })).total, trunks);
      await again.close();
    });

    it("builds the same snapshot from the same seed as SQLite's store, live changes' sequence included", async () => {
      const reference = await referenceSnapshot();
      assert.ok(reference.delta_seq! > 0, 'the seeded live rows went through the delta log');
      assert.deepEqual(withoutTimes((await buildSnapshotTables(store)).tables), withoutTimes(reference));
    });

    it('numbers concurrent live changes one after another, and a change that fails takes no number', async () => {
      const seqNow = async (): Promise<number> => (await store.readRoutingData([])).deltaSeq;
      const before = await seqNow();
      const now = new Date().toISOString();
      const rule = { scope: 'global', scope_id: null, block_type: 'dnis', match_type: 'prefix', sip_response_code: 403, description: null };
      const created = await Promise.all(
        Array.from({ length: 12 }, (_, i) =>
          store.insert('block_rules', { ...rule, pattern: `6199${i}`, is_active: 1, created_at: now, updated_at: now }),
        ),
      );
      await store.update('block_rules', created[0].id as number, { is_active: 0 });
      await store.remove('block_rules', created[1].id as number);
      // Refused (the account's trunks name it): rolled back with its delta, so the sequence has no hole.
      await (async () => store.remove('customer_accounts', 1))().then(
        () => assert.fail('a referenced account was removed'),
        () => undefined,
      );
      await store.update('block_rules', 999_999, { is_active: 0 }); // no such row: nothing changed, nothing logged
      await store.insert('rate_decks', {
        name: 'Not live',
        deck_type: 'sell',
        currency: 'AUD',
        description: null,
        created_at: now,
        updated_at: now,
      });
      assert.equal(await seqNow(), before + 14);
    });

    it('lists with filters, NULL filters, order, limit and offset, and a total of all matching rows', async () => {
      const all = await store.list('customer_trunks', { where: {}, limit: null, offset: 0 });
      const ids = all.rows.map((row) => row.id as number);
      assert.deepEqual(
        ids,
        [...ids].sort((a, b) => a - b),
      );
      assert.equal(all.total, ids.length);
      assert.equal(typeof all.rows[0].cps_limit, 'number', 'integers come back as numbers on every engine');
      const page = await store.list('customer_trunks', { where: {}, limit: 1, offset: 1, orderBy: 'id DESC' });
      assert.deepEqual(
        page.rows.map((row) => row.id),
        [ids[ids.length - 2]],
      );
      assert.equal(page.total, ids.length);
      const filtered = await store.list('customer_trunks', { where: { customer_account_id: 1, tech_prefix: null }, limit: 10, offset: 0 });
      assert.equal(filtered.total, filtered.rows.length);
      // Text orders byte by byte on both engines ('Z' before 'a'), as operators see it on SQLite.
      const now = new Date().toISOString();
      for (const ip of ['203.0.113.9', '203.0.113.10'])
        await store.insert('auth_ips', {
          ip_address: ip,
          description: ip.endsWith('9') ? 'a' : 'Z',
          is_active: 1,
          created_at: now,
          updated_at: now,
        });
      const byDescription = await store.list('auth_ips', { where: { is_active: 1 }, limit: null, offset: 0, orderBy: 'description' });
      assert.deepEqual(
        byDescription.rows.map((row) => row.description),
        ['Z', 'a'],
      );
    });

    it('numbers new rows past the ids the seed gave, updates and removes by id', async () => {
      const deck = await newDeck(store, 'Numbered');
      assert.ok(deck > 103, `a new deck's id (${deck}) follows the seeded ones`);
      const changed = await store.update('rate_decks', deck, { name: 'Renamed' });
      assert.equal(changed?.name, 'Renamed');
      assert.equal(await store.update('rate_decks', 999_999, { name: 'x' }), null);
      assert.equal(await store.remove('rate_decks', deck), true);
      assert.equal(await store.remove('rate_decks', deck), false);
      assert.equal(await store.get('rate_decks', deck), null);
    });

    it('revises a rate keeping its old terms as history, and removes a rate with its history', async () => {
      const deck = await newDeck(store, 'Revised');
      await store.importRates(deck, [rate('4420', '0.0100')], 'error');
      const original = (await store.list('rate_deck_rates', { where: { rate_deck_id: deck }, limit: null, offset: 0 })).rows[0];
      const revised = await store.reviseRate(original.id as number, {
        rate_per_minute: '0.0200',
        effective_at: '2026-02-01T00:00:00.000Z',
        updated_at: '2026-02-01T00:00:00.000Z',
      });
      assert.equal(revised?.id, original.id);
      assert.equal(revised?.rate_per_minute, '0.0200');
      const history = (await store.list('rate_deck_rates', { where: { superseded_by: original.id as number }, limit: null, offset: 0 }))
        .rows;
      assert.deepEqual(
        history.map((row: Row) => [row.rate_per_minute, row.effective_at, row.superseded_at]),
        [['0.0100', '2026-01-01T00:00:00.000Z', '2026-02-01T00:00:00.000Z']],
      );
      assert.equal(await store.reviseRate(999_999, { rate_per_minute: '1' }), null);
      assert.equal(await store.removeRate(original.id as number), true);
      assert.equal((await store.list('rate_deck_rates', { where: { rate_deck_id: deck }, limit: null, offset: 0 })).total, 0);
      assert.equal(await store.removeRate(original.id as number), false);
    });

    it("assigns a trunk's deck superseding the one before, and unassigns it", async () => {
      const deck = await newDeck(store, 'Assigned');
      const assigned = await store.assignRateDeck('customer', 11, deck);
      assert.equal(assigned.is_active, 1);
      const active = await store.list('customer_trunk_rate_decks', {
        where: { customer_trunk_id: 11, is_active: 1 },
        limit: null,
        offset: 0,
      });
      assert.deepEqual(
        active.rows.map((row) => row.rate_deck_id),
        [deck],
      );
      assert.equal(await store.unassignRateDeck('customer', 11), true);
      assert.equal(await store.unassignRateDeck('customer', 11), false);
    });

    it("leaves exactly one active deck when a trunk's deck is assigned many times at once, and revisions at once each keep their own history", async () => {
      const decks = await Promise.all(Array.from({ length: 6 }, (_, i) => newDeck(store, `Race ${i}`)));
      await Promise.all(decks.map((deck) => store.assignRateDeck('carrier', 20, deck)));
      const active = await store.list('carrier_trunk_rate_decks', {
        where: { carrier_trunk_id: 20, is_active: 1 },
        limit: null,
        offset: 0,
      });
      assert.equal(active.total, 1, JSON.stringify(active.rows));

      await store.importRates(decks[0], [rate('4470', '0.0100')], 'error');
      const original = (await store.list('rate_deck_rates', { where: { rate_deck_id: decks[0] }, limit: null, offset: 0 })).rows[0];
      const prices = ['0.0201', '0.0202', '0.0203', '0.0204', '0.0205'];
      await Promise.all(
        prices.map((price, i) =>
          store.reviseRate(original.id as number, { rate_per_minute: price, effective_at: `2026-02-0${i + 1}T00:00:00.000Z` }),
        ),
      );
      const current = (await store.get('rate_deck_rates', original.id as number))!.rate_per_minute as string;
      const history = (await store.list('rate_deck_rates', { where: { superseded_by: original.id as number }, limit: null, offset: 0 }))
        .rows;
      // Each revision kept the terms it replaced: the old price once, and every new price but the last once.
      assert.deepEqual([...history.map((row) => row.rate_per_minute as string), current].sort(), ['0.0100', ...prices].sort());
    });

    it('imports rates: skip keeps, overwrite replaces (a repeat within the file included), error refuses the whole file', async () => {
      const deck = await newDeck(store, 'Imported');
      assert.deepEqual(await store.importRates(deck, [rate('331', '0.0100'), rate('332', '0.0200')], 'error'), {
        imported: 2,
        updated: 0,
        skipped: 0,
      });
      const file = [rate('331', '0.0111'), rate('333', '0.0300'), rate('333', '0.0333'), rate('334', '0.0400')];
      assert.deepEqual(await store.importRates(deck, file, 'skip'), { imported: 2, updated: 0, skipped: 2 });
      assert.deepEqual(await deckPrices(store, deck), {
        '331@2026-01-01': '0.0100',
        '332@2026-01-01': '0.0200',
        '333@2026-01-01': '0.0300',
        '334@2026-01-01': '0.0400',
      });
      const later = rate('331', '0.0150', '2026-03-01T00:00:00.000Z');
      assert.deepEqual(await store.importRates(deck, [...file, later, rate('335', '0.5'), rate('335', '0.6')], 'overwrite'), {
        imported: 2,
        updated: 5,
        skipped: 0,
      });
      assert.deepEqual(await deckPrices(store, deck), {
        '331@2026-01-01': '0.0111',
        '331@2026-03-01': '0.0150',
        '332@2026-01-01': '0.0200',
        '333@2026-01-01': '0.0333',
        '334@2026-01-01': '0.0400',
        '335@2026-01-01': '0.6',
      });
      const before = await deckPrices(store, deck);
      await assert.rejects(
        async () => store.importRates(deck, [rate('336', '0.1'), rate('337', '0.1'), rate('337', '0.2'), rate('332', '0.9')], 'error'),
        (error: unknown) => error instanceof RateConflictError && error.index === 2 && error.prefix === '337',
      );
      await assert.rejects(
        async () => store.importRates(deck, [rate('338', '0.1'), rate('332', '0.9'), rate('338', '0.2')], 'error'),
        (error: unknown) => error instanceof RateConflictError && error.index === 1 && error.prefix === '332',
      );
      assert.deepEqual(await deckPrices(store, deck), before, 'a refused import writes nothing');
    });

    it("imports into a deck with no rows yet as into one with rows: the file's repeats skipped, overwritten or refused", async () => {
      const file = [rate('341', '0.1'), rate('342', '0.2'), rate('341', '0.3')];
      const skipDeck = await newDeck(store, 'Empty, skip');
      assert.deepEqual(await store.importRates(skipDeck, file, 'skip'), { imported: 2, updated: 0, skipped: 1 });
      assert.deepEqual(await deckPrices(store, skipDeck), { '341@2026-01-01': '0.1', '342@2026-01-01': '0.2' });
      const overwriteDeck = await newDeck(store, 'Empty, overwrite');
      assert.deepEqual(await store.importRates(overwriteDeck, file, 'overwrite'), { imported: 2, updated: 1, skipped: 0 });
      assert.deepEqual(await deckPrices(store, overwriteDeck), { '341@2026-01-01': '0.3', '342@2026-01-01': '0.2' });
      const errorDeck = await newDeck(store, 'Empty, error');
      await assert.rejects(
        async () => store.importRates(errorDeck, file, 'error'),
        (error: unknown) => error instanceof RateConflictError && error.index === 2 && error.prefix === '341',
      );
      assert.deepEqual(await deckPrices(store, errorDeck), {}, 'a refused import writes nothing');
    });

    it("overwrites a stored key's row in place (its id and created_at kept) and numbers the new keys after, in the file's order", async () => {
      const deck = await newDeck(store, 'Overwritten in place');
      await store.importRates(deck, [rate('351', '0.1'), rate('352', '0.2')], 'error');
      const rowsOf = async (): Promise<Row[]> =>
        (await store.list('rate_deck_rates', { where: { rate_deck_id: deck }, limit: null, offset: 0 })).rows.sort(
          (a, b) => (a.id as number) - (b.id as number),
        );
      const stored = await rowsOf();
      // The import's clock must move past the first import's, or a kept created_at could not be told from a new one.
      await new Promise((resolve) => setTimeout(resolve, 5));
      const file = [rate('353', '0.3'), { ...rate('352', '0.22'), destination_name: 'Renamed', billing_increment_initial: 60 }];
      file.push(rate('351', '0.11'), rate('354', '0.4'), rate('353', '0.33'));
      assert.deepEqual(await store.importRates(deck, file, 'overwrite'), { imported: 2, updated: 3, skipped: 0 });
      const after = await rowsOf();
      const terms = (row: Row): unknown[] => [
        row.prefix,
        row.destination_name,
        row.rate_per_minute,
        row.billing_increment_initial,
        row.billing_increment_step,
      ];
      assert.deepEqual(after.map(terms), [
        ['351', 'Dest 351', '0.11', null, null],
        ['352', 'Renamed', '0.22', 60, null],
        ['353', 'Dest 353', '0.33', null, null],
        ['354', 'Dest 354', '0.4', null, null],
      ]);
      assert.deepEqual(
        after.slice(0, 2).map((row) => [row.id, row.created_at]),
        stored.map((row) => [row.id, row.created_at]),
        'the stored keys keep their rows',
      );
      const importedAt = after[2].created_at as string;
      assert.notEqual(importedAt, stored[0].created_at);
      assert.deepEqual(
        after.map((row) => row.updated_at),
        after.map(() => importedAt),
        'every row the file named carries the import time',
      );
      assert.equal(after[3].created_at, importedAt);
    });

    it('keeps text as it was sent, whatever it holds: tabs, line ends, backslashes, quotes, \\N and non-ASCII', async () => {
      // COPY's text format ends a field at a tab and a row at a line end, reads a backslash as an escape and
      // \N as null: none of that may leak from a destination name into the stored rows.
      const hostile = [
        'Tab\there',
        'Line\nend',
        'Carriage\rreturn\r\n',
        'Back\\slash\\',
        '\\N',
        '\\',
        '\\t not a tab',
        '"quoted", \'single\'; DROP TABLE rate_deck_rates; --',
        'Zürich ☎ 📞',
        ' padded ',
      ];
      const file = hostile.map((name, i) => ({ ...rate(String(3500 + i), `0.0${i}`), destination_name: name }));
      for (const [mode, rows] of [
        ['error', file],
        // The same keys again, each with its name reversed: the temporary table's path, on overwrite.
        ['overwrite', file.map((row) => ({ ...row, destination_name: [...row.destination_name].reverse().join('') }))],
      ] as const) {
        const deck =
          mode === 'error'
            ? await newDeck(store, 'Hostile')
            : ((await store.list('rate_decks', { where: { name: 'Hostile' }, limit: 1, offset: 0 })).rows[0].id as number);
        await store.importRates(deck, rows, mode);
        const stored = (await store.list('rate_deck_rates', { where: { rate_deck_id: deck }, limit: null, offset: 0 })).rows;
        assert.deepEqual(
          stored.map((row) => [row.prefix, row.destination_name, row.rate_per_minute, row.billing_increment_initial]),
          rows.map((row) => [row.prefix, row.destination_name, row.rate_per_minute, null]),
          mode,
        );
        const { rates } = await store.readRoutingData([]);
        const read = Array.from(rates.rate_deck_id.keys())
          .filter((i) => rates.rate_deck_id[i] === deck)
          .map((i) => rates.destination_names[rates.destination_name[i]]);
        assert.deepEqual(
          read,
          rows.map((row) => row.destination_name),
          `${mode}: the snapshot's read`,
        );
      }
    });

    it('reads every rate row, row by row, when a name holds the text the chunked read cuts at', async () => {
      const deck = await newDeck(store, 'Awkward');
      await store.importRates(deck, [{ ...rate('4480', '0.0100'), destination_name: 'Odd\u0001Name' }, rate('4481', '0.0200')], 'error');
      const { rates } = await store.readRoutingData([]);
      const total = (await store.list('rate_deck_rates', { where: {}, limit: 0, offset: 0 })).total;
      assert.equal(rates.prefix_end.length, total);
      const names = Array.from(rates.rate_deck_id.keys())
        .filter((i) => rates.rate_deck_id[i] === deck)
        .map((i) => [rowPrefix(rates, i), rates.destination_names[rates.destination_name[i]], rowRate(rates, i)]);
      assert.deepEqual(names, [
        ['4480', 'Odd\u0001Name', '0.0100'],
        ['4481', 'Dest 4481', '0.0200'],
      ]);
    });

    it("reuses the rate columns until a rate changes, here or over another connection (another control plane's)", async () => {
      const first = (await store.readRoutingData([])).rates;
      assert.equal((await store.readRoutingData([])).rates, first, 'unchanged: the same columns');
      const row = (
        await store.list('rate_deck_rates', { where: { rate_deck_id: 1, prefix: '614', superseded_by: null }, limit: 1, offset: 0 })
      ).rows[0];
      await store.update('rate_deck_rates', row.id as number, { rate_per_minute: '0.0261' });
      const mine = (await store.readRoutingData([])).rates;
      assert.notEqual(mine, first);
      assert.ok(mine.rate_text.includes('0.0261'));
      const other = await openConfigStore(parseStoreLocation(location));
      await other.config.update('rate_deck_rates', row.id as number, { rate_per_minute: '0.0271' });
      await other.close();
      const theirs = (await store.readRoutingData([])).rates;
      assert.ok(theirs.rate_text.includes('0.0271') && !theirs.rate_text.includes('0.0261'));
      await store.update('customer_trunks', 10, { name: 'Renamed' });
      assert.equal((await store.readRoutingData([])).rates, theirs, 'a write elsewhere leaves the columns alone');
    });

    it("refuses a duplicate key and a removal of a referenced record as the admin API's 409s", async () => {
      const now = new Date().toISOString();
      const ip = { ip_address: '198.51.100.77', description: null, is_active: 1, created_at: now, updated_at: now };
      await store.insert('auth_ips', ip);
      // As the admin routes meet it: SQLite's store throws at once, PostgreSQL's rejects.
      const duplicate = await (async () => store.insert('auth_ips', ip))().then(undefined, constraintRefusal);
      assert.ok(duplicate instanceof RequestError && duplicate.code === 'duplicate', String(duplicate));
      const referenced = await (async () => store.remove('customer_accounts', 1))().then(undefined, constraintRefusal);
      assert.ok(referenced instanceof RequestError && referenced.code === 'still_referenced', String(referenced));
    });

    it("refuses a rate whose deck does not exist, and a deck's removal while rates name it, as the admin API's 409s", async () => {
      const refused = (work: () => Promise<unknown>): Promise<unknown> => (async () => work())().then(undefined, constraintRefusal);
      const now = new Date().toISOString();
      const missing = await refused(() =>
        store.insert('rate_deck_rates', { ...rate('4499', '0.0100'), rate_deck_id: 987_654, created_at: now, updated_at: now }),
      );
      assert.ok(missing instanceof RequestError && missing.code === 'still_referenced', String(missing));
      const imported = await refused(() => store.importRates(987_654, [rate('4498', '0.0100')], 'error'));
      assert.ok(imported instanceof RequestError && imported.code === 'still_referenced', String(imported));
      const deck = await newDeck(store, 'Named by a rate');
      await store.importRates(deck, [rate('4497', '0.0100')], 'error');
      const removal = await refused(() => store.remove('rate_decks', deck));
      assert.ok(removal instanceof RequestError && removal.code === 'still_referenced', String(removal));
      const [row] = (await store.list('rate_deck_rates', { where: { rate_deck_id: deck }, limit: null, offset: 0 })).rows;
      assert.equal(await store.remove('rate_deck_rates', row.id as number), true);
      assert.equal(await store.remove('rate_decks', deck), true);
    });

    it('keeps snapshot versions', async () => {
      const last = await store.lastSnapshotVersion();
      await store.recordSnapshot(last + 1, new Date().toISOString(), 'abc', { rate_rows: 1 });
      assert.equal(await store.lastSnapshotVersion(), last + 1);
    });
  });
}
