import { markCarrierBlocks } from '../blocking/block-rules.js';
import { addPercentFloor, mulNano } from '../money/nano.js';
import type { CarrierEligibility, CompiledSnapshot, LcrConfig } from '../snapshot/compile.js';
import type { Currency } from '../snapshot/schema.js';
import { DeckMatcher } from './rate-match.js';

/**
 * Least-cost routing over the compiled snapshot.
 *
 * Basis of comparison: the cost of a 60-second answered call, in the customer
 * trunk's currency. For a per_minute row that is its rate, for a per_call row
 * its flat charge, so both compare by their rate value; billing increments do
 * not change a one-minute call. Costs are exact nano-units (1e-9); conversion
 * uses the newest exchange rate in force, rounded half-up at 1e-9.
 *
 * Margin protection (lcr_config for the sell deck, else the global row, else
 * block at break-even): with block_if_cost_exceeds_sell and an acceptable loss
 * of 0, a carrier is excluded when cost >= sell; with a loss L > 0, when
 * cost > sell * (1 + L/100).
 */

export type CandidateStatus =
  | 'ok'
  | CarrierEligibility
  | 'no_rate'
  | 'no_exchange_rate'
  | 'cost_exceeds_sell'
  | 'blocked'
  | 'already_tried'
  | 'all_gateways_tried';

export interface Candidate {
  carrier: number;
  status: CandidateStatus;
  /** Position of the matched cost row in the rate index, -1 when none. */
  costRow: number;
  /** Cost in the carrier deck's currency, nano-units (NaN without a rate). */
  originalCostNano: number;
  /** Cost converted to the customer currency, nano-units (NaN when unknown). */
  costNano: number;
  exchangeRate: ExchangeRateInForce | null;
  blockRuleId: number | null;
}

export interface ExchangeRateInForce {
  /** Decimal string as configured (or its inverse's source when `inverse`). */
  rate: string;
  rateNano: number;
  /** True when only the opposite pair exists and we divide by it. */
  inverse: boolean;
}

export interface LcrResult {
  sellDeck: number;
  sellRow: number;
  sellNano: number;
  config: LcrConfig | null;
  /** Allowed candidates first (cheapest, then lowest carrier id), then the excluded ones. */
  candidates: Candidate[];
  noMatchReason: string | null;
}

export interface LcrQuery {
  trunk: number;
  /** Normalised DNIS, tech prefix already stripped. */
  dnis: string;
  ani: string;
  triedCarrierIds: readonly number[];
  triedGatewayIds: readonly number[];
  now: number;
}

export class LcrEngine {
  readonly matcher: DeckMatcher;
  private readonly blockStamp: Int32Array;
  private readonly blockedRule: Int32Array;
  private generation = 0;

  constructor(private readonly snapshot: CompiledSnapshot) {
    this.matcher = new DeckMatcher(snapshot.decks.length);
    this.blockStamp = new Int32Array(snapshot.carriers.length);
    this.blockedRule = new Int32Array(snapshot.carriers.length);
  }

