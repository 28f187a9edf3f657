import type { DecisionEngine } from '../engine/engine.js';
import { exchangeRateInForce } from '../../core/lcr/lcr.js';
import { nanoToMicroCeil } from '../../core/money/micro.js';
import { mulNano } from '../../core/money/nano.js';
import type { CustomerTrunk } from '../../core/snapshot/model.js';
import { billableSeconds } from '../../core/rating/rating.js';

/**
 * What a call may cost, for admission: the trunk's sell rate for the DNIS,
 * converted to the account's currency, as an upper bound on what rating will
 * charge for a given duration (rating rounds once in the deck's currency and
 * once more after conversion, each by at most one unit of the trunk's
 * precision: the bound adds those units). Integer micro/nano arithmetic: this
 * runs on every INVITE.
 *
 * Prepaid platforms reserve for a capped call and tell the proxy how long the
 * reservation lasts: `affordable` gives the longest billable duration whose
 * bound fits in what the account has, up to the admission duration.
 */
export interface CallPrice {
  /** Rate in the account's currency, nano-units per minute (per_minute) or per call (per_call). */
  rateNano: number;
  perCall: boolean;
  initial: number;
  step: number;
  /** Worst-case rounding, micro-units. */
  slackMicro: number;
}

export type PriceResult = { ok: true; price: CallPrice } | { ok: false; reason: 'no_rate_deck' | 'no_rate' | 'no_exchange_rate' };

export function priceCall(engine: DecisionEngine, trunk: CustomerTrunk, accountCurrency: string, dnis: string, now: number): PriceResult {
  if (trunk.sellDeck < 0) return { ok: false, reason: 'no_rate_deck' };
  const row = engine.lcr.rowNow(trunk.sellDeck, dnis, now);
  if (row < 0) return { ok: false, reason: 'no_rate' };
  const { snapshot } = engine;
  const rates = snapshot.rates;
  const unitMicro = 10 ** (6 - trunk.decimalPrecision);
  let rateNano = rates.rateNano[row];
  let slackMicro = unitMicro;
  const deckCurrency = snapshot.decks[trunk.sellDeck].currency;
  if (deckCurrency !== accountCurrency) {
    const fx = exchangeRateInForce(snapshot, deckCurrency, accountCurrency as typeof deckCurrency, now);
    if (fx === null) return { ok: false, reason: 'no_exchange_rate' };
    // +1 nano: the converted rate is rounded at 1e-9; the bound must not fall below it.
    rateNano = mulNano(rateNano, fx.rateNano) + 1;
    // The deck-currency rounding, scaled by the exchange rate, then the final one.
    slackMicro = unitMicro * (1 + Math.ceil(fx.rateNano / 1e9));
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

/** Upper bound, micro-units, of what a call billed for `billable` seconds costs. */
export function costBoundMicro(price: CallPrice, billable: number): number {
  if (billable === 0) return 0;
  const nano = price.perCall ? price.rateNano : Math.ceil((price.rateNano * billable) / 60);
  return nanoToMicroCeil(nano) + price.slackMicro;
}

export interface Affordable {
  /** Longest call, seconds (a billable boundary). */
  maxDurationSeconds: number;
  /** What to reserve for it, micro-units. */
  amountMicro: number;
}

/** The longest call up to `capSeconds` whose cost bound fits in `availableMicro`; null when not even the first increment does. */
export function affordable(price: CallPrice, availableMicro: number, capSeconds: number): Affordable | null {
  const capBillable = billableSeconds(capSeconds, price);
  const capCost = costBoundMicro(price, capBillable);
  if (capCost <= availableMicro || price.perCall || price.rateNano === 0) {
    return capCost <= availableMicro ? { maxDurationSeconds: capSeconds, amountMicro: capCost } : null;
  }
  if (costBoundMicro(price, price.initial) > availableMicro) return null;
  // Largest billable B = initial + k*step with costBound(B) <= available; the estimate is exact up to float error, so step down to be sure.
  const seconds = Math.floor(((availableMicro - price.slackMicro) * 1000 * 60) / price.rateNano);
  let k = Math.max(0, Math.floor((seconds - price.initial) / price.step));
  while (k > 0 && costBoundMicro(price, price.initial + k * price.step) > availableMicro) k--;
  const billable = price.initial + k * price.step;
  return { maxDurationSeconds: Math.min(billable, capSeconds), amountMicro: costBoundMicro(price, billable) };
}
