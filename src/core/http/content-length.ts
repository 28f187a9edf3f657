/**
 * Content-Length as RFC 9112 §6.3 reads it: digits only, and several values (repeated headers or a
 * comma-separated list) are acceptable only when they are all equal. Anything else is a framing error that
 * must be refused, not guessed at: two parsers choosing different values is how requests get smuggled.
 */
export type DeclaredLength = { ok: true; bytes: number | null } | { ok: false; reason: string };

const DIGITS = /^[0-9]+$/;

/** `values`: every Content-Length header of the request, in order (none: no declared length). */
export function declaredLength(values: readonly string[]): DeclaredLength {
  let bytes: number | null = null;
  for (const value of values) {
    for (const part of value.split(',')) {
      const text = part.trim();
      if (!DIGITS.test(text)) return { ok: false, reason: `content-length ${JSON.stringify(value.slice(0, 32))} is not a number of bytes` };
      const parsed = Number(text);
      if (bytes !== null && parsed !== bytes) return { ok: false, reason: 'conflicting content-length headers' };
      bytes = parsed;
    }
  }
  return { ok: true, bytes };
}

/**
 * One Content-Length of 1 to 15 digits as a number, else -1 (a list, spaces, signs, anything for
 * declaredLength to judge). The common case, read without splitting or a regular expression.
 */
export function plainLength(value: string): number {
  if (value.length === 0 || value.length > 15) return -1;
  let bytes = 0;
  for (let i = 0; i < value.length; i++) {
    const digit = value.charCodeAt(i) - 48;
    if (digit < 0 || digit > 9) return -1;
    bytes = bytes * 10 + digit;
  }
  return bytes;
}
