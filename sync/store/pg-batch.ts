import pg from 'pg';
import { PG_TYPES } from './pg-database.js';

/**
 * Statements sent to PostgreSQL together, one round trip for all: each statement's Parse (a named one only the first
 * time on a connection), Bind, Describe and Execute, then one Sync. The server runs them in order and answers each
 * in turn; on an error it skips the rest up to the Sync, so the batch fails with that first error and the
 * statements after it did not run. Inside an explicit transaction they are part of it; a COMMIT among them ends it,
 * and statements after the COMMIT run in a transaction of their own, committed at the Sync (the extended protocol's
 * implicit transaction).
 *
 * Why: a money round on PostgreSQL was six round trips (BEGIN, its opening reads, the CDR insert, the balances'
 * lock, its writes, COMMIT), and on a loaded machine every round trip waits twice for a core, the server's backend
 * and then the centre's event loop (2–3 ms each at load 8 on 2 cores: performance log, 2026-12-08). node-postgres
 * sends one statement and waits for its ReadyForQuery before the next; its pipeline mode is the whole client's (a
 * Sync per statement, every query of the pool sent without waiting). This is one query object to it: the client
 * hands every message from the Parse to the ReadyForQuery to it.
 */
export interface BatchStatement {
  text: string;
  /** A named statement: parsed and planned once per connection (sql-steps SqlText.prepared). */
  name?: string;
  values?: readonly unknown[];
}

/** What pg's Result does, which its type declarations leave out. */
interface ResultParts extends pg.QueryResult {
  addFields(fields: unknown[]): void;
  parseRow(fields: unknown[]): pg.QueryResultRow;
  addRow(row: pg.QueryResultRow): void;
  addCommandComplete(message: unknown): void;
}

/** The connection's record of named statements (pg/lib/connection.js), which pg's Query keeps and reads. */
interface NamedStatements {
  parsedStatements: Partial<Record<string, string>>;
  submittedNamedStatements: Partial<Record<string, string>>;
}

/** A bound parameter as text (or null): our statements take strings, numbers and nulls; anything else is a mistake. */
function parameter(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean') return String(value);
  throw new TypeError(`a batched statement's parameter is a string, a number or null, not ${typeof value}`);
}

class Batch implements pg.Submittable {
  /** Shown by anything that labels queries by their text (the money-rounds bench). */
  readonly text: string;
  private readonly results: ResultParts[];
  private readonly statements: readonly (BatchStatement & { values: (string | null)[] })[];
  private current = 0;
  /** The statements whose Parse this batch sent, in order, by name ('' unnamed), until the server confirms each. */
  private readonly parsing: string[] = [];
  private connection: (pg.Connection & NamedStatements) | undefined;
  private readonly onParsed = (): void => {
    const name = this.parsing.shift();
    if (name !== undefined && name !== '' && this.connection !== undefined) {
      this.connection.parsedStatements[name] = this.connection.submittedNamedStatements[name];
      delete this.connection.submittedNamedStatements[name];
    }
  };

  /** The statements' results in order, or the first error. */
  readonly finished: Promise<pg.QueryResult[]>;
  private readonly done: (error: Error | undefined, results: pg.QueryResult[]) => void;

  constructor(statements: readonly BatchStatement[]) {
    let done: (error: Error | undefined, results: pg.QueryResult[]) => void = () => undefined;
    this.finished = new Promise((resolve, reject) => (done = (error, results) => (error === undefined ? resolve(results) : reject(error))));
    this.done = done;
    // Made now: a parameter of the wrong kind throws here, before the client has handed its connection to the batch.
    this.statements = statements.map((statement) => ({ ...statement, values: (statement.values ?? []).map(parameter) }));
    this.text = statements.map((statement) => statement.text).join(';\n');
    this.results = statements.map(() => new pg.Result('object', PG_TYPES as never) as unknown as ResultParts);
  }

  submit(connection: pg.Connection): void {
    const named = connection as pg.Connection & NamedStatements;
    this.connection = named;
    named.on('parseComplete', this.onParsed);
    const stream = connection.stream as unknown as { cork?: () => void; uncork?: () => void };
    stream.cork?.();
    try {
      for (const statement of this.statements) {
        const name = statement.name ?? '';
        if (name === '' || (named.parsedStatements[name] === undefined && named.submittedNamedStatements[name] === undefined)) {
          connection.parse({ text: statement.text, name, types: [] }, true);
          this.parsing.push(name);
          if (name !== '') named.submittedNamedStatements[name] = statement.text;
        }
        connection.bind({ statement: name, values: statement.values }, true);
        connection.describe({ type: 'P', name: '' }, true);
        connection.execute({ portal: '' }, true);
      }
      connection.sync();
    } finally {
      stream.uncork?.();
    }
  }

  handleRowDescription(message: { fields: unknown[] }): void {
    this.results[this.current].addFields(message.fields);
  }

  handleDataRow(message: { fields: unknown[] }): void {
    const result = this.results[this.current];
    result.addRow(result.parseRow(message.fields));
  }

  handleCommandComplete(message: unknown): void {
    this.results[this.current++].addCommandComplete(message);
  }

  handleEmptyQuery(): void {
    this.current++;
  }

  /**
   * The server's error (it then skips the rest and answers the Sync, a ReadyForQuery the client no longer hands to
   * this batch, as for its own queries), or the connection's failure: the batch ends here either way.
   */
  handleError(error: Error): void {
    // The server skipped the Parses after the error too: those names are not prepared on this connection.
    if (this.connection !== undefined) for (const name of this.parsing) delete this.connection.submittedNamedStatements[name];
    this.parsing.length = 0;
    this.end(error);
  }

  handleReadyForQuery(): void {
    this.end(undefined);
  }

  private ended = false;

  private end(error: Error | undefined): void {
    if (this.ended) return;
    this.ended = true;
    this.connection?.removeListener('parseComplete', this.onParsed);
    this.done(error, this.results);
  }
}

/** Sends `statements` on `client` in one round trip (see Batch); their results, in order. */
export function queryBatch(client: pg.ClientBase, statements: readonly BatchStatement[]): Promise<pg.QueryResult[]> {
  return client.query(new Batch(statements)).finished;
}
