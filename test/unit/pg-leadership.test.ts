import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import pino from 'pino';
import { askLeaderToSync, PgLeadership } from '../../sync/store/pg-leadership.js';
import { SYNC_LOCK_CLASS } from '../../sync/store/pg-sync-lock.js';
import { openPgDatabase } from '../../sync/store/pg-database.js';
import { postgresUnreachable, scratchSchema, type ScratchSchema } from '../helpers/postgres.js';

/**
 * Two control planes on one PostgreSQL store: exactly one leads (holds the sync lock); the other takes the
 * lead when the first gives it up; a leader whose lock connection the server ends stops leading, and the
 * lead is taken again; a sync asked of any centre reaches the leader alone.
 */
const unreachable = await postgresUnreachable();
const RETRY_MS = 100;

/** Resolves with the next leadership change of `leadership`. */
const nextChange = (leadership: PgLeadership): Promise<boolean> =>
  new Promise((resolve) => {
    const stop = leadership.onChange((leading) => {
      stop();
      resolve(leading);
    });
  });

/**
 * Resolves once `leadership` leads. A leader stopped just before gave the lock up by closing its session, which
 * the server finishes on its own time: until then the new one finds it taken and tries again (RETRY_MS).
 */
async function leads(leadership: PgLeadership): Promise<void> {
  if (!leadership.isLeading()) assert.equal(await nextChange(leadership), true, 'it takes the lead');
}

