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
  return scanDigits(raw, false);
}

/**
 * The digits a caller's number is held to block rules by: all of them, however many (normalizeAni gives up
 * past 15), and of a number with a character numbers do not have, the digits before it ("6188123x":
 * 6188123). A caller whose number is blocked is not let through by adding a digit or a letter to it,
 * while "anonymous" still has none. '' when there are none.
 */
export function blockingDigits(raw: string | null | undefined): string {
  if (raw === null || raw === undefined || raw.length === 0 || raw.length > MAX_INPUT_LENGTH) return '';
  if (isAllDigits(raw)) return raw;
  return scanDigits(raw, true) ?? '';
}

/**
 * The digits of a number given as a URI, a header value or with separators. `leading`: stop at the first
 * character a number does not have and answer the digits before it; else such a character answers null.
 */
function scanDigits(raw: string, leading: boolean): string | null {
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

  let digits = '';
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      digits += text[i];
    } else if (c === 43 /* + */) {
      if (digits.length > 0) return leading ? digits : null; // '+' only leads
    } else if (c !== 32 && c !== 45 && c !== 46 && c !== 40 && c !== 41 /* space - . ( ) */) {
      return leading ? digits : null;
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
