import { STATUSES } from '../../src/core/snapshot/schema.js';
import { PORTAL_FLAGS } from '../portal/access-rules.js';
import { normaliseUsername, usernameProblem } from '../portal/username.js';
import type { Field, Fields } from './fields.js';

/**
 * The admin API's records, declared once: table, path, fields with their
 * defaults (the contract's), how lists answer, how deletes work. The CRUD
 * layer (crud.ts) turns each into its routes.
 */
export interface Resource {
  /** In messages: "carrier trunk 7 not found". */
  noun: string;
  table: string;
  /** Collection path; nested resources put their parent's `{id}` in it. */
  path: string;
  /** The item segment's name: `{id}`, `{ip_id}`, `{rule_id}`. */
  itemParam: string;
  /** Nested under a parent record: the column that holds the parent's id, and the parent's table. */
  parent?: { column: string; table: string; noun: string };
  fields: Fields;
  /** Query parameters that filter lists, each a field of the record. */
  filters: readonly string[];
  /** 'paged': {data, meta}; 'array': a bare array (as the contract shows per endpoint). */
  list: 'paged' | 'array';
  /** 'soft' sets status = closed, as the contract says for accounts and trunks. */
  deletion: 'hard' | 'soft';
  /** Operations offered (the contract has no single GET for carrier IPs, no PUT for exchange rates). */
  operations: readonly ('list' | 'create' | 'get' | 'update' | 'delete')[];
  /** Only a created_at column (append-only records). */
  createdOnly?: boolean;
  /**
   * Shapes the contract gives reads of some records: an account with its trunks and settings
   * (CustomerAccountWithTrunks, list and item), a carrier trunk with its IPs (CarrierTrunkWithIPs, item).
   */
  view?: 'account_with_trunks' | 'carrier_with_ips';
  /**
   * Credential fields no answer shows unless the read asks for them by name (`?include=password_hash`):
   * the contract calls them credential material not to be exposed unnecessarily.
   */
  secret?: readonly string[];
  /**
   * Fields holding a database URL whose password no answer shows (`***` in its place) unless the read asks
   * for the field by name (`?include=drouting_db`), as `secret`; an update giving the URL as answered keeps
   * the stored password (a record read and sent back with a change must not store `***`).
   */
  databaseUrls?: readonly string[];
  /**
   * Rates keep the terms they had before an edit as history rows (rate-revision.ts): lists, gets and
   * edits see only the rates themselves, a delete takes the history with it.
   */
  history?: boolean;
  /**
   * The record is a portal login: `password` is required on create and optional on update, kept only as a slow
   * hash apart from the row (sync/portal/credentials.ts), and never answered.
   */
  portalLogin?: boolean;
}

const ALL = ['list', 'create', 'get', 'update', 'delete'] as const;
const status = (fallback = 'active'): Field => ({ kind: { enum: STATUSES }, default: fallback });
/** An amount an account holds or may owe: what the ledger holds exactly (field-rules.ts moneyProblem). */
const money = (): Field => ({ kind: 'money', nullable: true });
const limit = (fallback: number): Field => ({ kind: 'integer', min: 1, max: 32767, default: fallback });
const flag = (fallback: boolean): Field => ({ kind: 'boolean', default: fallback });
const now = (): string => new Date().toISOString();

/** What customer and carrier trunks share. */
const trunkFields = (limits: { cps: number; ports: number; perMinute: number }): Fields => ({
  name: { kind: 'string', required: true },
  status: status(),
  currency: { kind: 'currency', required: true },
  cps_limit: limit(limits.cps),
  port_limit: limit(limits.ports),
  per_minute_rate_limit: limit(limits.perMinute),
  billing_mode: { kind: { enum: ['prepaid', 'postpaid'] }, default: 'postpaid' },
  credit_limit: money(),
  warning_threshold: money(),
  auto_cutoff_enabled: flag(false),
  auto_cutoff_behaviour: { kind: { enum: ['block_new', 'terminate_all'] }, default: 'block_new' },
  tech_prefix: { kind: 'digits', nullable: true },
  sip_trusted: flag(false),
  rtpengine_enabled: flag(false),
  billing_increment_initial: limit(1),
  billing_increment_step: limit(1),
  decimal_precision: { kind: { enum: [4, 5, 6] }, default: 4 },
  rounding_direction: { kind: { enum: ['up', 'down', 'standard'] }, default: 'standard' },
  gst_applicable: flag(true),
  gst_treatment: { kind: { enum: ['inclusive', 'exclusive'] }, nullable: true },
});

