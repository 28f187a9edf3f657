import { parseCidr } from '../net/ip.js';
import { parseIPv4, parseIPv6 } from '../net/ip.js';
import { parseDigestAlgorithm } from '../digest/digest.js';
import { parseNano } from '../money/nano.js';
import { ha1Problem, moneyProblem, nanoProblem } from './field-rules.js';
import { retailProblem, type RetailTables } from './retail.js';
import { CURRENCIES, STATUSES, type SnapshotTables } from './schema.js';

/**
 * Checks a decoded snapshot before it is compiled: every table present with
 * the right field types, values in range, and every reference resolving. A
 * snapshot that fails is refused whole; the node keeps serving the old one.
 */

type FieldKind =
  | 'id'
  | 'id?'
  | 'int'
  | 'string'
  | 'string?'
  | 'bool'
  | 'decimal'
  | 'decimal?'
  | 'money?'
  | 'date'
  | 'digits'
  | 'digits?'
  | readonly string[];

// The retail tables are optional and checked on their own (retail.ts).
type TableName = Exclude<keyof SnapshotTables, 'rate_deck_rates' | 'delta_seq' | keyof RetailTables>;

const ROUNDING = ['up', 'down', 'standard'] as const;
const PRECISION = ['4', '5', '6'] as const;

const TABLE_FIELDS: Record<TableName, Record<string, FieldKind>> = {
  customer_accounts: {
    id: 'id',
    name: 'string',
    status: STATUSES,
    currency: CURRENCIES,
    billing_mode: ['prepaid', 'postpaid'],
    credit_limit: 'money?',
    warning_threshold: 'money?',
    auto_cutoff_enabled: 'bool',
    auto_cutoff_behaviour: ['block_new', 'terminate_all'],
  },
  customer_trunks: {
    id: 'id',
    customer_account_id: 'id',
    name: 'string',
    status: STATUSES,
    currency: CURRENCIES,
    cps_limit: 'int',
    port_limit: 'int',
    per_minute_rate_limit: 'int',
    billing_mode: ['prepaid', 'postpaid'],
    credit_limit: 'money?',
    tech_prefix: 'digits?',
    sip_trusted: 'bool',
    rtpengine_enabled: 'bool',
    billing_increment_initial: 'int',
    billing_increment_step: 'int',
    decimal_precision: PRECISION,
    rounding_direction: ROUNDING,
  },
  carrier_trunks: {
    id: 'id',
    name: 'string',
    status: STATUSES,
    currency: CURRENCIES,
    cps_limit: 'int',
    port_limit: 'int',
    per_minute_rate_limit: 'int',
    sip_trusted: 'bool',
    rtpengine_enabled: 'bool',
    multi_ip_mode: ['load_balance', 'failover'],
    tech_prefix: 'digits?',
    billing_increment_initial: 'int',
    billing_increment_step: 'int',
    decimal_precision: PRECISION,
    rounding_direction: ROUNDING,
  },
  carrier_gateways: {
    id: 'id',
    carrier_trunk_id: 'id',
    ip_address: 'string',
    port: 'int',
    weight: 'int',
    priority: 'int',
    status: STATUSES,
  },
  trunk_ip_auth: { id: 'id', trunk_type: ['customer', 'carrier'], trunk_id: 'id', cidr: 'string' },
  sip_registrations: {
    id: 'id',
    customer_trunk_id: 'id',
    username: 'string',
    domain: 'string',
    password_hash: 'string',
    hash_algorithm: 'string',
    status: STATUSES,
  },
  block_rules: {
    id: 'id',
    scope: ['global', 'customer_trunk', 'carrier_trunk', 'route'],
    scope_id: 'id?',
    block_type: ['ani', 'dnis', 'number_code'],
    pattern: 'digits',
    match_type: ['exact', 'prefix'],
    sip_response_code: 'int',
    is_active: 'bool',
  },
  rate_decks: { id: 'id', name: 'string', deck_type: ['customer', 'carrier'], currency: CURRENCIES },
  customer_trunk_rate_decks: { id: 'id', customer_trunk_id: 'id', rate_deck_id: 'id', is_active: 'bool', assigned_at: 'date' },
  carrier_trunk_rate_decks: { id: 'id', carrier_trunk_id: 'id', rate_deck_id: 'id', is_active: 'bool', assigned_at: 'date' },
  rate_deck_allowlist: { id: 'id', rate_deck_id: 'id', carrier_trunk_id: 'id' },
  failover_rules: {
    id: 'id',
    carrier_trunk_id: 'id',
    sip_code: 'int',
    action: ['retry_next', 'return_to_customer', 'block_new', 'terminate_all'],
  },
  lcr_config: {
    id: 'id',
    rate_deck_id: 'id?',
    block_if_cost_exceeds_sell: 'bool',
    acceptable_loss_pct: 'decimal',
    cache_ttl_seconds: 'int',
  },
  exchange_rates: { id: 'id', from_currency: CURRENCIES, to_currency: CURRENCIES, rate: 'decimal', effective_at: 'date' },
};

