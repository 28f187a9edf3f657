import { Readable } from 'node:stream';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { redactedError } from '../store/database-url.js';
import { OUR_TABLES, type DroutingDatabase } from './node-database.js';
import type { DroutingData } from './rules.js';
import { MYSQL_TABLES, POSTGRES_TABLES } from './sql-schema.js';
import { DROUTING_TABLE_VERSIONS, SYNC_TERM_ROW } from './writer.js';

/**
 * Writes drouting rows (and the permissions `address` rows) into a node's MySQL/MariaDB or PostgreSQL
 * database, as writer.ts does into SQLite: tables created as OpenSIPS's scripts create them when missing,
 * an existing table checked for every column we write before anything is changed, then one transaction
 * that empties the tables, inserts the new rows in batches and sets the `version` rows. OpenSIPS reading
 * the tables sees the old set or the new one, and a database that refuses any step keeps the old set.
 */

type Value = string | number | null;
type ColumnType = 'text' | 'int';
interface TableRows {
  table: string;
  columns: [name: string, type: ColumnType][];
  rows: Value[][];
}

function tableRows(data: DroutingData): TableRows[] {
  return [
    {
      table: 'dr_gateways',
      columns: [
        ['gwid', 'text'],
        ['type', 'int'],
        ['address', 'text'],
        ['strip', 'int'],
        ['pri_prefix', 'text'],
        ['attrs', 'text'],
        ['probe_mode', 'int'],
        ['state', 'int'],
        ['socket', 'text'],
        ['description', 'text'],
      ],
      rows: data.gateways.map((g) => [
        g.gwid,
        g.type,
        g.address,
        g.strip,
        g.pri_prefix,
        g.attrs,
        g.probe_mode,
        g.state,
        g.socket,
        g.description,
      ]),
    },
    {
      table: 'dr_carriers',
      columns: [
        ['carrierid', 'text'],
        ['gwlist', 'text'],
        ['flags', 'int'],
        ['sort_alg', 'text'],
        ['state', 'int'],
        ['attrs', 'text'],
        ['description', 'text'],
      ],
      rows: data.carriers.map((c) => [c.carrierid, c.gwlist, c.flags, c.sort_alg, c.state, c.attrs, c.description]),
    },
    {
      table: 'dr_rules',
      columns: [
        ['groupid', 'text'],
        ['prefix', 'text'],
        ['timerec', 'text'],
        ['priority', 'int'],
        ['routeid', 'text'],
        ['gwlist', 'text'],
        ['sort_alg', 'text'],
        ['sort_profile', 'int'],
        ['attrs', 'text'],
        ['description', 'text'],
      ],
      rows: data.rules.map((r) => [
        r.groupid,
        r.prefix,
        r.timerec,
        r.priority,
        r.routeid,
        r.gwlist,
        r.sort_alg,
        r.sort_profile,
        r.attrs,
        r.description,
      ]),
    },
    {
      table: 'dr_groups',
      columns: [
        ['username', 'text'],
        ['domain', 'text'],
        ['groupid', 'int'],
        ['description', 'text'],
      ],
      rows: data.groups.map((g) => [g.username, g.domain, g.groupid, g.description]),
    },
    {
      table: 'address',
      columns: [
        ['grp', 'int'],
        ['ip', 'text'],
        ['mask', 'int'],
        ['port', 'int'],
        ['proto', 'text'],
        ['pattern', 'text'],
        ['context_info', 'text'],
      ],
      rows: data.addresses.map((a) => [a.grp, a.ip, a.mask, a.port, a.proto, a.pattern, a.context_info]),
    },
  ];
}

/** Seconds a write waits for a lock on a node's table before failing that node. */
const LOCK_WAIT_S = 10;

/**
 * Milliseconds one statement may go without an answer before the node's write is given up (the connection
 * dropped, the server rolls back). Without it a database host that stops answering mid-write (a network
 * that drops packets rather than refusing them) holds the write until the kernel gives up on the TCP
 * connection, a quarter of an hour, and the drouting worker writes one node at a time: every node behind
 * it waits. The slowest statement, 300k rules by LOAD DATA or DELETE, takes a few seconds.
 */
export const STATEMENT_TIMEOUT_MS = 60_000;

/** Rows per INSERT: 5,000 rules are about 0.5 MB of SQL, well under MariaDB's default 16 MB max_allowed_packet. */
const BATCH = 5_000;

