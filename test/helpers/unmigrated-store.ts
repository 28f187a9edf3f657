import Database from 'better-sqlite3';
import pg from 'pg';
import { MIGRATIONS, postgresSql } from '../../sync/store/migrations.js';
import { PG_TYPES } from '../../sync/store/pg-database.js';

/**
 * A store's database opened directly, without the control plane's migration runner: a migration's test builds
 * the database a control plane of an earlier build left (migrateThrough), puts rows in, then opens it with the
 * store, which applies the rest. Statements take `?` placeholders on either engine.
 */
export interface RawStore {
  exec(sql: string): Promise<void>;
  run(sql: string, ...params: unknown[]): Promise<void>;
  all(sql: string): Promise<Record<string, unknown>[]>;
  close(): Promise<void>;
}

export async function openRaw(engine: 'sqlite' | 'postgres', location: string): Promise<RawStore> {
  if (engine === 'sqlite') {
    const db = new Database(location.slice('sqlite:'.length));
    db.pragma('foreign_keys = ON');
    return {
      exec: (sql) => Promise.resolve(void db.exec(sql)),
      run: (sql, ...params) => Promise.resolve(void db.prepare(sql).run(...params)),
      all: (sql) => Promise.resolve(db.prepare(sql).all() as Record<string, unknown>[]),
      close: () => Promise.resolve(void db.close()),
    };
  }
  const client = new pg.Client({ connectionString: location, types: PG_TYPES });
  await client.connect();
  return {
    exec: async (sql) => void (await client.query(sql)),
    run: async (sql, ...params) => {
      let n = 0;
      await client.query(
        sql.replace(/\?/g, () => `$${++n}`),
        params,
      );
    },
    all: async (sql) => (await client.query<Record<string, unknown>>(sql)).rows,
    close: () => client.end(),
  };
}

/** Applies the migrations up to `last` and no further, each in its own transaction, as the runners do. */
export async function migrateThrough(engine: 'sqlite' | 'postgres', raw: RawStore, last: number, appliedAt: string): Promise<void> {
  const integer = engine === 'sqlite' ? 'INTEGER' : 'BIGINT';
  await raw.exec(`CREATE TABLE schema_migrations (version ${integer} PRIMARY KEY, description TEXT NOT NULL, applied_at TEXT NOT NULL)`);
  for (const migration of MIGRATIONS.filter(({ version }) => version <= last)) {
    await raw.exec('BEGIN');
    await raw.exec(engine === 'sqlite' ? migration.sql : postgresSql(migration));
    await raw.run('INSERT INTO schema_migrations VALUES (?, ?, ?)', migration.version, migration.description, appliedAt);
    await raw.exec('COMMIT');
  }
}

/** An insert of `row`'s columns, `?` for each value. */
export function insertSql(table: string, row: Record<string, unknown>): string {
  const columns = Object.keys(row);
  return `INSERT INTO ${table} (${columns.join(', ')}) VALUES (${columns.map(() => '?').join(', ')})`;
}

/** Partner tenant 1 and its product 1 (AUD), as a centre of an earlier build held them: what retail rows name. */
export async function putPartnerProduct(raw: RawStore, now: string, requiresPin: boolean): Promise<void> {
  const put = (table: string, row: Record<string, unknown>) => raw.run(insertSql(table, row), ...Object.values(row));
  await put('partner_tenants', {
    id: 1,
    tenant_id: 'tenant',
    name: 'Tenant',
    status: 'active',
    operations: '[]',
    created_at: now,
    updated_at: now,
  });
  await put('partner_products', {
    id: 1,
    partner_tenant_id: 1,
    product_id: 'product',
    currency: 'AUD',
    requires_pin: requiresPin ? 1 : 0,
    status: 'active',
    created_at: now,
    updated_at: now,
  });
}
