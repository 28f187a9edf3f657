import type { EntityType, SettlementCdr } from '../../src/core/protocol/node-sync.js';
import { Decimal } from '../../src/core/money/decimal.js';
import type { Row } from '../store/config-store.js';
import {
  allRows,
  getRow,
  pageOfRows,
  readTogether,
  runSql,
  runWrites,
  sqlStep,
  together,
  type EngineParams,
  type SqlStep,
  type SqlText,
  type Steps,
} from './sql-steps.js';
import type { BalanceChange, BalanceKey, BalanceState, CdrFilter, NodeCredentialDigests, Overrun } from './store.js';

/**
 * The ledger's statements and reads as steps (sql-steps.ts), the one text both engines run. A lease amount
 * is not zero however many zeros it is written with ("0", "0.00"): read as text, never as a float.
 */
const NON_ZERO = { sql: "amount GLOB '*[1-9]*'", postgres: "amount ~ '[1-9]'" };
const nonZero = (sql: (test: string) => string) => ({ sql: sql(NON_ZERO.sql), postgres: sql(NON_ZERO.postgres) });

/** A settled CDR's columns (but its node's name) and their PostgreSQL types (the schema's INTEGER is BIGINT there: migrations.ts). */
const CDR_FIELDS = {
  sip_call_id: 'text',
  node_cdr_id: 'bigint',
  customer_account_id: 'bigint',
  customer_trunk_id: 'bigint',
  carrier_trunk_id: 'bigint',
  carrier_gateway_id: 'bigint',
  ani: 'text',
  dnis: 'text',
  start_time: 'text',
  answer_time: 'text',
  end_time: 'text',
  duration_seconds: 'bigint',
  sip_response_code: 'bigint',
  billable_duration_customer: 'bigint',
  billable_duration_vendor: 'bigint',
  customer_rate_deck_id: 'bigint',
  carrier_rate_deck_id: 'bigint',
  customer_cost: 'text',
  customer_currency: 'text',
  customer_decimal_precision: 'bigint',
  customer_rounding_direction: 'text',
  vendor_cost: 'text',
  vendor_currency: 'text',
  vendor_decimal_precision: 'bigint',
  vendor_rounding_direction: 'text',
  account_charge: 'text',
  account_currency: 'text',
  created_at: 'text',
  uncovered: 'text',
} as const satisfies Partial<Record<keyof SettlementCdr, 'text' | 'bigint'>>;

export const CDR_COLUMNS = Object.keys(CDR_FIELDS) as (keyof typeof CDR_FIELDS)[];

/**
 * Many rows in one statement, passed as one JSON array of objects (a round's CDRs, its transactions, its
 * balances): a statement per row costs PostgreSQL a round trip each, a thousand of them per round.
 * SQLite reads the array with json_each, PostgreSQL with json_populate_recordset over the table's row type.
 */
function fromJson(table: string, columns: readonly string[], as = 'k'): { sql: string; postgres: string } {
  return {
    sql: `SELECT ${columns.map((column) => `json_extract(${as}.value, '$.${column}') AS ${column}`).join(', ')} FROM json_each(?) ${as}`,
    postgres: `SELECT ${columns.map((column) => `${as}.${column}`).join(', ')} FROM json_populate_recordset(NULL::${table}, ?::json) ${as}`,
  };
}

function insertFromJson(table: string, columns: readonly string[], tail = ''): SqlText {
  const rows = fromJson(table, columns);
  const insert = `INSERT INTO ${table} (${columns.join(', ')}) `;
  // WHERE true: SQLite's parser needs it before an ON CONFLICT after INSERT ... SELECT.
  return { sql: `${insert}${rows.sql} WHERE true ${tail}`, postgres: `${insert}${rows.postgres} WHERE true ${tail}` };
}

/** A column of many rows inserted at once: its PostgreSQL type (the schema's INTEGER is BIGINT there: migrations.ts). */
type Column = readonly [name: string, type: 'text' | 'bigint'];

/**
 * PostgreSQL's rows from an array per column, each column named: `unnest` of each in the select list, which
 * PostgreSQL steps through together, a row at a time. `FROM unnest(a, b, …)` copies each array's elements into
 * a tuplestore of its own first: a sixth of a 400-CDR insert's server CPU (perf of the backend; schedstat 6.3 →
 * 5.3 ms a round). The arrays are of one length, so the two forms give the same rows.
 */
function unnestColumns(columns: readonly Column[]): string {
  return columns.map(([name, type]) => `unnest(?::${type}[]) AS ${name}`).join(', ');
}

/**
 * Rows in one insert (EngineParams): SQLite runs it once per row, PostgreSQL reads an array per column
 * (unnestColumns): the server inserts a 400-CDR round's rows in a third of the time json_populate_recordset took,
 * and the client builds one array per column instead of an object per row (performance log, issue 21). A
 * partner's top-up writes one balance: on SQLite that is one plain insert, no JSON array to build and take apart.
 */
function insertRows(table: string, columns: readonly Column[], tail = ''): SqlText {
  const names = columns.map(([name]) => name).join(', ');
  return {
    sql: `INSERT INTO ${table} (${names}) VALUES (${columns.map(() => '?').join(', ')}) ${tail}`,
    postgres: `INSERT INTO ${table} (${names}) SELECT ${unnestColumns(columns)} WHERE true ${tail}`,
    prepared: true,
  };
}

/** insertRows's parameters for `items`, `value` giving each one's column: made only for the engine that runs. */
function rowsParams<T>(columns: readonly Column[], items: readonly T[], value: (item: T, column: string) => unknown): EngineParams {
  return {
    sqlite: () => items.map((item) => columns.map(([name]) => value(item, name))),
    // The values are a CDR's or a ledger row's columns: strings, numbers and nulls.
    postgres: () => columns.map(([name]) => arrayText(items.map((item) => value(item, name) as ArrayElement))),
  };
}

