/**
 * Exact fixed-point money for the hot path: an amount as an integer count of
 * nano-units (1e-9) held in a JS number. Every value we keep stays below 2^53,
 * so the arithmetic we do on it (compare, add) is exact. Products that could
 * pass 2^53 go through BigInt (see mulDivNano). Display goes back to decimal
 * strings; decimal.js does the billing arithmetic (src/rating).
 */
export const NANO_DECIMALS = 9;
const NANO = 1_000_000_000;
const NANO_BIG = 1_000_000_000n;
/** Largest amount we accept: 9,000,000 currency units keeps nano values under 2^53. */
const MAX_INTEGER_DIGITS = 6;
/** 10^n for the scales we use: `10 ** n` with a variable n is a call to pow(), which showed in profiles of 2M-row compiles. */
export const POWERS_OF_TEN = Array.from({ length: 16 }, (_, n) => 10 ** n);

/**
 * Parses a plain decimal string ("0.0250", "-1.5", "12"), or text[start, end), to an integer count of
 * 10^-decimals units; NaN when not exact at that scale or longer than `maxIntegerDigits` before the point.
 */
export function parseFixed(text: string, decimals: number, maxIntegerDigits: number, start = 0, end = text.length): number {
  let i = start;
  let negative = false;
  if (i < end && text.charCodeAt(i) === 45 /* - */) {
    negative = true;
    i++;
  }
  let whole = 0;
  let wholeDigits = 0;
  for (; i < end; i++) {
    const c = text.charCodeAt(i) - 48;
    if (c === -2 /* . */) break;
    if (c < 0 || c > 9) return NaN;
    whole = whole * 10 + c;
    wholeDigits++;
  }
  if (wholeDigits === 0 || wholeDigits > maxIntegerDigits) return NaN;
  let fraction = 0;
  let fractionDigits = 0;
  if (i < end) {
    i++; // skip '.'
    if (i === end) return NaN;
    for (; i < end; i++) {
      const c = text.charCodeAt(i) - 48;
      if (c < 0 || c > 9) return NaN;
      if (fractionDigits === decimals) {
        if (c !== 0) return NaN; // more precision than we can hold exactly
        continue;
      }
      fraction = fraction * 10 + c;
      fractionDigits++;
    }
  }
  for (; fractionDigits < decimals; fractionDigits++) fraction *= 10;
  const value = whole * POWERS_OF_TEN[decimals] + fraction;
  return negative ? -value : value;
}

/** '', '0', '00', …: a fraction's leading zeros. */
const ZEROS = Array.from({ length: 16 }, (_, n) => '0'.repeat(n));

/** Formats an integer count of 10^-decimals units with at least `minDecimals` decimals and no trailing zeros beyond them. */
export function formatFixed(value: number, decimals: number, minDecimals: number): string {
  const unit = POWERS_OF_TEN[decimals];
  const negative = value < 0;
  const abs = negative ? -value : value;
  if (!Number.isSafeInteger(abs)) return formatAnyFixed(value, decimals, minDecimals);
  const whole = Math.floor(abs / unit);
  // The trailing zeros dropped from the number, not its text: no padStart and slice per call (every
  // admission's headroom is formatted). The same text as formatAnyFixed for every safe integer (money.test).
  let fraction = abs - whole * unit;
  let end = decimals;
  while (end > minDecimals && fraction % 10 === 0) {
    fraction /= 10;
    end--;
  }
  if (end === 0) return negative ? '-' + whole : '' + whole;
  let width = 1;
  while (width < end && fraction >= POWERS_OF_TEN[width]) width++;
  const text = whole + '.' + ZEROS[end - width] + fraction;
  return negative ? '-' + text : text;
}

/** formatFixed by its text, for whatever is not a safe integer (exported for the test that holds the two equal). */
export function formatAnyFixed(value: number, decimals: number, minDecimals: number): string {
  const unit = POWERS_OF_TEN[decimals];
  const negative = value < 0;
  const abs = negative ? -value : value;
  const whole = Math.floor(abs / unit);
  let fraction = String(abs - whole * unit).padStart(decimals, '0');
  let end = decimals;
  while (end > minDecimals && fraction.charCodeAt(end - 1) === 48) end--;
  fraction = fraction.slice(0, end);
  const text = end > 0 ? `${whole}.${fraction}` : String(whole);
  return negative && abs !== 0 ? `-${text}` : text;
}

/** Nano-units from decimal text; NaN when not exact at 9 decimals or out of range. */
export function parseNano(text: string, start = 0, end = text.length): number {
  return parseFixed(text, NANO_DECIMALS, MAX_INTEGER_DIGITS, start, end);
}

export function formatNano(value: number, minDecimals = 4): string {
  return formatFixed(value, NANO_DECIMALS, minDecimals);
}

/**
 * round(a * b / 1e9), half away from zero, exact: the product of two nano
 * amounts rescaled to nano (a rate times an exchange rate). The products pass
 * 2^53, so the operands are split in decimal limbs whose partial products stay
 * exact in doubles; BigInt (slower) only for operands beyond 1e15 or a result
 * beyond 2^53.
 */
export function mulNano(a: number, b: number): number {
  if (a < 0 || b < 0) {
    const magnitude = mulNano(Math.abs(a), Math.abs(b));
    return a < 0 !== b < 0 && magnitude !== 0 ? -magnitude : magnitude;
  }
  if (a > 1e15 || b > 1e15) return mulNanoBig(a, b);
  // a = aHi·1e9 + aLo, b = bHi·1e9 + bLo; a·b/1e9 = aHi·bHi·1e9 + aHi·bLo + aLo·bHi + aLo·bLo/1e9.
  const aHi = Math.floor(a / NANO);
  const aLo = a - aHi * NANO;
  const bHi = Math.floor(b / NANO);
  const bLo = b - bHi * NANO;
  // aLo·bLo/1e9 with aLo = a1·1e5 + a0: X = a1·bLo (< 1e13), Y = a0·bLo (< 1e14), aLo·bLo = X·1e5 + Y.
  const a1 = Math.floor(aLo / 100_000);
  const a0 = aLo - a1 * 100_000;
  const x = a1 * bLo;
  const y = a0 * bLo;
  const xq = Math.floor(x / 10_000);
  const inner = (x - xq * 10_000) * 100_000 + y; // < 1e9 + 1e14, exact
  const innerQ = Math.floor(inner / NANO);
  const remainder = inner - innerQ * NANO;
  const result = aHi * bHi * NANO + aHi * bLo + aLo * bHi + xq + innerQ + (remainder * 2 >= NANO ? 1 : 0);
  return Number.isSafeInteger(result) ? result : mulNanoBig(a, b);
}

function mulNanoBig(a: number, b: number): number {
  const p = BigInt(a) * BigInt(b);
  const negative = p < 0n;
  const abs = negative ? -p : p;
  let q = abs / NANO_BIG;
  if ((abs % NANO_BIG) * 2n >= NANO_BIG) q += 1n;
  return Number(negative ? -q : q);
}

/** floor(value * (1 + pct/100)) where pct is given in nano-units of a percent; exact. */
export function addPercentFloor(value: number, pctNano: number): number {
  const extra = (BigInt(value) * BigInt(pctNano)) / (100n * NANO_BIG);
  return value + Number(extra);
}
