import Database from 'better-sqlite3';
import pg from 'pg';
import { PG_TYPES } from '../../sync/store/pg-database.js';

/**
 * A control plane's store read directly, whichever its engine: what a process test checks was written (or
 * was not). `store` is the centre's --store: a SQLite file path, or a postgres:// URL (a scratch schema's,
 * test/helpers/postgres.ts). Integers come back as numbers from both, as the centre reads them. SQL uses `?` placeholders and text both engines take; each read opens its own
 * connection (SQLite read-only), so nothing is held between reads while the centre writes or is killed.
 */
export interface StoreRows {
  all<T>(sql: string, ...params: unknown[]): Promise<T[]>;
  get<T>(sql: string, ...params: unknown[]): Promise<T | undefined>;
}

/**
 * `writable`: the SQLite file opened for writing too, for a test that plants a row the admin API would refuse
 * (a statement without RETURNING then answers no rows).
 */
export function storeRows(store: string, { writable = false } = {}): StoreRows {
  const all = store.startsWith('postgres')
    ? async <T>(sql: string, ...params: unknown[]): Promise<T[]> => {
        const client = new pg.Client({ connectionString: store, types: PG_TYPES });
        await client.connect();
        try {
          let n = 0;
          return (await client.query({ text: sql.replace(/\?/g, () => `$${++n}`), values: params })).rows as T[];
        } finally {
          await client.end();
        }
      }
    : <T>(sql: string, ...params: unknown[]): Promise<T[]> => {
        const db = new Database(store, { readonly: !writable });
        try {
          const statement = db.prepare(sql);
          if (!statement.reader) {
            statement.run(...params);
            return Promise.resolve([]);
          }
          return Promise.resolve(statement.all(...params) as T[]);
        } finally {
          db.close();
        }
      };
  return { all, get: async (sql, ...params) => (await all(sql, ...params))[0] as never };
}
