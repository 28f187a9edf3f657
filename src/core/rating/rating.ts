import { Decimal, type Rounding } from '../money/decimal.js';
import { formatFixed, parseNano } from '../money/nano.js';

/**
 * Rating one answered call: billing increments, then the rate, then one rounding at the
 * end to the trunk's precision and direction, in the one decimal type (money/decimal.ts).
 * An unanswered call costs nothing and is never rated here (sidecar/cdr/rating.ts knows it
 * by its missing answer_time): a duration of 0 is an answered call that lasted under a second.
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

/**
 * An answered call's billable seconds: at least `initial`, then whole `step`s (30/6: 31 s bills 36). 0 s
 * bills `initial` too: OpenSIPS reports whole seconds, cut down, so a call that connected and ended within
 * its first second says 0, and the carrier bills it its first increment all the same.
 */
export function billableSeconds(durationSeconds: number, increments: BillingIncrements): number {
  if (!Number.isInteger(durationSeconds) || durationSeconds < 0)
    throw new RangeError(`duration must be a whole number of seconds >= 0, got ${durationSeconds}`);
  if (durationSeconds <= increments.initial) return increments.initial;
  return increments.initial + Math.ceil((durationSeconds - increments.initial) / increments.step) * increments.step;
}

export interface RateCallInput {
  /** Decimal string in the rate's currency. */
  rate: string;
  rateType: RateType;
  /** From answer to end, whole seconds as OpenSIPS reports them (0: the call lasted under a second). */
  durationSeconds: number;
  increments: BillingIncrements;
  precision: DecimalPrecision;
  rounding: RoundingDirection;
}

/**
 * The answered call's cost, with exactly `precision` decimals. per_call: the rate once, whatever the
 * duration (0 included); per_minute: at least the first increment. In
 * integers (the rate in nano-units, one exact rounding): this runs for every CDR. A rate with more than
 * nine decimals, or a negative one, takes the decimal path, which is the reference the integer one is
 * proven equal to (test/unit/rating-integer.test.ts).
 */
export function rateCall(input: RateCallInput): string {
  const rateNano = parseNano(input.rate);
  if (Number.isNaN(rateNano) || rateNano < 0) return rateCallDecimal(input);
  return rateCallNano(rateNano, input.rateType, input.durationSeconds, input.increments, input.precision, input.rounding);
}

/** rateCall in decimal.js: rate × billable ÷ 60 at 40 significant digits, then toFixed with the trunk's rounding. */
export function rateCallDecimal(input: RateCallInput): string {
  const billable = billableSeconds(input.durationSeconds, input.increments);
  const cost = input.rateType === 'per_call' ? new Decimal(input.rate) : new Decimal(input.rate).mul(billable).div(60);
  return cost.toFixed(input.precision, ROUNDING[input.rounding]);
}

/** Nano-units in one unit of each precision's last decimal. */
const NANO_PER_UNIT: Record<DecimalPrecision, number> = { 4: 100_000, 5: 10_000, 6: 1_000 };

/** rateCall for a rate already in nano-units (>= 0): rate × billable / 60, rounded once, exactly. */
export function rateCallNano(
  rateNano: number,
  rateType: RateType,
  durationSeconds: number,
  increments: BillingIncrements,
  precision: DecimalPrecision,
  rounding: RoundingDirection,
): string {
  const billable = billableSeconds(durationSeconds, increments);
  const unit = NANO_PER_UNIT[precision];
  if (rateType === 'per_call') return formatFixed(divideRounded(rateNano, unit, rounding), precision, precision);
  const numerator = rateNano * billable;
  if (Number.isSafeInteger(numerator)) return formatFixed(divideRounded(numerator, 60 * unit, rounding), precision, precision);
  // Past 2^53 (a rate of thousands a minute for days): the same in BigInt.
  return formatUnits(divideRoundedBig(BigInt(rateNano) * BigInt(billable), BigInt(60 * unit), rounding), precision);
}

/**
 * An amount with `precision` decimals times an exchange rate (divided by it when only the opposite pair is
 * configured), rounded once to `precision` the trunk's way: the account's charge. Exact (BigInt).
 */
export function convertMoney(
  amount: string,
  exchangeRate: string,
  inverse: boolean,
  precision: DecimalPrecision,
  rounding: RoundingDirection,
): string {
  const units = decimalParts(amount);
  const rate = decimalParts(exchangeRate);
  if (units === null || rate === null || rate.value <= 0n)
    return formatMoney(convertAmount(amount, exchangeRate, inverse), precision, rounding);
  // amount = units.value / 10^units.scale; rate = rate.value / 10^rate.scale; result in 10^-precision units.
  const numerator = inverse ? units.value * 10n ** BigInt(rate.scale + precision) : units.value * rate.value * 10n ** BigInt(precision);
  const denominator = inverse ? rate.value * 10n ** BigInt(units.scale) : 10n ** BigInt(units.scale + rate.scale);
  return formatUnits(divideRoundedBig(numerator, denominator, rounding), precision);
}

/** A plain decimal string as an integer and its count of decimals; null when it is not one. */
function decimalParts(text: string): { value: bigint; scale: number } | null {
  const match = /^(-?)(\d+)(?:\.(\d+))?$/.exec(text);
  if (match === null) return null;
  const fraction = (match[3] as string | undefined) ?? '';
  const value = BigInt(match[2] + fraction);
  return { value: match[1] === '-' ? -value : value, scale: fraction.length };
}

/** n / d (d > 0) rounded as the trunk says: up and half-up away from zero, down toward it. Exact for safe integers. */
export function divideRounded(n: number, d: number, rounding: RoundingDirection): number {
  let q = Math.trunc(n / d);
  let r = n - q * d;
  // The float quotient can be one off near an integer: bring the remainder into (-d, d) with n's sign.
  const low = n >= 0 ? 0 : 1 - d;
  while (r < low) {
    q--;
    r += d;
  }
  while (r >= low + d) {
    q++;
    r -= d;
  }
  if (r === 0 || rounding === 'down') return q;
  const away = n < 0 ? -1 : 1;
  if (rounding === 'up') return q + away;
  return 2 * Math.abs(r) >= d ? q + away : q;
}

function divideRoundedBig(n: bigint, d: bigint, rounding: RoundingDirection): bigint {
  const q = n / d; // truncates toward zero
  const r = n % d;
  if (r === 0n || rounding === 'down') return q;
  const away = n < 0n ? -1n : 1n;
  if (rounding === 'up') return q + away;
  const twice = 2n * (r < 0n ? -r : r);
  return twice >= d ? q + away : q;
}

function formatUnits(units: bigint, precision: DecimalPrecision): string {
  const negative = units < 0n;
  const digits = (negative ? -units : units).toString().padStart(precision + 1, '0');
  const text = `${digits.slice(0, -precision)}.${digits.slice(-precision)}`;
  return negative ? `-${text}` : text;
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
