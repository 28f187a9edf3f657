import { randomInt } from 'node:crypto';

/**
 * Account codes and PINs: 12 digits from the CSPRNG, so that neither can be guessed from another (no
 * sequence, no time). A code that is taken is drawn again (PartnerStore.createAccount).
 */
const SPACE = 1_000_000_000_000;

/** 12 random digits; randomInt's bound is 2^48, and 10^12 is below it. */
export function twelveDigits(): string {
  return String(randomInt(0, SPACE)).padStart(12, '0');
}