/** An element that must be escaped in an array's text: a double quote or a backslash. */
const ESCAPED = /["\\]/;

/**
 * An array parameter in PostgreSQL's text form (`{"a","b",NULL}`), made here rather than by pg, which escapes
 * each element with two regular expressions: a 400-CDR round's 12,400 values were a fifth of the centre's own
 * CPU for the round (--cpu-prof). Elements are strings and numbers (a CDR's columns, a ledger row's), or null;
 * a column with neither null nor a character to escape, the common case, is one join.
 */
type ArrayElement = string | number | null | undefined;

function arrayText(values: readonly ArrayElement[]): string {
  let plain = true;
  for (const element of values)
    if (element === null || element === undefined || (typeof element === 'string' && ESCAPED.test(element))) {
      plain = false;
      break;
    }
  if (plain) return values.length === 0 ? '{}' : `{"${values.join('","')}"}`;
  return `{${values
    .map((element) =>
      element === null || element === undefined ? 'NULL' : `"${String(element).replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`,
    )
    .join(',')}}`;
}

/** `select` (ending in an id column) for the ids in one JSON array. */
function byIds(select: string): SqlText {
  return {
    sql: `${select} IN (SELECT value FROM json_each(?))`,
    postgres: `${select} IN (SELECT json_array_elements_text(?::json)::bigint)`,
    prepared: true,
  };
}

const TRANSACTION_COLUMNS: readonly Column[] = [
  ['entity_type', 'text'],
  ['entity_id', 'bigint'],
  ['transaction_type', 'text'],
  ['amount', 'text'],
  ['balance_after', 'text'],
  ['currency', 'text'],
  ['description', 'text'],
  ['cdr_id', 'bigint'],
  ['call_id', 'text'],
  ['created_at', 'text'],
];

const BALANCE_COLUMNS: readonly Column[] = [
  ['entity_type', 'text'],
  ['entity_id', 'bigint'],
  ['balance', 'text'],
  ['reserved', 'text'],
  ['currency', 'text'],
  ['updated_at', 'text'],
];

const LEASE_COLUMNS: readonly Column[] = [
  ['node', 'text'],
  ['entity_type', 'text'],
  ['entity_id', 'bigint'],
  ['amount', 'text'],
  ['updated_at', 'text'],
];

/**
 * A settled CDR's row as a round sends it: the node's name, the CDR's columns, then which of the round's debit
 * rows charged it (`debit`: 1 for the first account the round bills, and so on; null: billed to no account here).
 */
const CDR_ROW: readonly Column[] = [['node', 'text'], ...CDR_COLUMNS.map((name): Column => [name, CDR_FIELDS[name]]), ['debit', 'bigint']];

/**
 * The sequence of `balance_transactions`' ids (PostgreSQL), looked up once per statement (a subquery without
 * outer references is run once): looked up per row, it cost 2.9 µs a row against 0.4 (psql, 40,000 rows).
 */
const TRANSACTION_IDS = "(SELECT pg_get_serial_sequence('balance_transactions', 'id')::regclass)";

/**
 * A round's CDRs in one statement, each naming its debit row, whose id is taken in the same statement, without a
 * round trip of its own. The statement runs before the round locks its balances (the biggest of a round's
 * statements, it would otherwise be inside the locks other nodes' rounds queue on): the ids say which row
 * charged a CDR, not where the row comes in its account's list, which `posted` says (recordTransactions, taken
 * under the balance's lock). PostgreSQL takes `?` ids from the identity's sequence, one per account billed, in
 * the accounts' order (a volatile CTE is run once, whole); SQLite names the ids its next inserts would take
 * (MAX + n: its write lock is held until they are made). A CDR settled before (an earlier round whose answer was
 * lost, or another node's: the same Call-ID and start, cdrIdentity) is not inserted and not returned. On PostgreSQL that is a NOT EXISTS rather than ON
 * CONFLICT DO NOTHING, whose speculative insertion (a check of the call id's index before each row, a speculative
 * lock and a second WAL record per row) cost 5% more of the insert's server CPU (performance log, pg-rounds): the
 * unique index still refuses a CDR twice, so one that another round is inserting right now waits for that
 * round's outcome and, when it committed, this round fails on the unique key and is run again whole (PgLedgerStore
 * retries 23505), then finding it settled: the rare case (two nodes settling one call at once) pays a round
 * again, the common one (every round) less. Returns each new CDR's id and its debit row's: SQLite a row per CDR,
 * PostgreSQL one row whose `inserted` is them all as one JSON array of [call id, start, id, debit id] (insertedCdrs).
 */
function insertCdrsSql(): SqlText {
  const names = CDR_ROW.slice(0, -1).map(([name]) => name);
  const returning = 'RETURNING id, sip_call_id, start_time, debit_transaction_id';
  const columns = `${names.join(', ')}, debit_transaction_id`;
  return {
    sql: `INSERT INTO cdrs (${columns}) VALUES (${names.map(() => '?').join(', ')},
      (SELECT COALESCE(MAX(id), 0) FROM balance_transactions) + ?) ON CONFLICT (sip_call_id, start_time) DO NOTHING ${returning}`,
    postgres: `WITH debit_ids AS (
        SELECT n, nextval(${TRANSACTION_IDS}) AS id FROM generate_series(1, ?::bigint) n),
      inserted AS (INSERT INTO cdrs (${columns}) SELECT ${names.map((name) => `c.${name}`).join(', ')}, d.id
        FROM (SELECT ${unnestColumns(CDR_ROW)}) c LEFT JOIN debit_ids d ON d.n = c.debit
        WHERE NOT EXISTS (SELECT 1 FROM cdrs settled WHERE settled.sip_call_id = c.sip_call_id AND settled.start_time = c.start_time)
        ${returning})
      SELECT json_agg(json_build_array(sip_call_id, start_time, id, debit_transaction_id)) AS inserted FROM inserted`,
    prepared: true,
  };
}

/** A CDR the insert took (SQLite: a row of its RETURNING; PostgreSQL: an element of its one row's array). */
type PgInsertedCdr = [sipCallId: string, startTime: string, id: number, debitTransactionId: number | null];
type InsertedCdrRow = { id: number; sip_call_id: string; start_time: string; debit_transaction_id: number | null };

/**
 * A settled CDR's identity at the centre (migration 21): its Call-ID and its call's start as the node wrote it. A
 * CDR again under both is the same call resent, settled once; a Call-ID under another start is another call that
 * reused it (a carrier's, a broken UA's), recorded and billed. The start's length goes first, so that no two pairs
 * make one key whatever characters a Call-ID holds.
 */
export function cdrIdentity(sipCallId: string, startTime: string): string {
  return `${startTime.length}:${startTime}${sipCallId}`;
}

/**
 * insertCdrs' answer, by CDR identity (cdrIdentity). PostgreSQL's is one row, the CDRs inserted as one JSON array (parsed by the pool as
 * one value): a row per CDR was 400 messages a round for the centre's one event loop to parse into objects, and
 * as many for the server to send.
 */
function insertedCdrs(
  answer: readonly (InsertedCdrRow | { inserted: PgInsertedCdr[] | null })[],
): Map<string, { cdrId: number; debitId: number | null }> {
  const byCall = new Map<string, { cdrId: number; debitId: number | null }>();
  for (const row of answer) {
    if ('inserted' in row) {
      for (const [callId, startTime, cdrId, debitId] of row.inserted ?? []) byCall.set(cdrIdentity(callId, startTime), { cdrId, debitId });
      continue;
    }
    byCall.set(cdrIdentity(row.sip_call_id, row.start_time), {
      cdrId: Number(row.id),
      debitId: row.debit_transaction_id === null ? null : Number(row.debit_transaction_id),
    });
  }
  return byCall;
}

/** Transaction rows with their ids: a round's debits' were taken with the CDRs that name them (insertCdrs), the others' are null. */
const NUMBERED_COLUMNS: readonly Column[] = [['id', 'bigint'], ...TRANSACTION_COLUMNS];

/**
 * Transaction rows in one statement, each `posted` (its place in its account's list, which the transactions list
 * orders by) by a number taken now, row after row: every writer of an account's rows holds its balance's lock
 * while it writes them (PostgreSQL: FOR UPDATE; SQLite: the write lock), so an account's rows are posted in the
 * order they were applied even where their ids were taken earlier, outside the lock (a round's debits: insertCdrs).
 * PostgreSQL takes the number from the ids' own sequence (a row without an id takes it as its id too);
 * SQLite's rows are inserted one by one under its one write lock, so each is posted as the id it has or the one it
 * is about to take (MAX + 1). Either way a row whose id was not taken beforehand is posted as its id, as every row
 * written before migration 20 is.
 */
function recordTransactionsSql(): SqlText {
  const names = TRANSACTION_COLUMNS.map(([name]) => name);
  return {
    sql: `INSERT INTO balance_transactions (id, posted, ${names.join(', ')})
      VALUES (?, COALESCE(?, (SELECT COALESCE(MAX(id), 0) + 1 FROM balance_transactions)), ${names.map(() => '?').join(', ')})`,
    // The number in a subquery of its own: its rows come out of the unnest one by one, in the arrays' order.
    postgres: `INSERT INTO balance_transactions (id, posted, ${names.join(', ')})
      SELECT COALESCE(t.id, t.posted), t.posted, ${names.map((name) => `t.${name}`).join(', ')}
      FROM (SELECT nextval(${TRANSACTION_IDS}) AS posted, u.* FROM (SELECT ${unnestColumns(NUMBERED_COLUMNS)}) u) t`,
    prepared: true,
  };
}

/**
 * A PostgreSQL time as this store writes times (ISO 8601 UTC, milliseconds, as JS's toISOString): text that
 * compares in time order with the times written by the centres' clocks.
 */
function databaseTime(timestamp: string): string {
  return `to_char((${timestamp}) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;
}

