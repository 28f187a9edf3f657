import { Decimal, type Rounding } from '../money/decimal.js';

/**
 * Rating one call: billing increments, then the rate, then one rounding at the
 * end to the trunk's precision and direction, in the one decimal type (money/decimal.ts).
 */

export type RateType = 'per_minute' | 'per_call';
export type RoundingDirection = 'up' | 'down' | 'standard';
export type DecimalPrecision = 4 | 5 | 6;

export interface BillingIncrements {
  /** First billed block, seconds (>= 1). */
  initial: number;
  /** Each further block, seconds (>= 1). */
  step: number;
}

const ROUNDING: Record<RoundingDirection, Rounding> = {
  up: Decimal.ROUND_UP,
  down: Decimal.ROUND_DOWN,
  standard: Decimal.ROUND_HALF_UP,
};

/** Billable seconds: 0 when unanswered; else at least `initial`, then whole `step`s (30/6: 31 s bills 36). */
export function billableSeconds(durationSeconds: number, increments: BillingIncrements): number {
  if (!Number.isInteger(durationSeconds) || durationSeconds < 0)
    throw new RangeError(`duration must be a whole number of seconds >= 0, got ${durationSeconds}`);
  if (durationSeconds === 0) return 0;
  if (durationSeconds <= increments.initial) return increments.initial;
  return increments.initial + Math.ceil((durationSeconds - increments.initial) / increments.step) * increments.step;
}

export interface RateCallInput {
  /** Decimal string in the rate's currency. */
  rate: string;
  rateType: RateType;
  durationSeconds: number;
  increments: BillingIncrements;
  precision: DecimalPrecision;
  rounding: RoundingDirection;
}

/** The call's cost, with exactly `precision` decimals. per_call: the rate once per answered call. */
export function rateCall(input: RateCallInput): string {
  const billable = billableSeconds(input.durationSeconds, input.increments);
  let cost: Decimal;
  if (billable === 0) cost = new Decimal(0);
  else if (input.rateType === 'per_call') cost = new Decimal(input.rate);
  else cost = new Decimal(input.rate).mul(billable).div(60);
  return cost.toFixed(input.precision, ROUNDING[input.rounding]);
}

/** amount × exchangeRate (or amount ÷ it, when only the opposite pair is configured), exact up to 40 digits; no rounding. */
export function convertAmount(amount: string, exchangeRate: string, inverse = false): string {
  return inverse ? new Decimal(amount).div(exchangeRate).toFixed() : new Decimal(amount).mul(exchangeRate).toFixed();
}

/** A decimal string at exactly `precision` decimals. */
export function formatMoney(amount: string, precision: DecimalPrecision, rounding: RoundingDirection): string {
  return new Decimal(amount).toFixed(precision, ROUNDING[rounding]);
}

/** Strict money/rate input: optional '-', 1-15 integer digits, optional '.' with 1-12 digits. No exponent, '+', or spaces. */
export function isDecimalString(text: string): boolean {
  return /^-?[0-9]{1,15}(\.[0-9]{1,12})?$/.test(text);
}
