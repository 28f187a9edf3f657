import type Database from 'better-sqlite3';
import type { RateColumns } from '../../src/core/snapshot/schema.js';
import { sqliteLimit } from '../../src/core/sqlite/limit.js';
import { StatementCache } from '../../src/core/sqlite/statement-cache.js';
import { identifier } from './database.js';
import { readRateColumns } from './rate-columns.js';
import { OneAtATime } from './one-at-a-time.js';

/**
 * The control plane's configuration store: the admin API's records, the rate rows, and the snapshot
 * versions built from them. One interface, so PostgreSQL can stand in for the embedded SQLite default;
 * every method is one atomic unit of work, and async, as a networked database's would be. The money
 * (balances, leases, settled CDRs) has its own store over the same database: sync/ledger/store.ts.
 */
export type Row = Record<string, unknown>;

export interface ListQuery {
  /** Column = value filters (already validated by the caller). */
  where: Record<string, string | number | null>;
  limit: number | null;
  offset: number;
  orderBy?: string;
}

export interface ConfigStore {
  list(table: string, query: ListQuery): Promise<{ rows: Row[]; total: number }>;
  get(table: string, id: number): Promise<Row | null>;
  /** Inserts and returns the stored row (id and timestamps filled in). */
  insert(table: string, values: Row): Promise<Row>;
  /** Updates the given columns; null when the row does not exist. */
  update(table: string, id: number, values: Row): Promise<Row | null>;
  remove(table: string, id: number): Promise<boolean>;
  /**
   * Gives rate `id` new terms (`changes`, whose effective_at is when they take effect) and keeps the terms
   * it had as a history row of the same deck and prefix (superseded_by = id, superseded_at = when the new
   * terms take effect), in one transaction: a call that started before is still rated at the old terms,
   * whenever its CDR arrives. Null when the rate does not exist.
   */
  reviseRate(id: number, changes: Row): Promise<Row | null>;
  /** Deletes a rate and its history (left alone, the newest history row would be in force again). */
  removeRate(id: number): Promise<boolean>;
  /** Makes `rateDeckId` the trunk's active deck; earlier active assignments are superseded, in one transaction. */
  assignRateDeck(kind: 'customer' | 'carrier', trunkId: number, rateDeckId: number): Promise<Row>;
  unassignRateDeck(kind: 'customer' | 'carrier', trunkId: number): Promise<boolean>;
  /**
   * Every table a snapshot needs, read in one transaction so they agree with each other; rate rows
   * come as the snapshot's columns (millions of row objects would cost seconds and gigabytes). `deltaSeq`:
   * the last delta-log sequence those rows include (read in the same transaction), 0 without a log.
   */
  readRoutingData(tables: readonly string[]): Promise<{ rows: Record<string, Row[]>; rates: RateColumns; deltaSeq: number }>;
  /**
   * Imports rate rows into a deck in one transaction. A conflict is an existing row with the same
   * prefix and effective_at: 'skip' keeps it, 'overwrite' replaces it, 'error' refuses the whole import.
   */
  importRates(rateDeckId: number, rows: readonly ImportedRate[], onConflict: ConflictMode): Promise<ImportCounts>;
  /** The last snapshot version built, 0 before the first. */
  lastSnapshotVersion(): Promise<number>;
  /**
   * The version the next snapshot takes: above every one handed out before, and at least the time in
   * milliseconds, so versions stay ahead of what nodes serve even if the store is rebuilt from scratch. On
   * PostgreSQL the database numbers it (its clock, its last version), so versions grow across the control
   * planes sharing the store whatever their own clocks say. `term`: the sync lead term the sync read the store
   * under (store/pg-sync-lock.ts); null, no fence. Answers null, nothing handed out, when a later term has been
   * taken: this centre no longer leads, and a snapshot it pushed now would outrank the new leader's.
   */
  nextSnapshotVersion(term: number | null): Promise<number | null>;
  /** `deltaSeq`: the delta sequence the snapshot includes (its base). */
  recordSnapshot(version: number, createdAt: string, checksum: string, counts: Record<string, number>, deltaSeq?: number): Promise<void>;
  /**
   * Runs `work` while no other `exclusively` of the same `name` runs: in this process, and on PostgreSQL in
   * any control plane sharing the store (a session advisory lock, released when the work ends or its
   * connection does). For a check that reads several rows and a write that must not be made on what it read
   * once another write changed it (a portal's network claim: access-rules.ts).
   */
  exclusively<T>(name: string, work: () => Promise<T>): Promise<T>;
}

/**
 * Where a write to a live table records its delta, in the write's transaction (sync/deltas/log.ts is the one
 * there is; declared here so the store does not depend on it).
 */