/** The columns a node database must have in each table we write (version included: we set its rows). */
function requiredColumns(tables: TableRows[]): Map<string, string[]> {
  const required = new Map(tables.map((t) => [t.table, t.columns.map(([name]) => name)]));
  required.set('version', ['table_name', 'table_version']);
  return required;
}

/**
 * The same guards as for an SQLite file (sync/nodes/targets.ts): a database holding this system's own
 * tables is never a node's drouting database, and a table missing a column we write is refused before
 * the transaction starts, so nothing in it is changed.
 */
function checkSchema(present: { table_name: string; column_name: string }[], tables: TableRows[]): void {
  const columns = new Map<string, Set<string>>();
  for (const row of present) {
    const table = row.table_name.toLowerCase();
    if (!columns.has(table)) columns.set(table, new Set());
    columns.get(table)!.add(row.column_name.toLowerCase());
  }
  const ours = OUR_TABLES.filter((table) => columns.has(table));
  if (ours.length > 0) throw new Error(`the database is one of this system's own (it has ${ours.join(', ')}), not OpenSIPS's`);
  for (const [table, needed] of requiredColumns(tables)) {
    const have = columns.get(table);
    if (have === undefined) throw new Error(`table ${table} is missing`);
    const missing = needed.filter((column) => !have.has(column));
    if (missing.length > 0) throw new Error(`table ${table} has no column ${missing.join(', ')} (not OpenSIPS's definition)`);
  }
}

/** A value as LOAD DATA's default format reads it: tab-separated, backslash escapes, NULL as a backslash and N. */
function tsvValue(value: Value): string {
  if (value === null) return '\\N';
  return String(value).replace(/[\\\t\n\r\0]/g, (c) =>
    c === '\0' ? '\\0' : c === '\t' ? '\\t' : c === '\n' ? '\\n' : c === '\r' ? '\\r' : '\\\\',
  );
}

function* tsvChunks(rows: Value[][]): Generator<Buffer> {
  let text = '';
  for (const row of rows) {
    text += `${row.map(tsvValue).join('\t')}\n`;
    if (text.length >= 1 << 16) {
      yield Buffer.from(text);
      text = '';
    }
  }
  if (text !== '') yield Buffer.from(text);
}

/** The server (or the client library) does not take LOAD DATA LOCAL: MySQL 1148 and 3948, MariaDB 4166. */
const LOCAL_INFILE_REFUSED = new Set([1148, 3948, 4166]);

/**
 * Streams the rows in with LOAD DATA LOCAL INFILE (300k rules: 1.2-2 s where batched INSERTs took 4-6 s
 * on this machine); false when the server does not allow it (MySQL 8 ships with local_infile off), and
 * the caller inserts in batches instead. With LOCAL the server turns a value it cannot store (too long,
 * not a number) into a warning and goes on, so any warning is taken as the refusal it would have been.
 */
async function loadRows(
  connection: mysql.Connection,
  table: string,
  columns: string[],
  rows: Value[][],
  timeout: number,
): Promise<boolean> {
  try {
    const [result] = await connection.query({
      sql: `LOAD DATA LOCAL INFILE 'drouting' INTO TABLE ${table} CHARACTER SET utf8mb4 (${columns.join(', ')})`,
      infileStreamFactory: () => Readable.from(tsvChunks(rows)),
      timeout,
    });
    const warnings = (result as mysql.ResultSetHeader).warningStatus;
    if (warnings > 0) {
      const [shown] = await connection.query('SHOW WARNINGS LIMIT 1');
      const first = (shown as { Message?: string }[])[0]?.Message ?? 'unknown';
      throw new Error(`${table}: the database did not take every row as written (${warnings} warnings, first: ${first})`);
    }
    return true;
  } catch (error) {
    if (LOCAL_INFILE_REFUSED.has((error as { errno?: number }).errno ?? 0)) return false;
    throw error;
  }
}

/**
 * The fence's check, inside the write's transaction: `current` is the term the node's `version` row holds now
 * that this write has raised it to its own (GREATEST: never lowered), and locked it till the commit. A term above
 * this write's is a control plane that took the lead later and has written the node: this one no longer leads.
 */
