import type Database from 'better-sqlite3';
import type { EntityType, SettlementCdr } from '../../src/core/protocol/node-sync.js';
import { Decimal } from '../../src/core/money/decimal.js';
import type { Row } from '../store/config-store.js';

/**
 * The ledger's tables at the centre (balances, their transactions, the nodes' credit leases and money
 * rounds, settled CDRs) and every SQL statement that touches them. Settlement (settlement.ts) and the
 * balance endpoints decide; this store reads and writes, each call one transaction. It shares the control
 * plane's database with the configuration store (sync/store/), so a round reads an account's billing
 * terms in the same transaction it debits the account in.
 */
export interface LedgerStore {
  /**
   * Reads an entity's balance, lets `change` decide the new one, and writes it with its transaction
   * record, all in one transaction (no other change to that balance interleaves). `change` throws to
   * refuse; nothing is then written.
   */
  changeBalance(key: BalanceKey, change: (current: BalanceState) => BalanceChange): Promise<BalanceState>;
  /** Runs `work` as one atomic unit over the ledger's tables, holding the write lock throughout. */
  transaction<T>(work: (tx: LedgerTx) => T): Promise<T>;
  /** Settled CDRs, newest first. */
  searchCdrs(filter: CdrFilter): Promise<Row[]>;
  /** An entity's balance; zeros (and null id) before its first transaction. */
  getBalance(entityType: string, entityId: number): Promise<BalanceState & { id: number | null; updated_at: string | null }>;
  /**
   * An entity's balance row, opened at zero the first time it is read: the contract's Balance has an integer
   * `id` and a date-time `updated_at` (neither nullable), so a balance that is shown exists (contract note 45).
   */
  openBalance(key: BalanceKey): Promise<BalanceState & { id: number; updated_at: string }>;
  /** What an entity's CDRs charged beyond their reservations at the nodes, in all (zero and null before the first). */
  getOverrun(entityType: string, entityId: number): Promise<Overrun>;
  /** An entity's balance transactions, newest first, and how many it has. */
  listTransactions(entityType: string, entityId: number, limit: number, offset: number): Promise<{ rows: Row[]; total: number }>;
  /** The non-zero leases nodes hold on an entity (the console's Accounts page). */
  leasesOf(entityType: string, entityId: number): Promise<{ node: string; amount: string; updated_at: string }[]>;
  /** Each node's last applied money round and how many non-zero leases it holds (the console's Network page). */
  moneyRounds(): Promise<{ node: string; last_seq: number; updated_at: string; leases_held: number }[]>;
}

/** The ledger's reads and writes inside one transaction (see LedgerStore.transaction). */
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
  /** An account's overrun so far, decimal string ('0' before the first). */
  overrun(entityType: string, entityId: number): string;
  /** Writes an account's new overrun total after one more CDR (`callId`) added to it. */
  addOverrunCdr(entityType: string, entityId: number, total: string, callId: string): void;
  /** Inserts a settled CDR and returns its id. */
  insertCdr(node: string, cdr: SettlementCdr): number;
  /** The last money round applied for a node, 0 before its first. */
  lastRound(node: string): number;
  setLastRound(node: string, seq: number): void;
  /** The answer to the node's last applied round, when `seq` is that round's and `digest` its body's; else null. */
  lastRoundReply(node: string, seq: number, digest: string): string | null;
  /** Keeps the answer to the round just applied (after setLastRound), for a resend of it. */
  recordRoundReply(node: string, digest: string, reply: string): void;
  /** The kept answer no longer tells the node's leases (they were taken back): a resend is then stale. */
  forgetRoundReply(node: string): void;
  /** Leases (non-zero) of nodes whose last money round was applied before `before` (ISO time). */
  silentNodesLeases(before: string): { node: string; entity_type: EntityType; entity_id: number; amount: string }[];
  /** Raw row of a customer account, carrier trunk or retail account (currency, billing_mode, credit_limit, status), for its billing terms. */
  entityRow(entityType: string, entityId: number): Row | null;
  nodeExists(hostname: string): boolean;
  /** Nodes registered as active (taking calls): the most that may share an entity's headroom. */
  activeNodes(): number;
  /** The nodes holding a non-zero lease on an entity. */
  leaseHolders(entityType: string, entityId: number): string[];
  /** The node's credential digests; null when no node has this hostname. */
  nodeCredential(hostname: string): NodeCredentialDigests | null;
  /** The node has used its new secret: its previous one is refused from now on. */
  forgetPreviousSecret(nodeId: number): void;
}

