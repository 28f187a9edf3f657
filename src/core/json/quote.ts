/**
 * A string as a JSON string literal, the very bytes JSON.stringify writes. The strings the hot path quotes (a
 * Call-ID, a caller's and a called number) are short printable ASCII: those are checked by a loop and
 * wrapped in quotes, as JSON.stringify would leave them; it is called only for the rest (a quote, a
 * backslash, a control character, anything beyond ASCII: escapes and lone surrogates are its business).
 * JSON.stringify is a call into the runtime that a loop over twenty characters costs a fraction of, and the
 * CDR path quotes half a dozen strings per CDR.
 */
export function quoteJson(value: string): string {
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if (code < 0x20 || code > 0x7e || code === 0x22 || code === 0x5c) return JSON.stringify(value);
  }
  return `"${value}"`;
}