/** The server's clock, for a time that control planes on different machines compare (a node's last round). */
const DATABASE_NOW = databaseTime('clock_timestamp()');

export const LEDGER_SQL = {
  insertCdrs: insertCdrsSql(),
  // Prepared: it goes with a money round's writes (insertCdrsAndLockBalances), which are then named as a whole.
  insertRetailCdrs: { ...insertFromJson('retail_call_cdrs', ['cdr_id', 'retail_account_id', 'start_time']), prepared: true },
  recordTransactions: recordTransactionsSql(),
  writeBalances: insertRows(
    'balances',
    BALANCE_COLUMNS,
    'ON CONFLICT (entity_type, entity_id) DO UPDATE SET balance = excluded.balance, reserved = excluded.reserved, updated_at = excluded.updated_at',
  ),
  /** A round's balances with the node's lease on each, locked (PostgreSQL) in one order as lockBalances does. */
  roundBalances: {
    sql: `SELECT t.entity_type, t.entity_id, t.balance, t.reserved, l.amount AS lease FROM balances t
      JOIN json_each(?) k ON t.entity_type = json_extract(k.value, '$.entity_type') AND t.entity_id = json_extract(k.value, '$.entity_id')
      LEFT JOIN credit_leases l ON l.node = ? AND l.entity_type = t.entity_type AND l.entity_id = t.entity_id`,
    postgres: `SELECT t.entity_type, t.entity_id, t.balance, t.reserved, l.amount AS lease FROM balances t
      JOIN json_populate_recordset(NULL::balances, ?::json) k ON t.entity_type = k.entity_type AND t.entity_id = k.entity_id
      LEFT JOIN credit_leases l ON l.node = ? AND l.entity_type = t.entity_type AND l.entity_id = t.entity_id
      ORDER BY t.entity_type, t.entity_id FOR UPDATE OF t`,
    prepared: true,
  },
  writeLeases: insertRows(
    'credit_leases',
    LEASE_COLUMNS,
    'ON CONFLICT (node, entity_type, entity_id) DO UPDATE SET amount = excluded.amount, updated_at = excluded.updated_at',
  ),
  readBalance: 'SELECT balance, reserved FROM balances WHERE entity_type = ? AND entity_id = ?',
  openBalance: `INSERT INTO balances (entity_type, entity_id, balance, reserved, currency, updated_at) VALUES (?, ?, '0.00', '0.00', ?, ?)
    ON CONFLICT (entity_type, entity_id) DO NOTHING`,
  readLease: 'SELECT amount FROM credit_leases WHERE node = ? AND entity_type = ? AND entity_id = ?',
  readOverrun: 'SELECT uncovered FROM account_overruns WHERE entity_type = ? AND entity_id = ?',
  writeOverrun: `INSERT INTO account_overruns (entity_type, entity_id, uncovered, cdrs, last_call_id, updated_at) VALUES (?, ?, ?, 1, ?, ?)
    ON CONFLICT (entity_type, entity_id) DO UPDATE SET uncovered = excluded.uncovered, cdrs = account_overruns.cdrs + 1,
      last_call_id = excluded.last_call_id, updated_at = excluded.updated_at`,
  readRound: 'SELECT last_seq FROM node_money_rounds WHERE node = ?',
  /** The node's round row, locked (PostgreSQL): its last round, and that round's answer when `digest` is its body's. */
  openRound: {
    sql: 'SELECT last_seq, CASE WHEN last_digest = ? THEN last_reply END AS kept FROM node_money_rounds WHERE node = ?',
    postgres: 'SELECT last_seq, CASE WHEN last_digest = ? THEN last_reply END AS kept FROM node_money_rounds WHERE node = ? FOR UPDATE',
    prepared: true,
  },
  makeRound: {
    sql: 'SELECT 1',
    postgres: 'INSERT INTO node_money_rounds (node, last_seq, updated_at) VALUES (?, 0, ?) ON CONFLICT (node) DO NOTHING',
    onlyOn: 'postgres' as const,
  },
  /**
   * The round's time: on PostgreSQL the server's clock (DATABASE_NOW), not the centre's. Control planes sharing
   * the store compare it with their reclaim's cutoff (silenceCutoff): a round one of them answered must not look
   * old to another whose clock runs ahead of the first's.
   */
  writeRoundWithReply: {
    sql: `INSERT INTO node_money_rounds (node, last_seq, updated_at, last_digest, last_reply) VALUES (?, ?, ?, ?, ?)
    ON CONFLICT (node) DO UPDATE SET last_seq = excluded.last_seq, updated_at = excluded.updated_at,
      last_digest = excluded.last_digest, last_reply = excluded.last_reply`,
    postgres: `INSERT INTO node_money_rounds (node, last_seq, updated_at, last_digest, last_reply) VALUES (?, ?, ${DATABASE_NOW}, ?, ?)
    ON CONFLICT (node) DO UPDATE SET last_seq = excluded.last_seq, updated_at = excluded.updated_at,
      last_digest = excluded.last_digest, last_reply = excluded.last_reply`,
    prepared: true,
  },
  /** When a node last heard before is silent (PostgreSQL): the server's clock less the reclaim time, as the rounds' times are written. */
  silenceCutoff: {
    sql: 'SELECT 1',
    postgres: `SELECT ${databaseTime('now() - make_interval(secs => ?::double precision / 1000)')} AS cutoff`,
    onlyOn: 'postgres' as const,
  },
  writeRoundReply: 'UPDATE node_money_rounds SET last_digest = ?, last_reply = ? WHERE node = ?',
  silentLeases: `SELECT l.node, l.entity_type, l.entity_id, l.amount FROM credit_leases l JOIN node_money_rounds r ON r.node = l.node
    WHERE r.updated_at < ? AND l.amount != '0' ORDER BY l.node, l.entity_type, l.entity_id`,
  readAccount: 'SELECT * FROM customer_accounts WHERE id = ?',
  readCarrier: 'SELECT * FROM carrier_trunks WHERE id = ?',
  // A round's entities, by the columns their billing terms take (balance.ts entityFromRow).
  readAccounts: byIds('SELECT id, currency, billing_mode, credit_limit, status FROM customer_accounts WHERE id'),
  readCarriers: byIds('SELECT id, currency, billing_mode, credit_limit, status FROM carrier_trunks WHERE id'),
  readRetails: byIds(`SELECT r.id, p.currency, 'prepaid' AS billing_mode, NULL AS credit_limit, r.status FROM retail_accounts r
    JOIN partner_products p ON p.id = r.partner_product_id WHERE r.id`),
  // A retail account's billing terms: always prepaid, in its product's currency (deactivated or not: a call
  // that ran before the deactivation is still billed; new leases are refused by settlement's status check).
  readRetail: `SELECT p.currency, 'prepaid' AS billing_mode, NULL AS credit_limit, r.status FROM retail_accounts r
    JOIN partner_products p ON p.id = r.partner_product_id WHERE r.id = ?`,
  readCredential: {
    sql: `SELECT n.id AS node_id, c.secret_hash, c.previous_secret_hash FROM opensips_nodes n
    LEFT JOIN node_credentials c ON c.id = n.id WHERE n.hostname = ?`,
    prepared: true,
  },
  forgetPrevious:
    'UPDATE node_credentials SET previous_secret_hash = NULL, previous_push_token = NULL WHERE id = ? AND previous_secret_hash IS NOT NULL',
  countActiveNodes: { sql: "SELECT COUNT(*) AS count FROM opensips_nodes WHERE status = 'active'", prepared: true },
  // By node: credit_leases is keyed (node, entity), so each registered node is one key lookup, not a scan of
  // every lease (a round leasing call by call reads this for each ask; CROSS JOIN keeps that loop order).
  // A node no longer registered is not asked to give back; its leases lapse with its silence.
  // SQLite's CROSS JOIN fixes the join order (nodes outer); PostgreSQL has no CROSS JOIN … ON and plans its own.
  leaseHolders: {
    sql: `SELECT l.node, l.amount FROM opensips_nodes n CROSS JOIN credit_leases l
      ON l.node = n.hostname AND l.entity_type = ? AND l.entity_id = ?`,
    postgres: `SELECT l.node, l.amount FROM opensips_nodes n JOIN credit_leases l
      ON l.node = n.hostname AND l.entity_type = ? AND l.entity_id = ?`,
  },
  /**
   * PostgreSQL's explicit locks (READ COMMITTED: docs/decisions.md). The node's round row first, made if it
   * is the node's first round: every writer of a node's leases (its rounds, the reclaim of a silent node's)
   * takes it, so they queue. SQLite's immediate transaction already holds the one write lock.
   */
  lockRound: {
    sql: 'SELECT 1',
    postgres: `WITH made AS (INSERT INTO node_money_rounds (node, last_seq, updated_at) VALUES (?, 0, ?) ON CONFLICT (node) DO NOTHING)
      SELECT last_seq FROM node_money_rounds WHERE node = $1 FOR UPDATE`,
    onlyOn: 'postgres' as const,
  },
  /**
   * Then every balance the work writes, in one order (entity_type, entity_id) so two rounds never wait on
   * each other crosswise; a balance not yet written is made (at zero) first, as a row that does not exist
   * cannot be locked and two rounds would both read it as zero.
   */
  makeBalances: {
    sql: 'SELECT 1',
    postgres: `INSERT INTO balances (entity_type, entity_id, balance, reserved, currency, updated_at)
      SELECT k.entity_type, k.entity_id, '0.00', '0.00', k.currency, $2 FROM json_populate_recordset(NULL::balances, $1::json) k
      ORDER BY k.entity_type, k.entity_id ON CONFLICT (entity_type, entity_id) DO NOTHING`,
    onlyOn: 'postgres' as const,
  },
  lockBalances: {
    sql: 'SELECT 1',
    postgres: `SELECT b.id FROM balances b JOIN json_populate_recordset(NULL::balances, $1::json) k
      ON b.entity_type = k.entity_type AND b.entity_id = k.entity_id ORDER BY b.entity_type, b.entity_id FOR UPDATE OF b`,
    onlyOn: 'postgres' as const,
  },
};

