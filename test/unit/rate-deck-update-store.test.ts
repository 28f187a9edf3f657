import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { seedStore } from '../../sync/admin/seed.js';
import { deltaOfRow, type DeltaLogRow } from '../../sync/deltas/log.js';
import { PgDeltaLog } from '../../sync/deltas/pg-log.js';
import { PgRateDeckUpdateStore } from '../../sync/rate-deck-updates/pg-store.js';
import type { RateDeckUpdateStore, Reinstatement } from '../../sync/rate-deck-updates/store.js';
import { buildSnapshotTables } from '../../sync/snapshot/build.js';
import type { ConfigStore, Row } from '../../sync/store/config-store.js';
import { openPgDatabase } from '../../sync/store/pg-database.js';
import { openCentreStores } from '../../sync/stores.js';
import { routingTables } from '../fixtures/routing.js';
import { postgresUnreachable } from '../helpers/postgres.js';
import { openSeededStore } from '../helpers/seeded-store.js';

/**
 * The rate-deck update store with the clock given (sync/rate-deck-updates/store.ts), on each engine: SQLite
 * (a temporary file) and PostgreSQL (a scratch schema; skipped, with its reason shown, only when the server
 * does not answer). Activation once and in effective order, who is suspended and which download reinstates
 * whom, the rates an update brings and takes away, and a second control plane on the same database racing
 * the first to activate one update: exactly one wins.
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
const unreachable = await postgresUnreachable();

/** One control plane's stores over the engine's database, and a way to open a second one on it. */
interface Centre {
  config: ConfigStore;
  updates: RateDeckUpdateStore;
  /** The statuses a trunk's customer_trunks deltas carried, oldest first. */
  trunkStatuses(trunk: number): Promise<unknown[]>;
  /** Another control plane's update store on the same database (another process, another pool). */
  other(): Promise<{ updates: RateDeckUpdateStore; close(): Promise<void> }>;
  /**
   * Runs `work` (activations racing) so that each has read the update as pending before any claims it: on
   * PostgreSQL the update's row is held locked until every activation waits on it; on SQLite each reads its
   * due list synchronously before the first await, so two started together both see it pending.
   */
  race<T>(updateId: number, racers: number, work: () => Promise<T>): Promise<T>;
  /** PostgreSQL: a transaction of the test's own holding the rows `sql` locks (SQLite has no row locks). */
  hold(sql: string, params: unknown[]): Promise<HeldLock>;
  close(): Promise<void>;
}

/** Rows held locked by a transaction of the test's own, until released; who waits on it, directly or behind another waiter. */
class HeldLock {
  private constructor(
    private readonly pool: pg.Pool,
    private readonly client: pg.PoolClient,
    private readonly pid: number,
  ) {}

  static async take(pool: pg.Pool, sql: string, params: unknown[]): Promise<HeldLock> {
    const client = await pool.connect();
    await client.query('BEGIN');
    await client.query(sql, params);
    return new HeldLock(pool, client, (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0].pid);
  }

  /** Resolves once `count` sessions wait on this lock, directly or transitively (the second in a queue waits on the first). */
  async waitedOnBy(count: number, also: HeldLock | null = null): Promise<void> {
    const pids = also === null ? [this.pid] : [this.pid, also.pid];
    const waiting = async (): Promise<number> =>
      (
        await this.pool.query<{ n: number }>(
          `WITH RECURSIVE waits(pid) AS (
             SELECT pid FROM pg_stat_activity WHERE pg_blocking_pids(pid) && $1::int[]
             UNION SELECT a.pid FROM pg_stat_activity a JOIN waits w ON w.pid = ANY(pg_blocking_pids(a.pid)))
           SELECT COUNT(*) AS n FROM waits`,
          [pids],
        )
      ).rows[0].n;
    while ((await waiting()) < count) await new Promise((resolve) => setTimeout(resolve, 10));
  }