  evaluate(query: LcrQuery): LcrResult {
    const { snapshot, matcher } = this;
    const trunk = snapshot.customerTrunks[query.trunk];
    const result: LcrResult = { sellDeck: trunk.sellDeck, sellRow: -1, sellNano: NaN, config: null, candidates: [], noMatchReason: null };
    if (trunk.sellDeck < 0) {
      result.noMatchReason = 'no_rate_deck_assigned';
      return result;
    }
    const sellDeck = snapshot.decks[trunk.sellDeck];
    result.config = sellDeck.lcrConfig;
    matcher.begin();
    matcher.want(trunk.sellDeck);
    const allowed = sellDeck.allowedCarriers;
    for (let i = 0; i < allowed.length; i++) {
      const carrier = snapshot.carriers[allowed[i]];
      if (carrier.eligibility === 'ok') matcher.want(carrier.costDeck);
    }
    matcher.walk(snapshot.rates, query.dnis, query.now);
    result.sellRow = matcher.match(trunk.sellDeck);
    if (result.sellRow < 0) {
      result.noMatchReason = 'no_active_rate_match';
      return result;
    }
    if (allowed.length === 0) {
      result.noMatchReason = 'empty_allowlist';
      return result;
    }
    const sellNano = snapshot.rates.rateNano[result.sellRow];
    result.sellNano = sellNano;
    const maxCostNano = marginCeiling(sellNano, sellDeck.lcrConfig);
    const generation = ++this.generation;
    const anyBlocked = markCarrierBlocks(snapshot.blockRules, query.ani, query.dnis, this.blockStamp, this.blockedRule, generation);

    for (let i = 0; i < allowed.length; i++) {
      const index = allowed[i];
      const carrier = snapshot.carriers[index];
      const candidate: Candidate = { carrier: index, status: 'ok', costRow: -1, originalCostNano: NaN, costNano: NaN, exchangeRate: null, blockRuleId: null };
      result.candidates.push(candidate);
      if (carrier.eligibility !== 'ok') {
        candidate.status = carrier.eligibility;
        continue;
      }
      candidate.costRow = matcher.match(carrier.costDeck);
      if (candidate.costRow < 0) {
        candidate.status = 'no_rate';
        continue;
      }
      candidate.originalCostNano = snapshot.rates.rateNano[candidate.costRow];
      const costCurrency = snapshot.decks[carrier.costDeck].currency;
      if (costCurrency === sellDeck.currency) {
        candidate.costNano = candidate.originalCostNano;
      } else {
        candidate.exchangeRate = exchangeRateInForce(snapshot, costCurrency, sellDeck.currency, query.now);
        if (candidate.exchangeRate === null) {
          candidate.status = 'no_exchange_rate';
          continue;
        }
        candidate.costNano = mulNano(candidate.originalCostNano, candidate.exchangeRate.rateNano);
      }
      if (anyBlocked && this.blockStamp[index] === generation) {
        candidate.status = 'blocked';
        candidate.blockRuleId = this.blockedRule[index];
      } else if (candidate.costNano > maxCostNano) {
        candidate.status = 'cost_exceeds_sell';
      } else if (query.triedCarrierIds.includes(carrier.id)) {
        candidate.status = 'already_tried';
      } else if (query.triedGatewayIds.length > 0 && carrier.gateways.every((gateway) => query.triedGatewayIds.includes(gateway.id))) {
        candidate.status = 'all_gateways_tried';
      }
    }
    result.candidates.sort((a, b) => rankOf(a) - rankOf(b) || compareCost(a, b) || snapshot.carriers[a.carrier].id - snapshot.carriers[b.carrier].id);
    if (result.candidates.length > 0 && result.candidates[0].status !== 'ok') result.noMatchReason = 'no_carrier_available';
    return result;
  }
}

function rankOf(candidate: Candidate): number {
  return candidate.status === 'ok' ? 0 : 1;
}

function compareCost(a: Candidate, b: Candidate): number {
  const aKnown = !Number.isNaN(a.costNano);
  const bKnown = !Number.isNaN(b.costNano);
  if (aKnown && bKnown) return a.costNano - b.costNano;
  return aKnown === bKnown ? 0 : aKnown ? -1 : 1;
}

/** The highest carrier cost (nano) the margin rules let through for this sell rate. */
export function marginCeiling(sellNano: number, config: LcrConfig): number {
  if (!config.blockIfCostExceedsSell) return Number.POSITIVE_INFINITY;
  if (config.acceptableLossPctNano === 0) return sellNano - 1; // cost >= sell is blocked
  return addPercentFloor(sellNano, config.acceptableLossPctNano);
}

/** Newest exchange rate in force for from->to, falling back to the inverse of to->from. */
export function exchangeRateInForce(snapshot: CompiledSnapshot, from: Currency, to: Currency, now: number): ExchangeRateInForce | null {
  const direct = newestInForce(snapshot, `${from}>${to}`, now);
  if (direct !== null) return { rate: direct.rate, rateNano: direct.rateNano, inverse: false };
  const opposite = newestInForce(snapshot, `${to}>${from}`, now);
  if (opposite === null) return null;
  // 1 / rate at nano precision, rounded half-up.
  const inverseNano = Number((10n ** 18n + BigInt(opposite.rateNano) / 2n) / BigInt(opposite.rateNano));
  return { rate: opposite.rate, rateNano: inverseNano, inverse: true };
}

function newestInForce(snapshot: CompiledSnapshot, pair: string, now: number): { rate: string; rateNano: number } | null {
  const versions = snapshot.exchangeRates.get(pair);
  if (versions === undefined) return null;
  for (const version of versions) if (version.effectiveAt <= now) return version;
  return null;
}

