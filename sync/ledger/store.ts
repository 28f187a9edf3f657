import type Database from 'better-sqlite3';
import type { EntityType } from '../../src/core/protocol/node-sync.js';
import type { Row } from '../store/config-store.js';
import { SqliteSteps, type Steps } from './sql-steps.js';
import { LedgerSteps, ledgerReads } from './steps.js';

/**
 * The ledger's tables at the centre (balances, their transactions, the nodes' credit leases and money
 * rounds, settled CDRs) and every SQL statement that touches them. Settlement (settlement.ts) and the
 * balance endpoints decide; this store reads and writes, each call one transaction. It shares the control
 * plane's database with the configuration store (sync/store/), so a round reads an account's billing
 * terms in the same transaction it debits the account in.
 */
/** The ledger on either engine (SQLite: SqliteLedgerStore; PostgreSQL: pg-store.ts). */
export interface LedgerStore {
  /**
   * Reads an entity's balance, lets `change` decide the new one, and writes it with its transaction
   * record, all in one transaction (no other change to that balance interleaves). `change` throws to
   * refuse; nothing is then written.
   */
  changeBalance(key: BalanceKey, change: (current: BalanceState) => BalanceChange): Promise<BalanceState>;
  /**
   * Runs the money logic `work` (steps over the ledger's tables: sql-steps.ts) as one transaction. SQLite:
   * synchronously under the write lock. PostgreSQL: READ COMMITTED, the work taking its row locks
   * (LedgerSteps.lockRound, lockBalances), and run again from the start (`work` called anew) when the
   * server aborts it for a serialization failure, a deadlock or a unique key another transaction just took.
   */
  run<T>(work: (tx: LedgerSteps) => Steps<T>, options?: RunOptions): Promise<T>;
  /**
   * Runs steps that only read, outside a money transaction (SQLite: at once on its connection; PostgreSQL: on
   * any connection of the pool, each statement its own snapshot). The partner API's reads use it too.
   */
  read<T>(steps: Steps<T>): Promise<T>;
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

export interface RunOptions {
  /**
   * PostgreSQL: the transaction's row locks are released as soon as its commit record is written, and `run`
   * resolves once the server has flushed it to disk (pg-store.ts): so the next round waiting on the same
   * balances does not wait for this one's fsync too, while nothing is answered before it is durable. Only for
   * work that appends no delta (a delta's NOTIFY wakes the nodes at commit, which must not precede the flush):
   * the money rounds. SQLite: no difference (its group commit is the route's `flushed()`).
   */
  unlockBeforeFlush?: boolean;
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

/**
 * What both engines' stores share: the money work and the reads are steps (steps.ts); an engine says how
 * it runs them, in a transaction (`run`) and as a plain read (`read`).
 */
export abstract class StepsLedgerStore implements LedgerStore {
  abstract run<T>(work: (tx: LedgerSteps) => Steps<T>, options?: RunOptions): Promise<T>;
  abstract read<T>(steps: Steps<T>): Promise<T>;

  changeBalance(key: BalanceKey, change: (current: BalanceState) => BalanceChange): Promise<BalanceState> {
    return this.run((tx) => changeBalanceSteps(tx, key, change));
  }

  leasesOf(entityType: string, entityId: number): Promise<{ node: string; amount: string; updated_at: string }[]> {
    return this.read(ledgerReads.leasesOf(entityType, entityId));
  }

  moneyRounds(): Promise<{ node: string; last_seq: number; updated_at: string; leases_held: number }[]> {
    return this.read(ledgerReads.moneyRounds());
  }

  searchCdrs(filter: CdrFilter): Promise<Row[]> {
    return this.read(ledgerReads.searchCdrs(filter));
  }

  getBalance(entityType: string, entityId: number): Promise<BalanceState & { id: number | null; updated_at: string | null }> {
    return this.read(ledgerReads.getBalance(entityType, entityId));
  }

  openBalance(key: BalanceKey): Promise<BalanceState & { id: number; updated_at: string }> {
    return this.run(() => ledgerReads.openBalance(key));
  }

  getOverrun(entityType: string, entityId: number): Promise<Overrun> {
    return this.read(ledgerReads.getOverrun(entityType, entityId));
  }

  listTransactions(entityType: string, entityId: number, limit: number, offset: number): Promise<{ rows: Row[]; total: number }> {
    return this.read(ledgerReads.listTransactions(entityType, entityId, limit, offset));
  }
}

export class SqliteLedgerStore extends StepsLedgerStore {
  private readonly steps: SqliteSteps;
  private readonly ledgerSteps = new LedgerSteps();
  /**
   * Made once, not per call: better-sqlite3 builds a wrapper with its four BEGIN variants for every
   * `db.transaction(fn)`, and a partner write ran one per request.
   */
  private readonly transaction: Database.Transaction<(steps: Steps<unknown>) => unknown>;

  constructor(db: Database.Database) {
    super();
    this.steps = new SqliteSteps(db);
    this.transaction = db.transaction((steps: Steps<unknown>) => this.steps.run(steps));
  }

  run<T>(work: (tx: LedgerSteps) => Steps<T>): Promise<T> {
    // IMMEDIATE: take the write lock before reading, so a concurrent writer cannot slip in between.
    return Promise.resolve(this.transaction.immediate(work(this.ledgerSteps)) as T);
  }

  read<T>(steps: Steps<T>): Promise<T> {
    // A read transaction (DEFERRED: no write lock): outside one, each statement takes and drops the WAL's read
    // lock (a shared-memory read mark and fcntl calls) on its own, so a read of several statements (get_balance's
    // product, account and balance) paid that several times; inside it, once, and they see one state.
    return Promise.resolve(this.transaction.deferred(steps) as T);
  }
}

/** changeBalance's work, on either engine: the balance locked, read, changed by `change`, written with its transaction. */
export function* changeBalanceSteps(
  tx: LedgerSteps,
  key: BalanceKey,
  change: (current: BalanceState) => BalanceChange,
): Steps<BalanceState> {
  yield* tx.lockBalances([key]);
  const next = change(yield* tx.balance(key.entityType, key.entityId));
  yield* tx.applyChange(key, next);
  return next.next;
}
