import type pg from 'pg';
import { PgLedgerStore } from './ledger/pg-store.js';
import { SqliteLedgerStore, type LedgerStore } from './ledger/store.js';
import { SqliteConfigStore, type ConfigStore } from './store/config-store.js';
import { openDatabase, schemaVersion, walPathOf } from './store/database.js';
import { WalCheckpointer } from './store/checkpointer.js';
import { WalFlusher } from './store/wal-flush.js';
import { SqliteRateDeckUpdateStore, type RateDeckUpdateStore } from './rate-deck-updates/store.js';
import { PartnerStore, pgLiveChanges, sqliteLiveChanges } from './partner/store.js';
import { DEFAULT_DELTA_RETENTION, DeltaLog, type DeltaRetention } from './deltas/log.js';
import type { DeltaFeed } from './deltas/feed.js';
import { PgDeltaFeed, PgDeltaLog } from './deltas/pg-log.js';
import { PgRateDeckUpdateStore } from './rate-deck-updates/pg-store.js';
import type { LiveTable } from '../src/core/protocol/deltas.js';
import { PgConfigStore } from './store/pg-config-store.js';
import { openPgDatabase, pgSchemaVersion } from './store/pg-database.js';
import type { StoreLocation } from './store/store-location.js';

/** The group commit's syncs and its callers' waits so far (logged at stop: the flush's share of a write's latency). */
export interface FlushTiming {
  syncs: number;
  sync_ms_mean: number;
  waits: number;
  wait_ms_mean: number;
}

/** The control plane's stores over its one database: the configuration, the ledger, and rate-deck updates. */
export interface CentreStores {
  config: SqliteConfigStore;
  ledger: SqliteLedgerStore;
  deckUpdates: RateDeckUpdateStore;
  /** The partner API's tenants, products, retail accounts and kept answers (same database: one transaction with the ledger). */
  partner: PartnerStore;
  /** The live changes the nodes follow (issue 18). */
  deltas: DeltaLog;
  /** Resolves once every commit made before the call is on disk (group commit, store/wal-flush.ts): await it before acknowledging a write. */
  flushed: () => Promise<void>;
  flushTiming(): FlushTiming;
  schemaVersion(): number;
  /** Closes the database; resolves once the checkpointer's last pass is done. */
  close(): Promise<void>;
}

/** `deltaRetention`: how much of the delta log is kept (sync/deltas/log.ts). */
export function openCentreStores(
  path: string,
  deltaRetention: DeltaRetention = DEFAULT_DELTA_RETENTION,
  onFlushFailure?: (error: Error) => void,
  onCheckpointFailure: (message: string) => void = () => {},
): CentreStores {
  const db = openDatabase(path);
  const flusher = new WalFlusher(walPathOf(path), onFlushFailure);
  // Checkpoints on their own thread, not inside the event loop's commits (store/checkpointer.ts).
  let checkpointer: WalCheckpointer | null = null;
  if (walPathOf(path) !== null) {
    db.pragma('wal_autocheckpoint = 0');
    checkpointer = new WalCheckpointer(path, onCheckpointFailure);
  }
  const deltas = new DeltaLog(db, deltaRetention);
  const config = new SqliteConfigStore(db, deltas);
  const ledger = new SqliteLedgerStore(db);
  return {
    config,
    ledger,
    deckUpdates: new SqliteRateDeckUpdateStore(db, () => config.ratesWrittenElsewhere(), deltas),
    partner: new PartnerStore(ledger, sqliteLiveChanges(deltas)),
    deltas,
    flushed: () => flusher.flushed(),
    flushTiming: () => {
      const { syncMs, waits, waitMs } = flusher.timing;
      const mean = (total: number, count: number): number => (count === 0 ? 0 : Math.round((total / count) * 1000) / 1000);
      return { syncs: flusher.syncs, sync_ms_mean: mean(syncMs, flusher.syncs), waits, wait_ms_mean: mean(waitMs, waits) };
    },
    schemaVersion: () => schemaVersion(db),
    close: async () => {
      db.close();
      await Promise.all([flusher.close(), checkpointer?.stop()]);
    },
  };
}

