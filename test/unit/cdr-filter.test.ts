import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CdrFilter } from '../../src/sidecar/journal/cdr-filter.js';
import { ReservationTable } from '../../src/sidecar/credit/reservation-table.js';

/**
 * The filter in front of CDR ingest's duplicate check: it may say "maybe"
 * for a Call-ID it never saw (rarely), never "no" for one it holds, and it
 * forgets a generation only when the prune has deleted all of its CDRs.
 */
const HOUR = 3_600_000;
const T0 = Date.parse('2026-12-01T00:00:00Z');
const callId = (n: number): string => `${n.toString(16).padStart(8, '0')}-4f1c-9a2b@10.0.0.${n % 250}`;

describe('CDR filter', () => {
  it('never says no for a Call-ID it holds, across generations, and rarely says maybe for one it does not', () => {
    const filter = new CdrFilter(1000);
    const held = 50_000;
    // Five CDRs a second for a while, then a burst: generations by time and by size.
    for (let n = 0; n < held; n++) filter.add(callId(n), n + 1, T0 + (n < 10_000 ? n * 200 : 2_000_000 + n));
    assert.ok(filter.generationCount > 3, `${filter.generationCount} generations`);
    for (let n = 0; n < held; n++) assert.equal(filter.mightHave(callId(n)), true, callId(n));
    let falsePositives = 0;
    const probes = 100_000;
    for (let n = held; n < held + probes; n++) if (filter.mightHave(callId(n))) falsePositives++;
    // 10 bits and 7 hashes per Call-ID: under 1% per generation checked; a few generations of headroom.
    assert.ok(falsePositives / probes < 0.03, `${falsePositives} false positives in ${probes}`);
  });

  it('forgets a generation only once all of its CDRs are settled and past the prune cutoff', () => {
    const filter = new CdrFilter(1000);
    filter.add('old-settled@a', 1, T0);
    filter.add('old-unsettled@a', 2, T0 + 1000);
    filter.add('recent@a', 3, T0 + HOUR); // a later generation: ten minutes past the first
    // Cutoff past both generations' first, but CDR 2 is not settled: the first generation stays.
    filter.forget(T0 + 2 * HOUR, 1);
    assert.equal(filter.mightHave('old-unsettled@a'), true);
    assert.equal(filter.mightHave('old-settled@a'), true);
    // Settled through 3, cutoff between the generations: only the first goes.
    filter.forget(T0 + 30 * 60_000, 3);
    assert.equal(filter.mightHave('old-unsettled@a'), false);
    assert.equal(filter.mightHave('old-settled@a'), false);
    assert.equal(filter.mightHave('recent@a'), true);
    assert.equal(filter.generationCount, 1);
  });

  it("takes the reservation table's hash of a Call-ID as its first hash, as admission hands it over", () => {
    // Admission hashes the Call-ID once (NodeCredit.hasCdr): a table hashing otherwise would make the filter say
    // "no" for a Call-ID it holds, and a reused Call-ID be admitted and never billed.
    const filter = new CdrFilter(1000);
    const table = new ReservationTable(16);
    for (let n = 0; n < 1000; n++) filter.add(callId(n), n + 1, T0);
    for (let n = 0; n < 1000; n++) assert.equal(filter.mightHave(callId(n), table.hashOf(callId(n))), true, callId(n));
  });

  it('says no when it holds nothing', () => {
    assert.equal(new CdrFilter().mightHave('anything@x'), false);
  });
});
