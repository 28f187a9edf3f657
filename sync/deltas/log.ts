import type Database from 'better-sqlite3';
import type { Delta, LiveTable } from '../../src/core/protocol/deltas.js';
import { StatementsPerLimit } from '../../src/core/sqlite/limit.js';
import { snapshotRow } from '../snapshot/build.js';
import { callTranslationRow, retailProductRow } from '../snapshot/retail-rows.js';
import type { DeltaFeed, RecentDelta } from './feed.js';
import { DeltaWaiters } from './waiters.js';

/**
 * The centre's delta log (issue 18; wire format: src/core/protocol/deltas.ts). The config store appends to it
 * inside the transaction of the change itself (append), so a change and its delta commit together or not at
 * all; the sequence comes from one counter row moved in that transaction, so it is gap-free and in commit
 * order however many admin requests write at once (SQLite runs one write transaction at a time). After the
 * commit the store calls committed(), which wakes the nodes' waiting asks.
 *
 * Retention: the newest `retentionCount` deltas are kept, trimmed as each is appended, and none older than
 * `retentionSeconds`, trimmed by trimByAge (the centre runs it every minute). A node behind what is kept takes a
 * snapshot instead.
 */
export interface DeltaRetention {
  count: number;
  seconds: number;
}

export const DEFAULT_DELTA_RETENTION: DeltaRetention = { count: 100_000, seconds: 86_400 };

/**
 * The store tables whose changes are live, and the snapshot table each becomes. A partner product becomes its
 * retail product, and a tenant each of its products: a product is live while it and its tenant are active.
 */
const LIVE_STORE_TABLES: Record<string, LiveTable> = {
  customer_accounts: 'customer_accounts',
  customer_trunks: 'customer_trunks',
  trunk_ip_auth: 'trunk_ip_auth',
  block_rules: 'block_rules',
  exchange_rates: 'exchange_rates',
  rate_deck_carrier_allowlist: 'rate_deck_allowlist',
  // Routing kinds (carriers, gateways, failover, LCR config, registrations).
  trunk_sip_registrations: 'sip_registrations',
  carrier_trunks: 'carrier_trunks',
  carrier_trunk_ips: 'carrier_gateways',
  carrier_sip_failover_rules: 'failover_rules',
  lcr_config: 'lcr_config',
  // The partner API's (issue 19): a product becomes its retail product, a tenant each of its products.
  partner_products: 'retail_products',
  partner_tenants: 'retail_products',
  call_translations: 'call_translations',
};

type Row = Record<string, unknown>;

export function isLiveStoreTable(storeTable: string): boolean {
  return Object.hasOwn(LIVE_STORE_TABLES, storeTable);
}

/** A live change as the log holds it: the snapshot table, the operation, the row id, the row as the snapshot carries it (JSON). */
export interface LogRow {
  table: LiveTable;
  op: 'upsert' | 'delete';
  id: number;
  body: string | null;
}

/**
 * The rows a change to `storeTable` needs read beside it to become its deltas, as one query with one `?`
 * parameter (both engines' logs run it in the change's transaction); null when it needs none.
 */
export function relatedRowsQuery(storeTable: string, id: number, row: Row | null): { sql: string; param: number } | null {
  if (storeTable === 'partner_products' && row !== null)
    return { sql: 'SELECT status FROM partner_tenants WHERE id = ?', param: row.partner_tenant_id as number };
  if (storeTable === 'partner_tenants') return { sql: 'SELECT * FROM partner_products WHERE partner_tenant_id = ? ORDER BY id', param: id };
  return null;
}

/** The deltas one stored change becomes; `related`: what relatedRowsQuery read (the product's tenant, the tenant's products). */
export function deltaLogRows(storeTable: string, id: number, row: Row | null, related: Row[]): LogRow[] {
  const table = LIVE_STORE_TABLES[storeTable];
  const product = (productRow: Row, tenantActive: boolean): LogRow => {
    const live = retailProductRow(productRow, tenantActive);
    const productId = productRow.id as number;
    return live === null
      ? { table, op: 'delete', id: productId, body: null }
      : { table, op: 'upsert', id: productId, body: JSON.stringify(live) };
  };
  if (row === null) return [{ table, op: 'delete', id, body: null }];
  if (storeTable === 'partner_products') return [product(row, related[0]?.status === 'active')];
  if (storeTable === 'partner_tenants') return related.map((productRow) => product(productRow, row.status === 'active'));
  const body = storeTable === 'call_translations' ? callTranslationRow(row) : snapshotRow(storeTable, row);
  return [{ table, op: 'upsert', id, body: JSON.stringify(body) }];
}

/** A delta_log row as both engines read it. */
export interface DeltaLogRow {
  seq: number;
  table_name: LiveTable;
  op: 'upsert' | 'delete';
  row_id: number;
  row: string | null;
}

export function deltaOfRow(row: DeltaLogRow): Delta {
  return {
    seq: row.seq,
    table: row.table_name,
    op: row.op,
    id: row.row_id,
    row: row.row === null ? null : (JSON.parse(row.row) as Record<string, unknown>),
  };
}

/**
 * What the log can answer a node that has applied up to `after`: nothing yet (`up_to_date`), the deltas after
 * it (`readable`), or a snapshot (`snapshot_required`: some of them are trimmed, or the node is ahead of the
 * store, as after a restore). `oldest` is asked only when it matters.
 */
