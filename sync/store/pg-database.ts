import pg from 'pg';
import { redactedError } from './database-url.js';
import { MIGRATIONS, postgresSql } from './migrations.js';

/**
 * The centre's PostgreSQL database: a pool of connections, with every migration applied. Integers are
 * BIGINT (as SQLite's are 64-bit) and come back as JS numbers, as they do from SQLite: ids and counts stay
 * far below 2^53, and a row must look the same whichever engine it came from.
 */
const BIGINT_OID = 20;
export const PG_TYPES = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary'): unknown =>
    oid === BIGINT_OID
      ? (text: string) => Number(text)
      : (pg.types.getTypeParser(oid, format) as unknown)) as typeof pg.types.getTypeParser,
};

/**
 * Any key that two control planes starting together both take: the second waits while the first migrates,
 * then finds nothing left to do. (A number of our own: pg_advisory locks share one key space per database.)
 */
const MIGRATION_LOCK = 0x5eed_0021;

export async function openPgDatabase(url: string): Promise<pg.Pool> {
  const pool = new pg.Pool({ connectionString: url, connectionTimeoutMillis: 10_000, max: 10, types: PG_TYPES });
  // An idle connection the server drops would otherwise be an uncaught 'error' event; the pool replaces it.
  pool.on('error', () => undefined);
  try {
    await migratePg(pool);
  } catch (error) {
    await pool.end().catch(() => undefined);
    throw redactedError(error, url);
  }
  return pool;
}

/** Applies the migrations this database has not seen yet, each in its own transaction (PostgreSQL's DDL is transactional). */
async function migratePg(pool: pg.Pool): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
    try {
      await client.query(
        'CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL, applied_at TEXT NOT NULL)',
      );
      const applied = new Set(
        (await client.query<{ version: number }>('SELECT version FROM schema_migrations')).rows.map((r) => r.version),
      );
      for (const migration of MIGRATIONS) {
        if (applied.has(migration.version)) continue;
        await client.query('BEGIN');
        try {
          await client.query(postgresSql(migration));
          await client.query('INSERT INTO schema_migrations (version, description, applied_at) VALUES ($1, $2, $3)', [
            migration.version,
            migration.description,
            new Date().toISOString(),
          ]);
          await client.query('COMMIT');
        } catch (error) {
          await client.query('ROLLBACK').catch(() => undefined);
          throw new Error(`migration ${migration.version} (${migration.description}) failed: ${(error as Error).message}`);
        }
      }
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => undefined);
    }
  } finally {
    client.release();
  }
}

/**
 * A session the control plane holds open for its life while it mostly sits idle (the sync lock's, the delta
 * feed's LISTEN): exempt from the idle timeouts a server, role or database may set (`idle_session_timeout`,
 * PostgreSQL 14 on). Ended by the server each time it is idle that long, the sync lock went with it and the
 * lead passed back and forth, a full sync at every taking; the delta feed made its connection again and read
 * again. Set through pg_settings so that a server without the setting (before 14) is not refused.
 */
export async function keepSessionOpen(client: pg.ClientBase): Promise<void> {
  await client.query(
    "SELECT set_config(name, '0', false) FROM pg_settings WHERE name IN ('idle_session_timeout', 'idle_in_transaction_session_timeout')",
  );
}

export async function pgSchemaVersion(pool: pg.Pool): Promise<number> {
  return (await pool.query<{ version: number }>('SELECT MAX(version) AS version FROM schema_migrations')).rows[0].version;
}

/**
 * Runs `work` in one transaction on one connection of the pool: committed when it resolves, rolled back when it
 * throws. `begin` and `commit` are sent as they are (simple protocol: each may be several statements, one round trip).
 */
export function inPgTransaction<T>(
  pool: pg.Pool,
  work: (client: pg.PoolClient) => Promise<T>,
  begin = 'BEGIN',
  commit = 'COMMIT',
): Promise<T> {
  return inPgTransactionOfWork(pool, async (client) => {
    await client.query(begin);
    const result = await work(client);
    await client.query(commit);
    return result;
  });
}

/**
 * inPgTransaction where `work` sends the BEGIN and the COMMIT itself, each with other statements in one round trip
 * (the ledger's: sql-steps runPgSteps `around`): rolled back when it throws, the connection then dropped if even
 * the ROLLBACK failed.
 */
export async function inPgTransactionOfWork<T>(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  // A connection whose ROLLBACK failed is in no known state: destroyed, not handed to the next caller.
  let broken: Error | undefined;
  try {
    return await work(client);
  } catch (error) {
    await client.query('ROLLBACK').catch((rollbackError: unknown) => (broken = rollbackError as Error));
    throw error;
  } finally {
    client.release(broken);
  }
}