const now = (): string => new Date().toISOString();

type Write = { sql: SqlText; params: unknown[]; perEngine?: EngineParams };

/**
 * Records a round just applied as the node's last, with its answer (kept for a resend of it): recordRound as a
 * write to send with others. Its time is the centre's clock on SQLite, the server's on PostgreSQL (writeRoundWithReply).
 */
export function roundRecord(node: string, seq: number, digest: string, reply: string): Write {
  return {
    sql: LEDGER_SQL.writeRoundWithReply,
    params: [],
    perEngine: { sqlite: () => [[node, seq, now(), digest, reply]], postgres: () => [node, seq, digest, reply] },
  };
}

/** A balance as LEDGER_SQL.roundBalances reads it, with the node's lease on it. */
type FoundBalance = { entity_type: string; entity_id: number; balance: string; reserved: string; lease: string | null };

/** A round's balances and the node's lease on each, keyed `type:id` (LedgerSteps.insertCdrsAndLockBalances). */
export type RoundBalanceRows = Map<string, BalanceState & { lease: string | null }>;

/** Balance keys as the JSON array the balances' statements read. */
function balanceKeysJson(keys: readonly BalanceKey[]): string {
  return JSON.stringify(keys.map((key) => ({ entity_type: key.entityType, entity_id: key.entityId, currency: key.currency })));
}