export interface ChangeLog {
  isLive(table: string): boolean;
  /** Inside the write's transaction: the row after the write, null when it deleted `id`. */
  append(table: string, id: number, row: Row | null): number;
  /** After the commit: wakes whoever waits for deltas. */
  committed(): void;
  lastSeq(): number;
}

export type ConflictMode = 'skip' | 'overwrite' | 'error';

/** A revised rate's history row (reviseRate, on either engine): its columns, and their values from the old terms. */
export const HISTORY_ROW_COLUMNS =
  'rate_deck_id, prefix, destination_name, rate_per_minute, rate_type, billing_increment_initial, billing_increment_step, effective_at, created_at, updated_at, superseded_by, superseded_at';

export function historyRowValues(old: Row, changes: Row, id: number): unknown[] {
  return [
    old.rate_deck_id,
    old.prefix,
    old.destination_name,
    old.rate_per_minute,
    old.rate_type,
    old.billing_increment_initial,
    old.billing_increment_step,
    old.effective_at,
    old.created_at,
    changes.updated_at ?? old.updated_at,
    id,
    changes.effective_at ?? old.effective_at,
  ];
}

export interface ImportedRate {
  prefix: string;
  destination_name: string;
  rate_per_minute: string;
  rate_type: 'per_minute' | 'per_call';
  billing_increment_initial: number | null;
  billing_increment_step: number | null;
  effective_at: string;
}

export interface ImportCounts {
  imported: number;
  updated: number;
  skipped: number;
}

/** Thrown by importRates in 'error' mode; nothing was written. */
export class RateConflictError extends Error {
  constructor(
    readonly prefix: string,
    readonly effectiveAt: string,
    readonly index: number,
  ) {
    super(`rate for prefix ${prefix} effective ${effectiveAt} already exists`);
    this.name = 'RateConflictError';
  }
}

/** See SqliteConfigStore's statements. */
const MAX_CACHED_STATEMENTS = 256;

export class SqliteConfigStore implements ConfigStore {
  /**
   * The rate columns last read, reused while no rate row changed: reading 2M rows costs seconds, and
   * most syncs follow changes elsewhere. Our own writes drop it; another connection's commit moves
   * SQLite's data_version, which drops it too.
   */
  private rateCache: { columns: RateColumns; dataVersion: number } | null = null;
  /**
   * The read statements list() and get() build, by their text: preparing one costs more than running it (each
   * money round's auth_ips check, two statements, was ~0.3 ms of the control plane's CPU a round, prepared
   * afresh). Their texts vary only by table, filter columns and order, so there are few; the cap only guards
   * against a caller that would vary them without end.
   */
  private readonly statements = new StatementCache((sql) => this.db.prepare(sql), MAX_CACHED_STATEMENTS);
  /** One connection serves this process, the only one on the file: holding work apart in memory is enough. */
  private readonly oneAtATime = new OneAtATime();

  constructor(
    private readonly db: Database.Database,
    /**
     * The delta log (sync/deltas/log.ts): a write to a live table appends its delta in the write's own
     * transaction. Null: no log (a store opened for a one-off job).
     */
    private readonly deltas: ChangeLog | null = null,
  ) {}

  /**
   * Runs a write; for a live table, in one transaction with its delta (the row after the write, or null when
   * it deleted `id`), then wakes the nodes waiting for deltas. No row (nothing matched): no delta.
   */
  private recorded<T>(table: string, write: () => { result: T; id: number; row: Row | null; changed: boolean }): T {
    const deltas = this.deltas;
    if (deltas === null || !deltas.isLive(table)) return write().result;
    const result = this.db.transaction(() => {
      const outcome = write();
      if (outcome.changed) deltas.append(table, outcome.id, outcome.row);
      return outcome;
    })();
    if (result.changed) deltas.committed();
    return result.result;
  }

  exclusively<T>(name: string, work: () => Promise<T>): Promise<T> {
    return this.oneAtATime.run(name, work);
  }

  private row(table: string, id: number): Row | null {
    return (this.statements.get(`SELECT * FROM ${identifier(table)} WHERE id = ?`).get(id) as Row | undefined) ?? null;
  }

  list(table: string, query: ListQuery): Promise<{ rows: Row[]; total: number }> {
    const columns = Object.keys(query.where).map(identifier);
    const where =
      columns.length === 0
        ? ''
        : ` WHERE ${columns.map((column) => (query.where[column] === null ? `${column} IS NULL` : `${column} = ?`)).join(' AND ')}`;
    const values = columns.map((column) => query.where[column]).filter((value) => value !== null);
    const from = `FROM ${identifier(table)}${where}`;
    const total = (this.statements.get(`SELECT COUNT(*) AS total ${from}`).get(...values) as { total: number }).total;
    const limit = query.limit === null ? -1 : query.limit;
    const [orderColumn, direction] = (query.orderBy ?? 'id').split(' ');
    const order = `${identifier(orderColumn)}${direction === 'DESC' ? ' DESC' : ''}`;
    // The count in the text, the offset bound (src/core/sqlite/limit.ts): statements stay cached per limit.
    const page = sqliteLimit(limit);
    const rows = this.statements
      .get(`SELECT * ${from} ORDER BY ${order} ${page.sql} OFFSET ?`)
      .all(...values, ...page.params, query.offset) as Row[];
    return Promise.resolve({ rows, total });
  }