export const CUSTOMER_ACCOUNTS: Resource = {
  noun: 'customer account',
  table: 'customer_accounts',
  path: '/api/customer-accounts',
  itemParam: 'id',
  fields: {
    name: { kind: 'string', required: true },
    // The portal login (the schema requires it on create); its password is kept apart (see portalLogin).
    username: { kind: 'string', required: true, text: { problem: usernameProblem, normalise: normaliseUsername } },
    status: status(),
    currency: { kind: 'currency', required: true },
    billing_mode: { kind: { enum: ['prepaid', 'postpaid'] }, default: 'postpaid' },
    credit_limit: money(),
    warning_threshold: money(),
    auto_cutoff_enabled: flag(false),
    auto_cutoff_behaviour: { kind: { enum: ['block_new', 'terminate_all'] }, default: 'block_new' },
    gst_applicable: flag(true),
    gst_treatment: { kind: { enum: ['inclusive', 'exclusive'] }, nullable: true },
    invoice_period_days: { kind: 'integer', min: 1, max: 32767, default: 30 },
    payment_due_days: { kind: 'integer', min: 1, max: 32767, default: 7 },
    // What the customer's portal session may do (sync/portal/access-rules.ts); nothing until the operator grants it.
    ...Object.fromEntries(PORTAL_FLAGS.map((name) => [name, flag(false)])),
  },
  filters: ['status'],
  list: 'paged',
  deletion: 'soft',
  operations: ALL,
  view: 'account_with_trunks',
  portalLogin: true,
};

export const CUSTOMER_TRUNKS: Resource = {
  noun: 'customer trunk',
  table: 'customer_trunks',
  path: '/api/customer-trunks',
  itemParam: 'id',
  fields: {
    customer_account_id: { kind: 'integer', required: true, min: 1, references: 'customer_accounts' },
    ...trunkFields({ cps: 10, ports: 30, perMinute: 300 }),
  },
  filters: ['customer_account_id', 'status'],
  list: 'paged',
  deletion: 'soft',
  operations: ALL,
};

export const CARRIER_TRUNKS: Resource = {
  noun: 'carrier trunk',
  table: 'carrier_trunks',
  path: '/api/carrier-trunks',
  itemParam: 'id',
  fields: {
    ...trunkFields({ cps: 10, ports: 100, perMinute: 600 }),
    multi_ip_mode: { kind: { enum: ['load_balance', 'failover'] }, default: 'load_balance' },
  },
  filters: ['status'],
  list: 'paged',
  deletion: 'soft',
  operations: ALL,
  view: 'carrier_with_ips',
};

export const CARRIER_TRUNK_IPS: Resource = {
  noun: 'carrier trunk IP',
  table: 'carrier_trunk_ips',
  path: '/api/carrier-trunks/{id}/ips',
  itemParam: 'ip_id',
  parent: { column: 'carrier_trunk_id', table: 'carrier_trunks', noun: 'carrier trunk' },
  fields: {
    ip_address: { kind: 'ip', required: true },
    port: { kind: 'integer', min: 1, max: 65535, default: 5060 },
    weight: { kind: 'integer', min: 0, max: 32767, default: 1 },
    priority: { kind: 'integer', min: 0, max: 32767, default: 1 },
    status: status(),
  },
  filters: [],
  list: 'array',
  deletion: 'hard',
  operations: ['list', 'create', 'update', 'delete'],
};

export const FAILOVER_RULES: Resource = {
  noun: 'failover rule',
  table: 'carrier_sip_failover_rules',
  path: '/api/carrier-trunks/{id}/failover-rules',
  itemParam: 'rule_id',
  parent: { column: 'carrier_trunk_id', table: 'carrier_trunks', noun: 'carrier trunk' },
  fields: {
    sip_code: { kind: 'integer', required: true, min: 100, max: 699 },
    action: { kind: { enum: ['retry_next', 'return_to_customer', 'block_new', 'terminate_all'] }, required: true },
    description: { kind: 'string', nullable: true },
  },
  filters: [],
  list: 'array',
  deletion: 'hard',
  operations: ALL,
};

export const TRUNK_IP_AUTH: Resource = {
  noun: 'trunk IP auth record',
  table: 'trunk_ip_auth',
  path: '/api/trunk-ip-auth',
  itemParam: 'id',
  fields: {
    trunk_type: { kind: { enum: ['customer', 'carrier'] }, required: true },
    // Which table it references depends on trunk_type: checked in crud.ts.
    trunk_id: { kind: 'integer', required: true, min: 1 },
    cidr: { kind: 'cidr', required: true },
    description: { kind: 'string', nullable: true },
  },
  filters: ['trunk_type', 'trunk_id'],
  list: 'array',
  deletion: 'hard',
  operations: ALL,
};

