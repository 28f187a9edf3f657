import type pg from 'pg';
import type { Row } from '../store/config-store.js';
import type { BatchStatement } from '../store/pg-batch.js';
import { inPgTransaction, inPgTransactionOfWork } from '../store/pg-database.js';
import { runPgSteps, type Steps } from './sql-steps.js';
import { LedgerSteps, ledgerReads } from './steps.js';
import { StepsLedgerStore, type RunOptions } from './store.js';

/**
 * The ledger on PostgreSQL: the same money logic as on SQLite (steps.ts), each transaction READ COMMITTED
 * with explicit row locks (docs/decisions.md): the node's round row, then the balances it writes, sorted.
 * The server may still abort one (a deadlock between a round and a silent node's reclaim, a CDR or a
 * balance row another transaction inserted first): it is then run again from the start, whole.
 */
const RETRYABLE = new Set(['40001', '40P01', '23505']);
const MAX_ATTEMPTS = 5;

const BEGIN = 'BEGIN ISOLATION LEVEL READ COMMITTED';

/** Each transaction's ends, sent with its first and after its last statement (sql-steps runPgSteps `around`). */
const PLAIN: { begin: BatchStatement[]; commit: BatchStatement[] } = { begin: [{ text: BEGIN }], commit: [{ text: 'COMMIT' }] };

/**
 * A money round's transaction (RunOptions.unlockBeforeFlush). Its COMMIT does not wait for the WAL flush
 * (`synchronous_commit` off for this transaction only), so its row locks are released as soon as its commit
 * record is written, and the next round on the same balances starts while this one's fsync runs. In the same
 * round trip a transaction of its own writes one WAL record (a transactional logical message, which any role
 * may emit and nothing reads) and commits with the session's `synchronous_commit` (on): its commit record
 * comes after the round's, so waiting for its flush is waiting for the round's. (A transaction that writes no
 * WAL before its commit record is not flushed at commit, even with an xid: pg_current_xact_id() alone does not
 * do; the engines test checks the flush.) The answer leaves only after that: an acknowledged round survives a
 * crash as before, and concurrent rounds' flushes still share the server's group commit.
 * What changes: another transaction may read the round's figures before they are on disk. One that then writes
 * (another round, a debit) commits after the round in the WAL, so its own flush covers the round: nothing
 * durable can depend on a round that a crash takes back, and that round was not acknowledged (its node sends
 * it again). A read that acknowledges nothing (an admin GET) may show it, as SQLite's NORMAL commits are read
 * before their group fdatasync.
 */
const UNLOCK_BEFORE_FLUSH: typeof PLAIN = {
  begin: [{ text: BEGIN }, { text: 'SET LOCAL synchronous_commit = off' }],
  // After the COMMIT, in the same round trip: a transaction of its own, committed at the batch's Sync (pg-batch.ts).
  commit: [{ text: 'COMMIT' }, { text: "SELECT pg_logical_emit_message(true, 'money-round', '')" }],
};

export class PgLedgerStore extends StepsLedgerStore {
  private readonly steps = new LedgerSteps();

  constructor(private readonly pool: pg.Pool) {
    super();
  }

  override async run<T>(work: (tx: LedgerSteps) => Steps<T>, options: RunOptions = {}): Promise<T> {
    const around = options.unlockBeforeFlush === true ? UNLOCK_BEFORE_FLUSH : PLAIN;
    for (let attempt = 1; ; attempt++) {
      try {
        return await inPgTransactionOfWork(this.pool, (client) => runPgSteps(client, work(this.steps), around));
      } catch (error) {
        const code = (error as { code?: unknown }).code;
        if (attempt >= MAX_ATTEMPTS || typeof code !== 'string' || !RETRYABLE.has(code)) throw error;
      }
    }
  }

  override listTransactions(entityType: string, entityId: number, limit: number, offset: number): Promise<{ rows: Row[]; total: number }> {
    // One snapshot for the count and the page: REPEATABLE READ, read only.
    return inPgTransaction(
      this.pool,
      (client) => runPgSteps(client, ledgerReads.listTransactions(entityType, entityId, limit, offset)),
      'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY',
    );
  }

  /** A read of one statement: any connection of the pool, no transaction. */
  async read<T>(steps: Steps<T>): Promise<T> {
    const client = await this.pool.connect();
    try {
      return await runPgSteps(client, steps);
    } finally {
      client.release();
    }
  }
}