  get(table: string, id: number): Promise<Row | null> {
    return Promise.resolve(this.row(table, id));
  }

  private wrote(table: string): void {
    if (table === 'rate_deck_rates') this.rateCache = null;
  }

  /**
   * Rate rows were written over this connection by another store (a rate-deck update's rates): SQLite's
   * data_version moves only for other connections' commits, so the cached columns must be dropped by hand.
   */
  ratesWrittenElsewhere(): void {
    this.rateCache = null;
  }

  insert(table: string, values: Row): Promise<Row> {
    this.wrote(table);
    const columns = Object.keys(values).map(identifier);
    const insert = this.db.prepare(
      `INSERT INTO ${identifier(table)} (${columns.join(', ')}) VALUES (${columns.map(() => '?').join(', ')})`,
    );
    return Promise.resolve(
      this.recorded(table, () => {
        const id = Number(insert.run(...columns.map((column) => values[column])).lastInsertRowid);
        const row = this.row(table, id)!;
        return { result: row, id, row, changed: true };
      }),
    );
  }

  update(table: string, id: number, values: Row): Promise<Row | null> {
    this.wrote(table);
    const columns = Object.keys(values).map(identifier);
    return Promise.resolve(
      this.recorded(table, () => {
        if (columns.length > 0) {
          const info = this.db
            .prepare(`UPDATE ${identifier(table)} SET ${columns.map((column) => `${column} = ?`).join(', ')} WHERE id = ?`)
            .run(...columns.map((column) => values[column]), id);
          if (info.changes === 0) return { result: null, id, row: null, changed: false };
        }
        const row = this.row(table, id);
        return { result: row, id, row, changed: row !== null && columns.length > 0 };
      }),
    );
  }

  remove(table: string, id: number): Promise<boolean> {
    this.wrote(table);
    const remove = this.db.prepare(`DELETE FROM ${identifier(table)} WHERE id = ?`);
    return Promise.resolve(
      this.recorded(table, () => {
        const removed = remove.run(id).changes > 0;
        return { result: removed, id, row: null, changed: removed };
      }),
    );
  }

  reviseRate(id: number, changes: Row): Promise<Row | null> {
    this.wrote('rate_deck_rates');
    const revise = this.db.transaction((): boolean => {
      const old = this.db.prepare('SELECT * FROM rate_deck_rates WHERE id = ?').get(id) as Row | undefined;
      if (old === undefined) return false;
      // The rate keeps its id (what operators and the API know it by) and takes the new terms first: the
      // history row holds the old ones under the old effective_at, which the rate no longer has.
      const columns = Object.keys(changes).map(identifier);
      this.db
        .prepare(`UPDATE rate_deck_rates SET ${columns.map((column) => `${column} = ?`).join(', ')} WHERE id = ?`)
        .run(...columns.map((column) => changes[column]), id);
      this.db
        .prepare(`INSERT INTO rate_deck_rates (${HISTORY_ROW_COLUMNS}) VALUES (${HISTORY_ROW_COLUMNS.split(',').fill('?').join(', ')})`)
        .run(...historyRowValues(old, changes, id));
      return true;
    });
    return revise() ? this.get('rate_deck_rates', id) : Promise.resolve(null);
  }

  removeRate(id: number): Promise<boolean> {
    this.wrote('rate_deck_rates');
    const remove = this.db.transaction((): boolean => {
      this.db.prepare('DELETE FROM rate_deck_rates WHERE superseded_by = ?').run(id);
      return this.db.prepare('DELETE FROM rate_deck_rates WHERE id = ?').run(id).changes > 0;
    });
    return Promise.resolve(remove());
  }

  assignRateDeck(kind: 'customer' | 'carrier', trunkId: number, rateDeckId: number): Promise<Row> {
    const table = `${kind}_trunk_rate_decks`;
    const column = `${kind}_trunk_id`;
    const now = new Date().toISOString();
    const id = this.db.transaction(() => {
      this.db.prepare(`UPDATE ${table} SET is_active = 0, superseded_at = ? WHERE ${column} = ? AND is_active = 1`).run(now, trunkId);
      return this.db
        .prepare(`INSERT INTO ${table} (${column}, rate_deck_id, is_active, assigned_at) VALUES (?, ?, 1, ?)`)
        .run(trunkId, rateDeckId, now).lastInsertRowid;
    })();
    return this.get(table, Number(id)) as Promise<Row>;
  }

