import type pg from 'pg';
import type { Row } from '../store/config-store.js';
import { inPgTransaction } from '../store/pg-database.js';
import { runPgSteps, type Steps } from './sql-steps.js';
import { LedgerSteps, ledgerReads } from './steps.js';
import { StepsLedgerStore } from './store.js';

/**
 * The ledger on PostgreSQL: the same money logic as on SQLite (steps.ts), each transaction READ COMMITTED
 * with explicit row locks (docs/decisions.md): the node's round row, then the balances it writes, sorted.
 * The server may still abort one (a deadlock between a round and a silent node's reclaim, a CDR or a
 * balance row another transaction inserted first): it is then run again from the start, whole.
 */
const RETRYABLE = new Set(['40001', '40P01', '23505']);
const MAX_ATTEMPTS = 5;

export class PgLedgerStore extends StepsLedgerStore {
  private readonly steps = new LedgerSteps();

  constructor(private readonly pool: pg.Pool) {
    super();
  }

  override async run<T>(work: (tx: LedgerSteps) => Steps<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await inPgTransaction(this.pool, (client) => runPgSteps(client, work(this.steps)), 'BEGIN ISOLATION LEVEL READ COMMITTED');
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
