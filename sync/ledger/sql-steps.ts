import type Database from 'better-sqlite3';
import type pg from 'pg';
import { sqliteLimit } from '../../src/core/sqlite/limit.js';
import { StatementCache } from '../../src/core/sqlite/statement-cache.js';
import { queryBatch, type BatchStatement } from '../store/pg-batch.js';

/**
 * Money logic written once for both engines: a function* that `yield*`s each SQL statement as a step and
 * gets its result back. On SQLite the steps run synchronously, inside one `immediate` transaction on the
 * one shared connection, so no other write interleaves between them; on PostgreSQL each step is awaited on
 * one client inside a transaction (PgLedgerStore locks the rows it writes), but writes, which answer nothing, go
 * with the next step that is awaited (runPgSteps). SQL is SQLite's, with `?`
 * placeholders; `postgres` gives PostgreSQL's text where it differs, and a step `onlyOn` one engine is
 * skipped (answers nothing) on the other, for the explicit row locks SQLite's write lock makes needless.
 */
export interface SqlStep {
  kind: 'get' | 'all' | 'run';
  sql: string;
  postgres?: string;
  onlyOn?: 'postgres';
  /** See SqlText. */
  prepared?: boolean;
  params: readonly unknown[];
  /** Many rows' parameters, each engine's own way (EngineParams), made only for the engine that runs the step; `params` is then unused. */
  perEngine?: EngineParams;
}

/**
 * Many rows in one step. SQLite: one parameter list per row, the statement run once for each (in-process, a
 * prepared insert per row costs an eighth of the CPU of reading the rows out of one JSON array: 2.5 ms against
 * 19.8 for 400 CDRs), the rows it returns concatenated. PostgreSQL: the statement's parameters (an array per
 * column for unnest), one round trip for all.
 */
export interface EngineParams {
  sqlite: () => readonly (readonly unknown[])[];
  postgres: () => readonly unknown[];
}

/**
 * A step that is not one statement but an engine's own call, made on the transaction's connection: a live
 * change's delta, which each engine's delta log appends its own way (sync/deltas/). The side for the other
 * engine is never needed by the store that yields it.
 */
export interface EngineStep {
  kind: 'engine';
  sqlite?: () => unknown;
  postgres?: (client: pg.ClientBase) => Promise<unknown>;
}

/**
 * Writes that go together, none reading another's result: on SQLite run one after the other, on PostgreSQL
 * sent as one statement (each a data-modifying WITH of it), with the next step awaited (runPgSteps). No two
 * may write the same row (PostgreSQL runs them against one snapshot, in no set order). Each text uses `?`
 * placeholders only.
 */
export interface WritesStep {
  kind: 'writes';
  writes: SqlStep[];
}

/**
 * Reads that go together, none needing another's result: on SQLite run one after the other, on PostgreSQL sent
 * as one statement (each a WITH of it, its rows aggregated as JSON), one round trip for all; the answer is each
 * read's result in order (a row or undefined for `get`, the rows for `all`). They share one snapshot on
 * PostgreSQL, and a row lock one takes (FOR UPDATE) is waited for within the statement: the row locked is then
 * its latest version, the others' rows as they were when the statement began. Column values come back as JSON
 * gives them (BIGINT a number, as the pool's parser makes it). Each text uses `?` placeholders only.
 */
export interface ReadsStep {
  kind: 'reads';
  reads: SqlStep[];
}

/**
 * Statements that go together in order, none needing another's answer, each answered as if run alone (`get` its
 * first row, `all` its rows, `run` the rows it changed): on SQLite run one after the other, on PostgreSQL sent in
 * one round trip (store/pg-batch.ts), each still a statement of its own, run in order, so a later one sees an
 * earlier one's writes and a lock one takes is waited for where it stands among them.
 */
export interface TogetherStep {
  kind: 'together';
  steps: SqlStep[];
}

export type Steps<T> = Generator<SqlStep | EngineStep | WritesStep | ReadsStep | TogetherStep, T, unknown>;

