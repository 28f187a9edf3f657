import { jsonNumber } from './number.js';
import { quoteJson } from './quote.js';

/** "00" to "99": the digits of a number are written two at a time. */
const DIGIT_PAIRS = new Uint8Array(200);
for (let i = 0; i < 100; i++) {
  DIGIT_PAIRS[2 * i] = 0x30 + Math.floor(i / 10);
  DIGIT_PAIRS[2 * i + 1] = 0x30 + (i % 10);
}

/** The characters the op writers put between figures (char()). */
export const COMMA = 0x2c;
export const QUOTE = 0x22;

/**
 * JSON text written as UTF-8 bytes straight into one buffer that is kept and reused, the same bytes as the
 * string the template would make (jsonNumber's numbers, quoteJson's strings). For the money log's hot ops: a
 * record built as a string was a dozen concatenations, numbers turned into strings, the result flattened and
 * then encoded to UTF-8 by Buffer.write, every admission (about a microsecond and a kilobyte of garbage);
 * here the digits and the short printable ASCII strings are written byte by byte, and anything else (text
 * that needs escaping, beyond ASCII, or long; numbers that are not safe integers) goes through the string
 * path and Buffer.write, so the bytes stay the same whatever a field holds.
 */
export class JsonBytes {
  private buffer: Buffer;
  /** Bytes written so far. */
  length = 0;

  constructor(initialBytes = 64 * 1024) {
    this.buffer = Buffer.allocUnsafeSlow(initialBytes);
  }

  /** The buffer, valid (and its content) until the next write or reset. */
  get bytes(): Buffer {
    return this.buffer;
  }

  /** Starts again at `at` (what came before it stays). */
  reset(at = 0): void {
    this.length = at;
  }

  /** Room for `bytes` more; a grown buffer keeps what was written. */
  private room(bytes: number): void {
    const needed = this.length + bytes;
    if (needed <= this.buffer.length) return;
    const grown = Buffer.allocUnsafeSlow(Math.max(needed, this.buffer.length * 2));
    this.buffer.copy(grown, 0, 0, this.length);
    this.buffer = grown;
  }

  /**
   * One ASCII character (a separator, a quote, a bracket), stored. The op writers write one between every two
   * figures: through raw() each was a call and a loop over a one-character string, ~180 instructions, and V8
   * inlines a call this small into the writer (callgrind, docs/performance-log.md 2026-12-08).
   */
  char(code: number): void {
    if (this.length === this.buffer.length) this.room(1);
    this.buffer[this.length++] = code;
  }

  /** Text written as it is (UTF-8): a template's literal parts, or a value already made JSON. */
  raw(text: string): void {
    const length = text.length;
    if (length <= 64) {
      // Short literals (the templates' parts) are ASCII: a loop, not a call into the runtime.
      this.room(length);
      const { buffer } = this;
      let at = this.length;
      for (let i = 0; i < length; i++) {
        const code = text.charCodeAt(i);
        if (code > 0x7f) {
          this.utf8(text);
          return;
        }
        buffer[at++] = code;
      }
      this.length = at;
      return;
    }
    this.utf8(text);
  }

  private utf8(text: string): void {
    this.room(text.length * 3); // UTF-8 takes at most three bytes per UTF-16 code unit
    this.length += this.buffer.write(text, this.length);
  }

  /** A string as a JSON string literal: quoteJson's bytes. */
  string(value: string): void {
    const length = value.length;
    if (length > 64) return this.utf8(quoteJson(value));
    this.room(length + 2);
    const { buffer } = this;
    let at = this.length;
    buffer[at++] = 0x22;
    for (let i = 0; i < length; i++) {
      const code = value.charCodeAt(i);
      // What quoteJson leaves as it is; anything else is its (JSON.stringify's) business.
      if (code < 0x20 || code > 0x7e || code === 0x22 || code === 0x5c) return this.utf8(quoteJson(value));
      buffer[at++] = code;
    }
    buffer[at++] = 0x22;
    this.length = at;
  }

  /** A number as jsonNumber writes it (a safe integer's digits here; anything else through jsonNumber). */
  number(value: number): void {
    if (value >= 0 && value <= 0x7fffffff && (value | 0) === value) return this.digits(value, 0);
    if (!Number.isSafeInteger(value)) return this.raw(jsonNumber(value));
    this.room(17); // a sign and 16 digits: every safe integer
    let rest = value;
    if (rest < 0) {
      this.buffer[this.length++] = 0x2d;
      rest = -rest;
    }
    // Epoch milliseconds and the like: eight digits at a time, so the digits are made by small-integer division.
    if (rest > 0x7fffffff) {
      const high = Math.floor(rest / 1e8);
      if (high > 0x7fffffff) {
        const top = Math.floor(high / 1e8);
        this.digits(top, 0);
        this.digits(high - top * 1e8, 8);
      } else this.digits(high, 0);
      this.digits(rest - high * 1e8, 8);
    } else this.digits(rest, 0);
  }

  /** A small non-negative integer's digits, at least `width` of them (zeros in front): two at a time, from a table. */
  private digits(value: number, width: number): void {
    let count =
      value < 1e4
        ? value < 10
          ? 1
          : value < 100
            ? 2
            : value < 1000
              ? 3
              : 4
        : value < 1e6
          ? value < 1e5
            ? 5
            : 6
          : value < 1e8
            ? value < 1e7
              ? 7
              : 8
            : value < 1e9
              ? 9
              : 10;
    if (count < width) count = width;
    this.room(count);
    const { buffer } = this;
    const start = this.length;
    let at = start + count;
    this.length = at;
    let rest = value;
    while (rest >= 100) {
      const next = (rest / 100) | 0;
      const pair = (rest - next * 100) << 1;
      buffer[--at] = DIGIT_PAIRS[pair + 1];
      buffer[--at] = DIGIT_PAIRS[pair];
      rest = next;
    }
    if (rest >= 10) {
      buffer[--at] = DIGIT_PAIRS[(rest << 1) + 1];
      buffer[--at] = DIGIT_PAIRS[rest << 1];
    } else buffer[--at] = 0x30 + rest;
    while (at > start) buffer[--at] = 0x30;
  }

  /** number(), or null. */
  numberOrNull(value: number | null | undefined): void {
    if (value === null || value === undefined) this.raw('null');
    else this.number(value);
  }
}
