import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CallCounters } from '../../src/sidecar/limits/call-counters.js';

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