/** `sqlite` on SQLite (synchronously, inside the transaction), `postgres` on PostgreSQL (on its client). */
export function* onEngine<T>(sides: { sqlite?: () => T; postgres?: (client: pg.ClientBase) => Promise<T> }): Steps<T> {
  return (yield { kind: 'engine', ...sides }) as T;
}

function engineSide<S>(side: S | undefined, engine: string): S {
  if (side === undefined) throw new Error(`an engine step with no ${engine} side ran on ${engine}`);
  return side;
}

/** The first row, or undefined. */
export function* getRow<R>(sql: string | SqlText, ...params: unknown[]): Steps<R | undefined> {
  return (yield { kind: 'get', ...text(sql), params }) as R | undefined;
}

export function* allRows<R>(sql: string | SqlText, ...params: unknown[]): Steps<R[]> {
  return (yield { kind: 'all', ...text(sql), params }) as R[];
}

/**
 * A page of rows: `sql` up to its LIMIT, the page's clause appended. On SQLite the limit is written into the text
 * (src/core/sqlite/limit.ts: a bound LIMIT is compiled again on every run there), on PostgreSQL it stays bound:
 * there the text stays one, and a bound LIMIT costs nothing more.
 */
export function* pageOfRows<R>(sql: string, params: readonly unknown[], page: { limit: number; offset?: number }): Steps<R[]> {
  const limit = sqliteLimit(page.limit);
  const offset = page.offset === undefined ? { sql: '', params: [] } : { sql: ' OFFSET ?', params: [page.offset] };
  return yield* allRowsPerEngine<R>(
    { sql: `${sql} ${limit.sql}${offset.sql}`, postgres: `${sql} LIMIT ?${offset.sql}` },
    { sqlite: () => [[...params, ...limit.params, ...offset.params]], postgres: () => [...params, page.limit, ...offset.params] },
  );
}

/** A write; how many rows it changed. */
export function* runSql(sql: string | SqlText, ...params: unknown[]): Steps<number> {
  return (yield { kind: 'run', ...text(sql), params }) as number;
}

/** Rows read with parameters of each engine's own (see SqlStep perEngine). */
export function* allRowsPerEngine<R>(sql: SqlText, perEngine: EngineParams): Steps<R[]> {
  return (yield { kind: 'all', ...sql, params: [], perEngine }) as R[];
}

/** Writes (see WritesStep) in one round trip on PostgreSQL; nothing when `writes` is empty. */
export function* runWrites(
  writes: readonly { sql: string | SqlText; params: readonly unknown[]; perEngine?: EngineParams }[],
): Steps<void> {
  if (writes.length === 0) return;
  yield {
    kind: 'writes',
    writes: writes.map((write) => ({ kind: 'run' as const, ...text(write.sql), params: write.params, perEngine: write.perEngine })),
  };
}

/** A statement to send with others (together): its kind, text and parameters, as getRow, allRows, runSql and allRowsPerEngine take them. */
export function sqlStep(kind: SqlStep['kind'], sql: string | SqlText, params: readonly unknown[], perEngine?: EngineParams): SqlStep {
  return { kind, ...text(sql), params, perEngine };
}

/** Statements (see TogetherStep) in one round trip on PostgreSQL; their answers in order. */
export function* together(steps: readonly SqlStep[]): Steps<unknown[]> {
  if (steps.length === 0) return [];
  return (yield { kind: 'together', steps: [...steps] }) as unknown[];
}

/** Reads (see ReadsStep) in one round trip on PostgreSQL; their results in order. */
export function* readTogether(
  reads: readonly { kind: 'get' | 'all'; sql: string | SqlText; params: readonly unknown[] }[],
): Steps<unknown[]> {
  return (yield { kind: 'reads', reads: reads.map((read) => ({ kind: read.kind, ...text(read.sql), params: read.params })) }) as unknown[];
}

/** A statement whose text differs between the engines, or that runs on one only. */
export interface SqlText {
  sql: string;
  postgres?: string;
  onlyOn?: 'postgres';
  /**
   * PostgreSQL: a named statement, parsed and planned once per connection rather than on every run (the money
   * round's: parsing and planning them was a quarter of the server's CPU for a 400-CDR round, 10.2 of whose
   * ms went to 7.6). Only for statements that name their result columns (no `SELECT *`): a prepared statement
   * whose result type a migration changes fails on every later run on that connection.
   */
  prepared?: boolean;
}

