import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatNano } from '../../src/core/money/nano.js';
import {
  convertAmount,
  convertMoney,
  formatMoney,
  rateCallDecimal,
  rateCallNano,
  type DecimalPrecision,
  type RateType,
  type RoundingDirection,
} from '../../src/core/rating/rating.js';

/**
 * The CDR path rates in integers (nano-unit rates, one exact rounding) instead of decimal.js. Proven equal
 * to the decimal path it replaced over random calls: rates from a tenth of a thousandth to hundreds a
 * minute with up to nine decimals, answered durations from 0 s (under a second: billed its first
 * increment, or its per-call charge) to a day, every increment shape, precision and rounding, per-minute
 * and per-call; and the conversion to the account's currency both ways. A seeded generator: a failure
 * names a case that fails again.
 */
const CASES = 1_000_000;

/** xorshift32: fast, seeded, good enough to spread cases. */
function generator(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 4294967296;
  };
}

const PRECISIONS: DecimalPrecision[] = [4, 5, 6];
const ROUNDINGS: RoundingDirection[] = ['up', 'down', 'standard'];
const INCREMENTS = [
  [1, 1],
  [6, 6],
  [30, 6],
  [60, 60],
  [1, 60],
  [60, 1],
  [15, 15],
];

describe('integer rating equals the decimal path', () => {
  it(`rates ${CASES.toLocaleString('en')} random calls to the same string`, () => {
    const random = generator(20261204);
    let differences = 0;
    // 0-second calls charged something: the cases the 0 s rule is proven on (were they all 0, it would not be).
    let zeroSecondsCharged = 0;
    for (let i = 0; i < CASES; i++) {
      // Rates: mostly wholesale-sized (up to 1.0/min), some up to 999/min; 0 to 9 decimals.
      const scale = random() < 0.9 ? 1e9 : 1e12;
      const decimals = Math.floor(random() * 10);
      const step = 10 ** (9 - decimals);
      const rateNano = Math.floor((random() * scale) / step) * step;
      const rateType: RateType = random() < 0.05 ? 'per_call' : 'per_minute';
      const duration = random() < 0.02 ? 0 : 1 + Math.floor(random() ** 3 * 86_400);
      const [initial, stepSeconds] = INCREMENTS[Math.floor(random() * INCREMENTS.length)];
      const precision = PRECISIONS[Math.floor(random() * 3)];
      const rounding = ROUNDINGS[Math.floor(random() * 3)];
      const increments = { initial, step: stepSeconds };
      const integer = rateCallNano(rateNano, rateType, duration, increments, precision, rounding);
      const input = { rate: formatNano(rateNano), rateType, durationSeconds: duration, increments, precision, rounding };
      const decimal = rateCallDecimal(input);
      if (integer !== decimal) {
        differences++;
        assert.fail(`case ${i}: ${JSON.stringify(input)}: integer ${integer}, decimal ${decimal}`);
      }
      if (duration === 0 && /[1-9]/.test(integer)) zeroSecondsCharged++;
    }
    assert.equal(differences, 0);
    assert.ok(zeroSecondsCharged > 10_000, `only ${zeroSecondsCharged} answered 0 s calls were charged`);
  });

  // The edges the snapshot and the CDR ingest accept, which the calls above stay inside: rates up to the largest
  // (999999.999999999), calls up to the ingest's seven days, billing increments up to a rate row's 65535 s.
  it('rates 200,000 calls at the edges of what is accepted to the same string', () => {
    const random = generator(8122026);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)];
    for (let i = 0; i < 200_000; i++) {
      const step = 10 ** (9 - Math.floor(random() * 10));
      const rateNano = Math.min(999_999_999_999_999, Math.floor((random() * pick([1e9, 1e12, 1e15])) / step) * step);
      const rateType: RateType = random() < 0.1 ? 'per_call' : 'per_minute';
      const durationSeconds = pick([0, 1, 604_800, Math.floor(random() * 604_801)]);
      const increments = {
        initial: random() < 0.5 ? pick([1, 6, 30, 60]) : 1 + Math.floor(random() * 65_535),
        step: 1 + Math.floor(random() * 65_535),
      };
      const precision = pick(PRECISIONS);
      const rounding = pick(ROUNDINGS);
      const input = { rate: formatNano(rateNano), rateType, durationSeconds, increments, precision, rounding };
      const integer = rateCallNano(rateNano, rateType, durationSeconds, increments, precision, rounding);
      if (integer !== rateCallDecimal(input))
        assert.fail(`case ${i}: ${JSON.stringify(input)}: integer ${integer}, decimal ${rateCallDecimal(input)}`);
    }
  });

  it('rates past 2^53 (the BigInt path) as the decimal path does', () => {
    const input = { rate: '9000000.123456789', rateType: 'per_minute' as const, durationSeconds: 604_800, precision: 6 as const };
    for (const rounding of ROUNDINGS) {
      const increments = { initial: 1, step: 1 };
      assert.equal(
        rateCallNano(9_000_000_123_456_789, 'per_minute', 604_800, increments, 6, rounding),
        rateCallDecimal({ ...input, increments, rounding }),
      );
    }
  });

  it('converts 200,000 random charges to the account currency as the decimal path does, both ways', () => {
    const random = generator(4122026);
    for (let i = 0; i < 200_000; i++) {
      const precision = PRECISIONS[Math.floor(random() * 3)];
      const rounding = ROUNDINGS[Math.floor(random() * 3)];
      const units = Math.floor(random() ** 2 * 10 ** (precision + 4));
      const amount = formatMoney((units / 10 ** precision).toFixed(precision), precision, 'down');
      // Exchange rates as configured: 0.0001 to 200, with 1 to 12 decimals, never 0.
      const rateDecimals = 1 + Math.floor(random() * 12);
      const rate = (0.0001 + random() * 200).toFixed(rateDecimals);
      if (Number(rate) === 0) continue;
      const inverse = random() < 0.5;
      const integer = convertMoney(amount, rate, inverse, precision, rounding);
      const decimal = formatMoney(convertAmount(amount, rate, inverse), precision, rounding);
      if (integer !== decimal)
        assert.fail(`case ${i}: ${amount} ${inverse ? '/' : '*'} ${rate} at ${precision} ${rounding}: ${integer} vs ${decimal}`);
    }
  });
});
