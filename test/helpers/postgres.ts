import { randomBytes } from 'node:crypto';
import pg from 'pg';

/**
 * A scratch schema on the machine's PostgreSQL (127.0.0.1:5432, trust, database `test`; TEST_POSTGRES_URL
 * overrides) for one test run, dropped after: the store's URL names it as the connection's search_path, so
 * the store's tables land there and nowhere else. `skip` is the reason when the server does not answer:
 * tests then show it as skipped, never as passed.
 */
const SERVER = process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export interface ScratchSchema {
  url: string;
  drop(): Promise<void>;
}

async function admin<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: SERVER, connectionTimeoutMillis: 5_000 });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Whether PostgreSQL answers: null when it does, else why the PostgreSQL half of a test is skipped. */
export async function postgresUnreachable(): Promise<string | null> {
  try {
    await admin((client) => client.query('SELECT 1'));
    return null;
  } catch (error) {
    return `PostgreSQL unreachable at ${SERVER} (${(error as Error).message}): PostgreSQL half skipped`;
  }
}

/**
 * A database of its own (`t_<label>_<random>`) for one test world, dropped after with FORCE (a control plane
 * killed -9 may leave its sessions behind): the store then lives in `public`, as a production store does, and
 * its advisory locks and NOTIFY channels, which PostgreSQL scopes per database, meet no other test's.
 */
export async function scratchDatabase(label: string): Promise<ScratchSchema> {
  const name = `t_${label.replace(/[^a-z0-9_]/gi, '_').toLowerCase()}_${randomBytes(4).toString('hex')}`;
  await admin((client) => client.query(`CREATE DATABASE ${name}`));
  const url = new URL(SERVER);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: () => admin((client) => client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).then(() => undefined),
  };
}

export async function scratchSchema(label: string): Promise<ScratchSchema> {
  const schema = `t_${label}_${randomBytes(4).toString('hex')}`;
  await admin((client) => client.query(`CREATE SCHEMA ${schema}`));
  const url = new URL(SERVER);
  url.searchParams.set('options', `-c search_path=${schema}`);
  return { url: url.toString(), drop: () => admin((client) => client.query(`DROP SCHEMA ${schema} CASCADE`)).then(() => undefined) };
}