function text(sql: string | SqlText): SqlText {
  return typeof sql === 'string' ? { sql } : sql;
}

/**
 * Most statements SqliteSteps holds prepared; past it, it starts afresh. Pages (pageOfRows) make a text per
 * limit, and the CDR search one per combination of filters too: without a bound they would pile up.
 */
const MAX_PREPARED = 512;

/** Runs steps on SQLite, synchronously: the caller holds the transaction. Statements are prepared once. */
export class SqliteSteps {
  private readonly prepared: StatementCache<Database.Statement>;

  constructor(db: Database.Database) {
    this.prepared = new StatementCache((sql) => db.prepare(sql), MAX_PREPARED);
  }

  run<T>(steps: Steps<T>): T {
    let next = steps.next();
    while (!next.done) {
      const step = next.value;
      if (step.kind === 'engine') next = steps.next(engineSide(step.sqlite, 'SQLite')());
      else if (step.kind === 'reads')
        next = steps.next(step.reads.map((read) => (read.onlyOn === 'postgres' ? skipped(read) : this.execute(read))));
      else if (step.kind === 'writes') {
        for (const write of step.writes) if (write.onlyOn !== 'postgres') this.execute(write);
        next = steps.next(undefined);
      } else if (step.kind === 'together')
        next = steps.next(step.steps.map((one) => (one.onlyOn === 'postgres' ? skipped(one) : this.execute(one))));
      else next = steps.next(step.onlyOn === 'postgres' ? skipped(step) : this.execute(step));
    }
    return next.value;
  }

  private execute(step: SqlStep): unknown {
    const statement = this.prepared.get(step.sql);
    if (step.perEngine !== undefined) {
      const rows: unknown[] = [];
      let changes = 0;
      for (const params of step.perEngine.sqlite()) {
        if (step.kind === 'run') changes += statement.run(...params).changes;
        else rows.push(...statement.all(...params));
      }
      return step.kind === 'run' ? changes : step.kind === 'all' ? rows : rows[0];
    }
    if (step.kind === 'get') return statement.get(...step.params);
    if (step.kind === 'all') return statement.all(...step.params);
    return statement.run(...step.params).changes;
  }
}

function skipped(step: SqlStep): unknown {
  return step.kind === 'all' ? [] : step.kind === 'run' ? 0 : undefined;
}

const numbered = new Map<string, string>();

/** SQLite's `?` placeholders as PostgreSQL's `$1…` (our statements hold no `?` inside string literals). */
function postgresText(step: SqlStep): string {
  const source = step.postgres ?? step.sql;
  let result = numbered.get(source);
  if (result === undefined) {
    let n = 0;
    result = source.replace(/\?/g, () => `$${++n}`);
    numbered.set(source, result);
  }
  return result;
}

/** Statements sent together as one (WritesStep, ReadsStep): each a `WITH` part of it, their parameters in order. */
function pgTogether(steps: readonly SqlStep[], tail: (names: string[]) => string): pg.QueryConfig {
  const parts: string[] = [];
  const names: string[] = [];
  const values: unknown[] = [];
  for (const step of steps) {
    const source = step.postgres ?? step.sql;
    if (/\$\d/.test(source)) throw new Error('a statement sent with others must use ? placeholders');
    names.push(`w${parts.length}`);
    parts.push(`w${parts.length} AS (${source})`);
    values.push(...(step.perEngine?.postgres() ?? step.params));
  }
  let n = 0;
  const text = `WITH ${parts.join(', ')} ${tail(names)}`.replace(/\?/g, () => `$${++n}`);
  return named(
    text,
    values,
    steps.every((step) => step.prepared === true),
  );
}

/** Writes as one PostgreSQL statement: `WITH w0 AS (…), w1 AS (…) SELECT 1`. */
function pgWrites(step: WritesStep): pg.QueryConfig {
  return pgTogether(step.writes, () => 'SELECT 1');
}

