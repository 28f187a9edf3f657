import { SqliteLedgerStore } from './ledger/store.js';
import { SqliteConfigStore, type ConfigStore } from './store/config-store.js';
import { openDatabase, schemaVersion } from './store/database.js';
import { RateDeckUpdateStore } from './rate-deck-updates/store.js';
import { PartnerStore } from './partner/store.js';
import { PgConfigStore } from './store/pg-config-store.js';
import { openPgDatabase, pgSchemaVersion } from './store/pg-database.js';
import type { StoreLocation } from './store/store-location.js';

/** The control plane's stores over its one database: the configuration, the ledger, and rate-deck updates. */
export interface CentreStores {
  config: SqliteConfigStore;
  ledger: SqliteLedgerStore;
  deckUpdates: RateDeckUpdateStore;
  /** The partner API's tenants, products, retail accounts and kept answers (same database: one transaction with the ledger). */
  partner: PartnerStore;
  schemaVersion(): number;
  close(): void;
}

export function openCentreStores(path: string): CentreStores {
  const db = openDatabase(path);
  const config = new SqliteConfigStore(db);
  return {
    config,
    ledger: new SqliteLedgerStore(db),
    deckUpdates: new RateDeckUpdateStore(db, () => config.ratesWrittenElsewhere()),
    partner: new PartnerStore(db),
    schemaVersion: () => schemaVersion(db),
    close: () => db.close(),
  };
}

/**
 * The configuration store alone, on either engine, migrated: what `migrate` and `sync-run` need. (The
 * ledger, the partner API's store and rate-deck updates are on SQLite only so far: openCentreStores.)
 */
export interface ConfigStoreHandle {
  config: ConfigStore;
  schemaVersion(): Promise<number>;
  close(): Promise<void>;
}

export async function openConfigStore(location: StoreLocation): Promise<ConfigStoreHandle> {
  if (location.engine === 'sqlite') {
    const db = openDatabase(location.path);
    return {
      config: new SqliteConfigStore(db),
      schemaVersion: () => Promise.resolve(schemaVersion(db)),
      close: () => {
        db.close();
        return Promise.resolve();
      },
    };
  }
  const pool = await openPgDatabase(location.url);
  return { config: new PgConfigStore(pool), schemaVersion: () => pgSchemaVersion(pool), close: () => pool.end() };
}
