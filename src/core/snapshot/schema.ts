import type { RetailTables } from './retail.js';
import type { RowChunks } from './row-chunks.js';
/**
 * The routing snapshot: every table the per-call decisions read, as the control
 * plane exported it at one instant. Field names are the switch API's
 * (../shared/spec/switch-api.openapi.json); the sidecar and sync/ both import
 * these types, so there is one definition of the format.
 *
 * Wire form (msgpack): an envelope whose checksum covers the header fields and
 * the payload bytes, so a receiver can refuse a snapshot before decoding the
 * (large) payload. Rate rows travel column-wise: 2M row objects would cost
 * seconds to decode and hundreds of MB; columns decode to a few typed arrays.
 */

export const SNAPSHOT_FORMAT_VERSION = 1;

export const CURRENCIES = ['AUD', 'USD'] as const;
export type Currency = (typeof CURRENCIES)[number];
export const STATUSES = ['active', 'suspended', 'closed', 'disabled', 'pending', 'superseded'] as const;
export type Status = (typeof STATUSES)[number];
export type BillingMode = 'prepaid' | 'postpaid';
export type RoundingDirection = 'up' | 'down' | 'standard';
export type DecimalPrecision = 4 | 5 | 6;
export type RateType = 'per_minute' | 'per_call';
export type MultiIpMode = 'load_balance' | 'failover';
export type FailoverAction = 'retry_next' | 'return_to_customer' | 'block_new' | 'terminate_all';
export type BlockScope = 'global' | 'customer_trunk' | 'carrier_trunk' | 'route';
export type BlockType = 'ani' | 'dnis' | 'number_code';
export type MatchType = 'exact' | 'prefix';

export interface CustomerAccountRow {
  id: number;
  name: string;
  status: Status;
  currency: Currency;
  billing_mode: BillingMode;
  credit_limit: string | null;
  warning_threshold: string | null;
  auto_cutoff_enabled: boolean;
  auto_cutoff_behaviour: 'block_new' | 'terminate_all';
}

/** What customer and carrier trunks share: identity, limits, SIP policy and billing rules. */
export interface TrunkRow {
  id: number;
  name: string;
  status: Status;
  currency: Currency;
  cps_limit: number;
  port_limit: number;
  per_minute_rate_limit: number;
  tech_prefix: string | null;
  sip_trusted: boolean;
  rtpengine_enabled: boolean;
  billing_increment_initial: number;
  billing_increment_step: number;
  decimal_precision: DecimalPrecision;
  rounding_direction: RoundingDirection;
}

export interface CustomerTrunkRow extends TrunkRow {
  customer_account_id: number;
  billing_mode: BillingMode;
  credit_limit: string | null;
}

export interface CarrierTrunkRow extends TrunkRow {
  multi_ip_mode: MultiIpMode;
}

/** A carrier trunk's egress gateway (the contract's CarrierTrunkIP). */
export interface CarrierGatewayRow {
  id: number;
  carrier_trunk_id: number;
  ip_address: string;
  port: number;
  weight: number;
  priority: number;
  status: Status;
}

export interface TrunkIpAuthRow {
  id: number;
  trunk_type: 'customer' | 'carrier';
  trunk_id: number;
  cidr: string;
}

export interface SipRegistrationRow {
  id: number;
  customer_trunk_id: number;
  username: string;
  domain: string;
  /** HA1 = H(username:realm:password), hex. */
  password_hash: string;
  /** Any spelling the API accepts (md5, MD5, sha256, SHA-256, SHA-512-256...). */
  hash_algorithm: string;
  status: Status;
}

export interface BlockRuleRow {
  id: number;
  scope: BlockScope;
  scope_id: number | null;
  block_type: BlockType;
  pattern: string;
  match_type: MatchType;
  sip_response_code: number;
  is_active: boolean;
}

export interface RateDeckRow {
  id: number;
  name: string;
  deck_type: 'customer' | 'carrier';
  currency: Currency;
}

export interface CustomerTrunkRateDeckRow {
  id: number;
  customer_trunk_id: number;
  rate_deck_id: number;
  is_active: boolean;
  assigned_at: string;
}

export interface CarrierTrunkRateDeckRow {
  id: number;
  carrier_trunk_id: number;
  rate_deck_id: number;
  is_active: boolean;
  assigned_at: string;
}

export interface AllowlistRow {
  id: number;
  rate_deck_id: number;
  carrier_trunk_id: number;
}

