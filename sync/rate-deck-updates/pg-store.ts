import type pg from 'pg';
import { runPgSteps, runSql, type Steps } from '../ledger/sql-steps.js';
import { pgLiveChanges, type LiveChanges } from '../partner/store.js';
import { inPgTransaction } from '../store/pg-database.js';
import { rateTermColumns, type PgChangeLog } from '../store/pg-config-store.js';
import { UPDATE_RATE_COLUMNS, type RatesWriter } from './steps.js';
import { StepsRateDeckUpdateStore } from './store.js';

/** Rates an update sends per INSERT: one array parameter per column (unnest), as the configuration store's import does. */
const RATES_BATCH = 5_000;

/**
 * Rate-deck updates on PostgreSQL: the same steps as on SQLite (steps.ts), each method one READ COMMITTED
 * transaction whose row-locking steps lock what it changes. The rate rows an update writes or deletes move
 * migration 14's count (its statement trigger on rate_deck_rates), so every control plane's configuration
 * store reads the rates again: nothing to tell it here.
 */
export class PgRateDeckUpdateStore extends StepsRateDeckUpdateStore {
  protected readonly live: LiveChanges | null;

  constructor(
    private readonly pool: pg.Pool,
    /** The delta log: a trunk this store suspends or reinstates reaches the nodes as a live change too. */
    changes: PgChangeLog | null = null,
  ) {
    super();
    this.live = changes === null ? null : pgLiveChanges(changes);
  }

  protected readonly writeRates: RatesWriter = function* (deckId, updateId, rates, from, now) {
    for (let start = 0; start < rates.length; start += RATES_BATCH) {
      const batch = rates.slice(start, start + RATES_BATCH);
      yield* runSql(
        `INSERT INTO rate_deck_rates (${UPDATE_RATE_COLUMNS})
            SELECT ?, prefix, destination_name, rate_per_minute, rate_type, initial, step, ?, ?, ?, ?
              FROM unnest(?::text[], ?::text[], ?::text[], ?::text[], ?::bigint[], ?::bigint[])
                AS r(prefix, destination_name, rate_per_minute, rate_type, initial, step)`,
        deckId,
        from,
        now,
        now,
        updateId,
        ...rateTermColumns(batch),
      );
    }
  };

  protected write<T>(work: Steps<T>): Promise<T> {
    return inPgTransaction(this.pool, (client) => runPgSteps(client, work), 'BEGIN ISOLATION LEVEL READ COMMITTED');
  }

  /** A read of one statement: any connection of the pool, no transaction. */
  protected async read<T>(work: Steps<T>): Promise<T> {
    const client = await this.pool.connect();
    try {
      return await runPgSteps(client, work);
    } finally {
      client.release();
    }
  }
}