export const SIP_REGISTRATIONS: Resource = {
  noun: 'SIP registration',
  table: 'trunk_sip_registrations',
  path: '/api/sip-registrations',
  itemParam: 'id',
  fields: {
    customer_trunk_id: { kind: 'integer', required: true, min: 1, references: 'customer_trunks' },
    username: { kind: 'string', required: true },
    domain: { kind: 'string', required: true },
    password_hash: { kind: 'hex', required: true },
    hash_algorithm: { kind: 'hash_algorithm', required: true },
    status: status(),
  },
  filters: ['customer_trunk_id'],
  list: 'array',
  deletion: 'hard',
  operations: ALL,
  secret: ['password_hash'],
};

export const BLOCK_RULES: Resource = {
  noun: 'block rule',
  table: 'block_rules',
  path: '/api/block-rules',
  itemParam: 'id',
  fields: {
    scope: { kind: { enum: ['global', 'customer_trunk', 'carrier_trunk', 'route'] }, required: true },
    // Required unless scope is global, and must name a trunk of the scope's kind: checked in crud.ts.
    scope_id: { kind: 'integer', nullable: true, min: 1 },
    block_type: { kind: { enum: ['ani', 'dnis', 'number_code'] }, required: true },
    pattern: { kind: 'digits', required: true },
    match_type: { kind: { enum: ['exact', 'prefix'] }, required: true },
    sip_response_code: { kind: 'integer', min: 300, max: 699, default: 403 },
    description: { kind: 'string', nullable: true },
    is_active: flag(true),
  },
  filters: ['scope', 'scope_id', 'block_type', 'is_active'],
  list: 'paged',
  deletion: 'hard',
  operations: ALL,
};

export const RATE_DECKS: Resource = {
  noun: 'rate deck',
  table: 'rate_decks',
  path: '/api/rate-decks',
  itemParam: 'id',
  fields: {
    name: { kind: 'string', required: true },
    deck_type: { kind: { enum: ['customer', 'carrier'] }, required: true },
    currency: { kind: 'currency', required: true },
    description: { kind: 'string', nullable: true },
  },
  filters: ['deck_type'],
  list: 'paged',
  deletion: 'hard',
  operations: ALL,
};

export const RATE_DECK_RATES: Resource = {
  noun: 'rate',
  table: 'rate_deck_rates',
  path: '/api/rate-decks/{id}/rates',
  itemParam: 'rate_id',
  parent: { column: 'rate_deck_id', table: 'rate_decks', noun: 'rate deck' },
  fields: {
    prefix: { kind: 'digits', required: true },
    destination_name: { kind: 'string', required: true },
    rate_per_minute: { kind: 'decimal', required: true },
    rate_type: { kind: { enum: ['per_minute', 'per_call'] }, default: 'per_minute' },
    billing_increment_initial: { kind: 'integer', nullable: true, min: 1, max: 32767 },
    billing_increment_step: { kind: 'integer', nullable: true, min: 1, max: 32767 },
    effective_at: { kind: 'datetime', default: now },
  },
  filters: ['prefix'],
  list: 'paged',
  deletion: 'hard',
  operations: ['list', 'create', 'update', 'delete'],
  history: true,
};

export const LCR_CONFIG: Resource = {
  noun: 'LCR config',
  table: 'lcr_config',
  path: '/api/lcr-config',
  itemParam: 'id',
  fields: {
    rate_deck_id: { kind: 'integer', nullable: true, min: 1, references: 'rate_decks' },
    block_if_cost_exceeds_sell: flag(true),
    acceptable_loss_pct: { kind: 'decimal', default: '0' },
    cache_ttl_seconds: { kind: 'integer', min: 0, max: 86_400, default: 300 },
  },
  filters: [],
  list: 'paged',
  deletion: 'hard',
  operations: ALL,
};

export const EXCHANGE_RATES: Resource = {
  noun: 'exchange rate',
  table: 'exchange_rates',
  path: '/api/exchange-rates',
  itemParam: 'id',
  fields: {
    from_currency: { kind: 'currency', required: true },
    to_currency: { kind: 'currency', required: true },
    // An exchange rate of 0 would make every conversion 0 or infinite: the snapshot refuses it, so the API does.
    rate: { kind: 'decimal', required: true, positive: true },
    effective_at: { kind: 'datetime', default: now },
    created_by: { kind: 'integer', nullable: true },
  },
  filters: ['from_currency', 'to_currency'],
  list: 'paged',
  deletion: 'hard',
  operations: ['list', 'create', 'get', 'delete'],
  createdOnly: true,
};

