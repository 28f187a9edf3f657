import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SYNC_HISTORY_SIZE, SyncHistory } from '../../sync/distribution/sync-history.js';
import type { SyncReport } from '../../sync/distribution/sync-job.js';

const report = (version: number): SyncReport => ({
  gateways: 0,
  carriers: 0,
  rules: 0,
  groups: 0,
  reload_results: [],
  warnings: [],
  snapshot_version: version,
  sidecar_results: [],
});

describe('console: the sync history', () => {
  it('shows the running sync and its phase, then keeps it newest first, failures with their reason', () => {
    const history = new SyncHistory();
    assert.equal(history.running(), null);
    history.started(false);
    history.phase('pushing');
    assert.deepEqual({ ...history.running(), started_at: 'x' }, { started_at: 'x', forced: false, phase: 'pushing' });
    history.finished({ report: report(1) });
    history.started(true);
    history.finished({ error: 'the store holds data the sidecar would refuse' });
    assert.equal(history.running(), null);
    const [newest, oldest] = history.list(10);
    assert.deepEqual([newest.forced, newest.report, newest.error], [true, null, 'the store holds data the sidecar would refuse']);
    assert.equal(oldest.report?.snapshot_version, 1);
    assert.equal(history.list(1).length, 1);
  });

  it(`keeps only the last ${SYNC_HISTORY_SIZE}`, () => {
    const history = new SyncHistory();
    for (let version = 1; version <= SYNC_HISTORY_SIZE + 7; version++) {
      history.started(false);
      history.finished({ report: report(version) });
    }
    const kept = history.list(1000);
    assert.equal(kept.length, SYNC_HISTORY_SIZE);
    assert.equal(kept[0].report?.snapshot_version, SYNC_HISTORY_SIZE + 7);
    assert.equal(kept.at(-1)?.report?.snapshot_version, 8);
  });
});
