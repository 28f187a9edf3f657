import { parseDigestAlgorithm, type DigestAlgorithm } from '../digest/digest.js';
import { parseMicro } from '../money/micro.js';
import { parseNano } from '../money/nano.js';

/**
 * The value rules a record must meet to be served, shared by the admin API (which refuses a body that
 * breaks one, 400) and the snapshot validation (which refuses a snapshot holding one). One definition,
 * so that nothing the admin API accepts can later make every sync fail. Each rule answers null when the
 * value is fine, else what is wrong with it, for a message that names the field.
 */

/**
 * A rate or a percentage: the hot path's nano-units, so at most 6 integer digits and 9 decimals.
 * `positive` for values the engine divides or multiplies money by (an exchange rate of 0 makes every
 * conversion 0 or infinite).
 */
export function nanoProblem(text: string, sign: 'non_negative' | 'positive'): string | null {
  const nano = parseNano(text);
  if (Number.isNaN(nano)) return 'must be a decimal string (at most 6 integer digits and 9 decimals, no exponent)';
  // -0 parses to -0, which is not < 0: "-0" and "-0.000" are refused by their text.
  if (sign === 'positive' && (nano <= 0 || text.startsWith('-'))) return 'must be greater than 0';
  if (nano < 0 || (nano === 0 && text.startsWith('-'))) return 'must not be negative';
  return null;
}

/**
 * An amount of money an account holds or may owe (credit limit, warning threshold): what the node's
 * ledger holds exactly, micro-units, so at most 9 integer digits and 6 decimals, and never negative.
 */
export function moneyProblem(text: string): string | null {
  const micro = parseMicro(text);
  if (Number.isNaN(micro)) return 'must be a decimal string (at most 9 integer digits and 6 decimals, no exponent)';
  if (micro < 0 || text.startsWith('-')) return 'must not be negative';
  return null;
}

/** Hex digits of each algorithm's digest: HA1 is one hash, so its length is the hash's. */
export const HA1_HEX_LENGTH: Record<DigestAlgorithm, number> = { MD5: 32, 'SHA-256': 64, 'SHA-512-256': 64 };

/** A SIP registration's HA1 for its algorithm: hex, as long as that algorithm's digest. */
export function ha1Problem(hash: string, algorithm: string): string | null {
  const parsed = parseDigestAlgorithm(algorithm);
  if (parsed === null) return `has an unknown hash_algorithm ${JSON.stringify(algorithm)}`;
  const length = HA1_HEX_LENGTH[parsed];
  if (hash.length !== length || !/^[0-9a-fA-F]*$/.test(hash)) return `must be ${length} hex digits for ${parsed}`;
  return null;
}