const MAX_ID = 2 ** 31 - 1; // ids index int32 arrays in the compiled snapshot

function isDigits(text: string): boolean {
  if (text.length === 0 || text.length > 32) return false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

function checkField(value: unknown, kind: FieldKind): boolean {
  if (typeof kind !== 'string') return kind.includes(String(value)) && (typeof value === 'string' || typeof value === 'number');
  switch (kind) {
    case 'id':
      return typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= MAX_ID;
    case 'id?':
      return value === null || checkField(value, 'id');
    case 'int':
      return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= MAX_ID;
    case 'string':
      return typeof value === 'string';
    case 'string?':
      return value === null || typeof value === 'string';
    case 'bool':
      return typeof value === 'boolean';
    case 'decimal':
      return typeof value === 'string' && !Number.isNaN(parseNano(value));
    case 'decimal?':
      return value === null || checkField(value, 'decimal');
    case 'money?':
      return value === null || (typeof value === 'string' && moneyProblem(value) === null);
    case 'date':
      return typeof value === 'string' && !Number.isNaN(Date.parse(value));
    case 'digits':
      return typeof value === 'string' && isDigits(value);
    case 'digits?':
      return value === null || value === '' || checkField(value, 'digits');
  }
}

/**
 * The row a refusal is about, so that the control plane can name the record an operator must fix:
 * the snapshot table, the row's id (null when the id itself is broken, or for rate rows, which carry
 * none), its position (rate rows: the column index, which follows the store's id order) and the field.
 */
export interface OffendingRow {
  table: string;
  id: number | null;
  index: number | null;
  field: string | null;
}

export type ValidationResult = { ok: true } | { ok: false; reason: string; row?: OffendingRow };

type Problem = { reason: string; row?: OffendingRow };

/** A problem with one row: `reason` reads as before ("exchange_rates 3: rate must be positive"). */
function at(table: string, id: number | null, field: string | null, reason: string, index: number | null = null): Problem {
  return { reason, row: { table, id, index, field } };
}

function whole(reason: string): Problem {
  return { reason };
}

function retailTablesProblem(tables: SnapshotTables): Problem | null {
  const reason = retailProblem(tables);
  return reason === null ? null : whole(reason);
}

/**
 * `rates: false`: the rate rows are not looked at (a node applying deltas to the other tables: the rows it
 * compiled were checked when their snapshot came, and no delta touches them or the decks they name).
 * `references: false`: rows are checked each on its own (a delta's rows; live.ts checks what they name).
 */
export function validateSnapshot(tables: SnapshotTables, options: { rates?: boolean; references?: boolean } = {}): ValidationResult {
  const rates = options.rates !== false;
  const problem =
    checkShapes(tables) ??
    (rates ? checkRates(tables) : null) ??
    checkValues(tables) ??
    (options.references === false ? null : checkReferences(tables, rates)) ??
    retailTablesProblem(tables);
  return problem === null ? { ok: true } : { ok: false, ...problem };
}

/**
 * Only whether every row names rows that exist (rate rows left out): for a node whose rows were each checked
 * already (by their snapshot or their delta), after a delete of an account or a trunk, which other rows name.
 * Parsing 100k CIDRs again to delete one trunk is what this spares.
 */
export function validateReferences(tables: SnapshotTables): ValidationResult {
  const problem = checkReferences(tables, false);
  return problem === null ? { ok: true } : { ok: false, ...problem };
}

/** What a field's kind asks for, in the words of the refusal. */
function expected(kind: FieldKind): string {
  if (typeof kind !== 'string') return `one of ${kind.join('|')}`;
  if (kind === 'money?') return 'null or a non-negative amount with at most 9 integer digits and 6 decimals';
  return kind;
}

function checkShapes(tables: SnapshotTables): Problem | null {
  const deltaSeq = tables.delta_seq;
  if (deltaSeq !== undefined && !(Number.isSafeInteger(deltaSeq) && deltaSeq >= 0))
    return whole('delta_seq must be a non-negative integer');
  for (const [table, fields] of Object.entries(TABLE_FIELDS) as [TableName, Record<string, FieldKind>][]) {
    const rows: unknown = (tables as unknown as Record<string, unknown>)[table];
    if (!Array.isArray(rows)) return whole(`table ${table} is missing`);
    const seen = new Set<number>();
    for (let i = 0; i < rows.length; i++) {
      const row: unknown = rows[i];
      if (typeof row !== 'object' || row === null) return at(table, null, null, `${table}[${i}] is not a record`, i);
      const rawId = (row as Record<string, unknown>).id;
      const knownId = checkField(rawId, 'id') ? (rawId as number) : null;
      for (const [field, kind] of Object.entries(fields)) {
        const value = (row as Record<string, unknown>)[field];
        if (!checkField(value, kind))
          return at(table, knownId, field, `${table}[${i}].${field} is invalid (expected ${expected(kind)})`, i);
      }
      const id = rawId as number;
      if (seen.has(id)) return at(table, id, 'id', `${table} has duplicate id ${id}`, i);
      seen.add(id);
    }
  }
  return null;
}

function checkRates(tables: SnapshotTables): Problem | null {
  const rates = tables.rate_deck_rates as Partial<Record<keyof SnapshotTables['rate_deck_rates'], unknown>> | undefined;
  if (typeof rates !== 'object') return whole('table rate_deck_rates is missing');
  if (!(rates.prefix_end instanceof Uint32Array)) return whole('rate_deck_rates.prefix_end must be a Uint32Array');
  const n = rates.prefix_end.length;
  const typed: [string, unknown, new (...args: never[]) => unknown][] = [
    ['rate_deck_id', rates.rate_deck_id, Uint32Array],
    ['destination_name', rates.destination_name, Uint32Array],
    ['rate_end', rates.rate_end, Uint32Array],
    ['rate_type', rates.rate_type, Uint8Array],
    ['billing_increment_initial', rates.billing_increment_initial, Uint16Array],
    ['billing_increment_step', rates.billing_increment_step, Uint16Array],
    ['effective_at', rates.effective_at, Float64Array],
  ];
  for (const [name, column, type] of typed) {
    if (!(column instanceof type) || (column as Uint8Array).length !== n)
      return whole(`rate_deck_rates.${name} must be a ${type.name} of ${n} rows`);
  }
  if (typeof rates.prefix_digits !== 'string' || typeof rates.rate_text !== 'string')
    return whole('rate_deck_rates.prefix_digits and rate_text must be strings');
  if (!Array.isArray(rates.destination_names)) return whole('rate_deck_rates.destination_names is missing');
  const columns = tables.rate_deck_rates;
  const names = columns.destination_names.length;
  const { prefix_digits: digits, prefix_end: prefixEnd, rate_text: rateText, rate_end: rateEnd } = columns;
  if ((n > 0 && prefixEnd[n - 1] !== digits.length) || (n > 0 && rateEnd[n - 1] !== rateText.length))
    return whole('rate_deck_rates offsets do not cover the text');
  const rateRow = (i: number, field: string, reason: string): Problem => at('rate_deck_rates', null, field, reason, i);
  for (let i = 0; i < n; i++) {
    const prefixStart = i === 0 ? 0 : prefixEnd[i - 1];
    if (prefixEnd[i] <= prefixStart || prefixEnd[i] - prefixStart > 32)
      return rateRow(i, 'prefix', `rate_deck_rates[${i}].prefix must have 1 to 32 digits`);
    for (let c = prefixStart; c < prefixEnd[i]; c++) {
      const code = digits.charCodeAt(c);
      if (code < 48 || code > 57) return rateRow(i, 'prefix', `rate_deck_rates[${i}].prefix must be digits`);
    }
    const rateStart = i === 0 ? 0 : rateEnd[i - 1];
    const rate = rateEnd[i] >= rateStart ? parseNano(rateText, rateStart, rateEnd[i]) : NaN;
    if (Number.isNaN(rate) || rate < 0)
      return rateRow(i, 'rate_per_minute', `rate_deck_rates[${i}].rate_per_minute must be a non-negative decimal with at most 9 decimals`);
    if (columns.rate_type[i] > 1) return rateRow(i, 'rate_type', `rate_deck_rates[${i}].rate_type must be per_minute or per_call`);
    if (columns.destination_name[i] >= names)
      return rateRow(i, 'destination_name', `rate_deck_rates[${i}].destination_name index out of range`);
    if (!Number.isFinite(columns.effective_at[i])) return rateRow(i, 'effective_at', `rate_deck_rates[${i}].effective_at is invalid`);
  }
  return null;
}

function checkValues(tables: SnapshotTables): Problem | null {
  for (const row of tables.trunk_ip_auth) {
    if (parseCidr(row.cidr) === null)
      return at('trunk_ip_auth', row.id, 'cidr', `trunk_ip_auth ${row.id}: invalid cidr ${JSON.stringify(row.cidr)}`);
  }
  const scratch = new Uint16Array(8);
  for (const row of tables.carrier_gateways) {
    if (parseIPv4(row.ip_address) < 0 && !parseIPv6(row.ip_address, scratch)) {
      return at(
        'carrier_gateways',
        row.id,
        'ip_address',
        `carrier_gateways ${row.id}: invalid ip_address ${JSON.stringify(row.ip_address)}`,
      );
    }
    if (row.port < 1 || row.port > 65535) return at('carrier_gateways', row.id, 'port', `carrier_gateways ${row.id}: port out of range`);
  }
  for (const row of tables.sip_registrations) {
    if (parseDigestAlgorithm(row.hash_algorithm) === null)
      return at(
        'sip_registrations',
        row.id,
        'hash_algorithm',
        `sip_registrations ${row.id}: unknown hash_algorithm ${JSON.stringify(row.hash_algorithm)}`,
      );
    const ha1 = ha1Problem(row.password_hash, row.hash_algorithm);
    if (ha1 !== null) return at('sip_registrations', row.id, 'password_hash', `sip_registrations ${row.id}: password_hash ${ha1}`);
  }
  for (const row of tables.block_rules) {
    if (row.scope !== 'global' && row.scope_id === null)
      return at('block_rules', row.id, 'scope_id', `block_rules ${row.id}: scope_id is required for scope ${row.scope}`);
    if (row.sip_response_code < 300 || row.sip_response_code > 699)
      return at('block_rules', row.id, 'sip_response_code', `block_rules ${row.id}: sip_response_code must be 300-699`);
  }
  for (const row of tables.exchange_rates) {
    if (nanoProblem(row.rate, 'positive') !== null)
      return at('exchange_rates', row.id, 'rate', `exchange_rates ${row.id}: rate must be positive`);
  }
  for (const row of tables.lcr_config) {
    const problem = nanoProblem(row.acceptable_loss_pct, 'non_negative');
    if (problem !== null) return at('lcr_config', row.id, 'acceptable_loss_pct', `lcr_config ${row.id}: acceptable_loss_pct ${problem}`);
  }
  for (const [table, rows] of [
    ['customer_trunks', tables.customer_trunks],
    ['carrier_trunks', tables.carrier_trunks],
  ] as const) {
    for (const row of rows) {
      if (row.billing_increment_initial < 1)
        return at(table, row.id, 'billing_increment_initial', `trunk ${row.id}: billing increments must be >= 1`);
      if (row.billing_increment_step < 1)
        return at(table, row.id, 'billing_increment_step', `trunk ${row.id}: billing increments must be >= 1`);
    }
  }
  return null;
}

function checkReferences(tables: SnapshotTables, rates: boolean): Problem | null {
  const ids = (rows: readonly { id: number }[]): Set<number> => new Set(rows.map((row) => row.id));
  const accounts = ids(tables.customer_accounts);
  const customerTrunks = ids(tables.customer_trunks);
  const carrierTrunks = ids(tables.carrier_trunks);
  const decks = new Map(tables.rate_decks.map((deck) => [deck.id, deck.deck_type]));
  for (const row of tables.customer_trunks) {
    if (!accounts.has(row.customer_account_id))
      return at(
        'customer_trunks',
        row.id,
        'customer_account_id',
        `customer_trunks ${row.id}: customer_account_id ${row.customer_account_id} does not exist`,
      );
  }
  for (const row of tables.trunk_ip_auth) {
    const known = row.trunk_type === 'customer' ? customerTrunks : carrierTrunks;
    if (!known.has(row.trunk_id))
      return at('trunk_ip_auth', row.id, 'trunk_id', `trunk_ip_auth ${row.id}: ${row.trunk_type} trunk ${row.trunk_id} does not exist`);
  }
  for (const row of tables.sip_registrations) {
    if (!customerTrunks.has(row.customer_trunk_id))
      return at(
        'sip_registrations',
        row.id,
        'customer_trunk_id',
        `sip_registrations ${row.id}: customer trunk ${row.customer_trunk_id} does not exist`,
      );
  }
  for (const row of tables.block_rules) {
    if (row.scope === 'customer_trunk' && !customerTrunks.has(row.scope_id ?? 0))
      return at('block_rules', row.id, 'scope_id', `block_rules ${row.id}: customer trunk ${row.scope_id} does not exist`);
    if (row.scope === 'carrier_trunk' && !carrierTrunks.has(row.scope_id ?? 0))
      return at('block_rules', row.id, 'scope_id', `block_rules ${row.id}: carrier trunk ${row.scope_id} does not exist`);
  }
  for (const [table, rows, trunks, column, kind] of [
    ['customer_trunk_rate_decks', tables.customer_trunk_rate_decks, customerTrunks, 'customer_trunk_id', 'customer'],
    ['carrier_trunk_rate_decks', tables.carrier_trunk_rate_decks, carrierTrunks, 'carrier_trunk_id', 'carrier'],
  ] as const) {
    for (const row of rows) {
      const trunkId = (row as unknown as Record<string, number>)[column];
      if (!trunks.has(trunkId)) return at(table, row.id, column, `${table} ${row.id}: ${kind} trunk ${trunkId} does not exist`);
      if (decks.get(row.rate_deck_id) !== kind)
        return at(table, row.id, 'rate_deck_id', `${table} ${row.id}: rate deck ${row.rate_deck_id} is not a ${kind} deck`);
    }
  }
  for (const row of tables.rate_deck_allowlist) {
    if (!decks.has(row.rate_deck_id))
      return at(
        'rate_deck_allowlist',
        row.id,
        'rate_deck_id',
        `rate_deck_allowlist ${row.id}: rate deck ${row.rate_deck_id} does not exist`,
      );
    if (!carrierTrunks.has(row.carrier_trunk_id))
      return at(
        'rate_deck_allowlist',
        row.id,
        'carrier_trunk_id',
        `rate_deck_allowlist ${row.id}: carrier trunk ${row.carrier_trunk_id} does not exist`,
      );
  }
  for (const [table, rows] of [
    ['carrier_gateways', tables.carrier_gateways],
    ['failover_rules', tables.failover_rules],
  ] as const) {
    for (const row of rows) {
      if (!carrierTrunks.has(row.carrier_trunk_id))
        return at(table, row.id, 'carrier_trunk_id', `${table} ${row.id}: carrier trunk ${row.carrier_trunk_id} does not exist`);
    }
  }
  for (const row of tables.lcr_config) {
    if (row.rate_deck_id !== null && !decks.has(row.rate_deck_id)) {
      return at('lcr_config', row.id, 'rate_deck_id', `lcr_config ${row.id}: rate deck ${row.rate_deck_id} does not exist`);
    }
  }
  const rateDecks = rates ? tables.rate_deck_rates.rate_deck_id : [];
  for (let i = 0; i < rateDecks.length; i++) {
    if (!decks.has(rateDecks[i]))
      return at('rate_deck_rates', null, 'rate_deck_id', `rate_deck_rates[${i}]: rate deck ${rateDecks[i]} does not exist`, i);
  }
  return null;
}
