import { randomInt } from 'node:crypto';

/**
 * Account codes and PINs: 12 digits from the CSPRNG, so that neither can be guessed from another (no
 * sequence, no time). A code that is taken is drawn again (the store says which are).
 */
const SPACE = 1_000_000_000_000;

/** 12 random digits; randomInt's bound is 2^48, and 10^12 is below it. */
export function twelveDigits(): string {
  return String(randomInt(0, SPACE)).padStart(12, '0');
}

/** A new account code, not `taken`; codes starting 0 are as good as any (inputs are left-padded). */
export function newAccountCode(taken: (code: string) => boolean): string {
  for (let attempt = 0; attempt < 100; attempt++) {
    const code = twelveDigits();
    if (!taken(code)) return code;
  }
  throw new Error('no free account code after 100 draws');
}
