import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { addPercentFloor, formatAnyFixed, formatFixed, formatNano, mulNano, parseNano } from '../../src/core/money/nano.js';
import { blockingNumbers, isRoutableDnis, normalizeAni, normalizeNumber } from '../../src/core/numbers/normalize.js';

describe('number normalisation', () => {
  const cases: [string, string | null][] = [
    ['61400123456', '61400123456'],
    ['+61400123456', '61400123456'],
    ['+61 (400) 123-456', '61400123456'],
    ['61.400.123.456', '61400123456'],
    ['sip:+61400123456@sip.example.net;user=phone', '61400123456'],
    ['sips:61400123456@host', '61400123456'],
    ['tel:+61-400-123-456', '61400123456'],
    ['"Alice" <sip:6125550100@sip.example.net>', '6125550100'],
    ['<sip:6125550100;npdi@host>', '6125550100'],
    ['anonymous', null],
    ['sip:anonymous@anonymous.invalid', null],
    ['http:61400123456', null],
    ['6140+0123456', null],
    ['614001*23456', null],
    ['', null],
    ['+', null],
    ['1'.repeat(600), null],
  ];
  for (const [raw, expected] of cases) {
    it(`${JSON.stringify(raw.slice(0, 40))} -> ${String(expected)}`, () => assert.equal(normalizeNumber(raw), expected));
  }

  it('accepts DNIS lengths of 7 to 15 digits', () => {
    assert.deepEqual(['123456', '1234567', '123456789012345', '1234567890123456'].map(isRoutableDnis), [false, true, true, false]);
  });

  it('keeps the digits of an unusable number for the block rules: all of them, and those before a stray character', () => {
    assert.deepEqual(
      [
        blockingNumbers(null),
        blockingNumbers(''),
        blockingNumbers('anonymous'),
        blockingNumbers('1'.repeat(16)),
        blockingNumbers('+612 5550 0100'),
        blockingNumbers('"Bob" <sip:+6188123x@host;user=phone>'),
        blockingNumbers('6188+123'),
        blockingNumbers('mailto:6188123'),
        blockingNumbers('1'.repeat(513)),
        blockingNumbers('x6188123'),
        blockingNumbers('%2B6188123'),
        blockingNumbers('6188123x9'),
      ],
      [
        [],
        [],
        [],
        ['1'.repeat(16)],
        ['61255500100'],
        ['6188123'],
        ['6188', '6188123'],
        [],
        [],
        ['6188123'],
        ['6188123'],
        ['6188123', '61881239'],
      ],
    );
  });

  it('turns a withheld or unusable ANI into an empty string', () => {
    assert.deepEqual(
      [normalizeAni(null), normalizeAni(''), normalizeAni('anonymous'), normalizeAni('1'.repeat(16)), normalizeAni('+612 5550 0100')],
      ['', '', '', '', '61255500100'],
    );
  });
});

describe('nano-unit money', () => {
  it('parses decimal strings exactly and refuses anything else', () => {
    assert.equal(parseNano('0.0250'), 25_000_000);
    assert.equal(parseNano('12'), 12_000_000_000);
    assert.equal(parseNano('-1.5'), -1_500_000_000);
    assert.equal(parseNano('0.123456789'), 123_456_789);
    assert.equal(parseNano('0.1234567890000'), 123_456_789); // trailing zeros past 9 decimals are exact
    for (const bad of ['0.1234567891', '1e3', '', '.5', '1.', '-', '1,5', '1234567.0', 'NaN', ' 1'])
      assert.ok(Number.isNaN(parseNano(bad)), bad);
  });

  it('formats with at least four decimals and no noise', () => {
    assert.deepEqual(
      [
        formatNano(25_000_000),
        formatNano(123_456_789),
        formatNano(12_000_000_000),
        formatNano(-1_500_000_000),
        formatNano(0),
        formatNano(1_520_000_000, 6),
      ],
      ['0.0250', '0.123456789', '12.0000', '-1.5000', '0.0000', '1.520000'],
    );
  });

  it('formats every integer as the text-trimming formatter does (the headroom of every admission)', () => {
    // The arithmetic formatter (trailing zeros dropped from the number) against the one that trims the text.
    let seed = 11;
    const random = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const edges = [
      0,
      -0,
      1,
      -1,
      9,
      10,
      99,
      100,
      999_999,
      1_000_000,
      1_000_001,
      10_000_000,
      123_000_000,
      Number.MAX_SAFE_INTEGER,
      -Number.MAX_SAFE_INTEGER,
    ];
    const values = [...edges, ...Array.from({ length: 20_000 }, () => Math.floor((random() - 0.3) * 10 ** Math.floor(random() * 16)))];
    for (const value of values)
      for (const [decimals, minDecimals] of [
        [6, 2],
        [9, 4],
        [9, 6],
        [6, 0],
        [6, 6],
        [0, 0],
        [2, 2],
        [4, 6],
      ])
        assert.equal(
          formatFixed(value, decimals, minDecimals),
          formatAnyFixed(value, decimals, minDecimals),
          `${value} ${decimals} ${minDecimals}`,
        );
  });

  it('multiplies exactly past 2^53 and rounds half away from zero', () => {
    assert.equal(mulNano(12_000_000, 1_500_000_000), 18_000_000); // 0.012 * 1.5
    // 999999999999 * 1999999999 = 1999999998998000000001, / 1e9 = 1999999998998.000000001
    assert.equal(mulNano(999_999_999_999, 1_999_999_999), 1_999_999_998_998); // needs BigInt
    assert.equal(mulNano(1, 500_000_000), 1); // 0.5 nano rounds up
    assert.equal(mulNano(1, 499_999_999), 0);
  });

  it('agrees with BigInt arithmetic on random rates and exchange rates', () => {
    let seed = 11;
    const random = (): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const reference = (a: number, b: number): number => {
      const p = BigInt(a) * BigInt(b);
      const abs = p < 0n ? -p : p;
      const q = abs / 1_000_000_000n + ((abs % 1_000_000_000n) * 2n >= 1_000_000_000n ? 1n : 0n);
      return Number(p < 0n ? -q : q);
    };
    for (let i = 0; i < 20_000; i++) {
      const a = Math.floor(random() * 10 ** (1 + Math.floor(random() * 14))); // 0 .. 1e15 nano (up to 1e6 units)
      const b = Math.floor(random() * 10 ** (1 + Math.floor(random() * 11))); // 0 .. 1e11 nano (fx up to 100)
      const sign = random() < 0.1 ? -1 : 1;
      assert.equal(mulNano(sign * a, b), reference(sign * a, b), `${sign * a} * ${b}`);
    }
  });

  it('computes the margin ceiling by floor', () => {
    assert.equal(addPercentFloor(25_000_000, 5_000_000_000), 26_250_000); // 0.025 * 1.05
    assert.equal(addPercentFloor(25_000_000, 3_990_000_000), 25_997_500);
    assert.equal(addPercentFloor(3, 50_000_000_000), 4); // 3 * 1.5 = 4.5 -> 4
  });
});