export interface FailoverRuleRow {
  id: number;
  carrier_trunk_id: number;
  sip_code: number;
  action: FailoverAction;
}

export interface LcrConfigRow {
  id: number;
  rate_deck_id: number | null;
  block_if_cost_exceeds_sell: boolean;
  acceptable_loss_pct: string;
  cache_ttl_seconds: number;
}

export interface ExchangeRateRow {
  id: number;
  from_currency: Currency;
  to_currency: Currency;
  rate: string;
  effective_at: string;
}

/** One rate row, the shape the admin API and the JSON description use. */
export interface RateRow {
  rate_deck_id: number;
  prefix: string;
  destination_name: string;
  rate_per_minute: string;
  rate_type: RateType;
  billing_increment_initial: number | null;
  billing_increment_step: number | null;
  effective_at: string;
}

/**
 * Rate rows column-wise; row i is the i-th element of every column. Prefixes
 * and rates are each one concatenated string with end offsets: two strings
 * decode in milliseconds where four million small ones took most of a second
 * and hundreds of MB (see rowPrefix/rowRate in codec.ts).
 */
export interface RateColumns {
  rate_deck_id: Uint32Array;
  /** Every row's prefix digits, concatenated. */
  prefix_digits: string;
  /** Row i's prefix ends (exclusive) at prefix_end[i] and starts at prefix_end[i - 1] (0 for row 0). */
  prefix_end: Uint32Array;
  /** Index into destination_names (names repeat across thousands of prefixes). */
  destination_name: Uint32Array;
  destination_names: string[];
  /** Every row's rate as decimal text, exact as entered, concatenated. */
  rate_text: string;
  rate_end: Uint32Array;
  /** 0 = per_minute, 1 = per_call. */
  rate_type: Uint8Array;
  /** 0 = not set on the row (the trunk's increments apply). */
  billing_increment_initial: Uint16Array;
  billing_increment_step: Uint16Array;
  /** Epoch milliseconds. */
  effective_at: Float64Array;
}

/** The partner API's retail tables (retail.ts) are optional: snapshots from before them stay whole. */
export interface SnapshotTables extends RetailTables {
  customer_accounts: CustomerAccountRow[];
  customer_trunks: CustomerTrunkRow[];
  trunk_ip_auth: TrunkIpAuthRow[];
  sip_registrations: SipRegistrationRow[];
  block_rules: BlockRuleRow[];
  rate_decks: RateDeckRow[];
  rate_deck_rates: RateColumns;
  customer_trunk_rate_decks: CustomerTrunkRateDeckRow[];
  carrier_trunk_rate_decks: CarrierTrunkRateDeckRow[];
  rate_deck_allowlist: AllowlistRow[];
  carrier_trunks: CarrierTrunkRow[];
  carrier_gateways: CarrierGatewayRow[];
  failover_rules: FailoverRuleRow[];
  lcr_config: LcrConfigRow[];
  exchange_rates: ExchangeRateRow[];
  /**
   * Not a table: the last delta-log sequence this snapshot includes (src/core/protocol/deltas.ts); the node
   * applies the deltas after it. Absent (0) in snapshots built without a delta log (files, fixtures).
   */
  delta_seq?: number;
}

/**
 * Every table but the rate rows: what a node keeps beside the compiled snapshot to apply deltas to. The CIDRs
 * (100k rows in the wholesale world) are held in chunks, so a change to one copies one chunk (row-chunks.ts).
 */
export type SmallTables = Omit<SnapshotTables, 'rate_deck_rates' | 'trunk_ip_auth'> & { trunk_ip_auth: RowChunks<TrunkIpAuthRow> };

/** The readable description (JSON) the CLI turns into a snapshot: rates as rows. */
export type SnapshotDescription = Omit<SnapshotTables, 'rate_deck_rates'> & { rate_deck_rates: RateRow[] };

export interface SnapshotHeader {
  format_version: number;
  /** Monotonically increasing; a node only accepts a version newer than the one it serves. */
  version: number;
  /** ISO 8601 UTC. */
  created_at: string;
  /** Hex SHA-256 over the header fields and the payload bytes (see snapshotChecksum). */
  checksum: string;
}

export interface SnapshotEnvelope extends SnapshotHeader {
  /** msgpack-encoded SnapshotTables. */
  payload: Uint8Array;
}

export interface Snapshot extends SnapshotHeader {
  tables: SnapshotTables;
}