  async release(): Promise<void> {
    try {
      await this.client.query('COMMIT');
    } finally {
      this.client.release();
    }
  }
}

async function sqliteCentre(): Promise<Centre> {
  const path = join(mkdtempSync(join(tmpdir(), 'deck-updates-')), 'config.db');
  const stores = openCentreStores(path);
  await seedStore(stores.config, routingTables());
  return {
    config: stores.config,
    updates: stores.deckUpdates,
    trunkStatuses: (trunk) =>
      Promise.resolve(
        stores.deltas
          .read(0, 100_000)!
          .filter((delta) => delta.table === 'customer_trunks' && delta.id === trunk)
          .map((delta) => delta.row!.status),
      ),
    other: () => {
      const other = openCentreStores(path);
      return Promise.resolve({ updates: other.deckUpdates, close: () => Promise.resolve(other.close()) });
    },
    race: (_updateId, _racers, work) => work(),
    hold: () => Promise.reject(new Error('SQLite has no row locks')),
    close: () => Promise.resolve(stores.close()),
  };
}

async function postgresCentre(): Promise<Centre> {
  const seeded = await openSeededStore('postgres', 'deck_updates');
  const pools: pg.Pool[] = [];
  const updateStore = async (): Promise<{ updates: RateDeckUpdateStore; pool: pg.Pool }> => {
    const pool = await openPgDatabase(seeded.location);
    pools.push(pool);
    return { updates: new PgRateDeckUpdateStore(pool, new PgDeltaLog()), pool };
  };
  const { updates, pool } = await updateStore();
  return {
    config: seeded.store,
    updates,
    trunkStatuses: async (trunk) =>
      (await pool.query<DeltaLogRow>('SELECT seq, table_name, op, row_id, row FROM delta_log ORDER BY seq')).rows
        .map(deltaOfRow)
        .filter((delta) => delta.table === 'customer_trunks' && delta.id === trunk)
        .map((delta) => delta.row!.status),
    other: async () => {
      const other = await updateStore();
      return { updates: other.updates, close: () => Promise.resolve() };
    },
    race: async (updateId, racers, work) => {
      const update = await HeldLock.take(pool, 'SELECT id FROM rate_deck_updates WHERE id = $1 FOR UPDATE', [updateId]);
      const raced = work();
      // Every racer waits to claim the update (the second behind the first, or on the deck's lock behind it):
      // each has read the update as pending by then.
      await update.waitedOnBy(racers);
      await update.release();
      return raced;
    },
    hold: (sql, params) => HeldLock.take(pool, sql, params),
    close: async () => {
      for (const opened of pools) await opened.end();
      await seeded.close();
    },
  };
}