/** What the centre keeps of a node's secret (sync/admin/node-credentials.ts); null hashes: none issued. */
export interface NodeCredentialDigests {
  nodeId: number;
  secretHash: string | null;
  previousSecretHash: string | null;
}

export interface CdrFilter {
  startFrom: string | null;
  startTo: string | null;
  /** One account's CDRs (a portal session sees only its own: sync/portal/access-rules.ts). */
  customerAccountId?: number | null;
  customerTrunkId: number | null;
  carrierTrunkId: number | null;
  sipCallId: string | null;
  limit: number;
  offset: number;
}

/** The running total of an account's overruns (issue 17, finding 6): decimal string, in the account's currency. */
export interface Overrun {
  uncovered: string;
  cdrs: number;
  last_call_id: string | null;
  updated_at: string | null;
}

export interface BalanceKey {
  /** 'retail': a partner API retail account (sync/partner/), whose money is kept here like a customer's. */
  entityType: EntityType | 'retail';
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

/** A lease amount that is not zero, however many zeros it is written with ("0", "0.00"), read as text: no float. */
const NON_ZERO = "amount GLOB '*[1-9]*'";

export class SqliteLedgerStore implements LedgerStore {
  private tx: SqliteLedgerTx | null = null;

  constructor(private readonly db: Database.Database) {}

  changeBalance(key: BalanceKey, change: (current: BalanceState) => BalanceChange): Promise<BalanceState> {
    return this.transaction((tx) => {
      const next = change(tx.balance(key.entityType, key.entityId));
      tx.applyChange(key, next);
      return next.next;
    });
  }

  transaction<T>(work: (tx: LedgerTx) => T): Promise<T> {
    this.tx ??= new SqliteLedgerTx(this.db);
    const tx = this.tx;
    // IMMEDIATE: take the write lock before reading, so a concurrent writer cannot slip in between.
    return Promise.resolve(this.db.transaction(() => work(tx)).immediate());
  }

  leasesOf(entityType: string, entityId: number): Promise<{ node: string; amount: string; updated_at: string }[]> {
    return Promise.resolve(
      this.db
        .prepare(`SELECT node, amount, updated_at FROM credit_leases WHERE entity_type = ? AND entity_id = ? AND ${NON_ZERO} ORDER BY node`)
        .all(entityType, entityId) as { node: string; amount: string; updated_at: string }[],
    );
  }

  moneyRounds(): Promise<{ node: string; last_seq: number; updated_at: string; leases_held: number }[]> {
    return Promise.resolve(
      this.db
        .prepare(
          `SELECT r.node, r.last_seq, r.updated_at,
             (SELECT COUNT(*) FROM credit_leases WHERE node = r.node AND ${NON_ZERO}) AS leases_held
           FROM node_money_rounds r ORDER BY r.node`,
        )
        .all() as { node: string; last_seq: number; updated_at: string; leases_held: number }[],
    );
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
    add('customer_account_id = ?', filter.customerAccountId ?? null);
    add('customer_trunk_id = ?', filter.customerTrunkId);
    add('carrier_trunk_id = ?', filter.carrierTrunkId);
    add('sip_call_id = ?', filter.sipCallId);
    const where = conditions.length === 0 ? '' : `WHERE ${conditions.join(' AND ')}`;
    const rows = this.db
      .prepare(`SELECT * FROM cdrs ${where} ORDER BY start_time DESC, id DESC LIMIT ? OFFSET ?`)
      .all(...values, filter.limit, filter.offset) as Row[];
    return Promise.resolve(rows);
  }

  getBalance(entityType: string, entityId: number): Promise<BalanceState & { id: number | null; updated_at: string | null }> {
    const row = this.db
      .prepare('SELECT id, balance, reserved, updated_at FROM balances WHERE entity_type = ? AND entity_id = ?')
      .get(entityType, entityId) as { id: number; balance: string; reserved: string; updated_at: string } | undefined;
    return Promise.resolve(row ?? { id: null, balance: '0', reserved: '0', updated_at: null });
  }

