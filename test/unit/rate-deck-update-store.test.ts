import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { seedStore } from '../../sync/admin/seed.js';
import { buildSnapshotTables } from '../../sync/snapshot/build.js';
import type { RateDeckUpdateStore, Reinstatement } from '../../sync/rate-deck-updates/store.js';
import type { Row } from '../../sync/store/config-store.js';
import { openCentreStores, type CentreStores } from '../../sync/stores.js';
import { routingTables } from '../fixtures/routing.js';

/**
 * The rate-deck update store with the clock given (sync/rate-deck-updates/store.ts): activation once and in
 * effective order, who is suspended and which download reinstates whom, the rates an update brings and takes
 * away, and a second connection to the same database activating nothing twice.
 */
const T0 = '2026-03-01T12:00:00.000Z';
const T1 = '2026-03-01T12:05:00.000Z';
const T2 = '2026-03-01T12:10:00.000Z';
const mobile = {
  prefix: '614',
  destination_name: 'Mobile',
  rate_type: 'per_minute' as const,
  billing_increment_initial: 6,
  billing_increment_step: 6,
};

describe('rate-deck update store', () => {
  let path: string;
  let stores: CentreStores;
  let updates: RateDeckUpdateStore;
  const trunkStatus = async (id: number): Promise<string> => (await stores.config.get('customer_trunks', id))!.status as string;
  before(async () => {
    path = join(mkdtempSync(join(tmpdir(), 'deck-updates-')), 'config.db');
    stores = openCentreStores(path);
    updates = stores.deckUpdates;
    await seedStore(stores.config, routingTables());
  });
  after(() => stores.close());

  it('writes the rates an update brings from its time, or from now when that has passed', async () => {
    const before = await buildSnapshotTables(stores.config);
    const future = updates.create(
      { rate_deck_id: 1, update_type: 'incremental', effective_at: T1, suspend_until_downloaded: false, created_by: null },
      [{ ...mobile, rate_per_minute: '0.0400' }],
      T0,
    );
    const late = updates.create(
      {
        rate_deck_id: 1,
        update_type: 'incremental',
        effective_at: '2020-01-01T00:00:00.000Z',
        suspend_until_downloaded: false,
        created_by: null,
      },
      [{ ...mobile, prefix: '6141', rate_per_minute: '0.0300' }],
      T0,
    );
    const rows = (await stores.config.list('rate_deck_rates', { where: { rate_deck_id: 1 }, limit: null, offset: 0 })).rows;
    assert.equal(rows.find((row) => row.rate_deck_update_id === future.id)!.effective_at, T1);
    assert.equal(rows.find((row) => row.rate_deck_update_id === late.id)!.effective_at, T0, 'never before it was written');
    // The configuration store's cached rate columns see them (this store writes over the same connection).
    const after = await buildSnapshotTables(stores.config);
    assert.equal(after.tables.rate_deck_rates.rate_deck_id.length, before.tables.rate_deck_rates.rate_deck_id.length + 2);
    assert.equal(updates.removePending(late.id as number), 'removed');
    assert.equal(updates.removePending(future.id as number), 'removed');
    assert.equal(
      (await buildSnapshotTables(stores.config)).tables.rate_deck_rates.rate_deck_id.length,
      before.tables.rate_deck_rates.rate_deck_id.length,
    );
  });

  it('activates due updates once, in effective order, notifying and suspending only active trunks on the deck', async () => {
    await stores.config.update('customer_trunks', 14, { status: 'suspended' }); // the operator's suspension
    const first = updates.create(
      { rate_deck_id: 1, update_type: 'incremental', effective_at: T1, suspend_until_downloaded: true, created_by: null },
      [],
      T0,
    );
    const second = updates.create(
      { rate_deck_id: 1, update_type: 'full_replace', effective_at: T2, suspend_until_downloaded: true, created_by: 7 },
      [],
      T0,
    );
    assert.deepEqual(updates.activateDue(T0), [], 'nothing is due yet');
    assert.equal(updates.nextDue(), T1);

    // A second connection to the same database (another process) runs its scheduler too.
    const other = openCentreStores(path);
    const activations = [...updates.activateDue(T2), ...other.deckUpdates.activateDue(T2), ...updates.activateDue(T2)];
    other.close();
    assert.deepEqual(
      activations.map((activation) => [activation.id, activation.notified, activation.suspended, activation.superseded]),
      [
        [first.id, [10, 11, 14], [10, 11], []],
        [second.id, [10, 11, 14], [10, 11], [first.id]],
      ],
    );
    assert.deepEqual([updates.get(first.id as number)!.status, updates.get(second.id as number)!.status], ['superseded', 'active']);
    assert.equal(updates.nextDue(), null);
    assert.equal(updates.removePending(first.id as number), 'not_pending');

    // Trunk 14 was the operator's to suspend: its download does not lift that.
    const download = (update: Row, trunk: number): Reinstatement =>
      updates.reinstate(updates.recordDownload(update.id as number, trunk, T2)!, T2);
    assert.deepEqual(download(first, 14), { reinstated: false, stillSuspendedBy: [] });
    assert.equal(await trunkStatus(14), 'suspended');
    assert.equal(updates.notifications(first.id as number).find((row) => row.customer_trunk_id === 14)!.downloaded_at, T2);
    // Trunk 10 downloads the superseded deck: the newer update still waits for its download.
    assert.deepEqual(download(first, 10), { reinstated: false, stillSuspendedBy: [second.id] });
    assert.equal(await trunkStatus(10), 'suspended');
    assert.deepEqual(download(second, 10), { reinstated: true, stillSuspendedBy: [] });
    assert.equal(await trunkStatus(10), 'active');
    assert.deepEqual(download(second, 10), { reinstated: false, stillSuspendedBy: [] }, 'once');
    // Trunk 11 downloads the newest deck at once: that answers the older update's suspension too.
    assert.deepEqual(download(second, 11), { reinstated: true, stillSuspendedBy: [] });
    assert.equal(await trunkStatus(11), 'active');
    // Trunk 12 is on another deck: never notified.
    assert.equal(updates.recordDownload(first.id as number, 12, T2), null);
    // Each suspension and reinstatement is a live change too, in the order it happened (sync/deltas/log.ts).
    const statuses = (trunk: number): unknown[] =>
      stores.deltas
        .read(0, 100_000)!
        .filter((delta) => delta.table === 'customer_trunks' && delta.id === trunk)
        .map((delta) => delta.row!.status);
    assert.deepEqual(statuses(10).slice(-2), ['suspended', 'active']);
    assert.deepEqual(statuses(11).slice(-2), ['suspended', 'active']);
  });
});
