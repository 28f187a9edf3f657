import type { DecisionEngine } from '../engine/engine.js';
import { exchangeRateInForce } from '../../core/lcr/lcr.js';
import { POWERS_OF_TEN, mulNano } from '../../core/money/nano.js';
import type { CustomerTrunk } from '../../core/snapshot/model.js';
import type { CallPrice } from '../../core/rating/cost-bound.js';

/**
 * A call's price for admission: the sell rate for the DNIS (the trunk's deck, or a retail call's product's), converted to the account's currency,
 * with the rounding slack that makes its cost bound (core/rating/cost-bound.ts) an upper bound on what
 * rating will charge. Integer micro/nano arithmetic: this runs on every INVITE.
 */

export type PriceResult = { ok: true; price: CallPrice } | { ok: false; reason: 'no_rate_deck' | 'no_rate' | 'no_exchange_rate' };

/**
 * `dnisNode`: the number's rate-trie node when known (knownNode), else -1. `sellDeck`: the deck the call sells
 * with (sellDeckOf: a retail call's product's), the trunk's assigned one unless given.
 */
export function priceCall(
  engine: DecisionEngine,
  trunk: CustomerTrunk,
  accountCurrency: string,
  dnis: string,
  now: number,
  dnisNode = -1,
  sellDeck = trunk.sellDeck,
): PriceResult {
  if (sellDeck < 0) return { ok: false, reason: 'no_rate_deck' };
  const row = engine.lcr.rowNow(sellDeck, dnis, now, dnisNode);
  if (row < 0) return { ok: false, reason: 'no_rate' };
  const { snapshot } = engine;
  const rates = snapshot.rates;
  // A trunk's billing unit in micro-units, from the table: `10 ** (6 - precision)` is a call to pow() per INVITE.
  const unitMicro = POWERS_OF_TEN[6 - trunk.decimalPrecision];
  let rateNano = rates.rateNano[row];
  let slackMicro = unitMicro;
  const deckCurrency = snapshot.decks[sellDeck].currency;
  if (deckCurrency !== accountCurrency) {
    const fx = exchangeRateInForce(snapshot, deckCurrency, accountCurrency as typeof deckCurrency, now);
    if (fx === null) return { ok: false, reason: 'no_exchange_rate' };
    // Rating converts by the exact rate (or divides by the opposite pair's), the bound by its nano-units. The
    // inverse of the opposite pair is rounded to the nearest nano-unit, so up to half of one below the exact one
    // (1/1.1 is 0.909090909): +1 makes it an upper bound, or that shortfall times a premium rate's minutes
    // made the CDR cost more than was reserved. +1 on the product: it is rounded at 1e-9 too.
    const fxUpNano = fx.inverse ? fx.rateNano + 1 : fx.rateNano;
    rateNano = mulNano(rateNano, fxUpNano) + 1;
    // The deck-currency rounding, scaled by the exchange rate, then the final one.
    slackMicro = unitMicro * (1 + Math.ceil(fxUpNano / 1e9));
  }
  return {
    ok: true,
    price: {
      rateNano,
      perCall: rates.rateType[row] === 1,
      initial: rates.incrementInitial[row] || trunk.incrementInitial,
      step: rates.incrementStep[row] || trunk.incrementStep,
      slackMicro,
    },
  };
}
