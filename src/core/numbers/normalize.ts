/**
 * Number normalisation shared by call auth, routing and the simulator:
 * OpenSIPS may hand us bare digits, "+61 (2) 5550-0100", a SIP or tel URI,
 * or a header value with a display name. We keep digits only.
 */

/** E.164 allows at most 15 digits; below 7 no international destination is complete (SIP 484). */
export const MAX_NUMBER_DIGITS = 15;
export const MIN_DNIS_DIGITS = 7;
const MAX_INPUT_LENGTH = 512;

/** Digits of the number, or null when it holds anything but digits and visual separators. */
export function normalizeNumber(raw: string): string | null {
  if (raw.length === 0 || raw.length > MAX_INPUT_LENGTH) return null;
  if (isAllDigits(raw)) return raw; // what OpenSIPS sends nearly always
  return scanDigits(raw, 'strict');
}

/** No reading: a withheld caller, or a number without digits (shared: withheld calls allocate nothing). */
const NO_NUMBERS: readonly string[] = Object.freeze([]);

/**
 * The numbers a caller's unusable number (normalizeAni gives up on it) is held to block rules by: the carrier
 * reads digits in it all the same, and may read them either way, so both count:
 *  - every digit, whatever stands among them ("x6188123", "6x188123": 6188123; a stack that drops what is not
 *    a digit presents that);
 *  - the digits before the first character a number does not have ("6188123x9": 6188123; one that stops there).
 * The number's escapes are read ("%2B6188123" is +6188123 to any SIP stack). None for "anonymous".
 */
export function blockingNumbers(raw: string | null | undefined): readonly string[] {
  if (raw === null || raw === undefined || raw.length === 0 || raw.length > MAX_INPUT_LENGTH) return NO_NUMBERS;
  if (isAllDigits(raw)) return [raw];
  // One scan reads both: the leading digits are the first `leadingDigits` of every digit.
  const every = scanDigits(raw, 'every') ?? '';
  const leading = leadingDigits < 0 ? every : every.slice(0, leadingDigits);
  if (leading === every) return leading === '' ? NO_NUMBERS : [leading];
  return leading === '' ? [every] : [leading, every];
}

/** `every`'s scan: how many of its digits come before the first character a number does not have (-1: all). */
let leadingDigits = -1;

/**
 * The digits of a number given as a URI, a header value or with separators. A character a number does not have
 * (or a '+' after the first digit): `strict` answers null, `every` skips it (and leaves the count of digits
 * before it in `leadingDigits`).
 */
function scanDigits(raw: string, mode: 'strict' | 'every'): string | null {
  leadingDigits = -1;
  let text = raw;
  const open = text.indexOf('<');
  if (open >= 0) {
    const close = text.indexOf('>', open + 1);
    text = close > open ? text.slice(open + 1, close) : text.slice(open + 1);
  }
  text = text.trim();
  const colon = text.indexOf(':');
  if (colon >= 0) {
    const scheme = text.slice(0, colon).toLowerCase();
    if (scheme !== 'sip' && scheme !== 'sips' && scheme !== 'tel') return null;
    text = text.slice(colon + 1);
  }
  const at = text.indexOf('@');
  if (at >= 0) text = text.slice(0, at);
  const semicolon = text.indexOf(';');
  if (semicolon >= 0) text = text.slice(0, semicolon);
  // The number's own escapes, once it is cut from the URI (an escaped ':' or '@' is part of it, not the URI's).
  if (mode === 'every' && text.includes('%'))
    text = text.replace(/%([0-9a-fA-F]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));

  let digits = '';
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      digits += text[i];
    } else if (c === 43 /* + */) {
      if (digits.length > 0) {
        // '+' only leads
        if (mode === 'strict') return null;
        if (leadingDigits < 0) leadingDigits = digits.length;
      }
    } else if (c !== 32 && c !== 45 && c !== 46 && c !== 40 && c !== 41 /* space - . ( ) */) {
      if (mode === 'strict') return null;
      if (leadingDigits < 0) leadingDigits = digits.length;
    }
  }
  return digits.length > 0 ? digits : null;
}

function isAllDigits(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

/** True when the (tech-prefix-stripped) DNIS has an E.164 length. */
export function isRoutableDnis(digits: string): boolean {
  return digits.length >= MIN_DNIS_DIGITS && digits.length <= MAX_NUMBER_DIGITS;
}

/** ANI as we use it for blocking and CDRs: digits, or '' when withheld or unusable ("anonymous"). */
export function normalizeAni(raw: string | null | undefined): string {
  if (raw === null || raw === undefined || raw === '') return '';
  const digits = normalizeNumber(raw);
  return digits !== null && digits.length <= MAX_NUMBER_DIGITS ? digits : '';
}