for (const engine of ['sqlite', 'postgres'] as const) {
  describe(`rate-deck update store on ${engine}`, { skip: engine === 'postgres' ? (unreachable ?? false) : false }, () => {
    let centre: Centre;
    let updates: RateDeckUpdateStore;
    const trunkStatus = async (id: number): Promise<string> => (await centre.config.get('customer_trunks', id))!.status as string;
    before(async () => {
      centre = engine === 'sqlite' ? await sqliteCentre() : await postgresCentre();
      updates = centre.updates;
    });
    after(() => centre.close());

    it('writes the rates an update brings from its time, or from now when that has passed', async () => {
      const before = await buildSnapshotTables(centre.config);
      const many = Array.from({ length: 12_000 }, (_, i) => ({ ...mobile, prefix: `619${i}`, rate_per_minute: '0.0500' }));
      const future = await updates.create(
        { rate_deck_id: 1, update_type: 'incremental', effective_at: T1, suspend_until_downloaded: false, created_by: null },
        [{ ...mobile, rate_per_minute: '0.0400' }, ...many],
        T0,
      );
      const late = await updates.create(
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
      assert.deepEqual(
        [future.status, future.effective_at, future.suspend_until_downloaded, late.created_at],
        ['pending', T1, 0, T0],
        'the update as recorded',
      );
      assert.equal(await updates.ratesOf(future.id as number), 12_001, 'every rate, past one batch on PostgreSQL');
      const rows = (await centre.config.list('rate_deck_rates', { where: { rate_deck_id: 1 }, limit: null, offset: 0 })).rows;
      const mobileRate = rows.find((row) => row.prefix === '614' && row.rate_deck_update_id === future.id)!;
      assert.deepEqual([mobileRate.effective_at, mobileRate.rate_per_minute, mobileRate.billing_increment_step], [T1, '0.0400', 6]);
      assert.equal(rows.find((row) => row.rate_deck_update_id === late.id)!.effective_at, T0, 'never before it was written');
      // The configuration store's cached rate columns see them (SQLite: told; PostgreSQL: migration 14's trigger counted the writes).
      const after = await buildSnapshotTables(centre.config);
      assert.equal(after.tables.rate_deck_rates.rate_deck_id.length, before.tables.rate_deck_rates.rate_deck_id.length + 12_002);
      assert.equal(await updates.removePending(late.id as number), 'removed');
      assert.equal(await updates.removePending(future.id as number), 'removed');
      assert.equal(await updates.removePending(future.id as number), 'not_found');
      assert.equal(
        (await buildSnapshotTables(centre.config)).tables.rate_deck_rates.rate_deck_id.length,
        before.tables.rate_deck_rates.rate_deck_id.length,
      );
    });

    it('activates due updates once, in effective order, notifying and suspending only active trunks on the deck', async () => {
      await centre.config.update('customer_trunks', 14, { status: 'suspended' }); // the operator's suspension
      const first = await updates.create(
        { rate_deck_id: 1, update_type: 'incremental', effective_at: T1, suspend_until_downloaded: true, created_by: null },
        [],
        T0,
      );
      const second = await updates.create(
        { rate_deck_id: 1, update_type: 'full_replace', effective_at: T2, suspend_until_downloaded: true, created_by: 7 },
        [],
        T0,
      );
      assert.deepEqual(await updates.activateDue(T0), [], 'nothing is due yet');
      assert.equal(await updates.nextDue(), T1);
      assert.deepEqual(
        (await updates.list('pending', null, 0)).map((row) => row.id),
        [first.id, second.id],
      );
      assert.deepEqual(
        (await updates.list(null, 1, 1)).map((row) => row.id),
        [second.id],
        'a page',
      );

      // A second control plane on the same database runs its scheduler too, after this one.
      const other = await centre.other();
      const activations = [
        ...(await updates.activateDue(T2)),
        ...(await other.updates.activateDue(T2)),
        ...(await updates.activateDue(T2)),
      ];
      await other.close();
      assert.deepEqual(
        activations.map((activation) => [activation.id, activation.notified, activation.suspended, activation.superseded]),
        [
          [first.id, [10, 11, 14], [10, 11], []],
          [second.id, [10, 11, 14], [10, 11], [first.id]],
        ],
      );
      assert.deepEqual(
        [(await updates.get(first.id as number))!.status, (await updates.get(second.id as number))!.status],
        ['superseded', 'active'],
      );
      assert.equal(await updates.nextDue(), null);
      assert.equal(await updates.removePending(first.id as number), 'not_pending');

      // Trunk 14 was the operator's to suspend: its download does not lift that.
      const download = async (update: Row, trunk: number): Promise<Reinstatement> =>
        updates.reinstate((await updates.recordDownload(update.id as number, trunk, T2))!, T2);
      assert.deepEqual(await download(first, 14), { reinstated: false, stillSuspendedBy: [] });
      assert.equal(await trunkStatus(14), 'suspended');
      assert.equal((await updates.notifications(first.id as number)).find((row) => row.customer_trunk_id === 14)!.downloaded_at, T2);
      // Trunk 10 downloads the superseded deck: the newer update still waits for its download.
      assert.deepEqual(await download(first, 10), { reinstated: false, stillSuspendedBy: [second.id] });
      assert.equal(await trunkStatus(10), 'suspended');
      assert.deepEqual(await download(second, 10), { reinstated: true, stillSuspendedBy: [] });
      assert.equal(await trunkStatus(10), 'active');
      assert.deepEqual(await download(second, 10), { reinstated: false, stillSuspendedBy: [] }, 'once');
      // Trunk 11 downloads the newest deck at once: that answers the older update's suspension too.
      assert.deepEqual(await download(second, 11), { reinstated: true, stillSuspendedBy: [] });
      assert.equal(await trunkStatus(11), 'active');
      // Trunk 12 is on another deck: never notified.
      assert.equal(await updates.recordDownload(first.id as number, 12, T2), null);
      // Each suspension and reinstatement is a live change too, in the order it happened (sync/deltas/log.ts).
      assert.deepEqual((await centre.trunkStatuses(10)).slice(-2), ['suspended', 'active']);
      assert.deepEqual((await centre.trunkStatuses(11)).slice(-2), ['suspended', 'active']);
      assert.deepEqual((await centre.trunkStatuses(14)).slice(-1), ['suspended'], "the operator's, and no other");
    });

    it('activates an update once when two control planes race for it: one wins, the trunks are told and suspended once', async () => {
      const update = await updates.create(
        { rate_deck_id: 1, update_type: 'incremental', effective_at: T2, suspend_until_downloaded: true, created_by: null },
        [],
        T0,
      );
      const deltasBefore = (await centre.trunkStatuses(10)).length;
      const other = await centre.other();
      const activations = (
        await centre.race(update.id as number, 2, () => Promise.all([updates.activateDue(T2), other.updates.activateDue(T2)]))
      ).flat();
      await other.close();
      assert.deepEqual(
        activations.map((activation) => [activation.id, activation.notified, activation.suspended]),
        [[update.id, [10, 11, 14], [10, 11]]],
      );
      assert.equal((await updates.notifications(update.id as number)).length, 3, 'each trunk told once');
      assert.deepEqual((await centre.trunkStatuses(10)).slice(deltasBefore), ['suspended'], 'one suspension, one delta');
    });

    it(
      'leaves one update of a deck active when two control planes activate two of its updates at once',
      { skip: engine !== 'postgres' },
      async () => {
        // The first control plane has read only A as due and waits to claim it (A's row held); the second, with
        // B created meanwhile (earlier effective_at, so first in its list), would claim B and supersede what is
        // active, then wait for the trunks (held). Without the deck's lock each then commits unaware of the
        // other (neither's supersede saw the other active): two active updates of one deck.
        const a = await updates.create(
          { rate_deck_id: 1, update_type: 'incremental', effective_at: T1, suspend_until_downloaded: false, created_by: null },
          [],
          T0,
        );
        const updateRow = await centre.hold('SELECT id FROM rate_deck_updates WHERE id = $1 FOR UPDATE', [a.id]);
        const trunks = await centre.hold('SELECT id FROM customer_trunks WHERE id IN (10, 11, 14) FOR UPDATE', []);
        const first = updates.activateDue(T2);
        await updateRow.waitedOnBy(1, trunks);
        const b = await updates.create(
          { rate_deck_id: 1, update_type: 'incremental', effective_at: T0, suspend_until_downloaded: false, created_by: null },
          [],
          T0,
        );
        const other = await centre.other();
        const second = other.updates.activateDue(T2);
        await updateRow.waitedOnBy(2, trunks);
        await updateRow.release();
        await trunks.waitedOnBy(2);
        await trunks.release();
        await Promise.all([first, second]);
        await other.close();
        const active = (await updates.list('active', null, 0)).filter((row) => row.rate_deck_id === 1).map((row) => row.id);
        assert.deepEqual(active, [b.id], 'the one activated last supersedes the other');
        assert.equal((await updates.get(a.id as number))!.status, 'superseded');
      },
    );
  });
}
