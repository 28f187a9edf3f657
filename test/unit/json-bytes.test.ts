import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { COMMA, JsonBytes, QUOTE } from '../../src/core/json/json-bytes.js';
import { jsonNumber } from '../../src/core/json/number.js';
import { quoteJson } from '../../src/core/json/quote.js';

/**
 * The money log's records are written straight as bytes (JsonBytes): they must be the very bytes of the
 * text the templates would make, jsonNumber's numbers and quoteJson's strings, whatever a field holds.
 */
function written(write: (out: JsonBytes) => void, initialBytes?: number): string {
  const out = new JsonBytes(initialBytes);
  write(out);
  return out.bytes.toString('utf8', 0, out.length);
}

describe('JSON written as bytes', () => {
  it('writes every number as jsonNumber does', () => {
    const numbers = [
      ...[0, -0, 1, 9, 10, 99, 100, 101, 999, 1000, 65_535, 2_147_483_647, 2_147_483_648, -1, -2_147_483_648, -2_147_483_649],
      ...[1e8, 1e8 - 1, 1e8 + 1, 1e9, 10_000_000_001, 1_733_400_000_123, 1_733_400_000_000, 100_000_000_000_000, 1e15, 1e16],
      ...[Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER + 1, 2 ** 60, -(2 ** 60), 1e21, 1e300],
      ...[0.5, -0.25, 1 / 3, 1e-7, 123.456, NaN, Infinity, -Infinity],
    ];
    let seed = 7;
    const random = (): number => {
      seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
      return seed / 2_147_483_648;
    };
    for (let i = 0; i < 2000; i++) {
      const magnitude = 10 ** Math.floor(random() * 17);
      numbers.push(Math.floor(random() * magnitude) * (random() < 0.2 ? -1 : 1));
    }
    for (const value of numbers)
      assert.equal(
        written((out) => out.number(value)),
        jsonNumber(value),
        String(value),
      );
    assert.equal(
      written((out) => {
        out.numberOrNull(null);
        out.numberOrNull(undefined);
        out.numberOrNull(42);
      }),
      'nullnull42',
    );
  });

  it('writes every string as quoteJson does, and raw text as it is', () => {
    const strings = ['', 'a', 'call-1@host', 'a"b', 'a\\b', 'tab\there', 'new\nline', '\u0000', '\u007f', 'é', '\u2028', '\ud800', '😀'];
    strings.push('x'.repeat(64), 'x'.repeat(65), `${'y'.repeat(70)}"`, 'é'.repeat(100));
    for (const value of strings) {
      assert.equal(
        written((out) => out.string(value)),
        quoteJson(value),
        JSON.stringify(value),
      );
      // Raw text as Buffer.write encodes it (a lone surrogate, which has no UTF-8, as U+FFFD), as records always were.
      assert.equal(
        written((out) => out.raw(value)),
        Buffer.from(value).toString(),
        JSON.stringify(value),
      );
    }
  });

  it('grows its buffer and keeps what it wrote, and starts again after reset', () => {
    const parts = Array.from({ length: 400 }, (_, i) => `call-${i}@host`);
    const text = written((out) => {
      for (const [i, part] of parts.entries()) {
        out.string(part);
        out.number(1_733_400_000_000 + i);
        out.raw('é,');
        out.char(QUOTE);
        out.char(COMMA);
      }
    }, 16);
    assert.equal(text, parts.map((part, i) => `${quoteJson(part)}${1_733_400_000_000 + i}é,",`).join(''));
    // Characters alone fill the buffer and grow it: the store at its end is not dropped.
    assert.equal(
      written((out) => {
        for (let i = 0; i < 10; i++) out.char(i % 2 === 0 ? QUOTE : COMMA);
      }, 4),
      '",",",",",',
    );
    const out = new JsonBytes(16);
    out.raw('[1]');
    out.reset(1);
    out.number(2);
    assert.equal(out.bytes.toString('utf8', 0, out.length), '[2');
  });
});
