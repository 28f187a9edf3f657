import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { EntityType, SettlementCdr } from '../../src/ledger/protocol.js';
import type { RateColumns } from '../../src/snapshot/schema.js';
import { MIGRATIONS } from './migrations.js';
import { readRateColumns } from './rate-columns.js';

/**
 * The control plane's configuration store. One interface, so PostgreSQL can
 * stand in for the embedded SQLite default; every method is one atomic unit
 * of work, and async, as a networked database's would be.
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
  /** Makes `rateDeckId` the trunk's active deck; earlier active assignments are superseded, in one transaction. */
  assignRateDeck(kind: 'customer' | 'carrier', trunkId: number, rateDeckId: number): Promise<Row>;
  unassignRateDeck(kind: 'customer' | 'carrier', trunkId: number): Promise<boolean>;
  /**
   * Every table a snapshot needs, read in one transaction so they agree with each other; rate rows
   * come as the snapshot's columns (millions of row objects would cost seconds and gigabytes).
   */
  readRoutingData(tables: readonly string[]): Promise<{ rows: Record<string, Row[]>; rates: RateColumns }>;
  /**
   * Imports rate rows into a deck in one transaction. A conflict is an existing row with the same
   * prefix and effective_at: 'skip' keeps it, 'overwrite' replaces it, 'error' refuses the whole import.
   */
  importRates(rateDeckId: number, rows: readonly ImportedRate[], onConflict: ConflictMode): Promise<ImportCounts>;
  /**
   * Reads an entity's balance, lets `change` decide the new one, and writes it with its transaction
   * record, all in one transaction (no other change to that balance interleaves). `change` throws to
   * refuse; nothing is then written.
   */
  changeBalance(key: BalanceKey, change: (current: BalanceState) => BalanceChange): Promise<BalanceState>;
  /** Runs `work` as one atomic unit over the ledger's tables (balances, transactions, leases, CDRs), holding the write lock throughout. */
  ledgerTransaction<T>(work: (tx: LedgerTx) => T): Promise<T>;
  /** Settled CDRs, newest first. */
  searchCdrs(filter: CdrFilter): Promise<Row[]>;
  /** An entity's balance; zeros (and null id) before its first transaction. */
  getBalance(entityType: string, entityId: number): Promise<BalanceState & { id: number | null; updated_at: string | null }>;
  /** The last snapshot version built, 0 before the first. */
  lastSnapshotVersion(): Promise<number>;
  recordSnapshot(version: number, createdAt: string, checksum: string, counts: Record<string, number>): Promise<void>;
  close(): Promise<void>;
}

/** The ledger's reads and writes inside one transaction (see ConfigStore.ledgerTransaction). */
export interface LedgerTx {
  /** Current balance; zeros before the entity's first transaction. */
  balance(entityType: string, entityId: number): BalanceState;
  /** Writes the new balance and the transaction that explains it. */
  applyChange(key: BalanceKey, change: BalanceChange): void;
  /** The two halves of applyChange, for a caller that writes a balance once after several transactions. */
  recordTransaction(key: BalanceKey, change: BalanceChange): void;
  writeBalance(key: BalanceKey, next: BalanceState): void;
  /** A node's lease on an entity, decimal string ('0' when none). */
  lease(node: string, entityType: string, entityId: number): string;
  setLease(node: string, entityType: string, entityId: number, amount: string): void;
  findCdr(sipCallId: string): { id: number; account_charge: string } | null;
  /** Inserts a settled CDR and returns its id. */
  insertCdr(node: string, cdr: SettlementCdr): number;
  /** The last money round applied for a node, 0 before its first. */
  lastRound(node: string): number;
  setLastRound(node: string, seq: number): void;
  /** Leases (non-zero) of nodes whose last money round was applied before `before` (ISO time). */
  silentNodesLeases(before: string): { node: string; entity_type: EntityType; entity_id: number; amount: string }[];
  /** Raw row of a customer account or carrier trunk, for its billing terms. */
  entityRow(entityType: string, entityId: number): Row | null;
  nodeExists(hostname: string): boolean;
}

