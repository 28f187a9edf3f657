import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isoInstant } from '../../src/core/time/iso-instant.js';

/** A seeded generator, so that a failure names an instant that fails again. */
function lcg(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0;
    return state / 2 ** 32;
  };
}

describe('isoInstant writes what toISOString writes', () => {
  it('over random instants across the whole range a Date holds, and around now', () => {
    const random = lcg(16);
    const now = Date.parse('2026-12-05T12:00:00Z');
    for (let i = 0; i < 200_000; i++) {
      const ms =
        i % 2 === 0
          ? Math.round((random() * 2 - 1) * 8.64e15) // any year, negative and six-digit ones included
          : now + Math.round((random() * 2 - 1) * 4 * 86_400_000); // a few days either side: the kept days turn over
      assert.equal(isoInstant(ms), new Date(ms).toISOString(), `ms ${ms}`);
    }
  });

  it('at the edges: day and year boundaries, the epoch, the first and last instant a Date holds', () => {
    const edges = [
      0,
      -0,
      -1,
      1,
      86_399_999,
      86_400_000,
      -86_400_000,
      -86_400_001,
      Date.parse('2024-02-29T23:59:59.999Z'),
      8.64e15,
      -8.64e15,
    ];
    for (const year of [0, 1, 999, 1000, 1969, 1970, 2000, 9999, 10000, -1])
      edges.push(Date.UTC(year, 0, 1) - 1, Date.UTC(year, 0, 1), Date.UTC(year, 11, 31, 23, 59, 59, 999));
    for (const ms of edges) assert.equal(isoInstant(ms), new Date(ms).toISOString(), `ms ${ms}`);
  });

  it('throws the same RangeError as toISOString for what a Date cannot hold, and truncates fractions the same way', () => {
    for (const ms of [NaN, Infinity, 8.64e15 + 1, -8.64e15 - 1]) assert.throws(() => isoInstant(ms), RangeError);
    for (const ms of [1.5, -1.5, 1_733_400_000_000.9]) assert.equal(isoInstant(ms), new Date(ms).toISOString());
  });
});
