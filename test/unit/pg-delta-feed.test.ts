import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { PgDeltaFeed, PgDeltaLog } from '../../sync/deltas/pg-log.js';
import { openPgDatabase } from '../../sync/store/pg-database.js';
import { PgConfigStore } from '../../sync/store/pg-config-store.js';
import { postgresUnreachable, scratchSchema, type ScratchSchema } from '../helpers/postgres.js';

/**
 * The delta log's read side on PostgreSQL, for two control planes on one database: a change written through
 * one centre's store wakes the other centre's held ask (NOTIFY at commit) and tells it the tables changed,
 * both read the same deltas in order, and a node the log no longer reaches, or one ahead of it, is told to take a snapshot.
 */
const unreachable = await postgresUnreachable();

describe('PostgreSQL delta feed', { skip: unreachable ?? false }, () => {
  let scratch: ScratchSchema | undefined;
  let pools: pg.Pool[] = [];
  let writer: PgConfigStore;
  let feeds: PgDeltaFeed[] = [];
  const now = new Date().toISOString();
  const blockRule = (pattern: string) => ({
    scope: 'global',
    scope_id: null,
    block_type: 'dnis',
    match_type: 'prefix',
    pattern,
    sip_response_code: 403,
    description: null,
    is_active: 1,
    created_at: now,
    updated_at: now,
  });

  before(async () => {
    const { url } = (scratch = await scratchSchema('delta_feed'));
    pools = [await openPgDatabase(url), await openPgDatabase(url)];
    writer = new PgConfigStore(pools[0], new PgDeltaLog({ count: 3, seconds: 86_400 }));
    feeds = await Promise.all(pools.map((pool) => PgDeltaFeed.open(pool, url, { count: 3, seconds: 86_400 })));
  });

  after(async () => {
    await Promise.all(feeds.map((feed) => feed.close()));
    await Promise.all(pools.map((pool) => pool.end()));
    await scratch?.drop();
  });

  it("wakes the other centre's held ask when a change commits, and both read it", async () => {
    const last = await feeds[1].lastSeq();
    // No timeout that could pass the test: without the NOTIFY this wait outlasts the test's own.
    const woken = feeds[1].waitPast(last, 600_000);
    const rule = await writer.insert('block_rules', blockRule('61990'));
    await woken;
    for (const feed of feeds) {
      const deltas = (await feed.read(last, 10)) ?? [];
      assert.equal(deltas.length, 1);
      const [delta] = deltas;
      assert.deepEqual([delta.seq, delta.table, delta.op, delta.id], [last + 1, 'block_rules', 'upsert', rule.id]);
      assert.equal((delta.row as { pattern: string }).pattern, '61990');
      assert.deepEqual(await feed.read(last + 1, 10), [], 'a node at the last sequence has nothing new');
      assert.equal(await feed.read(last + 2, 10), null, 'a node ahead of the store takes a snapshot');
    }
    // Announced already: an ask that starts waiting after the commit returns at once.
    await feeds[0].waitPast(last, 600_000);
  });

  it('tells the other centre which tables a commit changed (what its drouting follows)', async () => {
    const told = new Promise<ReadonlySet<string>>((resolve) => feeds[1].onCommitted(resolve));
    await writer.insert('block_rules', blockRule('61989'));
    assert.deepEqual([...(await told)], ['block_rules']);
  });

  it('reads in order, and sends a node behind the retention to a snapshot', async () => {
    const first = await feeds[0].lastSeq();
    for (const pattern of ['61991', '61992', '61993', '61994']) await writer.insert('block_rules', blockRule(pattern));
    const held = await feeds[0].read(first + 1, 10);
    assert.deepEqual(
      held?.map((delta) => delta.seq),
      [first + 2, first + 3, first + 4],
      'the newest three are kept',
    );
    assert.equal(await feeds[1].read(first, 10), null, 'the delta after `first` is trimmed');
    assert.equal(await feeds[0].oldestSeq(), first + 2);
    assert.deepEqual(
      (await feeds[1].recent(2)).map((delta) => delta.seq),
      [first + 4, first + 3],
    );
  });

  it("keeps its listening session through the server's idle session timeout", async () => {
    // The URL as a server with a 100 ms idle_session_timeout would have its sessions start, named to be found.
    const url = new URL(scratch!.url);
    url.searchParams.set('options', `${url.searchParams.get('options') ?? ''} -c idle_session_timeout=100 -c application_name=idle_feed`);
    const feed = await PgDeltaFeed.open(pools[0], url.toString());
    try {
      const sessions = async (): Promise<number[]> =>
        (await pools[1].query<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE application_name = 'idle_feed'")).rows.map(
          (row) => row.pid,
        );
      const listening = await sessions();
      assert.equal(listening.length, 1);
      // Ten times the timeout idle: ended by the server, the session would be gone, or made again under another pid.
      await new Promise((resolve) => setTimeout(resolve, 1000));
      assert.deepEqual(await sessions(), listening);
    } finally {
      await feed.close();
    }
  });
});