export interface CdrFilter {
  startFrom: string | null;
  startTo: string | null;
  customerTrunkId: number | null;
  carrierTrunkId: number | null;
  sipCallId: string | null;
  limit: number;
  offset: number;
}

export interface BalanceKey {
  entityType: 'customer' | 'carrier';
  entityId: number;
  currency: string;
}

export interface BalanceState {
  /** Decimal strings. */
  balance: string;
  reserved: string;
}

export interface BalanceChange {
  next: BalanceState;
  transaction: { transaction_type: string; amount: string; description: string | null; cdr_id: number | null; call_id: string | null };
}

export type ConflictMode = 'skip' | 'overwrite' | 'error';

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

const IDENTIFIER = /^[a-z_][a-z0-9_]*$/;

function identifier(name: string): string {
  // Table and column names come from our resource definitions, never from requests; checked anyway.
  if (!IDENTIFIER.test(name)) throw new Error(`invalid identifier ${name}`);
  return name;
}

export class SqliteConfigStore implements ConfigStore {
  private readonly db: Database.Database;
  private ledgerTx: SqliteLedgerTx | null = null;
  /**
   * The rate columns last read, reused while no rate row changed: reading 2M rows costs seconds, and
   * most syncs follow changes elsewhere. Our own writes drop it; another connection's commit moves
   * SQLite's data_version, which drops it too.
   */
  private rateCache: { columns: RateColumns; dataVersion: number } | null = null;

  constructor(path: string) {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL'); // configuration writes are rare; each must survive power loss
    this.db.pragma('foreign_keys = ON');
    this.migrate();
  }

