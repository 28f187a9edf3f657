import { nanoToMicroCeil } from '../money/micro.js';
import { billableSeconds } from './rating.js';

/**
 * What a call may cost, as an upper bound on what rating will charge: admission reserves it, and a sliced
 * call buys its next slice with it. Rating rounds once in the deck's currency and once more after
 * conversion, each by at most one unit of the trunk's precision: the bound adds those units (`slackMicro`).
 * Integer micro/nano arithmetic: this runs on every INVITE.
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

/** Upper bound, micro-units, of what a call billed for `billable` seconds costs (never 0 s: billableSeconds). */
export function costBoundMicro(price: CallPrice, billable: number): number {
  if (price.perCall) return nanoToMicroCeil(price.rateNano) + price.slackMicro;
  const product = price.rateNano * billable;
  if (Number.isSafeInteger(product)) return nanoToMicroCeil(Math.ceil(product / 60)) + price.slackMicro;
  // Past 2^53 (a rate of thousands a minute for a day) the float product can round below the exact one, and the
  // bound with it: in BigInt, rounded up once to micro-units (the two ceilings above are one).
  return Number((BigInt(price.rateNano) * BigInt(billable) + 59_999n) / 60_000n) + price.slackMicro;
}

export interface Affordable {
  /** Longest call, seconds (a billable boundary). */
  maxDurationSeconds: number;
  /** What to reserve for it, micro-units. */
  amountMicro: number;
}

/** The longest call up to `capSeconds` whose cost bound fits in `availableMicro`; null when not even the first increment does. */
export function affordable(price: CallPrice, availableMicro: number, capSeconds: number): Affordable | null {
  const fit = affordableBillable(price, availableMicro, capSeconds);
  return fit === null ? null : { maxDurationSeconds: Math.min(fit.billable, capSeconds), amountMicro: fit.amountMicro };
}

/**
 * The longest billable duration (a billing-increment boundary, the first at or past `capSeconds` at most)
 * whose cost bound fits in `availableMicro`, and that bound; null when not even the first increment fits.
 * A reservation for `billable` seconds pays for any call that lasts no longer.
 */
export function affordableBillable(
  price: CallPrice,
  availableMicro: number,
  capSeconds: number,
): { billable: number; amountMicro: number } | null {
  const capBillable = billableSeconds(capSeconds, price);
  const capCost = costBoundMicro(price, capBillable);
  if (capCost <= availableMicro || price.perCall || price.rateNano === 0) {
    return capCost <= availableMicro ? { billable: capBillable, amountMicro: capCost } : null;
  }
  if (costBoundMicro(price, price.initial) > availableMicro) return null;
  // Largest billable B = initial + k*step with costBound(B) <= available; the estimate is exact up to float error, so step down to be sure.
  const seconds = Math.floor(((availableMicro - price.slackMicro) * 1000 * 60) / price.rateNano);
  let k = Math.max(0, Math.floor((seconds - price.initial) / price.step));
  while (k > 0 && costBoundMicro(price, price.initial + k * price.step) > availableMicro) k--;
  const billable = price.initial + k * price.step;
  return { billable, amountMicro: costBoundMicro(price, billable) };
}
