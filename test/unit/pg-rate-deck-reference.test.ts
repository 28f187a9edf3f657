import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { parseStoreLocation } from '../../sync/store/store-location.js';
import { openConfigStore, type ConfigStoreHandle } from '../../sync/stores.js';
import { postgresUnreachable, scratchSchema, type ScratchSchema } from '../helpers/postgres.js';

/**
 * On PostgreSQL a rate row's deck is checked once per statement (migration 18), not by a foreign key's
 * check per row. The key's guarantee must hold between transactions too: a deck deleted while rates for it
 * are being written, either one first, never leaves rates without their deck.
 */
const unreachable = await postgresUnreachable();

describe('a rate row and its deck on PostgreSQL, between transactions', { skip: unreachable ?? false }, () => {
  let scratch: ScratchSchema;
  let handle: ConfigStoreHandle;
  let writer: pg.Client;
  let remover: pg.Client;
  let decks = 0;
  before(async () => {
    scratch = await scratchSchema('deck_reference');
    handle = await openConfigStore(parseStoreLocation(scratch.url));
    writer = new pg.Client({ connectionString: scratch.url });
    remover = new pg.Client({ connectionString: scratch.url });
    await writer.connect();
    await remover.connect();
  });
  after(async () => {
    await writer.end();
    await remover.end();
    await handle.close();
    await scratch.drop();
  });

  const newDeck = async (): Promise<number> =>
    (
      await writer.query<{ id: number }>(
        `INSERT INTO rate_decks (name, deck_type, currency, created_at, updated_at) VALUES ($1, 'sell', 'USD', 'now', 'now') RETURNING id`,
        [`deck ${++decks}`],
      )
    ).rows[0].id;
  const writeRates = (deck: number): Promise<unknown> =>
    writer.query(
      `INSERT INTO rate_deck_rates (rate_deck_id, prefix, destination_name, rate_per_minute, rate_type, effective_at, created_at, updated_at)
         SELECT $1, p::text, 'Dest', '0.01', 'per_minute', '2026-01-01T00:00:00.000Z', 'now', 'now' FROM generate_series(1, 50) p`,
      [deck],
    );
  const sqlState = (error: unknown): unknown => (error as { code?: unknown }).code;
  const rateCount = async (deck: number): Promise<number> =>
    Number((await remover.query('SELECT count(*) AS n FROM rate_deck_rates WHERE rate_deck_id = $1', [deck])).rows[0].n);

  it('a deletion waiting for rates being written fails once they are committed', async () => {
    const deck = await newDeck();
    await writer.query('BEGIN');
    await writeRates(deck);
    const removal = remover.query('DELETE FROM rate_decks WHERE id = $1', [deck]).then(undefined, (error: unknown) => error);
    // The deletion waits for the writer's update of the deck; give it time to be waiting.
    await new Promise((resolve) => setTimeout(resolve, 200));
    await writer.query('COMMIT');
    assert.equal(sqlState(await removal), '23503');
    assert.equal(await rateCount(deck), 50);
  });

  it('a deletion in REPEATABLE READ that began before the rates were committed fails to serialize', async () => {
    const deck = await newDeck();
    await remover.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
    await remover.query('SELECT 1 FROM rate_decks'); // the snapshot, taken before the rates exist
    await writeRates(deck);
    const refused = await remover.query('DELETE FROM rate_decks WHERE id = $1', [deck]).then(undefined, (error: unknown) => error);
    await remover.query('ROLLBACK');
    assert.equal(sqlState(refused), '40001');
    assert.equal(await rateCount(deck), 50);
  });

  it('rates written while their deck is being deleted fail once the deletion is committed', async () => {
    const deck = await newDeck();
    await remover.query('BEGIN');
    await remover.query('DELETE FROM rate_decks WHERE id = $1', [deck]);
    const written = writeRates(deck).then(undefined, (error: unknown) => error);
    await new Promise((resolve) => setTimeout(resolve, 200));
    await remover.query('COMMIT');
    assert.equal(sqlState(await written), '23503');
    assert.equal(await rateCount(deck), 0);
  });

  it("refuses a deck's new id, and emptying the decks, while rates name them", async () => {
    const deck = await newDeck();
    await writeRates(deck);
    const moved = await writer
      .query('UPDATE rate_decks SET id = $1 WHERE id = $2', [deck + 1000, deck])
      .then(undefined, (error: unknown) => error);
    assert.equal(sqlState(moved), '23503');
    const emptied = await writer.query('TRUNCATE rate_decks CASCADE').then(undefined, (error: unknown) => error);
    assert.equal(sqlState(emptied), '23503');
    const moving = await writer
      .query('UPDATE rate_deck_rates SET rate_deck_id = $1 WHERE rate_deck_id = $2', [deck + 1000, deck])
      .then(undefined, (error: unknown) => error);
    assert.equal(sqlState(moving), '23503');
  });
});
