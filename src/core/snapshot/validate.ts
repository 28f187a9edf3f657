import { parseCidr } from '../net/ip.js';
import { parseIPv4, parseIPv6 } from '../net/ip.js';
import { parseDigestAlgorithm } from '../digest/digest.js';
import { parseNano } from '../money/nano.js';
import { CURRENCIES, STATUSES, type SnapshotTables } from './schema.js';

/**
 * Checks a decoded snapshot before it is compiled: every table present with
 * the right field types, values in range, and every reference resolving. A
 * snapshot that fails is refused whole; the node keeps serving the old one.
 */

type FieldKind =
  'id' | 'id?' | 'int' | 'string' | 'string?' | 'bool' | 'decimal' | 'decimal?' | 'date' | 'digits' | 'digits?' | readonly string[];

type TableName = Exclude<keyof SnapshotTables, 'rate_deck_rates'>;

const ROUNDING = ['up', 'down', 'standard'] as const;
const PRECISION = ['4', '5', '6'] as const;

const TABLE_FIELDS: Record<TableName, Record<string, FieldKind>> = {
  customer_accounts: {
    id: 'id',
    name: 'string',
    status: STATUSES,
    currency: CURRENCIES,
    billing_mode: ['prepaid', 'postpaid'],
    credit_limit: 'decimal?',
    warning_threshold: 'decimal?',
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
    credit_limit: 'decimal?',
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
    case 'date':
      return typeof value === 'string' && !Number.isNaN(Date.parse(value));
    case 'digits':
      return typeof value === 'string' && isDigits(value);
    case 'digits?':
      return value === null || value === '' || checkField(value, 'digits');
  }
}

export type ValidationResult = { ok: true } | { ok: false; reason: string };

export function validateSnapshot(tables: SnapshotTables): ValidationResult {
  const problem = checkShapes(tables) ?? checkRates(tables) ?? checkValues(tables) ?? checkReferences(tables);
  return problem === null ? { ok: true } : { ok: false, reason: problem };
}

function checkShapes(tables: SnapshotTables): string | null {
  for (const [table, fields] of Object.entries(TABLE_FIELDS) as [TableName, Record<string, FieldKind>][]) {
    const rows: unknown = (tables as unknown as Record<string, unknown>)[table];
    if (!Array.isArray(rows)) return `table ${table} is missing`;
    const seen = new Set<number>();
    for (let i = 0; i < rows.length; i++) {
      const row: unknown = rows[i];
      if (typeof row !== 'object' || row === null) return `${table}[${i}] is not a record`;
      for (const [field, kind] of Object.entries(fields)) {
        const value = (row as Record<string, unknown>)[field];
        const wanted = typeof kind === 'string' ? kind : `one of ${kind.join('|')}`;
        if (!checkField(value, kind)) return `${table}[${i}].${field} is invalid (expected ${wanted})`;
      }
      const id = (row as { id: number }).id;
      if (seen.has(id)) return `${table} has duplicate id ${id}`;
      seen.add(id);
    }
  }
  return null;
}

function checkRates(tables: SnapshotTables): string | null {
  const rates = tables.rate_deck_rates as Partial<Record<keyof SnapshotTables['rate_deck_rates'], unknown>> | undefined;
  if (typeof rates !== 'object') return 'table rate_deck_rates is missing';
  if (!(rates.prefix_end instanceof Uint32Array)) return 'rate_deck_rates.prefix_end must be a Uint32Array';
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
      return `rate_deck_rates.${name} must be a ${type.name} of ${n} rows`;
  }
  if (typeof rates.prefix_digits !== 'string' || typeof rates.rate_text !== 'string')
    return 'rate_deck_rates.prefix_digits and rate_text must be strings';
  if (!Array.isArray(rates.destination_names)) return 'rate_deck_rates.destination_names is missing';
  const columns = tables.rate_deck_rates;
  const names = columns.destination_names.length;
  const { prefix_digits: digits, prefix_end: prefixEnd, rate_text: rateText, rate_end: rateEnd } = columns;
  if ((n > 0 && prefixEnd[n - 1] !== digits.length) || (n > 0 && rateEnd[n - 1] !== rateText.length))
    return 'rate_deck_rates offsets do not cover the text';
  for (let i = 0; i < n; i++) {
    const prefixStart = i === 0 ? 0 : prefixEnd[i - 1];
    if (prefixEnd[i] <= prefixStart || prefixEnd[i] - prefixStart > 32) return `rate_deck_rates[${i}].prefix must have 1 to 32 digits`;
    for (let c = prefixStart; c < prefixEnd[i]; c++) {
      const code = digits.charCodeAt(c);
      if (code < 48 || code > 57) return `rate_deck_rates[${i}].prefix must be digits`;
    }
    const rateStart = i === 0 ? 0 : rateEnd[i - 1];
    const rate = rateEnd[i] >= rateStart ? parseNano(rateText, rateStart, rateEnd[i]) : NaN;
    if (Number.isNaN(rate) || rate < 0)
      return `rate_deck_rates[${i}].rate_per_minute must be a non-negative decimal with at most 9 decimals`;
    if (columns.rate_type[i] > 1) return `rate_deck_rates[${i}].rate_type must be per_minute or per_call`;
    if (columns.destination_name[i] >= names) return `rate_deck_rates[${i}].destination_name index out of range`;
    if (!Number.isFinite(columns.effective_at[i])) return `rate_deck_rates[${i}].effective_at is invalid`;
  }
  return null;
}