  openBalance(key: BalanceKey): Promise<BalanceState & { id: number; updated_at: string }> {
    this.db
      .prepare(
        `INSERT INTO balances (entity_type, entity_id, balance, reserved, currency, updated_at) VALUES (?, ?, '0.00', '0.00', ?, ?)
         ON CONFLICT (entity_type, entity_id) DO NOTHING`,
      )
      .run(key.entityType, key.entityId, key.currency, new Date().toISOString());
    return Promise.resolve(
      this.db
        .prepare('SELECT id, balance, reserved, updated_at FROM balances WHERE entity_type = ? AND entity_id = ?')
        .get(key.entityType, key.entityId) as { id: number; balance: string; reserved: string; updated_at: string },
    );
  }

  getOverrun(entityType: string, entityId: number): Promise<Overrun> {
    const row = this.db
      .prepare('SELECT uncovered, cdrs, last_call_id, updated_at FROM account_overruns WHERE entity_type = ? AND entity_id = ?')
      .get(entityType, entityId) as Overrun | undefined;
    return Promise.resolve(row ?? { uncovered: '0.00', cdrs: 0, last_call_id: null, updated_at: null });
  }

  listTransactions(entityType: string, entityId: number, limit: number, offset: number): Promise<{ rows: Row[]; total: number }> {
    const where = 'FROM balance_transactions WHERE entity_type = ? AND entity_id = ?';
    const total = (this.db.prepare(`SELECT COUNT(*) AS total ${where}`).get(entityType, entityId) as { total: number }).total;
    const rows = this.db.prepare(`SELECT * ${where} ORDER BY id DESC LIMIT ? OFFSET ?`).all(entityType, entityId, limit, offset) as Row[];
    return Promise.resolve({ rows, total });
  }
}

const CDR_COLUMNS = [
  'sip_call_id',
  'node_cdr_id',
  'customer_account_id',
  'customer_trunk_id',
  'carrier_trunk_id',
  'carrier_gateway_id',
  'ani',
  'dnis',
  'start_time',
  'answer_time',
  'end_time',
  'duration_seconds',
  'sip_response_code',
  'billable_duration_customer',
  'billable_duration_vendor',
  'customer_rate_deck_id',
  'carrier_rate_deck_id',
  'customer_cost',
  'customer_currency',
  'customer_decimal_precision',
  'customer_rounding_direction',
  'vendor_cost',
  'vendor_currency',
  'vendor_decimal_precision',
  'vendor_rounding_direction',
  'account_charge',
  'account_currency',
  'created_at',
  'uncovered',
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
    readOverrun: db.prepare('SELECT uncovered FROM account_overruns WHERE entity_type = ? AND entity_id = ?'),
    writeOverrun: db.prepare(
      `INSERT INTO account_overruns (entity_type, entity_id, uncovered, cdrs, last_call_id, updated_at) VALUES (?, ?, ?, 1, ?, ?)
       ON CONFLICT (entity_type, entity_id) DO UPDATE SET uncovered = excluded.uncovered, cdrs = cdrs + 1,
         last_call_id = excluded.last_call_id, updated_at = excluded.updated_at`,
    ),
    readRound: db.prepare('SELECT last_seq FROM node_money_rounds WHERE node = ?'),
    readRoundReply: db.prepare('SELECT last_reply FROM node_money_rounds WHERE node = ? AND last_seq = ? AND last_digest = ?'),
    writeRoundReply: db.prepare('UPDATE node_money_rounds SET last_digest = ?, last_reply = ? WHERE node = ?'),
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
    // A retail account's billing terms: always prepaid, in its product's currency (deactivated or not: a call
    // that ran before the deactivation is still billed; new leases are refused by settlement's status check).
    readRetail: db.prepare(
      `SELECT p.currency, 'prepaid' AS billing_mode, NULL AS credit_limit, r.status FROM retail_accounts r
       JOIN partner_products p ON p.id = r.partner_product_id WHERE r.id = ?`,
    ),
    writeRetailCdr: db.prepare('INSERT INTO retail_call_cdrs (cdr_id, retail_account_id, start_time) VALUES (?, ?, ?)'),
    readNode: db.prepare('SELECT 1 FROM opensips_nodes WHERE hostname = ?'),
    readCredential: db.prepare(
      `SELECT n.id AS node_id, c.secret_hash, c.previous_secret_hash FROM opensips_nodes n
       LEFT JOIN node_credentials c ON c.id = n.id WHERE n.hostname = ?`,
    ),
    forgetPrevious: db.prepare(
      'UPDATE node_credentials SET previous_secret_hash = NULL, previous_push_token = NULL WHERE id = ? AND previous_secret_hash IS NOT NULL',
    ),
    countActiveNodes: db.prepare("SELECT COUNT(*) AS count FROM opensips_nodes WHERE status = 'active'"),
    // By node: credit_leases is keyed (node, entity), so each registered node is one key lookup, not a scan of
    // every lease (a round leasing call by call reads this for each ask; CROSS JOIN keeps that loop order).
    // A node no longer registered is not asked to give back; its leases lapse with its silence.
    leaseHolders: db.prepare(
      `SELECT l.node, l.amount FROM opensips_nodes n CROSS JOIN credit_leases l
       ON l.node = n.hostname AND l.entity_type = ? AND l.entity_id = ?`,
    ),
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
      key.entityType,
      key.entityId,
      transaction.transaction_type,
      transaction.amount,
      next.balance,
      key.currency,
      transaction.description,
      transaction.cdr_id,
      transaction.call_id,
      new Date().toISOString(),
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
    // `uncovered` is absent from older nodes' settlements: NULL, not known.
    const id = Number(this.sql.writeCdr.run(node, ...CDR_COLUMNS.map((column) => cdr[column] ?? null)).lastInsertRowid);
    if (cdr.retail_account_id !== undefined && cdr.retail_account_id !== null)
      this.sql.writeRetailCdr.run(id, cdr.retail_account_id, new Date(cdr.start_time).toISOString());
    return id;
  }