describe('leadership of the routing sync on PostgreSQL', { skip: unreachable ?? false }, () => {
  let scratch: ScratchSchema | undefined;
  let admin: pg.Client | undefined;
  const log = pino({ level: 'silent' });
  const started: PgLeadership[] = [];
  const start = async (onSyncRequest?: (reason: string) => void): Promise<PgLeadership> => {
    const leadership = await PgLeadership.start(scratch!.url, log, RETRY_MS, onSyncRequest);
    started.push(leadership);
    return leadership;
  };

  before(async () => {
    scratch = await scratchSchema('leadership');
    // Migrated, as a control plane's store is before it asks for the lead (the lead's terms are a table of it).
    await (await openPgDatabase(scratch.url)).end();
    admin = new pg.Client({ connectionString: scratch.url });
    await admin.connect();
  });

  after(async () => {
    await Promise.all(started.map((leadership) => leadership.stop()));
    await admin?.end();
    await scratch?.drop();
  });

  /** The server session holding this schema's sync lock. */
  const holder = async (): Promise<number | null> => {
    const { rows } = await admin!.query<{ pid: number }>(
      `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid = $1::bigint::oid
         AND objid = (hashtext(current_schema())::bigint & 4294967295)::oid AND objsubid = 2`,
      [SYNC_LOCK_CLASS],
    );
    return rows[0]?.pid ?? null;
  };

  it('lets one centre lead, and hands the lead to the other when the first gives it up', async () => {
    const first = await start();
    const second = await start();
    assert.equal(first.isLeading(), true);
    assert.equal(second.isLeading(), false);
    assert.equal(second.term(), null);
    const firstTerm = first.term()!;
    const taken = nextChange(second);
    await first.stop();
    assert.equal(await taken, true);
    assert.equal(second.isLeading(), true);
    // The node databases' fence (sync/drouting/writer.ts SYNC_TERM_ROW): a later holder's term is higher.
    assert.ok(second.term()! > firstTerm, `${second.term()} after ${firstTerm}`);
    assert.notEqual(await holder(), null);
  });

  it('stops leading when the server ends the lock session, and the lead is taken again', async () => {
    const leader = started.find((leadership) => leadership.isLeading())!;
    const standby = await start();
    const lost = nextChange(leader);
    const pid = await holder();
    assert.notEqual(pid, null);
    await admin!.query('SELECT pg_terminate_backend($1)', [pid]);
    assert.equal(await lost, false, 'the old leader hears it no longer leads');
    // Whichever takes the lock next leads, and only one does.
    await new Promise<void>((resolve) => {
      const check = (): void => {
        if (leader.isLeading() || standby.isLeading()) resolve();
        else setTimeout(check, RETRY_MS);
      };
      check();
    });
    assert.equal([leader, standby].filter((leadership) => leadership.isLeading()).length, 1);
    assert.notEqual(await holder(), pid);
  });

  it('stops leading when its lock connection goes silent without a reset (a firewall dropping the flow, a partition)', async () => {
    await Promise.all(started.map((leadership) => leadership.stop()));
    // The way to the server: a relay that can go silent, taking everything sent and passing nothing on either way.
    const sockets = new Set<net.Socket>();
    let silent = false;
    const relay = net.createServer((inbound) => {
      const outbound = net.connect(5432, '127.0.0.1');
      for (const socket of [inbound, outbound]) {
        sockets.add(socket);
        socket.on('error', () => undefined);
      }
      inbound.on('data', (chunk) => silent || outbound.write(chunk));
      outbound.on('data', (chunk) => silent || inbound.write(chunk));
      inbound.on('close', () => outbound.destroy());
      outbound.on('close', () => inbound.destroy());
    });
    await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
    try {
      const url = new URL(scratch!.url);
      url.port = String((relay.address() as net.AddressInfo).port);
      const leadership = await PgLeadership.start(url.toString(), log, RETRY_MS, undefined, 100);
      started.push(leadership);
      await leads(leadership);
      const lost = nextChange(leadership);
      silent = true;
      // No reset, no close: only the holder's own question, unanswered, can tell it. Bounded, as it never came before.
      let bound: NodeJS.Timeout | undefined;
      const unheard = new Promise<string>((resolve) => (bound = setTimeout(() => resolve('still leading'), 30_000)));
      assert.equal(await Promise.race([lost, unheard]), false, 'the leader hears it no longer leads');
      clearTimeout(bound);
      assert.equal(leadership.isLeading(), false);
      await leadership.stop();
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => relay.close(resolve));
    }
  });

  it("keeps the lead through the server's idle session timeout (a DBA's idle_session_timeout on the role or database)", async () => {
    await Promise.all(started.map((leadership) => leadership.stop()));
    // The centre's URL as a server with a 100 ms idle_session_timeout would have its sessions start.
    const url = new URL(scratch!.url);
    url.searchParams.set('options', `${url.searchParams.get('options') ?? ''} -c idle_session_timeout=100`);
    const leadership = await PgLeadership.start(url.toString(), log, RETRY_MS);
    started.push(leadership);
    await leads(leadership);
    const changes: boolean[] = [];
    leadership.onChange((leading) => changes.push(leading));
    // Ten times the timeout idle: a lock session the server ends is a lost lead (and a sync at each taking).
    await new Promise((resolve) => setTimeout(resolve, 1000));
    assert.deepEqual(changes, [], 'the lead never changed hands');
    assert.equal(leadership.isLeading(), true);
  });

  it('hands a sync asked of any centre to the leader, and to no other', async () => {
    await Promise.all(started.map((leadership) => leadership.stop()));
    const asked: string[][] = [[], []];
    const leader = await start((reason) => asked[0].push(reason));
    const other = await start((reason) => asked[1].push(reason));
    assert.deepEqual([leader.isLeading(), other.isLeading()], [true, false]);
    const pool = new pg.Pool({ connectionString: scratch!.url });
    try {
      await askLeaderToSync(pool, 'rate deck update 7 activated');
      // Notifications reach only sessions that LISTEN, and only the leader's lock connection does: no wait can
      // make the other hear it. The wait is for the leader's, which the test's own timeout bounds.
      while (asked[0].length === 0) await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
      assert.deepEqual(asked, [['rate deck update 7 activated'], []]);
    } finally {
      await pool.end();
    }
  });
});
