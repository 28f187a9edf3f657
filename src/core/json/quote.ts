/**
 * A string as a JSON string literal, the very bytes JSON.stringify writes. The strings the hot path quotes (a
 * Call-ID, a caller's and a called number, a gateway's URI, a CDR's fingerprint) are printable ASCII: those are
 * checked by a loop and wrapped in quotes, as JSON.stringify would leave them, with a backslash before each
 * quote and backslash (all JSON.stringify escapes in printable ASCII: a CDR's fingerprint, a JSON array, holds
 * four quotes). JSON.stringify is called only for the rest (a control character, anything beyond ASCII:
 * escapes and lone surrogates are its business). It is a call into the runtime whose setup alone, counted by
 * callgrind, is over 2,000 instructions, where a loop over twenty characters is a few hundred, and a call
 * quotes about six strings (performance log, 2026-12-06 22:40).
 */
export function quoteJson(value: string): string {
  let escapes = false;
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if (code < 0x20 || code > 0x7e) return JSON.stringify(value);
    if (code === 0x22 || code === 0x5c) escapes = true;
  }
  return escapes ? escapeQuotes(value) : `"${value}"`;
}

/** Printable ASCII with quotes or backslashes: each gets a backslash before it. */
function escapeQuotes(value: string): string {
  let text = '"';
  let from = 0;
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if (code === 0x22 || code === 0x5c) {
      text += `${value.slice(from, i)}\\`;
      from = i;
    }
  }
  return `${text}${value.slice(from)}"`;
}