export function logReach(after: number, last: number, oldest: () => number | null): 'up_to_date' | 'readable' | 'snapshot_required' {
  if (after > last) return 'snapshot_required';
  if (after === last) return 'up_to_date';
  const held = oldest();
  return held === null || held > after + 1 ? 'snapshot_required' : 'readable';
}

export class DeltaLog implements DeltaFeed {
  private readonly sql;
  private readonly waiters = new DeltaWaiters();
  /** The live tables appended to since the last commit was announced (a rolled-back one stays until the next: one drouting follow more at worst). */
  private appended = new Set<LiveTable>();
  private readonly committedListeners: ((tables: ReadonlySet<LiveTable>) => void)[] = [];

  constructor(
    private readonly db: Database.Database,
    readonly retention: DeltaRetention = DEFAULT_DELTA_RETENTION,
  ) {
    this.sql = {
      next: db.prepare('UPDATE delta_sequence SET last_seq = last_seq + 1 WHERE id = 1 RETURNING last_seq'),
      last: db.prepare('SELECT last_seq FROM delta_sequence WHERE id = 1'),
      insert: db.prepare('INSERT INTO delta_log (seq, committed_at, table_name, op, row_id, row) VALUES (?, ?, ?, ?, ?, ?)'),
      oldest: db.prepare('SELECT MIN(seq) AS seq FROM delta_log'),
      // Per limit, its count in the text (src/core/sqlite/limit.ts): each node's ask for deltas runs it.
      read: new StatementsPerLimit((limit) =>
        db.prepare(`SELECT seq, table_name, op, row_id, row FROM delta_log WHERE seq > ? ORDER BY seq ${limit}`),
      ),
      trimBelow: db.prepare('DELETE FROM delta_log WHERE seq <= ?'),
      trimBefore: db.prepare('DELETE FROM delta_log WHERE committed_at < ?'),
      recent: new StatementsPerLimit((limit) =>
        db.prepare(`SELECT seq, committed_at, table_name AS "table", op, row_id AS id FROM delta_log ORDER BY seq DESC ${limit}`),
      ),
    };
  }

  /** Whether a change to this store table travels as a delta. */
  isLive(storeTable: string): boolean {
    return isLiveStoreTable(storeTable);
  }

  /**
   * Records a change to a live table; call inside the change's own transaction. `row`: the row as stored
   * after the change, null for a delete. Returns the last delta's sequence (a tenant's change is one delta per product).
   */
  append(storeTable: string, id: number, row: Row | null): number {
    const query = relatedRowsQuery(storeTable, id, row);
    const related = query === null ? [] : (this.db.prepare(query.sql).all(query.param) as Row[]);
    // The counter is read only when the change became no delta (a tenant without products): a partner's
    // setup_call appends one, and a statement less in its transaction.
    let seq: number | null = null;
    for (const { table, op, id: rowId, body } of deltaLogRows(storeTable, id, row, related)) {
      seq = (this.sql.next.get() as { last_seq: number }).last_seq;
      this.sql.insert.run(seq, new Date().toISOString(), table, op, rowId, body);
      this.appended.add(table);
    }
    if (seq === null) return this.lastSeq();
    if (seq > this.retention.count) this.sql.trimBelow.run(seq - this.retention.count);
    return seq;
  }

  /** A transaction that appended has committed: every waiting ask reads again, and the listeners hear which tables. */
  committed(): void {
    this.waiters.wakeAll();
    const tables = this.appended;
    this.appended = new Set();
    for (const listener of this.committedListeners) listener(tables);
  }

  /** Calls `listener` after each commit of live changes, with the live tables they changed (drouting follows them). */
  onCommitted(listener: (tables: ReadonlySet<LiveTable>) => void): void {
    this.committedListeners.push(listener);
  }

  lastSeq(): number {
    return (this.sql.last.get() as { last_seq: number }).last_seq;
  }

  /** The newest `limit` deltas, newest first, without their rows: what changed and when, for operators. */
  recent(limit: number): RecentDelta[] {
    const { statement, params } = this.sql.recent.get(limit);
    return statement.all(...params) as RecentDelta[];
  }

  /** The oldest sequence still held; null when the log holds none (all trimmed, or none yet). */
  oldestSeq(): number | null {
    return (this.sql.oldest.get() as { seq: number | null }).seq;
  }

  /**
   * The deltas after `after`, oldest first, at most `limit`; null when some of them are no longer held (the
   * node must take a snapshot) or `after` is past the last one handed out (the node is ahead of this store).
   */
  read(after: number, limit: number): Delta[] | null {
    const last = this.lastSeq();
    const reach = logReach(after, last, () => this.oldestSeq());
    if (reach !== 'readable') return reach === 'up_to_date' ? [] : null;
    const { statement, params } = this.sql.read.get(limit);
    return (statement.all(after, ...params) as DeltaLogRow[]).map(deltaOfRow);
  }

  /** Resolves when a delta past `after` has committed, or after `ms`, or when `signal` aborts (whichever first). */
  waitPast(after: number, ms: number, signal?: AbortSignal): Promise<void> {
    if (this.lastSeq() > after || ms <= 0 || signal?.aborted === true) return Promise.resolve();
    return this.waiters.wait(ms, signal);
  }

  /** Drops deltas older than the retention's age; returns how many. */
  trimByAge(now: number = Date.now()): number {
    return this.sql.trimBefore.run(new Date(now - this.retention.seconds * 1000).toISOString()).changes;
  }
}