export const OPENSIPS_NODES: Resource = {
  noun: 'OpenSIPS node',
  table: 'opensips_nodes',
  path: '/api/opensips-nodes',
  itemParam: 'id',
  fields: {
    hostname: { kind: 'string', required: true },
    mi_socket_address: { kind: 'string', required: true, maxLength: 1024 },
    // The three addresses below are also held to the node policy (sync/nodes/targets.ts), in crud.ts and at every sync.
    /** Added: where this node's sidecar takes snapshots (http://host:port, or a directory path it watches). */
    sidecar_address: { kind: 'string', nullable: true, maxLength: 1024 },
    /** Added: the node's OpenSIPS database holding the drouting tables (an SQLite file path). */
    drouting_db: { kind: 'string', nullable: true, maxLength: 1024 },
    region: { kind: 'string', nullable: true },
    // The contract's enum only (note 45): a node that is not `active` is not synced, whatever else it is.
    status: status(),
  },
  // A MySQL/PostgreSQL drouting_db carries the password OpenSIPS's db_url needs.
  databaseUrls: ['drouting_db'],
  filters: ['status'],
  list: 'paged',
  deletion: 'hard',
  operations: ALL,
};

/** The partner API's operations (sync/partner/routes.ts), each of which a tenant may be allowed. */
export const PARTNER_OPERATIONS = [
  'get_balance',
  'call_history',
  'topup',
  'debit_balance',
  'create_account',
  'delete_account',
  'change_cli',
  'setup_call',
] as const;

/** A comma list of partner operations, stored sorted and without repeats. */
function operationsProblem(value: string): string | null {
  const names = value.split(',').map((name) => name.trim());
  const unknown = names.filter((name) => !(PARTNER_OPERATIONS as readonly string[]).includes(name));
  return unknown.length === 0 ? null : `must be a comma list of ${PARTNER_OPERATIONS.join(', ')}; unknown: ${unknown.join(', ')}`;
}
const normaliseOperations = (value: string): string => [...new Set(value.split(',').map((name) => name.trim()))].sort().join(',');

/** Access numbers: a comma list of E.164 digits, as the caller dials them. */
function accessNumbersProblem(value: string): string | null {
  return value.split(',').every((number) => /^\+?[0-9]{4,20}$/.test(number.trim()))
    ? null
    : 'must be a comma list of numbers (digits, a leading + allowed)';
}
const normaliseAccessNumbers = (value: string): string =>
  value
    .split(',')
    .map((number) => number.trim().replace(/^\+/, ''))
    .join(',');

/** A partner company: `tenant_id` is the token's `custom:tenant_id`; `operations` what its partners may call. */
export const PARTNER_TENANTS: Resource = {
  noun: 'partner tenant',
  table: 'partner_tenants',
  path: '/api/partner-tenants',
  itemParam: 'id',
  fields: {
    tenant_id: { kind: 'string', required: true, maxLength: 64 },
    name: { kind: 'string', required: true },
    status: status(),
    operations: {
      kind: 'string',
      default: PARTNER_OPERATIONS.join(','),
      text: { problem: operationsProblem, normalise: normaliseOperations },
    },
  },
  filters: ['status', 'tenant_id'],
  list: 'paged',
  deletion: 'soft',
  operations: ALL,
};

/** A retail product of a tenant: its currency, the trunk and sell deck its calls use, its access numbers. */
export const PARTNER_PRODUCTS: Resource = {
  noun: 'partner product',
  table: 'partner_products',
  path: '/api/partner-products',
  itemParam: 'id',
  fields: {
    partner_tenant_id: { kind: 'integer', required: true, min: 1, references: 'partner_tenants' },
    product_id: { kind: 'string', required: true, maxLength: 64 },
    currency: { kind: 'currency', required: true },
    customer_trunk_id: { kind: 'integer', nullable: true, min: 1, references: 'customer_trunks' },
    rate_deck_id: { kind: 'integer', nullable: true, min: 1, references: 'rate_decks' },
    access_numbers: {
      kind: 'string',
      nullable: true,
      maxLength: 4096,
      text: { problem: accessNumbersProblem, normalise: normaliseAccessNumbers },
    },
    requires_pin: flag(true),
    status: status(),
  },
  filters: ['partner_tenant_id', 'status'],
  list: 'paged',
  deletion: 'soft',
  operations: ALL,
};

export const RESOURCES: readonly Resource[] = [
  CUSTOMER_ACCOUNTS,
  CUSTOMER_TRUNKS,
  CARRIER_TRUNKS,
  CARRIER_TRUNK_IPS,
  FAILOVER_RULES,
  TRUNK_IP_AUTH,
  SIP_REGISTRATIONS,
  BLOCK_RULES,
  RATE_DECKS,
  RATE_DECK_RATES,
  LCR_CONFIG,
  EXCHANGE_RATES,
  OPENSIPS_NODES,
  PARTNER_TENANTS,
  PARTNER_PRODUCTS,
];
