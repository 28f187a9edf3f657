import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { makePrivateDatabaseFile } from '../../src/core/files/private-file.js';
import { MIGRATIONS } from './migrations.js';

/**
 * The control plane's SQLite database (WAL), with every migration applied: the configuration store and
 * the ledger store both work over this one connection, so a ledger transaction can read the accounts'
 * billing terms in the same snapshot it writes balances in.
 */
export function openDatabase(path: string): Database.Database {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  // Registrations' HA1s and the ledger: owner-only, like its WAL (see private-file.ts).
  makePrivateDatabaseFile(path);
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  // Not FULL: a FULL commit fsyncs the WAL on the event loop (~3.5 ms each). NORMAL commits survive kill -9;
  // before a write is acknowledged its caller waits for the shared WAL fdatasync (wal-flush.ts), which makes
  // it survive power loss too.
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  migrate(db);
  return db;
}

/** Applies the migrations this file has not seen yet, each in its own transaction. */
function migrate(db: Database.Database): void {
  db.exec(
    'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at TEXT NOT NULL)',
  );
  const applied = new Set((db.prepare('SELECT version FROM schema_migrations').all() as { version: number }[]).map((row) => row.version));
  for (const migration of MIGRATIONS) {
    if (applied.has(migration.version)) continue;
    db.transaction(() => {
      db.exec(migration.sql);
      db.prepare('INSERT INTO schema_migrations (version, description, applied_at) VALUES (?, ?, ?)').run(
        migration.version,
        migration.description,
        new Date().toISOString(),
      );
    })();
  }
}

/** The database's write-ahead log, which WalFlusher syncs; null in memory (nothing to keep). */
export function walPathOf(path: string): string | null {
  return path === ':memory:' ? null : `${path}-wal`;
}

export function schemaVersion(db: Database.Database): number {
  return (db.prepare('SELECT MAX(version) AS version FROM schema_migrations').get() as { version: number }).version;
}

const IDENTIFIER = /^[a-z_][a-z0-9_]*$/;

/** A table or column name in SQL text. They come from our resource definitions, never from requests; checked anyway. */
export function identifier(name: string): string {
  if (!IDENTIFIER.test(name)) throw new Error(`invalid identifier ${name}`);
  return name;
}
