import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { queryBatch } from '../../sync/store/pg-batch.js';
import { postgresUnreachable, scratchSchema, type ScratchSchema } from '../helpers/postgres.js';

/**
 * Statements sent together in one round trip (sync/store/pg-batch.ts), as the ledger's money round sends its BEGIN
 * with its opening reads and its writes with its COMMIT: each answered in order, the first error failing the
 * batch with the rest not run, and the connection as good as before for what comes next.
 */
const unreachable = await postgresUnreachable();

describe('statements sent in one round trip (PostgreSQL)', { skip: unreachable ?? false }, () => {
  let scratch: ScratchSchema;
  let client: pg.Client;
  let other: pg.Client;

  before(async () => {
    scratch = await scratchSchema('pg_batch');
    client = new pg.Client({ connectionString: scratch.url });
    other = new pg.Client({ connectionString: scratch.url });
    await client.connect();
    await other.connect();
    await client.query('CREATE TABLE items (id BIGINT PRIMARY KEY, name TEXT NOT NULL)');
  });

  after(async () => {
    await client.end();
    await other.end();
    await scratch.drop();
  });

  it('answers each statement in order, a later one seeing what an earlier one wrote', async () => {
    const [begin, insert, read, commit] = await queryBatch(client, [
      { text: 'BEGIN' },
      { text: 'INSERT INTO items (id, name) VALUES ($1, $2), ($3, $4)', values: [1, 'one', 2, 'two'] },
      { text: 'SELECT id, name FROM items WHERE id <= $1 ORDER BY id', name: 'batch_read', values: [2] },
      { text: 'COMMIT' },
    ]);
    assert.equal(begin.command, 'BEGIN');
    assert.equal(insert.rowCount, 2);
    assert.deepEqual(read.rows, [
      { id: 1, name: 'one' },
      { id: 2, name: 'two' },
    ]);
    assert.equal(commit.command, 'COMMIT');
    assert.equal((await other.query('SELECT count(*)::int AS n FROM items')).rows[0].n, 2);
  });

  it('fails with the first error, runs none after it, and prepares on the next use a named statement the error skipped', async () => {
    await assert.rejects(
      queryBatch(client, [
        { text: 'BEGIN' },
        { text: 'INSERT INTO items (id, name) VALUES ($1, $2)', values: [1, 'again'] },
        { text: 'INSERT INTO items (id, name) VALUES ($1, $2) RETURNING id', name: 'batch_skipped', values: [3, 'three'] },
      ]),
      (error: Error & { code?: string }) => error.code === '23505',
    );
    await client.query('ROLLBACK');
    assert.equal((await other.query('SELECT count(*)::int AS n FROM items WHERE id = 3')).rows[0].n, 0);
    // Its Parse was skipped with it: sent again now, rather than a Bind to a statement the server never made.
    const [inserted] = await queryBatch(client, [
      { text: 'INSERT INTO items (id, name) VALUES ($1, $2) RETURNING id', name: 'batch_skipped', values: [3, 'three'] },
    ]);
    assert.deepEqual(inserted.rows, [{ id: 3 }]);
    // And the connection's own queries go on as before.
    assert.equal((await client.query('SELECT count(*)::int AS n FROM items')).rows[0].n, 3);
  });

  it('commits the statements after a COMMIT at the end of the batch, a transaction of their own', async () => {
    await queryBatch(client, [
      { text: 'BEGIN' },
      { text: 'INSERT INTO items (id, name) VALUES ($1, $2)', values: [4, 'four'] },
      { text: 'COMMIT' },
      { text: 'INSERT INTO items (id, name) VALUES ($1, $2)', values: [5, 'five'] },
    ]);
    assert.deepEqual((await other.query('SELECT id::int FROM items WHERE id >= 4 ORDER BY id')).rows, [{ id: 4 }, { id: 5 }]);
  });

  it('refuses a parameter it cannot send as text before the connection is handed to it', async () => {
    assert.throws(() => queryBatch(client, [{ text: 'SELECT $1::text', values: [{ an: 'object' }] }]), TypeError);
    assert.equal((await client.query('SELECT 1 AS one')).rows[0].one, 1);
  });
});
