import { SqliteLedgerStore } from './ledger/store.js';
import { SqliteConfigStore } from './store/config-store.js';
import { openDatabase, schemaVersion } from './store/database.js';

/** The control plane's two stores over its one database: the configuration, and the ledger. */
export interface CentreStores {
  config: SqliteConfigStore;
  ledger: SqliteLedgerStore;
  schemaVersion(): number;
  close(): void;
}

export function openCentreStores(path: string): CentreStores {
  const db = openDatabase(path);
  return {
    config: new SqliteConfigStore(db),
    ledger: new SqliteLedgerStore(db),
    schemaVersion: () => schemaVersion(db),
    close: () => db.close(),
  };
}