/** The statement that locks (PostgreSQL) and reads a round's balances with the node's leases on them. */
function roundBalancesStep(node: string, keys: readonly BalanceKey[]): SqlStep {
  return sqlStep('all', LEDGER_SQL.roundBalances, [balanceKeysJson(keys), node]);
}

/** `rows` (objects keyed by `columns`' names) as one write of insertRows's `sql`; none when there are none. */
function rowsWrite(sql: SqlText, columns: readonly Column[], rows: readonly Record<string, unknown>[]): Write[] {
  if (rows.length === 0) return [];
  return [{ sql, params: [], perEngine: rowsParams(columns, rows, (row, column) => row[column] ?? null) }];
}

/** A transaction row to write: the balance it was applied to, the change, and its id when taken beforehand (a round's debit). */
export interface TransactionRow {
  key: BalanceKey;
  change: BalanceChange;
  id?: number;
}

/** recordTransactions' parameters on SQLite, row by row: the id, then the id again for `posted`. */
const SQLITE_TRANSACTION_COLUMNS: readonly Column[] = [['id', 'bigint'], ['posted', 'bigint'], ...TRANSACTION_COLUMNS];

/**
 * Transaction rows, each with the balance after it, in one statement (recordTransactionsSql); none when `changes`
 * is empty. Those with an id first (a round's debits, whose ids were taken before the rest are numbered), then the
 * others in order: a round applies its debits before its leases' changes.
 */
function transactionsWrite(changes: readonly TransactionRow[]): Write[] {
  if (changes.length === 0) return [];
  const at = now();
  const value = ({ key, change: { next, transaction: t }, id }: TransactionRow, column: string): unknown => {
    switch (column) {
      case 'id':
      case 'posted':
        return id ?? null;
      case 'entity_type':
        return key.entityType;
      case 'entity_id':
        return key.entityId;
      case 'balance_after':
        return next.balance;
      case 'currency':
        return key.currency;
      case 'created_at':
        return at;
      default:
        return t[column as keyof BalanceChange['transaction']];
    }
  };
  const numbered = changes.filter((row) => row.id !== undefined);
  const rows = numbered.length === 0 ? changes : [...numbered, ...changes.filter((row) => row.id === undefined)];
  return [
    {
      sql: LEDGER_SQL.recordTransactions,
      params: [],
      perEngine: {
        // SQLite: the id, then the id again for `posted` (null: the id the row is about to take).
        sqlite: rowsParams(SQLITE_TRANSACTION_COLUMNS, rows, value).sqlite,
        postgres: rowsParams(NUMBERED_COLUMNS, rows, value).postgres,
      },
    },
  ];
}

function balancesWrite(balances: readonly { key: BalanceKey; next: BalanceState }[]): Write[] {
  if (balances.length === 0) return [];
  const at = now();
  const rows = balances.map(({ key, next }) => ({
    entity_type: key.entityType,
    entity_id: key.entityId,
    balance: next.balance,
    reserved: next.reserved,
    currency: key.currency,
    updated_at: at,
  }));
  return rowsWrite(LEDGER_SQL.writeBalances, BALANCE_COLUMNS, rows);
}

function leasesWrite(node: string, leases: readonly { entityType: string; entityId: number; amount: string }[]): Write[] {
  if (leases.length === 0) return [];
  const at = now();
  const rows = leases.map((lease) => ({
    node,
    entity_type: lease.entityType,
    entity_id: lease.entityId,
    amount: lease.amount,
    updated_at: at,
  }));
  return rowsWrite(LEDGER_SQL.writeLeases, LEASE_COLUMNS, rows);
}