  unassignRateDeck(kind: 'customer' | 'carrier', trunkId: number): Promise<boolean> {
    const info = this.db
      .prepare(`UPDATE ${kind}_trunk_rate_decks SET is_active = 0, superseded_at = ? WHERE ${kind}_trunk_id = ? AND is_active = 1`)
      .run(new Date().toISOString(), trunkId);
    return Promise.resolve(info.changes > 0);
  }

  readRoutingData(tables: readonly string[]): Promise<{ rows: Record<string, Row[]>; rates: RateColumns; deltaSeq: number }> {
    // A read transaction: every table from the same committed state, even while the admin API writes.
    const read = this.db.transaction(() => ({
      deltaSeq: this.deltas?.lastSeq() ?? 0,
      rows: Object.fromEntries(
        tables.map((table) => [table, this.db.prepare(`SELECT * FROM ${identifier(table)} ORDER BY id`).all() as Row[]]),
      ),
      rates: this.readRateColumns(),
    }));
    return Promise.resolve(read());
  }

  private readRateColumns(): RateColumns {
    const dataVersion = this.db.pragma('data_version', { simple: true }) as number;
    if (this.rateCache !== null && this.rateCache.dataVersion === dataVersion) return this.rateCache.columns;
    const columns = readRateColumns(this.db);
    this.rateCache = { columns, dataVersion };
    return columns;
  }

  importRates(rateDeckId: number, rows: readonly ImportedRate[], onConflict: ConflictMode): Promise<ImportCounts> {
    this.wrote('rate_deck_rates');
    const find = this.db.prepare('SELECT id FROM rate_deck_rates WHERE rate_deck_id = ? AND prefix = ? AND effective_at = ?');
    // Into a deck with no rows (a new deck, the usual upload) the insert meets a repeated key itself, by its
    // unique index's probe, and then writes nothing: a lookup first for every row was an eighth of such an
    // import's CPU. Into a deck with rows the lookup comes first, as most rows may meet a stored one.
    const empty = this.db.prepare('SELECT 1 FROM rate_deck_rates WHERE rate_deck_id = ? LIMIT 1').get(rateDeckId) === undefined;
    const insert = this.db.prepare(
      `INSERT INTO rate_deck_rates (rate_deck_id, prefix, destination_name, rate_per_minute, rate_type, billing_increment_initial,
        billing_increment_step, effective_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (rate_deck_id, prefix, effective_at) DO NOTHING`,
    );
    const update = this.db.prepare(
      `UPDATE rate_deck_rates SET destination_name = ?, rate_per_minute = ?, rate_type = ?, billing_increment_initial = ?,
        billing_increment_step = ?, updated_at = ? WHERE id = ?`,
    );
    const now = new Date().toISOString();
    const counts: ImportCounts = { imported: 0, updated: 0, skipped: 0 };
    this.db.transaction(() => {
      rows.forEach((row, index) => {
        let existing = empty ? undefined : (find.get(rateDeckId, row.prefix, row.effective_at) as { id: number } | undefined);
        const inserted =
          existing === undefined &&
          insert.run(
            rateDeckId,
            row.prefix,
            row.destination_name,
            row.rate_per_minute,
            row.rate_type,
            row.billing_increment_initial,
            row.billing_increment_step,
            row.effective_at,
            now,
            now,
          ).changes > 0;
        if (inserted) {
          counts.imported++;
        } else if (onConflict === 'skip') {
          counts.skipped++;
        } else if (onConflict === 'overwrite') {
          existing ??= find.get(rateDeckId, row.prefix, row.effective_at) as { id: number };
          update.run(
            row.destination_name,
            row.rate_per_minute,
            row.rate_type,
            row.billing_increment_initial,
            row.billing_increment_step,
            now,
            existing.id,
          );
          counts.updated++;
        } else {
          throw new RateConflictError(row.prefix, row.effective_at, index); // rolls the transaction back
        }
      });
    })();
    return Promise.resolve(counts);
  }

  lastSnapshotVersion(): Promise<number> {
    const row = this.db.prepare('SELECT MAX(version) AS version FROM snapshot_versions').get() as { version: number | null };
    return Promise.resolve(row.version ?? 0);
  }

  async nextSnapshotVersion(): Promise<number> {
    // One process holds a SQLite store (and so leads): its own clock and last version are the only ones.
    return Math.max((await this.lastSnapshotVersion()) + 1, Date.now());
  }

  recordSnapshot(version: number, createdAt: string, checksum: string, counts: Record<string, number>, deltaSeq?: number): Promise<void> {
    this.db
      .prepare('INSERT INTO snapshot_versions (version, created_at, checksum, counts, delta_seq) VALUES (?, ?, ?, ?, ?)')
      .run(version, createdAt, checksum, JSON.stringify(counts), deltaSeq ?? null);
    return Promise.resolve();
  }
}