  overrun(entityType: string, entityId: number): string {
    return (this.sql.readOverrun.get(entityType, entityId) as { uncovered: string } | undefined)?.uncovered ?? '0';
  }

  addOverrunCdr(entityType: string, entityId: number, total: string, callId: string): void {
    this.sql.writeOverrun.run(entityType, entityId, total, callId, new Date().toISOString());
  }

  lastRound(node: string): number {
    return (this.sql.readRound.get(node) as { last_seq: number } | undefined)?.last_seq ?? 0;
  }

  setLastRound(node: string, seq: number): void {
    this.sql.writeRound.run(node, seq, new Date().toISOString());
  }

  lastRoundReply(node: string, seq: number, digest: string): string | null {
    return (this.sql.readRoundReply.get(node, seq, digest) as { last_reply: string | null } | undefined)?.last_reply ?? null;
  }

  recordRoundReply(node: string, digest: string, reply: string): void {
    this.sql.writeRoundReply.run(digest, reply, node);
  }

  forgetRoundReply(node: string): void {
    this.sql.writeRoundReply.run(null, null, node);
  }

  silentNodesLeases(before: string): { node: string; entity_type: EntityType; entity_id: number; amount: string }[] {
    return this.sql.silentLeases.all(before) as { node: string; entity_type: EntityType; entity_id: number; amount: string }[];
  }

  entityRow(entityType: string, entityId: number): Row | null {
    const statement =
      entityType === 'customer' ? this.sql.readAccount : entityType === 'retail' ? this.sql.readRetail : this.sql.readCarrier;
    return (statement.get(entityId) as Row | undefined) ?? null;
  }

  nodeExists(hostname: string): boolean {
    return this.sql.readNode.get(hostname) !== undefined;
  }

  nodeCredential(hostname: string): NodeCredentialDigests | null {
    const row = this.sql.readCredential.get(hostname) as
      { node_id: number; secret_hash: string | null; previous_secret_hash: string | null } | undefined;
    if (row === undefined) return null;
    return { nodeId: row.node_id, secretHash: row.secret_hash, previousSecretHash: row.previous_secret_hash };
  }

  forgetPreviousSecret(nodeId: number): void {
    this.sql.forgetPrevious.run(nodeId);
  }

  activeNodes(): number {
    return (this.sql.countActiveNodes.get() as { count: number }).count;
  }

  leaseHolders(entityType: string, entityId: number): string[] {
    return (this.sql.leaseHolders.all(entityType, entityId) as { node: string; amount: string }[])
      .filter((row) => new Decimal(row.amount).greaterThan(0))
      .map((row) => row.node);
  }
}