/** The reads of entities' rows (see LedgerSteps.entityRows), one per kind of entity named. */
function entityReads(
  entities: readonly { entityType: string; entityId: number }[],
): { kind: 'all'; sql: SqlText; params: [string]; type: string }[] {
  const reads: { kind: 'all'; sql: SqlText; params: [string]; type: string }[] = [];
  for (const [type, sql] of [
    ['customer', LEDGER_SQL.readAccounts],
    ['retail', LEDGER_SQL.readRetails],
    ['carrier', LEDGER_SQL.readCarriers],
  ] as const) {
    const ids = [...new Set(entities.filter((entity) => entity.entityType === type).map((entity) => entity.entityId))];
    if (ids.length > 0) reads.push({ kind: 'all', sql, params: [JSON.stringify(ids)], type });
  }
  return reads;
}

/** entityReads' results, keyed `type:id`. */
function entityRowsOf(reads: readonly { type: string }[], results: readonly Row[][]): Map<string, Row> {
  const rows = new Map<string, Row>();
  reads.forEach(({ type }, i) => {
    for (const row of results[i]) rows.set(`${type}:${Number(row.id)}`, row);
  });
  return rows;
}

type CredentialRow = { node_id: number; secret_hash: string | null; previous_secret_hash: string | null };

function credentialOf(row: CredentialRow | undefined): NodeCredentialDigests | null {
  if (row === undefined) return null;
  return { nodeId: Number(row.node_id), secretHash: row.secret_hash, previousSecretHash: row.previous_secret_hash };
}

/** The ledger's reads and writes inside one transaction, as steps: what the money logic (settlement.ts) runs on either engine. */
export class LedgerSteps {
  /** Current balance; zeros before the entity's first transaction. */
  *balance(entityType: string, entityId: number): Steps<BalanceState> {
    return (yield* getRow<BalanceState>(LEDGER_SQL.readBalance, entityType, entityId)) ?? { balance: '0', reserved: '0' };
  }

  /** Writes the new balance and the transaction that explains it. */
  *applyChange(key: BalanceKey, change: BalanceChange): Steps<void> {
    yield* this.writeBalance(key, change.next);
    yield* this.recordTransaction(key, change);
  }

  /** The two halves of applyChange, for a caller that writes a balance once after several transactions. */
  *recordTransaction(key: BalanceKey, change: BalanceChange): Steps<void> {
    yield* this.recordTransactions([{ key, change }]);
  }

  *writeBalance(key: BalanceKey, next: BalanceState): Steps<void> {
    yield* this.writeBalances([{ key, next }]);
  }

  /** Many transactions, in order (`change` of each: see recordTransaction), in one statement. */
  *recordTransactions(changes: readonly TransactionRow[]): Steps<void> {
    yield* runWrites(transactionsWrite(changes));
  }

  /**
   * A money round's balances and the node's lease on each, keyed `type:id`, from LEDGER_SQL.roundBalances' rows (on
   * PostgreSQL locked in one order, as lockBalances); a balance never written (an account's first money) is made at
   * zero on PostgreSQL, then all read and locked again. On SQLite a balance never written is absent (zero).
   */
  private *roundBalancesFound(node: string, keys: readonly BalanceKey[], found: FoundBalance[]): Steps<RoundBalanceRows> {
    let rows = found;
    if (rows.length < new Set(keys.map((key) => `${key.entityType}:${key.entityId}`)).size) {
      // Made on PostgreSQL; read again even when this made none: a round racing this one may have made them meanwhile.
      const json = balanceKeysJson(keys);
      yield* runSql(LEDGER_SQL.makeBalances, json, now());
      rows = yield* allRows<FoundBalance>(LEDGER_SQL.roundBalances, json, node);
    }
    return new Map(
      rows.map((row) => [`${row.entity_type}:${row.entity_id}`, { balance: row.balance, reserved: row.reserved, lease: row.lease }]),
    );
  }

  /**
   * A money round's writes, in one round trip on PostgreSQL: its transactions, the balances and the node's
   * leases they changed, and `also` (the round's record: roundRecord).
   */
  *writeRound(
    node: string,
    transactions: readonly TransactionRow[],
    balances: readonly { key: BalanceKey; next: BalanceState }[],
    leases: readonly { entityType: string; entityId: number; amount: string }[],
    also: readonly Write[] = [],
  ): Steps<void> {
    yield* runWrites([...transactionsWrite(transactions), ...balancesWrite(balances), ...leasesWrite(node, leases), ...also]);
  }

  *writeBalances(rows: readonly { key: BalanceKey; next: BalanceState }[]): Steps<void> {
    yield* runWrites(balancesWrite(rows));
  }

  *setLeases(node: string, leases: readonly { entityType: string; entityId: number; amount: string }[]): Steps<void> {
    yield* runWrites(leasesWrite(node, leases));
  }

  /**
   * A money round's settled CDRs inserted (no two of one identity: cdrIdentity), but those settled before, with the
   * ids of the round's debit rows that charge them (LEDGER_SQL.insertCdrs: the ids taken now, before the balances
   * are locked, so the round's biggest statement runs outside the locks other nodes' rounds wait for; a debit row's
   * place in its account's list is taken under the lock, when the row is written); then the round's balances
   * locked and read (LEDGER_SQL.roundBalances). One round trip on PostgreSQL: the lock is taken by the later
   * statement, once the insert is done, as when each was a round trip of its own. `debitOf`: which debit row
   * charges the CDR (1 for the round's first account billed, and so on, up to `debits`; null: none). Answers the
   * new CDRs' ids and their debit rows' ids by cdrIdentity, the balances (roundBalancesFound), and the new retail
   * CDRs' rows as a write for the round's last statement (they name the CDRs' ids, known only now).
   */
  *insertCdrsAndLockBalances(
    node: string,
    cdrs: readonly SettlementCdr[],
    debits: number,
    debitOf: (cdr: SettlementCdr) => number | null,
    keys: readonly BalanceKey[],
  ): Steps<{ cdrs: Map<string, { cdrId: number; debitId: number | null }>; balances: RoundBalanceRows; retail: Write[] }> {
    // `uncovered` is absent from older nodes' settlements: NULL, not known.
    const value = (cdr: SettlementCdr, column: string): unknown =>
      column === 'node' ? node : column === 'debit' ? debitOf(cdr) : (cdr[column as keyof SettlementCdr] ?? null);
    const rows = rowsParams(CDR_ROW, cdrs, value);
    const insert = sqlStep('all', LEDGER_SQL.insertCdrs, [], { sqlite: rows.sqlite, postgres: () => [debits, ...rows.postgres()] });
    const answers = yield* together([
      ...(cdrs.length === 0 ? [] : [insert]),
      ...(keys.length === 0 ? [] : [roundBalancesStep(node, keys)]),
    ]);
    const byCdr = insertedCdrs(cdrs.length === 0 ? [] : (answers[0] as (InsertedCdrRow | { inserted: PgInsertedCdr[] | null })[]));
    const balances: RoundBalanceRows =
      keys.length === 0
        ? new Map<string, never>()
        : yield* this.roundBalancesFound(node, keys, answers[answers.length - 1] as FoundBalance[]);
    // Only the CDRs inserted now: one settled before has its retail row already (and no id here).
    const retail = cdrs.flatMap((cdr) => {
      const inserted =
        cdr.retail_account_id === undefined || cdr.retail_account_id === null
          ? undefined
          : byCdr.get(cdrIdentity(cdr.sip_call_id, cdr.start_time));
      return inserted === undefined
        ? []
        : [{ cdr_id: inserted.cdrId, retail_account_id: cdr.retail_account_id, start_time: new Date(cdr.start_time).toISOString() }];
    });
    return {
      cdrs: byCdr,
      balances,
      retail: retail.length === 0 ? [] : [{ sql: LEDGER_SQL.insertRetailCdrs, params: [JSON.stringify(retail)] }],
    };
  }

