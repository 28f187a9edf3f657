import type { DecisionEngine } from '../engine/engine.js';
import { rateTypeOf } from '../routing/lcr-lookup.js';
import { exchangeRateInForce, sellDeckOf } from '../../core/lcr/lcr.js';
import { formatFixed } from '../../core/money/nano.js';
import { billableSeconds, convertMoney, rateCallNano } from '../../core/rating/rating.js';
import type { Trunk } from '../../core/snapshot/model.js';
import type { Currency } from '../../core/snapshot/schema.js';
import type { RatedSide } from '../journal/rated-cdr.js';

/**
 * Rating one finished call (POST /api/cdrs/ingest): the customer cost from the
 * trunk's sell deck and the vendor cost from the carrier's cost deck, each by
 * longest prefix in force when the call started, with the rate row's billing
 * increments (else the trunk's), charged once per answered call for per_call
 * rows, and rounded once to the trunk's precision and direction. The account
 * is charged the customer cost converted to its currency (rounded again, the
 * same way). A call is answered when it has an answer_time, however short: one
 * that lasted under a second (duration 0) is charged like any other, its first
 * increment or its per_call charge, on both sides. Unanswered calls cost zero
 * and need no rate. Integer arithmetic throughout (core/rating/rating.ts),
 * proven equal to the decimal path by test.
 */
export interface CallRecord {
  sip_call_id: string;
  customer_trunk_id: number;
  carrier_trunk_id: number;
  carrier_gateway_id: number;
  ani: string;
  dnis: string;
  /** Epoch ms. */
  startMs: number;
  answerMs: number | null;
  endMs: number;
  duration_seconds: number;
  sip_response_code: number | null;
  /**
   * A call through a partner product's access number: the retail account call/decide (or call/auth) named,
   * which the script keeps with the dialog. Needed when the call no longer holds its reservation (released,
   * or expired) by the time its CDR comes: the reservation is otherwise what says whose the call is.
   */
  retail_account_id?: number | null;
  /**
   * That call's sell deck when its partner product names one (call/auth's `customer_rate_deck_id`, kept with
   * the dialog as the retail account is): the customer side is rated with it instead of the trunk's assigned
   * deck, as admission priced it. Absent or null: the trunk's.
   */
  customer_rate_deck_id?: number | null;
}

/** One side's rating, kept as it is in the CDR's record (journal/rated-cdr.ts). */
export type { RatedSide } from '../journal/rated-cdr.js';

export interface RatedCall {
  accountId: number;
  customer: RatedSide;
  vendor: RatedSide;
  /** Customer cost in the currency of the balance it is charged to (rateCallRecord's `billed`). */
  accountCharge: string;
  accountCurrency: Currency;
}

export type RatingResult = { ok: true; rated: RatedCall } | { ok: false; message: string };

function rateSide(
  engine: DecisionEngine,
  trunk: Trunk,
  deck: number,
  dnis: string,
  row: number,
  answered: boolean,
  durationSeconds: number,
): RatedSide | string {
  const { snapshot } = engine;
  // One object per side, its fields in one order (no spread of a partial one): this runs twice per CDR.
  const rateDeckId = deck >= 0 ? snapshot.decks[deck].id : null;
  const currency = deck >= 0 ? snapshot.decks[deck].currency : trunk.currency;
  const precision = trunk.decimalPrecision;
  const rounding = trunk.roundingDirection;
  if (!answered) return { rateDeckId, billableSeconds: 0, cost: formatFixed(0, precision, precision), currency, precision, rounding };
  if (deck < 0) return 'has no rate deck';
  if (row < 0) return `has no rate for ${dnis} in deck ${snapshot.decks[deck].id} at the call's start`;
  const rates = snapshot.rates;
  const increments = {
    initial: rates.incrementInitial[row] || trunk.incrementInitial,
    step: rates.incrementStep[row] || trunk.incrementStep,
  };
  const rateType = rateTypeOf(engine, row);
  return {
    rateDeckId,
    billableSeconds: rateType === 'per_call' ? durationSeconds : billableSeconds(durationSeconds, increments),
    cost: rateCallNano(rates.rateNano[row], rateType, durationSeconds, increments, precision, rounding),
    currency,
    precision,
    rounding,
  };
}

/**
 * `billed`: whose balance the call is charged to: the trunk's customer account (its currency), or for a call
 * through a partner product's access number the retail account (the product's currency, which is its trunk's:
 * admission reserved in it). The sell deck (the trunk's, or the one the CDR names: its product's) may be in
 * another currency than either: converted.
 */
export function rateCallRecord(engine: DecisionEngine, record: CallRecord, billed: 'account' | 'retail' = 'account'): RatingResult {
  const { snapshot } = engine;
  const trunkIndex = snapshot.customerTrunkById.get(record.customer_trunk_id);
  if (trunkIndex === undefined)
    return { ok: false, message: `customer_trunk_id ${record.customer_trunk_id} is not a known customer trunk` };
  const carrierIndex = snapshot.carrierById.get(record.carrier_trunk_id);
  if (carrierIndex === undefined) return { ok: false, message: `carrier_trunk_id ${record.carrier_trunk_id} is not a known carrier trunk` };
  const trunk = snapshot.customerTrunks[trunkIndex];
  const carrier = snapshot.carriers[carrierIndex];
  // The deck the call was sold with (its product's), while the snapshot has it. A CDR comes after its call: one
  // whose deck has gone since (its product moved to another deck and the old one was deleted while the call was
  // up) is rated with its trunk's deck as it stands, as a wholesale call is, rather than refused and parked in
  // the spool for a deck that never comes back; the CDR records the deck it was rated with.
  const named = record.customer_rate_deck_id ?? null;
  const namedDeck = named === null ? -1 : sellDeckOf({ sellDeckId: named }, snapshot, -1);
  const sellDeck = namedDeck >= 0 ? namedDeck : trunk.sellDeck;
  // Both decks' rows in one walk down the number, in force when the call started (none needed for a call not answered).
  // Answered is answer_time, not the duration: a call that connected for under a second reports 0 seconds.
  const answered = record.answerMs !== null;
  const rows = engine.lcr.pair;
  if (!answered) rows.fill(-1);
  else engine.lcr.rowsAt(sellDeck, carrier.costDeck, record.dnis, record.startMs);
  const customer = rateSide(engine, trunk, sellDeck, record.dnis, rows[0], answered, record.duration_seconds);
  if (typeof customer === 'string') return { ok: false, message: `customer trunk ${trunk.id} ${customer}` };
  const vendor = rateSide(engine, carrier, carrier.costDeck, record.dnis, rows[1], answered, record.duration_seconds);
  if (typeof vendor === 'string') return { ok: false, message: `carrier trunk ${carrier.id} ${vendor}` };

  const account = snapshot.accounts.get(trunk.accountId)!;
  const accountCurrency = billed === 'retail' ? trunk.currency : account.currency;
  let accountCharge = customer.cost;
  if (accountCurrency !== customer.currency) {
    const fx = exchangeRateInForce(snapshot, customer.currency, accountCurrency, record.startMs);
    if (fx === null)
      return { ok: false, message: `no exchange rate ${customer.currency}->${accountCurrency} in force at the call's start` };
    accountCharge = convertMoney(customer.cost, fx.rate, fx.inverse, trunk.decimalPrecision, trunk.roundingDirection);
  }
  return { ok: true, rated: { accountId: account.id, customer, vendor, accountCharge, accountCurrency } };
}
