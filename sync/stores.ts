import { SqliteLedgerStore } from './ledger/store.js';
import { SqliteConfigStore } from './store/config-store.js';
import { openDatabase, schemaVersion } from './store/database.js';
import { RateDeckUpdateStore } from './rate-deck-updates/store.js';
import { PartnerStore } from './partner/store.js';
import { DEFAULT_DELTA_RETENTION, DeltaLog, type DeltaRetention } from './deltas/log.js';

/** The control plane's stores over its one database: the configuration, the ledger, and rate-deck updates. */
export interface CentreStores {
  config: SqliteConfigStore;
  ledger: SqliteLedgerStore;
  deckUpdates: RateDeckUpdateStore;
  /** The partner API's tenants, products, retail accounts and kept answers (same database: one transaction with the ledger). */
  partner: PartnerStore;
  /** The live changes the nodes follow (issue 18). */
  deltas: DeltaLog;
  schemaVersion(): number;
  close(): void;
}

/** `deltaRetention`: how much of the delta log is kept (sync/deltas/log.ts). */
export function openCentreStores(path: string, deltaRetention: DeltaRetention = DEFAULT_DELTA_RETENTION): CentreStores {
  const db = openDatabase(path);
  const deltas = new DeltaLog(db, deltaRetention);
  const config = new SqliteConfigStore(db, deltas);
  return {
    config,
    ledger: new SqliteLedgerStore(db),
    deckUpdates: new RateDeckUpdateStore(db, () => config.ratesWrittenElsewhere(), deltas),
    partner: new PartnerStore(db),
    deltas,
    schemaVersion: () => schemaVersion(db),
    close: () => db.close(),
  };
}