  /** Locks the node's round row (PostgreSQL; made if missing): first lock of any work writing the node's leases. */
  *lockRound(node: string): Steps<void> {
    yield* getRow(LEDGER_SQL.lockRound, node, now());
  }

  /** Locks these balances (PostgreSQL), made at zero where missing, in one order; after lockRound. */
  *lockBalances(keys: readonly BalanceKey[]): Steps<void> {
    if (keys.length === 0) return;
    const rows = balanceKeysJson(keys);
    yield* runSql(LEDGER_SQL.makeBalances, rows, now());
    yield* allRows(LEDGER_SQL.lockBalances, rows);
  }

  /** A node's lease on an entity, decimal string ('0' when none). */
  *lease(node: string, entityType: string, entityId: number): Steps<string> {
    return (yield* getRow<{ amount: string }>(LEDGER_SQL.readLease, node, entityType, entityId))?.amount ?? '0';
  }

  *setLease(node: string, entityType: string, entityId: number, amount: string): Steps<void> {
    yield* this.setLeases(node, [{ entityType, entityId, amount }]);
  }

  /** An account's overrun so far, decimal string ('0' before the first). */
  *overrun(entityType: string, entityId: number): Steps<string> {
    return (yield* getRow<{ uncovered: string }>(LEDGER_SQL.readOverrun, entityType, entityId))?.uncovered ?? '0';
  }

  /** Writes an account's new overrun total after one more CDR (`callId`) added to it. */
  *addOverrunCdr(entityType: string, entityId: number, total: string, callId: string): Steps<void> {
    yield* runSql(LEDGER_SQL.writeOverrun, entityType, entityId, total, callId, now());
  }

  /** The last money round applied for a node, 0 before its first. */
  *lastRound(node: string): Steps<number> {
    return (yield* getRow<{ last_seq: number }>(LEDGER_SQL.readRound, node))?.last_seq ?? 0;
  }

  /**
   * Opens a node's money round: its round row locked (PostgreSQL; made on the node's first round), the last
   * round applied, and that round's kept answer when `digest` is its body's (a resend; else null).
   */
  *openRound(node: string, digest: string): Steps<{ lastSeq: number; keptReply: string | null }> {
    let row = yield* getRow<{ last_seq: number; kept: string | null }>(LEDGER_SQL.openRound, digest, node);
    if (row === undefined) {
      // The node's first round: the row made, then read and locked by a statement of its own, which sees it
      // also when a round of the same node racing this one made it first.
      yield* runSql(LEDGER_SQL.makeRound, node, now());
      row = yield* getRow<{ last_seq: number; kept: string | null }>(LEDGER_SQL.openRound, digest, node);
    }
    return { lastSeq: Number(row?.last_seq ?? 0), keptReply: row?.kept ?? null };
  }

  /** Records the round just applied as the node's last, with its answer (kept for a resend of it). */
  *recordRound(node: string, seq: number, digest: string, reply: string): Steps<void> {
    yield* runWrites([roundRecord(node, seq, digest, reply)]);
  }

  /** The kept answer no longer tells the node's leases (they were taken back): a resend is then stale. */
  *forgetRoundReply(node: string): Steps<void> {
    yield* runSql(LEDGER_SQL.writeRoundReply, null, null, node);
  }

  /**
   * The time (ISO) before which a node's last money round makes it silent, `silentForMs` ago: by the server's
   * clock on PostgreSQL, which every control plane sharing the store writes the rounds' times by; by this
   * process's on SQLite, the one process that writes them there.
   */
  *silenceCutoff(silentForMs: number): Steps<string> {
    const row = yield* getRow<{ cutoff: string }>(LEDGER_SQL.silenceCutoff, silentForMs);
    return row?.cutoff ?? new Date(Date.now() - silentForMs).toISOString();
  }

  /** Leases (non-zero) of nodes whose last money round was applied before `before` (ISO time). */
  *silentNodesLeases(before: string): Steps<{ node: string; entity_type: EntityType; entity_id: number; amount: string }[]> {
    return yield* allRows(LEDGER_SQL.silentLeases, before);
  }

  /** Raw row of a customer account, carrier trunk or retail account (currency, billing_mode, credit_limit, status), for its billing terms. */
  *entityRow(entityType: string, entityId: number): Steps<Row | null> {
    const sql =
      entityType === 'customer' ? LEDGER_SQL.readAccount : entityType === 'retail' ? LEDGER_SQL.readRetail : LEDGER_SQL.readCarrier;
    return (yield* getRow<Row>(sql, entityId)) ?? null;
  }