  /** Applies the migrations this file has not seen yet; returns the schema version. */
  private migrate(): number {
    this.db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at TEXT NOT NULL)');
    const applied = new Set((this.db.prepare('SELECT version FROM schema_migrations').all() as { version: number }[]).map((row) => row.version));
    for (const migration of MIGRATIONS) {
      if (applied.has(migration.version)) continue;
      this.db.transaction(() => {
        this.db.exec(migration.sql);
        this.db.prepare('INSERT INTO schema_migrations (version, description, applied_at) VALUES (?, ?, ?)').run(migration.version, migration.description, new Date().toISOString());
      })();
    }
    return MIGRATIONS[MIGRATIONS.length - 1].version;
  }

  schemaVersion(): number {
    return (this.db.prepare('SELECT MAX(version) AS version FROM schema_migrations').get() as { version: number }).version;
  }

  list(table: string, query: ListQuery): Promise<{ rows: Row[]; total: number }> {
    const columns = Object.keys(query.where).map(identifier);
    const where = columns.length === 0 ? '' : ` WHERE ${columns.map((column) => (query.where[column] === null ? `${column} IS NULL` : `${column} = ?`)).join(' AND ')}`;
    const values = columns.map((column) => query.where[column]).filter((value) => value !== null);
    const from = `FROM ${identifier(table)}${where}`;
    const total = (this.db.prepare(`SELECT COUNT(*) AS total ${from}`).get(...values) as { total: number }).total;
    const limit = query.limit === null ? -1 : query.limit;
    const [orderColumn, direction] = (query.orderBy ?? 'id').split(' ');
    const order = `${identifier(orderColumn)}${direction === 'DESC' ? ' DESC' : ''}`;
    const rows = this.db.prepare(`SELECT * ${from} ORDER BY ${order} LIMIT ? OFFSET ?`).all(...values, limit, query.offset) as Row[];
    return Promise.resolve({ rows, total });
  }

  get(table: string, id: number): Promise<Row | null> {
    return Promise.resolve((this.db.prepare(`SELECT * FROM ${identifier(table)} WHERE id = ?`).get(id) as Row | undefined) ?? null);
  }

  private wrote(table: string): void {
    if (table === 'rate_deck_rates') this.rateCache = null;
  }

  insert(table: string, values: Row): Promise<Row> {
    this.wrote(table);
    const columns = Object.keys(values).map(identifier);
    const info = this.db
      .prepare(`INSERT INTO ${identifier(table)} (${columns.join(', ')}) VALUES (${columns.map(() => '?').join(', ')})`)
      .run(...columns.map((column) => values[column]));
    return this.get(table, Number(info.lastInsertRowid)) as Promise<Row>;
  }

  update(table: string, id: number, values: Row): Promise<Row | null> {
    this.wrote(table);
    const columns = Object.keys(values).map(identifier);
    if (columns.length > 0) {
      const info = this.db
        .prepare(`UPDATE ${identifier(table)} SET ${columns.map((column) => `${column} = ?`).join(', ')} WHERE id = ?`)
        .run(...columns.map((column) => values[column]), id);
      if (info.changes === 0) return Promise.resolve(null);
    }
    return this.get(table, id);
  }

  remove(table: string, id: number): Promise<boolean> {
    this.wrote(table);
    return Promise.resolve(this.db.prepare(`DELETE FROM ${identifier(table)} WHERE id = ?`).run(id).changes > 0);
  }

  assignRateDeck(kind: 'customer' | 'carrier', trunkId: number, rateDeckId: number): Promise<Row> {
    const table = `${kind}_trunk_rate_decks`;
    const column = `${kind}_trunk_id`;
    const now = new Date().toISOString();
    const id = this.db.transaction(() => {
      this.db.prepare(`UPDATE ${table} SET is_active = 0, superseded_at = ? WHERE ${column} = ? AND is_active = 1`).run(now, trunkId);
      return this.db.prepare(`INSERT INTO ${table} (${column}, rate_deck_id, is_active, assigned_at) VALUES (?, ?, 1, ?)`).run(trunkId, rateDeckId, now).lastInsertRowid;
    })();
    return this.get(table, Number(id)) as Promise<Row>;
  }

  unassignRateDeck(kind: 'customer' | 'carrier', trunkId: number): Promise<boolean> {
    const info = this.db
      .prepare(`UPDATE ${kind}_trunk_rate_decks SET is_active = 0, superseded_at = ? WHERE ${kind}_trunk_id = ? AND is_active = 1`)
      .run(new Date().toISOString(), trunkId);
    return Promise.resolve(info.changes > 0);
  }

  readRoutingData(tables: readonly string[]): Promise<{ rows: Record<string, Row[]>; rates: RateColumns }> {
    // A read transaction: every table from the same committed state, even while the admin API writes.
    const read = this.db.transaction(() => ({
      rows: Object.fromEntries(tables.map((table) => [table, this.db.prepare(`SELECT * FROM ${identifier(table)} ORDER BY id`).all() as Row[]])),
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
    const insert = this.db.prepare(
      `INSERT INTO rate_deck_rates (rate_deck_id, prefix, destination_name, rate_per_minute, rate_type, billing_increment_initial,
        billing_increment_step, effective_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    const update = this.db.prepare(
      `UPDATE rate_deck_rates SET destination_name = ?, rate_per_minute = ?, rate_type = ?, billing_increment_initial = ?,
        billing_increment_step = ?, updated_at = ? WHERE id = ?`,
    );
    const now = new Date().toISOString();
    const counts: ImportCounts = { imported: 0, updated: 0, skipped: 0 };
    this.db.transaction(() => {
      rows.forEach((row, index) => {
        const existing = find.get(rateDeckId, row.prefix, row.effective_at) as { id: number } | undefined;
        if (existing === undefined) {
          insert.run(rateDeckId, row.prefix, row.destination_name, row.rate_per_minute, row.rate_type, row.billing_increment_initial, row.billing_increment_step, row.effective_at, now, now);
          counts.imported++;
        } else if (onConflict === 'skip') {
          counts.skipped++;
        } else if (onConflict === 'overwrite') {
          update.run(row.destination_name, row.rate_per_minute, row.rate_type, row.billing_increment_initial, row.billing_increment_step, now, existing.id);
          counts.updated++;
        } else {
          throw new RateConflictError(row.prefix, row.effective_at, index); // rolls the transaction back
        }
      });
    })();
    return Promise.resolve(counts);
  }

  changeBalance(key: BalanceKey, change: (current: BalanceState) => BalanceChange): Promise<BalanceState> {
    return this.ledgerTransaction((tx) => {
      const next = change(tx.balance(key.entityType, key.entityId));
      tx.applyChange(key, next);
      return next.next;
    });
  }

  ledgerTransaction<T>(work: (tx: LedgerTx) => T): Promise<T> {
    this.ledgerTx ??= new SqliteLedgerTx(this.db);
    const tx = this.ledgerTx;
    // IMMEDIATE: take the write lock before reading, so a concurrent writer cannot slip in between.
    return Promise.resolve(this.db.transaction(() => work(tx)).immediate());
  }

  searchCdrs(filter: CdrFilter): Promise<Row[]> {
    const conditions: string[] = [];
    const values: (string | number)[] = [];
    const add = (sql: string, value: string | number | null): void => {
      if (value === null) return;
      conditions.push(sql);
      values.push(value);
    };
    add('start_time >= ?', filter.startFrom);
    add('start_time <= ?', filter.startTo);
    add('customer_trunk_id = ?', filter.customerTrunkId);
    add('carrier_trunk_id = ?', filter.carrierTrunkId);
    add('sip_call_id = ?', filter.sipCallId);
    const where = conditions.length === 0 ? '' : `WHERE ${conditions.join(' AND ')}`;
    const rows = this.db.prepare(`SELECT * FROM cdrs ${where} ORDER BY start_time DESC, id DESC LIMIT ? OFFSET ?`).all(...values, filter.limit, filter.offset) as Row[];
    return Promise.resolve(rows);
  }

  getBalance(entityType: string, entityId: number): Promise<BalanceState & { id: number | null; updated_at: string | null }> {
    const row = this.db.prepare('SELECT id, balance, reserved, updated_at FROM balances WHERE entity_type = ? AND entity_id = ?').get(entityType, entityId) as
      | { id: number; balance: string; reserved: string; updated_at: string }
      | undefined;
    return Promise.resolve(row ?? { id: null, balance: '0', reserved: '0', updated_at: null });
  }

  lastSnapshotVersion(): Promise<number> {
    const row = this.db.prepare('SELECT MAX(version) AS version FROM snapshot_versions').get() as { version: number | null };
    return Promise.resolve(row.version ?? 0);
  }

  recordSnapshot(version: number, createdAt: string, checksum: string, counts: Record<string, number>): Promise<void> {
    this.db.prepare('INSERT INTO snapshot_versions (version, created_at, checksum, counts) VALUES (?, ?, ?, ?)').run(version, createdAt, checksum, JSON.stringify(counts));
    return Promise.resolve();
  }

  close(): Promise<void> {
    this.db.close();
    return Promise.resolve();
  }
}

const CDR_COLUMNS = [
  'sip_call_id', 'node_cdr_id', 'customer_account_id', 'customer_trunk_id', 'carrier_trunk_id', 'carrier_gateway_id', 'ani', 'dnis',
  'start_time', 'answer_time', 'end_time', 'duration_seconds', 'sip_response_code', 'billable_duration_customer', 'billable_duration_vendor',
  'customer_rate_deck_id', 'carrier_rate_deck_id', 'customer_cost', 'customer_currency', 'customer_decimal_precision',
  'customer_rounding_direction', 'vendor_cost', 'vendor_currency', 'vendor_decimal_precision', 'vendor_rounding_direction',
  'account_charge', 'account_currency', 'created_at',
] as const satisfies readonly (keyof SettlementCdr)[];

/** The ledger's statements, prepared once per store. */
function prepareLedgerStatements(db: Database.Database) {
  return {
    readBalance: db.prepare('SELECT balance, reserved FROM balances WHERE entity_type = ? AND entity_id = ?'),
    writeBalance: db.prepare(
      `INSERT INTO balances (entity_type, entity_id, balance, reserved, currency, updated_at) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (entity_type, entity_id) DO UPDATE SET balance = excluded.balance, reserved = excluded.reserved, updated_at = excluded.updated_at`,
    ),
    recordTransaction: db.prepare(
      `INSERT INTO balance_transactions (entity_type, entity_id, transaction_type, amount, balance_after, currency, description, cdr_id, call_id, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    readLease: db.prepare('SELECT amount FROM credit_leases WHERE node = ? AND entity_type = ? AND entity_id = ?'),
    writeLease: db.prepare(
      `INSERT INTO credit_leases (node, entity_type, entity_id, amount, updated_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (node, entity_type, entity_id) DO UPDATE SET amount = excluded.amount, updated_at = excluded.updated_at`,
    ),
    readCdr: db.prepare('SELECT id, account_charge FROM cdrs WHERE sip_call_id = ?'),
    writeCdr: db.prepare(`INSERT INTO cdrs (node, ${CDR_COLUMNS.join(', ')}) VALUES (?, ${CDR_COLUMNS.map(() => '?').join(', ')})`),
    readRound: db.prepare('SELECT last_seq FROM node_money_rounds WHERE node = ?'),
    silentLeases: db.prepare(
      `SELECT l.node, l.entity_type, l.entity_id, l.amount FROM credit_leases l JOIN node_money_rounds r ON r.node = l.node
       WHERE r.updated_at < ? AND l.amount != '0' ORDER BY l.node, l.entity_type, l.entity_id`,
    ),
    writeRound: db.prepare(
      `INSERT INTO node_money_rounds (node, last_seq, updated_at) VALUES (?, ?, ?)
       ON CONFLICT (node) DO UPDATE SET last_seq = excluded.last_seq, updated_at = excluded.updated_at`,
    ),
    readAccount: db.prepare('SELECT * FROM customer_accounts WHERE id = ?'),
    readCarrier: db.prepare('SELECT * FROM carrier_trunks WHERE id = ?'),
    readNode: db.prepare('SELECT 1 FROM opensips_nodes WHERE hostname = ?'),
  };
}

class SqliteLedgerTx implements LedgerTx {
  private readonly sql: ReturnType<typeof prepareLedgerStatements>;

  constructor(db: Database.Database) {
    this.sql = prepareLedgerStatements(db);
  }

  balance(entityType: string, entityId: number): BalanceState {
    return (this.sql.readBalance.get(entityType, entityId) as BalanceState | undefined) ?? { balance: '0', reserved: '0' };
  }

  applyChange(key: BalanceKey, change: BalanceChange): void {
    this.writeBalance(key, change.next);
    this.recordTransaction(key, change);
  }

  recordTransaction(key: BalanceKey, change: BalanceChange): void {
    const { next, transaction } = change;
    this.sql.recordTransaction.run(
      key.entityType, key.entityId, transaction.transaction_type, transaction.amount, next.balance, key.currency,
      transaction.description, transaction.cdr_id, transaction.call_id, new Date().toISOString(),
    );
  }

  writeBalance(key: BalanceKey, next: BalanceState): void {
    this.sql.writeBalance.run(key.entityType, key.entityId, next.balance, next.reserved, key.currency, new Date().toISOString());
  }

  lease(node: string, entityType: string, entityId: number): string {
    return (this.sql.readLease.get(node, entityType, entityId) as { amount: string } | undefined)?.amount ?? '0';
  }

  setLease(node: string, entityType: string, entityId: number, amount: string): void {
    this.sql.writeLease.run(node, entityType, entityId, amount, new Date().toISOString());
  }

  findCdr(sipCallId: string): { id: number; account_charge: string } | null {
    return (this.sql.readCdr.get(sipCallId) as { id: number; account_charge: string } | undefined) ?? null;
  }

  insertCdr(node: string, cdr: SettlementCdr): number {
    return Number(this.sql.writeCdr.run(node, ...CDR_COLUMNS.map((column) => cdr[column])).lastInsertRowid);
  }

  lastRound(node: string): number {
    return (this.sql.readRound.get(node) as { last_seq: number } | undefined)?.last_seq ?? 0;
  }

  setLastRound(node: string, seq: number): void {
    this.sql.writeRound.run(node, seq, new Date().toISOString());
  }

  silentNodesLeases(before: string): { node: string; entity_type: EntityType; entity_id: number; amount: string }[] {
    return this.sql.silentLeases.all(before) as { node: string; entity_type: EntityType; entity_id: number; amount: string }[];
  }

  entityRow(entityType: string, entityId: number): Row | null {
    return ((entityType === 'customer' ? this.sql.readAccount : this.sql.readCarrier).get(entityId) as Row | undefined) ?? null;
  }

  nodeExists(hostname: string): boolean {
    return this.sql.readNode.get(hostname) !== undefined;
  }
}
