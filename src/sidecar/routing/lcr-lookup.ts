import { Decimal } from '../../core/money/decimal.js';
import type { DecisionEngine } from '../engine/engine.js';
import { formatNano } from '../../core/money/nano.js';
import type { Currency, RateType } from '../../core/snapshot/schema.js';
import { marginCeiling, type Candidate, type LcrResult } from '../../core/lcr/lcr.js';

/** POST /api/lcr/lookup: the whole candidate list with the reason for each verdict. */
export interface LcrLookupRequest {
  customer_trunk_id: number;
  /** Normalised DNIS as call/route receives it (tech prefix already stripped). */
  dnis: string;
  ani: string;
}

export interface LcrCandidateView {
  carrier_trunk_id: number;
  carrier_name: string;
  original_cost: string | null;
  original_currency: Currency;
  /** Absent for a carrier without a rate: the schema types it as a rate type, never null (contract note 45). */
  original_rate_type?: RateType;
  converted_cost: string | null;
  billing_increment_initial: number;
  billing_increment_step: number;
  margin_ok: boolean;
  /** The prose example's fields, beside the schema's. */
  cost: string | null;
  sell: string;
  margin_pct: string | null;
  allowed: boolean;
  reason: string;
  exchange_rate: string | null;
  block_rule_id: number | null;
}

export interface LcrLookupView {
  customer_trunk_id: number;
  dnis: string;
  customer_currency: Currency;
  customer_rate: string | null;
  customer_rate_type: RateType | null;
  customer_billing_increment_initial: number;
  customer_billing_increment_step: number;
  matched_prefix: string | null;
  config: {
    id: number | null;
    rate_deck_id: number | null;
    block_if_cost_exceeds_sell: boolean;
    acceptable_loss_pct: string;
    cache_ttl_seconds: number;
  } | null;
  carriers: LcrCandidateView[];
  no_match_reason: string | null;
}

const RATE_TYPES: readonly RateType[] = ['per_minute', 'per_call'];

export function rateTypeOf(engine: DecisionEngine, row: number): RateType {
  return RATE_TYPES[engine.snapshot.rates.rateType[row]];
}

/** (sell - cost) / sell as a percentage with 2 decimals; null when either is unknown or sell is 0. */
export function marginPct(sellNano: number, costNano: number): string | null {
  if (Number.isNaN(costNano) || Number.isNaN(sellNano) || sellNano === 0) return null;
  return new Decimal(sellNano - costNano).div(sellNano).mul(100).toFixed(2, Decimal.ROUND_HALF_UP);
}

export function candidateMarginOk(result: LcrResult, candidate: Candidate): boolean {
  if (Number.isNaN(candidate.costNano) || result.config === null) return false;
  const ceiling = result.config.blockIfCostExceedsSell ? marginCeiling(result.sellNano, result.config) : result.sellNano - 1;
  return candidate.costNano <= ceiling;
}

export function lcrLookup(engine: DecisionEngine, trunkIndex: number, request: LcrLookupRequest, now: number): LcrLookupView {
  const { snapshot } = engine;
  const trunk = snapshot.customerTrunks[trunkIndex];
  const result = engine.lcr.evaluate({
    trunk: trunkIndex,
    dnis: request.dnis,
    ani: request.ani,
    triedCarrierIds: [],
    triedGatewayIds: [],
    now,
  });
  const rates = snapshot.rates;
  const sell = result.sellRow >= 0 ? formatNano(result.sellNano) : null;
  const config = result.config;
  return {
    customer_trunk_id: trunk.id,
    dnis: request.dnis,
    customer_currency: trunk.sellDeck >= 0 ? snapshot.decks[trunk.sellDeck].currency : trunk.currency,
    customer_rate: sell,
    customer_rate_type: result.sellRow >= 0 ? rateTypeOf(engine, result.sellRow) : null,
    customer_billing_increment_initial:
      result.sellRow >= 0 ? rates.incrementInitial[result.sellRow] || trunk.incrementInitial : trunk.incrementInitial,
    customer_billing_increment_step: result.sellRow >= 0 ? rates.incrementStep[result.sellRow] || trunk.incrementStep : trunk.incrementStep,
    matched_prefix: result.sellRow >= 0 ? request.dnis.slice(0, engine.lcr.matcher.matchedLength(trunk.sellDeck)) : null,
    config:
      config === null
        ? null
        : {
            id: config.id,
            rate_deck_id: config.rateDeckId,
            block_if_cost_exceeds_sell: config.blockIfCostExceedsSell,
            acceptable_loss_pct: config.acceptableLossPct,
            cache_ttl_seconds: config.cacheTtlSeconds,
          },
    carriers: result.candidates.map((candidate) => {
      const carrier = snapshot.carriers[candidate.carrier];
      const row = candidate.costRow;
      const converted = Number.isNaN(candidate.costNano) ? null : formatNano(candidate.costNano);
      const view: LcrCandidateView = {
        carrier_trunk_id: carrier.id,
        carrier_name: carrier.name,
        original_cost: row >= 0 ? formatNano(candidate.originalCostNano) : null,
        original_currency: carrier.costDeck >= 0 ? snapshot.decks[carrier.costDeck].currency : carrier.currency,
        original_rate_type: row >= 0 ? rateTypeOf(engine, row) : undefined,
        converted_cost: converted,
        billing_increment_initial: row >= 0 ? rates.incrementInitial[row] || carrier.incrementInitial : carrier.incrementInitial,
        billing_increment_step: row >= 0 ? rates.incrementStep[row] || carrier.incrementStep : carrier.incrementStep,
        margin_ok: candidateMarginOk(result, candidate),
        cost: converted,
        sell: sell ?? '',
        margin_pct: marginPct(result.sellNano, candidate.costNano),
        allowed: candidate.status === 'ok',
        reason: candidate.status,
        exchange_rate: candidate.exchangeRate === null ? null : formatNano(candidate.exchangeRate.rateNano, 6),
        block_rule_id: candidate.blockRuleId,
      };
      if (view.original_rate_type === undefined) delete view.original_rate_type;
      return view;
    }),
    no_match_reason: result.noMatchReason,
  };
}