  /** The rows of these entities (see entityRow), one statement per kind of entity; keyed `type:id`, absent when none. */
  *entityRows(entities: readonly { entityType: string; entityId: number }[]): Steps<Map<string, Row>> {
    const reads = entityReads(entities);
    return entityRowsOf(reads, (yield* readTogether(reads)) as Row[][]);
  }

  /**
   * A money round's opening reads, in one round trip on PostgreSQL (readTogether): the node's credential (see
   * nodeCredential), its round row, locked (see openRound; null on the node's first round: openRound makes it
   * once the credential is checked), the rows of the entities the round may touch (see entityRows) and, when
   * `countNodes`, how many nodes are active (see activeNodes; else 0).
   */
  *openNodeRound(
    node: string,
    digest: string,
    entities: readonly { entityType: string; entityId: number }[],
    countNodes: boolean,
  ): Steps<{
    credential: NodeCredentialDigests | null;
    round: { lastSeq: number; keptReply: string | null } | null;
    entityRows: Map<string, Row>;
    activeNodes: number;
  }> {
    const reads = entityReads(entities);
    const [credential, round, ...rest] = yield* readTogether([
      { kind: 'get', sql: LEDGER_SQL.readCredential, params: [node] },
      { kind: 'get', sql: LEDGER_SQL.openRound, params: [digest, node] },
      ...reads,
      ...(countNodes ? [{ kind: 'get' as const, sql: LEDGER_SQL.countActiveNodes, params: [] }] : []),
    ]);
    const roundRow = round as { last_seq: number; kept: string | null } | undefined;
    return {
      credential: credentialOf(credential as CredentialRow | undefined),
      round: roundRow === undefined ? null : { lastSeq: Number(roundRow.last_seq), keptReply: roundRow.kept },
      entityRows: entityRowsOf(reads, rest.slice(0, reads.length) as Row[][]),
      activeNodes: countNodes ? Number((rest[reads.length] as { count: number }).count) : 0,
    };
  }

  /** Nodes registered as active (taking calls): the most that may share an entity's headroom. */
  *activeNodes(): Steps<number> {
    return Number((yield* getRow<{ count: number }>(LEDGER_SQL.countActiveNodes))!.count);
  }

  /** The nodes holding a non-zero lease on an entity. */
  *leaseHolders(entityType: string, entityId: number): Steps<string[]> {
    return (yield* allRows<{ node: string; amount: string }>(LEDGER_SQL.leaseHolders, entityType, entityId))
      .filter((row) => new Decimal(row.amount).greaterThan(0))
      .map((row) => row.node);
  }

  /** The node's credential digests; null when no node has this hostname. */
  *nodeCredential(hostname: string): Steps<NodeCredentialDigests | null> {
    return credentialOf(yield* getRow<CredentialRow>(LEDGER_SQL.readCredential, hostname));
  }

  /** The node has used its new secret: its previous one is refused from now on. */
  *forgetPreviousSecret(nodeId: number): Steps<void> {
    yield* runSql(LEDGER_SQL.forgetPrevious, nodeId);
  }
}

/** The ledger's reads outside a money transaction (the admin API, the console), as steps for either engine. */
export const ledgerReads = {
  *leasesOf(entityType: string, entityId: number): Steps<{ node: string; amount: string; updated_at: string }[]> {
    return yield* allRows(
      nonZero(
        (test) => `SELECT node, amount, updated_at FROM credit_leases WHERE entity_type = ? AND entity_id = ? AND ${test} ORDER BY node`,
      ),
      entityType,
      entityId,
    );
  },

  *moneyRounds(): Steps<{ node: string; last_seq: number; updated_at: string; leases_held: number }[]> {
    const rows = yield* allRows<{ node: string; last_seq: number; updated_at: string; leases_held: number }>(
      nonZero(
        (
          test,
        ) => `SELECT r.node, r.last_seq, r.updated_at, (SELECT COUNT(*) FROM credit_leases WHERE node = r.node AND ${test}) AS leases_held
          FROM node_money_rounds r ORDER BY r.node`,
      ),
    );
    return rows.map((row) => ({ ...row, leases_held: Number(row.leases_held) }));
  },

  *searchCdrs(filter: CdrFilter): Steps<Row[]> {
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
    return yield* pageOfRows<Row>(`SELECT * FROM cdrs ${where} ORDER BY start_time DESC, id DESC`, values, filter);
  },

  *getBalance(entityType: string, entityId: number): Steps<BalanceState & { id: number | null; updated_at: string | null }> {
    const row = yield* getRow<{ id: number; balance: string; reserved: string; updated_at: string }>(
      'SELECT id, balance, reserved, updated_at FROM balances WHERE entity_type = ? AND entity_id = ?',
      entityType,
      entityId,
    );
    return row ?? { id: null, balance: '0', reserved: '0', updated_at: null };
  },

  *openBalance(key: BalanceKey): Steps<BalanceState & { id: number; updated_at: string }> {
    yield* runSql(LEDGER_SQL.openBalance, key.entityType, key.entityId, key.currency, now());
    return (yield* ledgerReads.getBalance(key.entityType, key.entityId)) as BalanceState & { id: number; updated_at: string };
  },

  *getOverrun(entityType: string, entityId: number): Steps<Overrun> {
    const row = yield* getRow<Overrun>(
      'SELECT uncovered, cdrs, last_call_id, updated_at FROM account_overruns WHERE entity_type = ? AND entity_id = ?',
      entityType,
      entityId,
    );
    return row ?? { uncovered: '0.00', cdrs: 0, last_call_id: null, updated_at: null };
  },

  *listTransactions(entityType: string, entityId: number, limit: number, offset: number): Steps<{ rows: Row[]; total: number }> {
    const where = 'FROM balance_transactions WHERE entity_type = ? AND entity_id = ?';
    const total = (yield* getRow<{ total: number }>(`SELECT COUNT(*) AS total ${where}`, entityType, entityId))!.total;
    // Newest first in the order they were applied to the balance (`posted`: recordTransactions), each row as it
    // was before migration 20 gave it that column.
    const rows = yield* pageOfRows<Row>(
      `SELECT id, ${TRANSACTION_COLUMNS.map(([name]) => name).join(', ')} ${where} ORDER BY posted DESC`,
      [entityType, entityId],
      { limit, offset },
    );
    return { rows, total: Number(total) };
  },
};