/** Reads as one PostgreSQL statement: `WITH w0 AS (…), … SELECT (SELECT json_agg(w0) FROM w0) AS w0, …`. */
function pgReads(step: ReadsStep): pg.QueryConfig {
  return pgTogether(
    step.reads,
    (names) => `SELECT ${names.map((name) => `(SELECT json_agg(${name}) FROM ${name}) AS ${name}`).join(', ')}`,
  );
}

/** Each read's result from pgReads' one row: a read's rows (none: json_agg's NULL), or its first. */
function readResults(step: ReadsStep, row: Record<string, unknown[] | null>): unknown[] {
  return step.reads.map((read, i) => {
    const rows = row[`w${i}`] ?? [];
    return read.kind === 'get' ? rows[0] : rows;
  });
}

const statementNames = new Map<string, string>();

/** A query of `text`, named (SqlText.prepared: parsed and planned once per connection) when `prepared`. */
function named(text: string, values: unknown[], prepared: boolean): pg.QueryConfig {
  if (!prepared) return { text, values };
  let name = statementNames.get(text);
  if (name === undefined) {
    name = `ledger_${statementNames.size}`;
    statementNames.set(text, name);
  }
  return { name, text, values };
}

/** A step's answer from its statement's result: its first row (`get`), its rows (`all`) or how many it changed (`run`). */
function answer(step: SqlStep, result: pg.QueryResult): unknown {
  return step.kind === 'get' ? result.rows[0] : step.kind === 'all' ? result.rows : (result.rowCount ?? 0);
}

/** A single statement's query (its PostgreSQL text, its parameters, named when prepared). */
function pgStatement(step: SqlStep): pg.QueryConfig {
  return named(postgresText(step), (step.perEngine?.postgres() ?? step.params) as unknown[], step.prepared === true);
}

/**
 * Runs steps on PostgreSQL on `client` (the caller holds the transaction, or has it made by `around`). A step whose
 * answer the steps wait for is a round trip; writes (WritesStep), whose answer nothing waits for, are not: they go
 * with the next step that is awaited, or with `around.commit` (store/pg-batch.ts). `around`: statements sent
 * with the first step (a BEGIN) and after the last (a COMMIT), in the same round trips: a money round is then
 * three (the BEGIN with its opening reads; its CDRs' insert with its balances' lock; its writes with the COMMIT)
 * where it was six.
 */
export async function runPgSteps<T>(
  client: pg.ClientBase,
  steps: Steps<T>,
  around: { begin?: readonly BatchStatement[]; commit?: readonly BatchStatement[] } = {},
): Promise<T> {
  let pending: BatchStatement[] = [...(around.begin ?? [])];
  /** `statements` sent after those pending, in one round trip; their results (the pending ones' dropped). */
  const send = async (statements: readonly pg.QueryConfig[]): Promise<pg.QueryResult[]> => {
    if (pending.length === 0 && statements.length === 1) return [await client.query(statements[0])];
    const batch = [...pending, ...(statements as BatchStatement[])];
    pending = [];
    if (batch.length === 0) return [];
    return (await queryBatch(client, batch)).slice(batch.length - statements.length);
  };
  let next = steps.next();
  while (!next.done) {
    const step = next.value;
    if (step.kind === 'engine') {
      await send([]);
      next = steps.next(await engineSide(step.postgres, 'PostgreSQL')(client));
    } else if (step.kind === 'writes') {
      pending.push(pgWrites(step) as BatchStatement);
      next = steps.next(undefined);
    } else if (step.kind === 'reads') {
      const [result] = await send([pgReads(step)]);
      next = steps.next(readResults(step, result.rows[0] as Record<string, unknown[] | null>));
    } else if (step.kind === 'together') {
      const results = await send(step.steps.map(pgStatement));
      next = steps.next(step.steps.map((one, i) => answer(one, results[i])));
    } else {
      const [result] = await send([pgStatement(step)]);
      next = steps.next(answer(step, result));
    }
  }
  await send((around.commit ?? []) as pg.QueryConfig[]);
  return next.value;
}
