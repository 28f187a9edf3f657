import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CallCounters } from '../../src/sidecar/limits/call-counters.js';
import { rerouteCall } from '../../src/sidecar/call/decide.js';
import { SidecarMetrics } from '../../src/sidecar/metrics/metrics.js';
import { firstAttemptRequest, type RouteRequest } from '../../src/sidecar/routing/route.js';
import { routingTables } from '../fixtures/routing.js';
import { engineFor } from '../helpers/engine.js';

/** Per-minute counters are kept only for trunks the serving snapshot knows: ids from requests cannot grow them. */
describe('per-minute counters', () => {
  const known = new Set([10, 20]);
  const now = 1_800_000_000_000;

  it('stores no entry for 10k trunk ids the snapshot does not know, and still counts the known ones', () => {
    const counters = new CallCounters((trunkId) => known.has(trunkId));
    for (let id = 1000; id < 11_000; id++) {
      assert.deepEqual(counters.checkPerMinute(id, 5, now), { allowed: true, current: 0, limit: 5 });
    }
    assert.deepEqual(counters.perMinuteTrunks(now), []);
    assert.equal(counters.perMinuteCurrent(1000, now), 0);
    assert.deepEqual(counters.checkPerMinute(10, 1, now), { allowed: true, current: 1, limit: 1 });
    assert.deepEqual(counters.checkPerMinute(10, 1, now), { allowed: false, current: 1, limit: 1 });
    assert.deepEqual(counters.perMinuteTrunks(now), [10]);
    // An unknown trunk is answered as an empty window would be: a limit of 0 still refuses.
    assert.deepEqual(counters.checkPerMinute(99, 0, now), { allowed: false, current: 0, limit: 0 });
  });
});

/** A carrier call/route handed out and the script then skipped at its limits was never tried: its CPS gets the attempt back. */
describe('carrier CPS: a carrier the script skips', () => {
  const engine = engineFor(routingTables());
  const now = Date.parse('2026-11-24T12:00:00.250Z');

  function handedOut(counters: CallCounters, request: RouteRequest, failureCode: number | null): number {
    const context = { engine, metrics: new SidecarMetrics(), counters };
    const answer = JSON.parse(rerouteCall(context, request, failureCode, now)) as { route: { carrier_trunk_id: number } };
    return answer.route.carrier_trunk_id;
  }

  it("gives the skipped carrier's attempt back and counts the next one; a carrier that failed keeps its attempt", () => {
    const counters = new CallCounters(() => true);
    const first = handedOut(counters, firstAttemptRequest(10, '61400123456', '6125550100'), null);
    assert.equal(counters.cpsCurrent('carrier', first, now), 1);
    // The script skipped it (route[mark_tried] with 1: last in the tried list) and asks again without a failure.
    const skippedAfter = { ...firstAttemptRequest(10, '61400123456', '6125550100'), attempt: 2, tried_carrier_trunk_ids: [first] };
    const next = handedOut(counters, skippedAfter, null);
    assert.notEqual(next, first);
    assert.equal(counters.cpsCurrent('carrier', first, now), 0);
    assert.equal(counters.cpsCurrent('carrier', next, now), 1);
    // The next one was sent the call and failed with a 503: it was tried, its attempt stands.
    const failedAfter = { ...skippedAfter, attempt: 3, tried_carrier_trunk_ids: [first, next], previous_carrier_trunk_id: next };
    handedOut(counters, failedAfter, 503);
    assert.equal(counters.cpsCurrent('carrier', next, now), 1);
  });

  it('gives nothing back in a later second: that attempt has left the count already', () => {
    const counters = new CallCounters(() => true);
    counters.recordAttempt('carrier', 20, now - 1000);
    counters.recordAttempt('carrier', 20, now);
    counters.giveBackAttempt('carrier', 20, now + 1000);
    assert.equal(counters.cpsCurrent('carrier', 20, now), 1);
    counters.giveBackAttempt('carrier', 20, now);
    counters.giveBackAttempt('carrier', 20, now);
    assert.equal(counters.cpsCurrent('carrier', 20, now), 0);
  });
});
