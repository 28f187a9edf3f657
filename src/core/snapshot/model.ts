import type { RetailIndex } from './retail-index.js';
import type { CidrIndex } from '../net/cidr-index.js';
import type { DigestAlgorithm } from '../digest/digest.js';
import type { PrefixTrie } from '../trie/prefix-trie.js';
import type { BillingMode, Currency, DecimalPrecision, FailoverAction, MultiIpMode, RoundingDirection, Status } from './schema.js';

/**
 * The compiled snapshot: indexes shaped for the per-call questions. Plain data
 * (typed arrays, arrays, Maps of plain objects) so the compile worker can hand
 * it to the main thread with postMessage, the big arrays transferred rather
 * than copied. Entities are referred to by dense index (trunk 0..n-1), ids are
 * kept for answers.
 */
export interface CompiledSnapshot {
  version: number;
  createdAt: string;
  createdAtMs: number;
  checksum: string;
  /** The last delta-log sequence applied: the snapshot's own, then each live change's (src/core/snapshot/live.ts). */
  deltaSeq: number;
  /** Customer account id -> the terms admission applies. */
  accounts: Map<number, CustomerAccount>;
  customerTrunks: CustomerTrunk[];
  customerTrunkById: Map<number, number>;
  carriers: CarrierTrunk[];
  carrierById: Map<number, number>;
  decks: RateDeck[];
  deckById: Map<number, number>;
  /** CIDR -> customer trunk indexes (active trunks of active accounts). */
  ipAuth: CidrIndex;
  /** "username\u0000domain" -> registration. */
  registrations: Map<string, SipRegistration>;
  rates: RateIndex;
  blockRules: BlockRuleIndex;
  /** "FROM>TO" -> versions, newest effective_at first. */
  exchangeRates: Map<string, ExchangeRateVersion[]>;
  /** Defaults when no lcr_config row applies. */
  defaultLcrConfig: LcrConfig;
  /** Every distinct effective_at of rate rows and exchange rates, ascending: when routing answers can change. */
  effectiveTimes: Float64Array;
  /** Access numbers and live setup_call translations (retail-index.ts); empty without the partner API. */
  retail: RetailIndex;
  counts: Record<string, number>;
}

/** A customer account's billing terms: what admission and the money path read. */
export interface CustomerAccount {
  id: number;
  status: Status;
  currency: Currency;
  billingMode: BillingMode;
  /** Prepaid accounts always; postpaid ones when auto-cutoff is on: headroom is enforced. */
  enforcesHeadroom: boolean;
  autoCutoffBehaviour: 'block_new' | 'terminate_all';
  /** Micro-units; NaN when none is set. */
  warningThresholdMicro: number;
}

/** What customer and carrier trunks share once compiled. */
export interface Trunk {
  id: number;
  name: string;
  status: Status;
  currency: Currency;
  cpsLimit: number;
  portLimit: number;
  perMinuteRateLimit: number;
  sipTrusted: boolean;
  rtpengineEnabled: boolean;
  incrementInitial: number;
  incrementStep: number;
  decimalPrecision: DecimalPrecision;
  roundingDirection: RoundingDirection;
}

export interface CustomerTrunk extends Trunk {
  accountId: number;
  accountName: string;
  accountStatus: Status;
  /** Trunk and its account both active: the only trunks that may place calls. */
  active: boolean;
  billingMode: BillingMode;
  techPrefix: string;
  /** Index of the active sell deck, -1 when none is assigned. */
  sellDeck: number;
}

export interface Gateway {
  id: number;
  /** "203.0.113.50:5060" or "[2001:db8::1]:5060": the host part of destination_uri. */
  hostPort: string;
  weight: number;
  priority: number;
}

export type CarrierEligibility = 'ok' | 'carrier_not_active' | 'no_cost_deck' | 'no_active_gateway';

export interface CarrierTrunk extends Trunk {
  multiIpMode: MultiIpMode;
  /** Index of the active cost deck, -1 when none. */
  costDeck: number;
  /** Active gateways, lowest priority first, then id. */
  gateways: Gateway[];
  eligibility: CarrierEligibility;
  failoverRules: Map<number, FailoverAction>;
}

export interface LcrConfig {
  /** lcr_config row id, null for the built-in default. */
  id: number | null;
  rateDeckId: number | null;
  blockIfCostExceedsSell: boolean;
  acceptableLossPct: string;
  acceptableLossPctNano: number;
  cacheTtlSeconds: number;
}

export interface RateDeck {
  id: number;
  name: string;
  deckType: 'customer' | 'carrier';
  currency: Currency;
  /** Customer decks: the allowlisted carriers (indexes), in carrier id order. */
  allowedCarriers: number[];
  lcrConfig: LcrConfig;
}

export interface SipRegistration {
  id: number;
  customerTrunk: number;
  ha1: string;
  algorithm: DigestAlgorithm;
}

/** Rate rows in trie order: per node, grouped by deck, newest effective_at first. */
export interface RateIndex {
  trie: PrefixTrie;
  deck: Int32Array;
  rateNano: Float64Array;
  effectiveAt: Float64Array;
  /** 0 per_minute, 1 per_call. */
  rateType: Uint8Array;
  incrementInitial: Uint16Array;
  incrementStep: Uint16Array;
  destination: Uint32Array;
  destinationNames: string[];
}

export const BLOCK_SCOPE_GLOBAL = 0;
export const BLOCK_SCOPE_CUSTOMER_TRUNK = 1;
export const BLOCK_SCOPE_CARRIER_TRUNK = 2;
/** Bit set on a rule that applies to the ANI / to the DNIS. */
export const BLOCKS_ANI = 1;
export const BLOCKS_DNIS = 2;

/** Active block rules, one trie for every scope; payload columns in trie order. */
export interface BlockRuleIndex {
  trie: PrefixTrie;
  ruleId: Int32Array;
  scope: Uint8Array;
  /** Dense index of the scoped trunk (customer or carrier), -1 for global. */
  scopeIndex: Int32Array;
  /** BLOCKS_ANI | BLOCKS_DNIS. */
  appliesTo: Uint8Array;
  exact: Uint8Array;
  sipCode: Int32Array;
  blockType: Uint8Array;
  /**
   * After live block-rule changes (block-rule-index.ts): the rules changed since this trie was built. Lookups
   * skip this trie's entries for `replaced` ids and walk `rules` beside it. None in an index fresh from a snapshot.
   */
  overlay?: BlockRuleOverlay;
}

export interface BlockRuleOverlay {
  /** The enforced rules among those changed (active, scope not 'route'), compiled on their own. */
  rules: BlockRuleIndex;
  /** Every rule id changed since the trie was built: created, edited, deactivated or deleted. */
  replaced: ReadonlySet<number>;
  /** The rule ids the built trie holds (shared by every later overlay on it). */
  builtIds: ReadonlySet<number>;
  /** How many rules the index enforces in all. */
  count: number;
}

export const BLOCK_TYPES = ['ani', 'dnis', 'number_code'] as const;

export interface ExchangeRateVersion {
  effectiveAt: number;
  rate: string;
  rateNano: number;
}

/** The key of a SIP registration in CompiledSnapshot.registrations. */
export function registrationKey(username: string, domain: string): string {
  return `${username}\u0000${domain.toLowerCase()}`;
}
