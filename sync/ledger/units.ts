/**
 * Ledger amounts as integers for settlement's per-CDR arithmetic (issue 21): a decimal string becomes a
 * BigInt count of 1e-12 units, and back, with nothing in between allocating a decimal.js number. Twelve
 * places hold every amount the ledger accepts (isDecimalString: at most 12 decimals) exactly, and BigInt
 * the 15 integer digits beyond 2^53, so adding, subtracting and comparing are exact; never a float.
 *
 * The strings written back are the ones decimal.js wrote (balance.ts `money`, `toFixed()`), character for
 * character: `places` is decimal.js's decimalPlaces() (trailing zeros not counted), `fixed` its toFixed(n)
 * for an amount with no more than n places, `truncate` its toDecimalPlaces(n, ROUND_DOWN) (toward zero, as
 * BigInt division is). test/unit/ledger-units.test.ts checks them against decimal.js.
 */
export const SCALE = 12;
const ONE_TEXT = '1' + '0'.repeat(SCALE);
const FRACTION_ZEROS = '0'.repeat(SCALE);
/** 10^n as a BigInt, n = 0…SCALE. */
const POW10: readonly bigint[] = Array.from({ length: SCALE + 1 }, (_, n) => 10n ** BigInt(n));
export const ZERO = 0n;

/** A decimal string ("12", "-0.0125", "100.00") as 1e-12 units; throws on anything else (more than 12 places included). */
export function toUnits(text: string): bigint {
  const point = text.indexOf('.');
  const fraction = point < 0 ? '' : text.slice(point + 1);
  const whole = point < 0 ? text : text.slice(0, point);
  // Validated amounts never fail this; a string that did would be billed wrong if rounded, so it stops the round.
  if (fraction.length > SCALE || !/^-?[0-9]+$/.test(whole) || !/^[0-9]*$/.test(fraction))
    throw new Error(`not a ledger amount of at most ${SCALE} decimals: ${JSON.stringify(text)}`);
  return BigInt(whole + fraction + FRACTION_ZEROS.slice(fraction.length));
}

/** Decimal places of an amount as decimal.js counts them: trailing zeros are not places. */
export function places(units: bigint): number {
  if (units === 0n) return 0;
  let n = SCALE;
  while (n > 0 && units % POW10[SCALE - n + 1] === 0n) n--;
  return n;
}

/** The amount with exactly `digits` places (decimal.js toFixed(digits)); `units` must have no more places than that. */
export function fixed(units: bigint, digits: number): string {
  const negative = units < 0n;
  let text = (negative ? -units : units).toString();
  if (text.length <= SCALE) text = ONE_TEXT.slice(1, SCALE + 2 - text.length) + text;
  const whole = text.slice(0, text.length - SCALE);
  const body = digits === 0 ? whole : `${whole}.${text.slice(text.length - SCALE, text.length - SCALE + digits)}`;
  // decimal.js writes no negative zero for these amounts (a difference of equals is +0).
  return negative ? `-${body}` : body;
}

/** decimal.js toFixed(): no trailing zeros, no point for a whole amount. */
export function plain(units: bigint): string {
  return fixed(units, places(units));
}

/** balance.ts `money` on units: at least 2 places, more if an operand carries them. */
export function moneyText(value: bigint, ...operands: bigint[]): string {
  let digits = 2;
  for (const operand of operands) {
    const p = places(operand);
    if (p > digits) digits = p;
  }
  return fixed(value, digits);
}

/** Cut to `digits` places toward zero (decimal.js toDecimalPlaces(digits, ROUND_DOWN)). */
export function truncate(units: bigint, digits: number): bigint {
  const step = POW10[SCALE - digits];
  return (units / step) * step;
}

export const min = (a: bigint, b: bigint): bigint => (a < b ? a : b);
export const max = (a: bigint, b: bigint): bigint => (a > b ? a : b);
