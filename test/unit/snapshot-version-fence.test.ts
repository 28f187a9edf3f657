import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it, mock } from 'node:test';
import pino from 'pino';
import { RequestError } from '../../src/core/http/errors.js';
import { seedStore } from '../../sync/admin/seed.js';
import { SyncJob } from '../../sync/distribution/sync-job.js';
import { loadNodePolicy } from '../../sync/nodes/policy.js';
import type { ConfigStore } from '../../sync/store/config-store.js';
import { PgSyncLock } from '../../sync/store/pg-sync-lock.js';
import { parseStoreLocation } from '../../sync/store/store-location.js';
import { openConfigStore, type ConfigStoreHandle } from '../../sync/stores.js';
import { routingTables } from '../fixtures/routing.js';
import { postgresUnreachable, scratchSchema, type ScratchSchema } from '../helpers/postgres.js';

const unreachable = await postgresUnreachable();
const HOUR_MS = 3_600_000;

/**
 * Two control planes on one PostgreSQL store, centre A's clock an hour ahead of centre B's. A leads and starts a
 * sync; its lock connection is lost, B takes the lead and syncs, and A's sync goes on. A sidecar keeps the highest
 * version it was given and refuses lower ones as stale, so the order of versions is the order of what nodes end
 * up serving. Numbered by each centre's own clock, A's snapshot (read before B took over) outranked B's for an
 * hour, and a sync A started after losing the lead pushed one above it again.
 */
describe('snapshot versions of two control planes on one PostgreSQL store', { skip: unreachable ?? false }, () => {
  let scratch: ScratchSchema;
  let centreA: ConfigStoreHandle;
  let centreB: ConfigStoreHandle;
  const locks: PgSyncLock[] = [];
  const jobs: SyncJob[] = [];
  const log = pino({ level: 'silent' });
  const policy = loadNodePolicy([mkdtempSync(join(tmpdir(), 'snapshot-fence-'))], '127.0.0.0/8');
  const takeLead = async (): Promise<PgSyncLock> => {
    const lock = await PgSyncLock.tryTake(scratch.url);
    assert.ok(lock !== null, 'the sync lock is free');
    locks.push(lock);
    return lock;
  };
  /** A centre's sync job, believing it leads, under the term it took. */
  const syncJob = (store: ConfigStore, term: number): SyncJob => {
    const job = new SyncJob(store, log, policy, { term: () => term });
    jobs.push(job);
    return job;
  };
  /** Runs `work` with this process's wall clock an hour ahead: centre A's. */
  const clockAhead = async <T>(work: () => Promise<T>): Promise<T> => {
    mock.timers.enable({ apis: ['Date'], now: Date.now() + HOUR_MS });
    try {
      return await work();
    } finally {
      mock.timers.reset();
    }
  };
  let termA = 0;
  let versionB = 0;

  before(async () => {
    scratch = await scratchSchema('snapshot_fence');
    centreA = await openConfigStore(parseStoreLocation(scratch.url));
    centreB = await openConfigStore(parseStoreLocation(scratch.url));
    await seedStore(centreA.config, routingTables());
  });
  after(async () => {
    await Promise.all(jobs.map((job) => job.close()));
    await Promise.all(locks.map((lock) => lock.release()));
    await centreA.close();
    await centreB.close();
    await scratch.drop();
  });

  it("numbers the new leader's snapshot above the one a centre whose clock runs ahead was building when it lost the lead", async () => {
    const lockA = await takeLead();
    termA = lockA.term;
    // A's sync has its version and encodes; before it records, its lock connection goes and B leads and syncs.
    const storeA = new Proxy(centreA.config, {
      get(target, property) {
        if (property === 'recordSnapshot')
          return async (...args: Parameters<ConfigStore['recordSnapshot']>) => {
            mock.timers.reset(); // B's clock is right
            await lockA.release();
            const lockB = await takeLead();
            versionB = (await syncJob(centreB.config, lockB.term).run()).snapshot_version;
            return target.recordSnapshot(...args);
          };
        const value: unknown = Reflect.get(target, property, target);
        return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    });
    const versionA = (await clockAhead(() => syncJob(storeA, termA).run())).snapshot_version;
    assert.ok(versionB > versionA, `B's ${versionB} above A's ${versionA}`);
    assert.equal(await centreA.config.lastSnapshotVersion(), versionB);
  });

  it('records nothing for a sync a centre starts under a lead term a later one has replaced', async () => {
    assert.ok(versionB > 0, 'the test above ran');
    // A, stalled, still believes it leads under its old term.
    await assert.rejects(
      clockAhead(() => syncJob(centreA.config, termA).run()),
      (error: unknown) => error instanceof RequestError && error.code === 'sync_elsewhere',
    );
    assert.equal(await centreB.config.lastSnapshotVersion(), versionB);
  });
});
