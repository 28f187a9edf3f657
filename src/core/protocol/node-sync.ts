import type { Currency, DecimalPrecision, RoundingDirection } from '../snapshot/schema.js';

/**
 * The node <-> centre money protocol, one round trip at a time per node
 * (POST /api/ledger/node-sync on the control plane). A round carries the
 * node's rated CDRs to settle and its lease asks; the answer says which CDRs
 * the centre has settled and what lease the node now holds for every entity
 * the round touched. One round at a time keeps both sides' figures exact:
 * the node never sees a lease figure from before a settlement it already
 * counted (see CentreLink).
 *
 * Amounts are decimal strings in the entity's currency.
 */
/**
 * 'retail': a partner API retail account (issue 19), billed for calls through its product's access numbers;
 * the centre settles and leases it like a prepaid customer account, in its product's currency.
 */
export type EntityType = 'customer' | 'carrier' | 'retail';

/** A rated CDR as the node settles it with the centre (the CDR resource plus what the ledger needs). */
export interface SettlementCdr {
  sip_call_id: string;
  node_cdr_id: number;
  customer_trunk_id: number;
  customer_account_id: number;
  carrier_trunk_id: number;
  carrier_gateway_id: number;
  ani: string;
  dnis: string;
  start_time: string;
  answer_time: string | null;
  end_time: string;
  duration_seconds: number;
  sip_response_code: number | null;
  billable_duration_customer: number;
  billable_duration_vendor: number;
  customer_rate_deck_id: number | null;
  carrier_rate_deck_id: number | null;
  customer_cost: string;
  customer_currency: Currency;
  customer_decimal_precision: DecimalPrecision;
  customer_rounding_direction: RoundingDirection;
  vendor_cost: string;
  vendor_currency: Currency;
  vendor_decimal_precision: DecimalPrecision;
  vendor_rounding_direction: RoundingDirection;
  /** The customer cost in the account's currency: what the account is debited. */
  account_charge: string;
  account_currency: Currency;
  created_at: string;
  /**
   * Of `account_charge`, what no reservation at the node covered (issue 17, finding 6): all of it for a CDR
   * with no live reservation (never admitted, refused, or expired), the charge beyond it for a call that ran
   * past what was reserved; "0.00" when covered, and for accounts not held to a limit. Billed all the same;
   * the centre records it per account. Absent from nodes older than the field: not known.
   */
  uncovered?: string | null;
  /**
   * The partner retail account the call is billed to (a call through a product's access number): the centre
   * debits it, not `customer_account_id` (the product's trunk's account), and lists the CDR in its
   * call_history. Absent or null: a wholesale call.
   */
  retail_account_id?: number | null;
}

export interface LeaseAsk {
  entity_type: EntityType;
  entity_id: number;
  /** More lease wanted ("0" to just learn the current figures). */
  want: string;
  /**
   * Of `want`, what a call waiting on this round needs ("0" for a top-up no call waits on). With it, the
   * centre grants the need (if the headroom has it) and beyond it at most this node's share of the headroom
   * (with `per_call`; without, half), so that a small balance is not taken whole by the first node to ask
   * while calls on the others are refused; an ask it cannot fill recalls other nodes' unused lease. Absent
   * or null: up to the whole headroom.
   */
  need?: string | null;
  /**
   * What one call of those the node is admitting on this entity reserves (its last). The centre leases in
   * whole calls of this size, and leases a node nothing beyond a waiting call's need once the headroom is
   * short of a few such calls per node (docs/money-path.md). Absent or null (an older node): as before.
   */
  per_call?: string | null;
  /** Unused lease handed back. */
  give_back: string;
  /**
   * This ask is the node's answer to a recall of the entity it was sent: `give_back` is all it could spare
   * after acting on it. false: the round was built without one (it may have been in flight as the recall was
   * made, so it cannot say what the node has to spare). Absent (an older node): any ask is taken as the answer.
   */
  answers_recall?: boolean | null;
}

export interface NodeSyncRequest {
  /** The node's hostname as registered in opensips_nodes. */
  node: string;
  settlements: SettlementCdr[];
  leases: LeaseAsk[];
}

export interface LeaseState {
  entity_type: EntityType;
  entity_id: number;
  /** The node's whole lease after this round. */
  granted: string;
  /** What the entity may still spend beyond every node's lease. */
  headroom: string;
  /**
   * The ask was short of its need and the centre has recalled other nodes' unused lease of the entity at once
   * (over the live channel): a call waiting on this round may wait a moment for the `refresh` that follows
   * (docs/money-path.md, "The money channel"). Absent: no recall under way.
   */
  recalling?: boolean;
}

export interface NodeSyncReply {
  /** sip_call_ids now settled at the centre (including ones it had settled before). */
  settled: string[];
  /** Of those, CDRs recorded without a debit: the centre does not know their account. */
  unbilled: string[];
  leases: LeaseState[];
  /**
   * How long this node's leases stay valid without another round (seconds). The node stops admitting on
   * them once that long has passed since its last answered round (until a round confirms them again); the
   * centre takes back the leases of a node it has not heard from for longer (plus a grace), so credit
   * leased to a node that died goes back to its account. Absent (an older centre): valid indefinitely.
   */
  lease_valid_seconds?: number;
  /**
   * Entities whose unused lease this node is to hand back in its next round: a call on another node could
   * not be leased what it needed while this node held some. What this node's live calls hold stays. Absent:
   * none (and from an older centre).
   */
  recall?: LeaseRecall[];
}

/** An entity the centre wants this node's unused lease of back. */
export interface LeaseRecall {
  entity_type: EntityType;
  entity_id: number;
}

/**
 * The most lease asks one round carries: the centre refuses a round with more (400 invalid_field), and a node
 * with more entities to ask after (a lapse or a restart asks after every lease it holds) sends them in the rounds
 * that follow at once.
 */
export const MAX_LEASE_ASKS = 5000;

/** The centre's default, and what a node assumes before its first answered round. */
export const DEFAULT_LEASE_VALID_SECONDS = 900;

/** When the centre takes back a silent node's leases: its validity, plus a fifth of it for rounds in flight. */
export function leaseReclaimSeconds(validSeconds: number): number {
  return validSeconds * 1.2;
}
