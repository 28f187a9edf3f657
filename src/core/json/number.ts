/**
 * A number as JSON.stringify writes it (NaN and ±Infinity as null), so a text made of it is always valid JSON.
 * Epoch milliseconds (1.8e12) are past V8's small integers: String() of one misses the runtime's number-string
 * cache and takes its general double-to-text path (~280 ns), four times per journalled CDR; written as two
 * small integers (the millions, then six digits) it is a fifth of that. Only where that split is exact
 * (whole numbers from 2^31 up to 10^15); anything else goes to String().
 */
export function jsonNumber(value: number): string {
  if (value >= 2_147_483_648 && value < 1e15 && Number.isInteger(value)) {
    const high = Math.floor(value / 1e6);
    const low = value - high * 1e6;
    if (low >= 0 && low < 1e6) {
      const digits = String(low);
      return `${high}${SIX_ZEROS.slice(digits.length)}${digits}`;
    }
  }
  return Number.isFinite(value) ? String(value) : 'null';
}

const SIX_ZEROS = '000000';

/** jsonNumber, or null for a missing value (null, or absent from records written before the field was). */
export function jsonNumberOrNull(value: number | null | undefined): string {
  return value === null || value === undefined ? 'null' : jsonNumber(value);
}