function checkTerm(current: number | undefined, term: number): void {
  if (current !== undefined && Number(current) > term)
    throw new Error(
      `a control plane that took the sync lead later (term ${Number(current)}) has written this node's drouting; ` +
        `this one (term ${term}) no longer leads: nothing written`,
    );
}

async function writeMysql(url: string, tables: TableRows[], flags: string[], term: number | null, timeout: number): Promise<void> {
  const connection = await mysql.createConnection({ uri: url, connectTimeout: 10_000, multipleStatements: false, flags });
  // Every statement bounded (STATEMENT_TIMEOUT_MS), the transaction's own included.
  const run = (sql: string, values?: mysql.QueryOptions['values']) => connection.query({ sql, timeout }, values);
  let silent = false;
  try {
    // A table someone else holds locked fails this node after LOCK_WAIT_S rather than InnoDB's 50 s:
    // the drouting worker writes one node at a time, and every other node waits behind this one.
    await run(`SET SESSION innodb_lock_wait_timeout = ${LOCK_WAIT_S}`);
    // Strict whatever the server's own sql_mode: a server configured without it (sql_mode = '') stores a value it
    // cannot hold changed and says so only in a warning the batched INSERTs do not read: a source address's group
    // of 70000 became 65535 (another deck's rules), a name in a latin1 table question marks.
    await run("SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'");
    // DDL commits by itself in MySQL: the tables are made (empty) before the transaction, never inside it.
    for (const statement of MYSQL_TABLES) await run(statement);
    const [present] = await run(
      'SELECT table_name AS table_name, column_name AS column_name FROM information_schema.columns WHERE table_schema = DATABASE()',
    );
    checkSchema(present as { table_name: string; column_name: string }[], tables);
    await run('START TRANSACTION');
    if (term !== null) {
      // First: the row lock a writer of a later term waits for, or this write waits for theirs and then sees it.
      await run(
        'INSERT INTO version (table_name, table_version) VALUES (?, ?) ON DUPLICATE KEY UPDATE table_version = GREATEST(table_version, VALUES(table_version))',
        [SYNC_TERM_ROW, term],
      );
      const [fence] = await run('SELECT table_version FROM version WHERE table_name = ?', [SYNC_TERM_ROW]);
      checkTerm((fence as { table_version: number }[])[0]?.table_version, term);
    }
    // DELETE, not TRUNCATE: TRUNCATE is DDL in MySQL and would commit the transaction half-way.
    for (const { table } of tables) await run(`DELETE FROM ${table}`);
    let load = true;
    for (const { table, columns, rows } of tables) {
      const names = columns.map(([name]) => name);
      if (rows.length === 0) continue;
      if (load && (await loadRows(connection, table, names, rows, timeout))) continue;
      load = false;
      for (let start = 0; start < rows.length; start += BATCH)
        await run(`INSERT INTO ${table} (${names.join(', ')}) VALUES ?`, [rows.slice(start, start + BATCH)]);
    }
    const versions = Object.entries(DROUTING_TABLE_VERSIONS);
    await run('DELETE FROM version WHERE table_name IN (?)', [versions.map(([table]) => table)]);
    await run('INSERT INTO version (table_name, table_version) VALUES ?', [versions]);
    await run('COMMIT');
  } catch (error) {
    // Not after a statement that timed out: ROLLBACK and a polite close would wait on the same silent server.
    // Dropping the connection rolls back what it left open.
    silent = (error as { code?: string }).code === 'PROTOCOL_SEQUENCE_TIMEOUT';
    if (!silent)
      await run('ROLLBACK').catch((failed: unknown) => (silent = (failed as { code?: string }).code === 'PROTOCOL_SEQUENCE_TIMEOUT'));
    throw error;
  } finally {
    if (silent) connection.destroy();
    else await connection.end().catch(() => undefined);
  }
}

