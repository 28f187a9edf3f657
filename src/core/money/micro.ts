import { formatFixed, parseFixed } from './nano.js';

/**
 * Ledger amounts at the node: integer micro-units (1e-6) in a JS number.
 * Every billed cost is rounded to at most 6 decimals (a trunk's precision is
 * 4, 5 or 6), so micro-units hold each charge, reservation and lease exactly,
 * and up to 9,000,000,000 currency units stay below 2^53.
 */
export const MICRO_DECIMALS = 6;
const MAX_INTEGER_DIGITS = 9;
/**
 * The largest amount parseMicro reads (9 integer digits, 6 decimals). A headroom the centre sends beyond it is
 * sent as it (sync/ledger/settlement.ts): a node could not read more, and more means "plenty" to admission.
 */
export const MAX_MICRO_TEXT = '999999999.999999';

/** Micro-units from decimal text; NaN when it has more than 6 decimals or 9 integer digits. */
export function parseMicro(text: string): number {
  return parseFixed(text, MICRO_DECIMALS, MAX_INTEGER_DIGITS);
}

/** "12.50", "0.000125": at least cents, no trailing zeros beyond them. */
export function formatMicro(value: number, minDecimals = 2): string {
  return formatFixed(value, MICRO_DECIMALS, minDecimals);
}

/** Nano-units to micro-units, rounded up: a reservation never falls short of the cost it covers. */
export function nanoToMicroCeil(nano: number): number {
  return Math.ceil(nano / 1000);
}
