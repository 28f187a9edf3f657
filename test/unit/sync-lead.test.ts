import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { RequestError } from '../../src/core/http/errors.js';
import { seedStore } from '../../sync/admin/seed.js';
import { SyncJob } from '../../sync/distribution/sync-job.js';
import { loadNodePolicy } from '../../sync/nodes/policy.js';
import { openCentreStores, type CentreStores } from '../../sync/stores.js';
import { routingTables } from '../fixtures/routing.js';

/**
 * A sync runs only on the control plane that leads (holds the sync lock on a shared store): asked of one that
 * does not, or one whose lead passed while it read the store, it is refused with sync_elsewhere and records
 * and sends nothing, rather than run beside the leader's.
 */
describe('a sync on a control plane that does not lead', () => {
  let stores: CentreStores;
  const log = pino({ level: 'silent' });
  const policy = loadNodePolicy([mkdtempSync(join(tmpdir(), 'sync-lead-'))], '127.0.0.0/8');
  const job = (leads: () => boolean): SyncJob => new SyncJob(stores.config, log, policy, { leads });
  const refusedAsElsewhere = (error: unknown): boolean => error instanceof RequestError && error.code === 'sync_elsewhere';

  before(async () => {
    stores = openCentreStores(join(mkdtempSync(join(tmpdir(), 'sync-lead-')), 'config.db'));
    await seedStore(stores.config, routingTables());
  });
  after(() => stores.close());

  it('is refused with sync_elsewhere, and no snapshot is recorded', async () => {
    const before = await stores.config.lastSnapshotVersion();
    const sync = job(() => false);
    await assert.rejects(sync.run(), refusedAsElsewhere);
    assert.equal(await stores.config.lastSnapshotVersion(), before);
    await sync.close();
  });

  it('stops before recording anything when the lead passes while it reads the store', async () => {
    const before = await stores.config.lastSnapshotVersion();
    let asked = 0;
    const sync = job(() => ++asked === 1);
    await assert.rejects(sync.run(), refusedAsElsewhere);
    assert.equal(asked, 2, 'asked at the start and again before recording');
    assert.equal(await stores.config.lastSnapshotVersion(), before);
    await sync.close();
  });

  it('runs and records a snapshot on the centre that leads', async () => {
    const before = await stores.config.lastSnapshotVersion();
    const sync = job(() => true);
    const report = await sync.run();
    assert.ok(report.snapshot_version > before);
    assert.equal(await stores.config.lastSnapshotVersion(), report.snapshot_version);
    await sync.close();
  });
});