async function writePostgres(url: string, tables: TableRows[], term: number | null, timeout: number): Promise<void> {
  // PostgreSQL waits for a lock forever by default; the same bound as on MySQL. Every statement bounded (STATEMENT_TIMEOUT_MS).
  const client = new pg.Client({
    connectionString: url,
    connectionTimeoutMillis: 10_000,
    lock_timeout: LOCK_WAIT_S * 1000,
    query_timeout: timeout,
  });
  // An error on an idle client (the server going away) would otherwise be an uncaught 'error' event.
  client.on('error', () => undefined);
  await client.connect();
  // Not after a statement that timed out: ROLLBACK would queue behind it on the silent server, and so would a
  // polite close. Dropping the connection rolls back what it left open.
  const timedOut = (error: unknown): boolean => (error as Error).message === 'Query read timeout';
  let silent = false;
  try {
    // PostgreSQL's DDL is transactional, but tables made apart keep the write's transaction about rows only, as on MySQL.
    const existing = await client.query<{ table_name: string }>(
      'SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()',
    );
    const had = new Set(existing.rows.map((row) => row.table_name));
    for (const statement of POSTGRES_TABLES) {
      // The sequence cap runs only right after its table was made here: an operator's existing sequence is theirs.
      const made = /^ALTER SEQUENCE (\w+?)_(id|ruleid)_seq/.exec(statement);
      if (made !== null && had.has(made[1])) continue;
      await client.query(statement);
    }
    const present = await client.query<{ table_name: string; column_name: string }>(
      'SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = current_schema()',
    );
    checkSchema(present.rows, tables);
    await client.query('BEGIN');
    try {
      if (term !== null) {
        // First: the row lock a writer of a later term waits for, or this write waits for theirs and then sees it.
        const fence = await client.query<{ table_version: number }>(
          `INSERT INTO version (table_name, table_version) VALUES ($1, $2) ON CONFLICT (table_name)
             DO UPDATE SET table_version = GREATEST(version.table_version, excluded.table_version) RETURNING table_version`,
          [SYNC_TERM_ROW, term],
        );
        checkTerm(fence.rows[0]?.table_version, term);
      }
      for (const { table } of tables) await client.query(`DELETE FROM ${table}`);
      for (const { table, columns, rows } of tables) {
        // One array parameter per column (unnest): 10 parameters per batch however many rows, where a
        // VALUES list would hit PostgreSQL's 65,535-parameter limit at 6,553 rules.
        const sql =
          `INSERT INTO ${table} (${columns.map(([name]) => name).join(', ')}) SELECT * FROM unnest(` +
          columns.map(([, type], index) => `$${index + 1}::${type === 'int' ? 'integer' : 'text'}[]`).join(', ') +
          ')';
        for (let start = 0; start < rows.length; start += BATCH * 4) {
          const batch = rows.slice(start, start + BATCH * 4);
          await client.query(
            sql,
            columns.map((_, index) => batch.map((row) => row[index])),
          );
        }
      }
      const versions = Object.entries(DROUTING_TABLE_VERSIONS);
      await client.query('DELETE FROM version WHERE table_name = ANY($1::text[])', [versions.map(([table]) => table)]);
      await client.query('INSERT INTO version (table_name, table_version) SELECT * FROM unnest($1::text[], $2::integer[])', [
        versions.map(([table]) => table),
        versions.map(([, version]) => version),
      ]);
      await client.query('COMMIT');
    } catch (error) {
      if (!timedOut(error)) await client.query('ROLLBACK').catch((failed: unknown) => (silent = timedOut(failed)));
      throw error;
    }
  } catch (error) {
    silent ||= timedOut(error);
    throw error;
  } finally {
    if (silent) (client as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
    else await client.end().catch(() => undefined);
  }
}

export interface SqlWriteOptions {
  /**
   * MySQL client flags. `['-LOCAL_FILES']` makes the server refuse LOAD DATA LOCAL as one with
   * `local_infile` off does, which is how the tests reach the batched-INSERT path on a server that allows it.
   */
  mysqlFlags?: string[];
  /** The writing control plane's sync lead term (writer.ts SYNC_TERM_ROW); null or absent: no fence (a store no other centre shares). */
  term?: number | null;
  /** STATEMENT_TIMEOUT_MS unless given (the tests' stalled database gives up sooner). */
  statementTimeoutMs?: number;
}

export async function writeDroutingSql(
  target: Extract<DroutingDatabase, { kind: 'mysql' | 'postgres' }>,
  data: DroutingData,
  options: SqlWriteOptions = {},
): Promise<void> {
  const tables = tableRows(data);
  try {
    const term = options.term ?? null;
    const timeout = options.statementTimeoutMs ?? STATEMENT_TIMEOUT_MS;
    await (target.kind === 'mysql'
      ? writeMysql(target.url, tables, options.mysqlFlags ?? [], term, timeout)
      : writePostgres(target.url, tables, term, timeout));
  } catch (error) {
    throw redactedError(error, target.url);
  }
}
