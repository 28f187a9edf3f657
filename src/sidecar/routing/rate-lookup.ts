import type { DecisionEngine } from '../engine/engine.js';
import { formatNano } from '../../core/money/nano.js';
import type { Currency, RateType } from '../../core/snapshot/schema.js';

export interface RateLookupRequest {
  rate_deck_id: number;
  /** Normalised digits. */
  destination: string;
}

export interface RateLookupAnswer {
  rate_deck_id: number;
  prefix: string;
  destination_name: string;
  rate_per_minute: string;
  rate_type: RateType;
  currency: Currency;
  /** Added: when the matched row took effect, and its increments (null = the trunk's). */
  effective_at: string;
  billing_increment_initial: number | null;
  billing_increment_step: number | null;
}

export type RateLookupResult = { found: true; rate: RateLookupAnswer } | { found: false; reason: 'unknown_rate_deck' | 'no_match' };

/** Row of the longest prefix of `digits` in force at `at` in one deck (by index), or -1; its length is engine.lcr.matcher.matchedLength(deck). */
export function matchDeckRow(engine: DecisionEngine, deck: number, digits: string, at: number): number {
  const { matcher } = engine.lcr;
  matcher.begin();
  matcher.want(deck);
  matcher.walk(engine.snapshot.rates, digits, at);
  return matcher.match(deck);
}

/** Longest prefix in force in one deck, as billing would match it. */
export function lookupRate(engine: DecisionEngine, request: RateLookupRequest, now: number): RateLookupResult {
  const { snapshot, lcr } = engine;
  const deckIndex = snapshot.deckById.get(request.rate_deck_id);
  if (deckIndex === undefined) return { found: false, reason: 'unknown_rate_deck' };
  const { matcher } = lcr;
  const row = matchDeckRow(engine, deckIndex, request.destination, now);
  if (row < 0) return { found: false, reason: 'no_match' };
  const rates = snapshot.rates;
  return {
    found: true,
    rate: {
      rate_deck_id: request.rate_deck_id,
      prefix: request.destination.slice(0, matcher.matchedLength(deckIndex)),
      destination_name: rates.destinationNames[rates.destination[row]],
      rate_per_minute: formatNano(rates.rateNano[row]),
      rate_type: rates.rateType[row] === 1 ? 'per_call' : 'per_minute',
      currency: snapshot.decks[deckIndex].currency,
      effective_at: new Date(rates.effectiveAt[row]).toISOString(),
      billing_increment_initial: rates.incrementInitial[row] || null,
      billing_increment_step: rates.incrementStep[row] || null,
    },
  };
}
