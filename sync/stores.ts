import { SqliteLedgerStore } from './ledger/store.js';
import { SqliteConfigStore } from './store/config-store.js';
import { openDatabase, schemaVersion } from './store/database.js';
import { RateDeckUpdateStore } from './rate-deck-updates/store.js';
import { PartnerStore } from './partner/store.js';

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
