/**
 * Where a node's OpenSIPS reads drouting from: an SQLite file under a node files root, or a MySQL/MariaDB
 * or PostgreSQL database given by URL (checked against the node policy in sync/nodes/targets.ts). A
 * database URL carries the password OpenSIPS's own `db_url` needs, so what goes into log lines and sync
 * report messages is always `shown`, never `url`.
 */
export type DroutingDatabase = { kind: 'sqlite'; path: string } | { kind: 'mysql' | 'postgres'; url: string; shown: string };

/** The engines a `drouting_db` URL may name, by URL scheme. */
export const SQL_SCHEMES: Partial<Record<string, 'mysql' | 'postgres'>> = {
  'mysql:': 'mysql',
  'postgres:': 'postgres',
  'postgresql:': 'postgres',
};

export { redactDatabaseUrl } from '../store/database-url.js';

/** How a node database is named to the operator: its path, or its URL without the password. */
export function describeDatabase(target: DroutingDatabase): string {
  return target.kind === 'sqlite' ? target.path : target.shown;
}

/**
 * Tables of our own databases (the centre's config.db, a sidecar's sidecar.db and money.db, the OpenSIPS
 * spool): a file holding any of them is never a node's drouting database, whatever else it has.
 */
export const OUR_TABLES = [
  'schema_migrations',
  'opensips_nodes',
  'balances',
  'snapshots',
  'reservations',
  'leases',
  'leaves',
  'cdrs',
  'opensips_spool',
];
