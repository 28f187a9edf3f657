import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import pino from 'pino';
import { DroutingFollow } from '../../sync/distribution/drouting-follow.js';
import type { SyncReport } from '../../sync/distribution/sync-job.js';

/** The coalescing of drouting's following of live changes, on mocked timers: how many runs, not how fast. */
describe('drouting follows live changes', () => {
  beforeEach(() => mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 1_000_000 }));
  afterEach(() => mock.timers.reset());

  const counting = (): { runs: number; run(): Promise<SyncReport> } => {
    const sync = {
      runs: 0,
      run(): Promise<SyncReport> {
        sync.runs++;
        return Promise.resolve({ reload_results: [] } as unknown as SyncReport);
      },
    };
    return sync;
  };
  const log = pino({ level: 'silent' });

  it('runs at once after a quiet spell, then at most once per interval however many changes come', () => {
    const sync = counting();
    const follow = new DroutingFollow(sync, 5, log);
    follow.committed(new Set(['carrier_gateways']));
    mock.timers.tick(0);
    assert.equal(sync.runs, 1);
    for (let i = 0; i < 10; i++) {
      follow.committed(new Set(['carrier_trunks']));
      mock.timers.tick(100);
    }
    assert.equal(sync.runs, 1, 'changes inside the interval wait');
    mock.timers.tick(4_000);
    assert.equal(sync.runs, 2, 'and are followed by one run');
    mock.timers.tick(60_000);
    assert.equal(sync.runs, 2, 'nothing changed since: no run');
    follow.close();
  });

  it('ignores block rules (drouting cannot express them), and follows nothing when off', () => {
    const sync = counting();
    const follow = new DroutingFollow(sync, 5, log);
    follow.committed(new Set(['block_rules']));
    mock.timers.tick(10_000);
    assert.equal(sync.runs, 0);
    const off = new DroutingFollow(sync, 0, log);
    off.committed(new Set(['carrier_trunks']));
    mock.timers.tick(10_000);
    assert.equal(sync.runs, 0);
  });
});