/**
 * The configuration store, the ledger and the partner API's store, on either engine, migrated: what `migrate`
 * and `sync-run` need, the money rounds and the partner writes (rate-deck updates and the delta log's serving
 * side are on SQLite only so far: openCentreStores).
 */
export interface ConfigStoreHandle {
  config: ConfigStore;
  ledger: LedgerStore;
  partner: PartnerStore;
  schemaVersion(): Promise<number>;
  close(): Promise<void>;
}

export async function openConfigStore(location: StoreLocation): Promise<ConfigStoreHandle> {
  if (location.engine === 'sqlite') {
    const db = openDatabase(location.path);
    const deltas = new DeltaLog(db, DEFAULT_DELTA_RETENTION);
    const ledger = new SqliteLedgerStore(db);
    return {
      // With the delta log: a snapshot must carry the sequence of the live changes it includes.
      config: new SqliteConfigStore(db, deltas),
      ledger,
      partner: new PartnerStore(ledger, sqliteLiveChanges(deltas)),
      schemaVersion: () => Promise.resolve(schemaVersion(db)),
      close: () => {
        db.close();
        return Promise.resolve();
      },
    };
  }
  const pool = await openPgDatabase(location.url);
  const deltas = new PgDeltaLog(DEFAULT_DELTA_RETENTION);
  const ledger = new PgLedgerStore(pool);
  return {
    config: new PgConfigStore(pool, deltas),
    ledger,
    partner: new PartnerStore(ledger, pgLiveChanges(deltas)),
    schemaVersion: () => pgSchemaVersion(pool),
    close: () => pool.end(),
  };
}

/** The delta log as a serving control plane uses it, on either engine: what the nodes read, and what drouting follows. */
export interface ServedDeltaLog extends DeltaFeed {
  /** Told of the tables each commit of live changes changed (on PostgreSQL: any control plane's commits). */
  onCommitted(listener: (tables: ReadonlySet<LiveTable>) => void): void;
  trimByAge(): number | Promise<number>;
}

/** Every store `serve` needs, on either engine (CentreStores is the SQLite one, synchronous where SQLite is). */
export interface ServingStores {
  config: ConfigStore;
  ledger: LedgerStore;
  deckUpdates: RateDeckUpdateStore;
  partner: PartnerStore;
  deltas: ServedDeltaLog;
  flushed: () => Promise<void>;
  /** null on PostgreSQL: no group commit of ours there (its own fsync at commit makes a write durable). */
  flushTiming(): FlushTiming | null;
  schemaVersion(): Promise<number>;
  close(): Promise<void>;
  /** The PostgreSQL pool (null on SQLite): what asks the leading control plane for a sync (store/pg-leadership.ts). */
  pool: pg.Pool | null;
}

export async function openServingStores(
  location: StoreLocation,
  deltaRetention: DeltaRetention,
  onFlushFailure: (error: Error) => void,
  onCheckpointFailure?: (message: string) => void,
): Promise<ServingStores> {
  if (location.engine === 'sqlite') {
    const stores = openCentreStores(location.path, deltaRetention, onFlushFailure, onCheckpointFailure);
    return {
      ...stores,
      schemaVersion: () => Promise.resolve(stores.schemaVersion()),
      pool: null,
    };
  }
  const pool = await openPgDatabase(location.url);
  // Each write commits before it is answered; PostgreSQL's own fsync at commit is what makes it durable.
  const deltas = new PgDeltaLog(deltaRetention);
  const feed = await PgDeltaFeed.open(pool, location.url, deltaRetention);
  const ledger = new PgLedgerStore(pool);
  return {
    config: new PgConfigStore(pool, deltas),
    ledger,
    deckUpdates: new PgRateDeckUpdateStore(pool, deltas),
    partner: new PartnerStore(ledger, pgLiveChanges(deltas)),
    deltas: feed,
    flushed: () => Promise.resolve(),
    flushTiming: () => null,
    schemaVersion: () => pgSchemaVersion(pool),
    close: async () => {
      await feed.close();
      await pool.end();
    },
    pool,
  };
}