function checkValues(tables: SnapshotTables): string | null {
  for (const row of tables.trunk_ip_auth) {
    if (parseCidr(row.cidr) === null) return `trunk_ip_auth ${row.id}: invalid cidr ${JSON.stringify(row.cidr)}`;
  }
  const scratch = new Uint16Array(8);
  for (const row of tables.carrier_gateways) {
    if (parseIPv4(row.ip_address) < 0 && !parseIPv6(row.ip_address, scratch)) {
      return `carrier_gateways ${row.id}: invalid ip_address ${JSON.stringify(row.ip_address)}`;
    }
    if (row.port < 1 || row.port > 65535) return `carrier_gateways ${row.id}: port out of range`;
  }
  for (const row of tables.sip_registrations) {
    if (parseDigestAlgorithm(row.hash_algorithm) === null)
      return `sip_registrations ${row.id}: unknown hash_algorithm ${JSON.stringify(row.hash_algorithm)}`;
  }
  for (const row of tables.block_rules) {
    if (row.scope !== 'global' && row.scope_id === null) return `block_rules ${row.id}: scope_id is required for scope ${row.scope}`;
    if (row.sip_response_code < 300 || row.sip_response_code > 699) return `block_rules ${row.id}: sip_response_code must be 300-699`;
  }
  for (const row of tables.exchange_rates) {
    if (parseNano(row.rate) <= 0) return `exchange_rates ${row.id}: rate must be positive`;
  }
  for (const row of [...tables.customer_trunks, ...tables.carrier_trunks]) {
    if (row.billing_increment_initial < 1 || row.billing_increment_step < 1) return `trunk ${row.id}: billing increments must be >= 1`;
  }
  return null;
}

function checkReferences(tables: SnapshotTables): string | null {
  const ids = (rows: readonly { id: number }[]): Set<number> => new Set(rows.map((row) => row.id));
  const accounts = ids(tables.customer_accounts);
  const customerTrunks = ids(tables.customer_trunks);
  const carrierTrunks = ids(tables.carrier_trunks);
  const decks = new Map(tables.rate_decks.map((deck) => [deck.id, deck.deck_type]));
  for (const row of tables.customer_trunks) {
    if (!accounts.has(row.customer_account_id))
      return `customer_trunks ${row.id}: customer_account_id ${row.customer_account_id} does not exist`;
  }
  for (const row of tables.trunk_ip_auth) {
    const known = row.trunk_type === 'customer' ? customerTrunks : carrierTrunks;
    if (!known.has(row.trunk_id)) return `trunk_ip_auth ${row.id}: ${row.trunk_type} trunk ${row.trunk_id} does not exist`;
  }
  for (const row of tables.sip_registrations) {
    if (!customerTrunks.has(row.customer_trunk_id))
      return `sip_registrations ${row.id}: customer trunk ${row.customer_trunk_id} does not exist`;
  }
  for (const row of tables.block_rules) {
    if (row.scope === 'customer_trunk' && !customerTrunks.has(row.scope_id ?? 0))
      return `block_rules ${row.id}: customer trunk ${row.scope_id} does not exist`;
    if (row.scope === 'carrier_trunk' && !carrierTrunks.has(row.scope_id ?? 0))
      return `block_rules ${row.id}: carrier trunk ${row.scope_id} does not exist`;
  }
  for (const row of tables.customer_trunk_rate_decks) {
    if (!customerTrunks.has(row.customer_trunk_id))
      return `customer_trunk_rate_decks ${row.id}: customer trunk ${row.customer_trunk_id} does not exist`;
    if (decks.get(row.rate_deck_id) !== 'customer')
      return `customer_trunk_rate_decks ${row.id}: rate deck ${row.rate_deck_id} is not a customer deck`;
  }
  for (const row of tables.carrier_trunk_rate_decks) {
    if (!carrierTrunks.has(row.carrier_trunk_id))
      return `carrier_trunk_rate_decks ${row.id}: carrier trunk ${row.carrier_trunk_id} does not exist`;
    if (decks.get(row.rate_deck_id) !== 'carrier')
      return `carrier_trunk_rate_decks ${row.id}: rate deck ${row.rate_deck_id} is not a carrier deck`;
  }
  for (const row of tables.rate_deck_allowlist) {
    if (!decks.has(row.rate_deck_id)) return `rate_deck_allowlist ${row.id}: rate deck ${row.rate_deck_id} does not exist`;
    if (!carrierTrunks.has(row.carrier_trunk_id))
      return `rate_deck_allowlist ${row.id}: carrier trunk ${row.carrier_trunk_id} does not exist`;
  }
  for (const row of tables.carrier_gateways) {
    if (!carrierTrunks.has(row.carrier_trunk_id)) return `carrier_gateways ${row.id}: carrier trunk ${row.carrier_trunk_id} does not exist`;
  }
  for (const row of tables.failover_rules) {
    if (!carrierTrunks.has(row.carrier_trunk_id)) return `failover_rules ${row.id}: carrier trunk ${row.carrier_trunk_id} does not exist`;
  }
  for (const row of tables.lcr_config) {
    if (row.rate_deck_id !== null && !decks.has(row.rate_deck_id)) {
      return `lcr_config ${row.id}: rate deck ${row.rate_deck_id} does not exist`;
    }
  }
  const rateDecks = tables.rate_deck_rates.rate_deck_id;
  for (let i = 0; i < rateDecks.length; i++) {
    if (!decks.has(rateDecks[i])) return `rate_deck_rates[${i}]: rate deck ${rateDecks[i]} does not exist`;
  }
  return null;
}
