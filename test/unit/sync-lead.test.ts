import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import pino from 'pino';
import { RequestError } from '../../src/core/http/errors.js';
import { seedStore } from '../../sync/admin/seed.js';
import { SyncJob } from '../../sync/distribution/sync-job.js';
import { SYNC_TERM_ROW } from '../../sync/drouting/writer.js';
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
  const nodeFiles = mkdtempSync(join(tmpdir(), 'sync-lead-'));
  const policy = loadNodePolicy([nodeFiles], '127.0.0.0/8');
  const job = (leads: () => boolean, term: number | null = null): SyncJob =>
    new SyncJob(stores.config, log, policy, { leads, term: () => term });
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

  it("writes its lead term with a node's drouting, and a centre whose lead is older is refused there", async () => {
    const droutingDb = join(nodeFiles, 'opensips.sqlite');
    const now = new Date().toISOString();
    // Nothing answers MI on port 9: the rows are written, the reload fails, as for a node whose OpenSIPS is not up.
    await stores.config.insert('opensips_nodes', {
      hostname: 'node-term',
      mi_socket_address: 'http://127.0.0.1:9/mi',
      drouting_db: droutingDb,
      region: 'test',
      status: 'active',
      created_at: now,
      updated_at: now,
    });
    const reload = (report: { reload_results: { hostname: string; error: string | null }[] }): string | null =>
      report.reload_results.find((result) => result.hostname === 'node-term')!.error;
    const leader = job(() => true, 8);
    assert.match(reload(await leader.run()) ?? '', /drouting tables written to .* OpenSIPS did not answer/);
    const db = new Database(droutingDb, { readonly: true });
    const fence = (): unknown => db.prepare('SELECT table_version FROM version WHERE table_name = ?').get(SYNC_TERM_ROW);
    assert.deepEqual(fence(), { table_version: 8 });
    // A centre that held the lead before (term 7), still syncing as if it led.
    const deposed = job(() => true, 7);
    assert.match(reload(await deposed.run({ force: true })) ?? '', /cannot write drouting tables .*term 8.*\(term 7\) no longer leads/);
    assert.deepEqual(fence(), { table_version: 8 });
    db.close();
    await Promise.all([leader.close(), deposed.close()]);
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
