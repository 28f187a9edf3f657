import { StatementCache } from './statement-cache.js';

/**
 * A LIMIT for a SQLite statement with its count written into the text rather than bound. SQLite (3.49) plans
 * with a bound LIMIT's value, so a prepared statement whose LIMIT is a `?` is compiled again each time it is
 * bound: a 10-row read costs 7.1 µs of CPU that way against 4.3 with the count written in (docs/performance-log.md,
 * 2026-12-07). A bound OFFSET does not do this, so an OFFSET stays a `?`: a caller makes one text per limit, not
 * one per page. PostgreSQL plans a bound LIMIT once per statement as any parameter: this is for SQLite only.
 */
export interface SqliteLimit {
  /** `LIMIT 20`; `LIMIT ?` for a limit that is not a safe integer. */
  sql: string;
  /** What the clause binds, passed where it stands among the statement's parameters: nothing, or the limit. */
  params: number[];
}

/**
 * The clause for `limit`. Only a safe integer reaches the text (the API edges let only integers in, but a
 * number written into SQL is checked here, where it is written); anything else stays bound, as before.
 */
export function sqliteLimit(limit: number): SqliteLimit {
  return Number.isSafeInteger(limit) ? { sql: `LIMIT ${limit}`, params: [] } : { sql: 'LIMIT ?', params: [limit] };
}

/** Most limits StatementsPerLimit holds statements for; past it, it starts afresh (a few are ever used). */
const MAX_LIMITS = 64;

/**
 * A statement prepared once per limit it is run with, for one that is run again and again with a few limits
 * (a node's ask for deltas, a fixed batch): `prepare` gets the LIMIT clause to put into its text.
 */
export class StatementsPerLimit<S> {
  private readonly statements: StatementCache<S>;

  /** `prepare` is given the LIMIT clause (the cache's key), not a whole statement's text. */
  constructor(prepare: (limit: string) => S) {
    this.statements = new StatementCache(prepare, MAX_LIMITS);
  }

  /** The statement for `limit`, and the parameters to pass where its LIMIT stands (sqliteLimit's `params`). */
  get(limit: number): { statement: S; params: number[] } {
    const clause = sqliteLimit(limit);
    return { statement: this.statements.get(clause.sql), params: clause.params };
  }
}
