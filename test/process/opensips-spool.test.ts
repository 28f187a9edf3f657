import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { mkdtempSync, readdirSync, readlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Decimal } from '../../src/core/money/decimal.js';
import { eventually, startMoneyWorld, type MoneyWorld } from '../helpers/money-world.js';
import { spool, spoolInto, spoolStatement, spooledRows, type Spooled } from '../helpers/opensips-spool.js';
import { SidecarProcess } from '../helpers/sidecar.js';

/**
 * No CDR lost while the sidecar is down: OpenSIPS spools what it could not deliver (route[spool], the
 * script's own INSERT run here on the spool file), and the sidecar takes it when it is back, each CDR
 * billed once however often it was spooled and wherever the sidecar was killed. A CDR it cannot rate with the
 * snapshot it serves (a rate missing) is parked in the spool, not dropped, and billed once a sync brings the rate.
 */
const SPOOL_DIR = mkdtempSync(join(tmpdir(), 'opensips-spool-'));
const SPOOL = join(SPOOL_DIR, 'spool.db');

const cdrOf = (callId: string, seconds: number): Record<string, unknown> => {
  const end = Math.floor(Date.now() / 1000) - 5;
  return {
    sip_call_id: callId,
    customer_trunk_id: 10,
    carrier_trunk_id: 21,
    carrier_gateway_id: 211,
    ani: '6125550100',
    dnis: '61400123456',
    start_time: new Date((end - seconds - 3) * 1000).toISOString(),
    answer_time: new Date((end - seconds) * 1000).toISOString(),
    end_time: new Date(end * 1000).toISOString(),
    duration_seconds: seconds,
    sip_response_code: 200,
  };
};

/** The rate the spooled calls to 1900 lacked, added to deck 102 and pushed to every node. */
async function fillPremiumGap(world: MoneyWorld): Promise<void> {
  const rate = await world.control.send('POST', '/api/rate-decks/102/rates', {
    prefix: '1900',
    destination_name: 'US premium',
    rate_per_minute: '0.1000',
    effective_at: '2020-01-01T00:00:00Z',
  });
  assert.equal(rate.status, 201, JSON.stringify(rate.body));
  const synced = await world.control.send('POST', '/api/opensips/routing/sync');
  assert.equal(synced.status, 200, JSON.stringify(synced.body));
  assert.ok(
    synced.body.sidecar_results.every((result: { success: boolean }) => result.success),
    JSON.stringify(synced.body.sidecar_results),
  );
}

/** Whether a process other than this one has `path` open (Linux: its /proc/<pid>/fd links). */
function openElsewhere(path: string): boolean {
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue; // gone, or not ours to look at
    }
    for (const fd of fds) {
      try {
        if (readlinkSync(`/proc/${pid}/fd/${fd}`) === path) return true;
      } catch {
        // closed meanwhile
      }
    }
  }
  return false;
}

describe('OpenSIPS spool: the sidecar down while calls end', () => {
  let world: MoneyWorld;
  let node: SidecarProcess;
  const statement = spoolStatement();
  const restart = async (): Promise<void> => {
    node = await SidecarProcess.start({ dataDir: node.dataDir, args: world.sidecarArgs(0) });
    world.sidecars[0] = node;
  };
  /** The CDRs the centre recorded, by Call-ID. */
  const recorded = async (): Promise<Map<string, { count: number; cost: Decimal }>> => {
    const cdrs: { sip_call_id: string; customer_cost: string }[] = [];
    for (let offset = 0; ; offset += 1000) {
      const page = (await world.control.get(`/api/cdrs/search?limit=1000&offset=${offset}`)).body as typeof cdrs;
      cdrs.push(...page);
      if (page.length < 1000) break;
    }
    const byCall = new Map<string, { count: number; cost: Decimal }>();
    for (const cdr of cdrs) {
      const seen = byCall.get(cdr.sip_call_id) ?? { count: 0, cost: new Decimal(0) };
      byCall.set(cdr.sip_call_id, { count: seen.count + 1, cost: seen.cost.plus(cdr.customer_cost) });
    }
    return byCall;
  };

  before(async () => {
    world = await startMoneyWorld({ sidecars: 1, sidecarArgs: ['--opensips-spool', SPOOL] });
    node = world.sidecars[0];
    const credit = await world.control.post('/api/balances/customer/1/balance/credit', { amount: '50.00', description: 'spool test' });
    assert.equal(credit.status, 200);
  });
  after(() => world.stop());

  it('takes every CDR and release spooled while it was down, once, when it is back', async () => {
    const calls = Array.from({ length: 12 }, (_, i) => `spooled-${i}@t`);
    for (const callId of calls) {
      const decided = await node.post('/api/opensips/call/decide', { source_ip: '203.0.113.77', call_id: callId, dnis: '61400123456' });
      assert.equal(decided.body.allowed, true, JSON.stringify(decided.body));
    }
    // Call 0's CDR is delivered; the report route saw a timeout all the same (a hung sidecar) and spooled it too.
    assert.equal((await node.post('/api/cdrs/ingest', cdrOf(calls[0], 30))).status, 201);

    await node.kill('SIGKILL');
    spool(
      SPOOL,
      [
        ...calls.slice(0, 11).map((callId, i): Spooled => ['cdr', cdrOf(callId, 30 + i)]),
        ['cdr', cdrOf(calls[3], 33)], // spooled twice
        ['release', { call_id: calls[11] }], // never reached a carrier
      ],
      statement,
    );
    assert.equal(spooledRows(SPOOL), 13);

    await restart();
    await eventually(() => {
      assert.equal(spooledRows(SPOOL), 0);
      return Promise.resolve();
    });
    await eventually(async () => {
      const byCall = await recorded();
      for (let i = 0; i < 11; i++) assert.equal(byCall.get(calls[i])?.count, 1, `${calls[i]} billed once`);
      assert.equal(byCall.has(calls[11]), false);
    });
    const release = await node.post('/api/opensips/call/release', { call_id: calls[11] });
    assert.equal(release.body.released, false, 'the spooled release freed it');
    const balance = (await world.control.get('/api/balances/customer/1/balance')).body as { balance: string };
    const charged = [...(await recorded()).values()].reduce((sum, cdr) => sum.plus(cdr.cost), new Decimal(0));
    assert.equal(new Decimal(balance.balance).toFixed(4), new Decimal('50.00').minus(charged).toFixed(4));
  });

  it('bills each CDR once when it is killed in the middle of taking the spool', async () => {
    const before = (await recorded()).size;
    const count = 1000;
    await node.kill('SIGKILL');
    spool(
      SPOOL,
      Array.from({ length: count }, (_, i): Spooled => ['cdr', cdrOf(`drain-${i}@t`, 6 + (i % 60))]),
      statement,
    );

    await restart();
    await node.waitForLog((line) => line.includes('spooled request taken'));
    await node.kill('SIGKILL');
    const left = spooledRows(SPOOL);
    assert.ok(left > 0 && left < count, `killed with ${left} of ${count} rows left: the kill fell in the middle of the drain`);

    await restart();
    await eventually(() => {
      assert.equal(spooledRows(SPOOL), 0);
      return Promise.resolve();
    }, 30_000);
    await eventually(async () => {
      const byCall = await recorded();
      assert.equal(byCall.size, before + count);
      for (const [callId, { count: times }] of byCall) assert.equal(times, 1, `${callId} billed ${times} times`);
    }, 30_000);
  });

  it('starts while OpenSIPS holds the spool locked (writing a row), and takes the row once it is written', async () => {
    await node.kill('SIGTERM');
    // OpenSIPS in the middle of spooling a CDR: its write transaction holds the file until it commits.
    const writer = new Database(SPOOL);
    writer.exec('BEGIN EXCLUSIVE');
    spoolInto(writer, [['cdr', cdrOf('locked@t', 42)]], statement);
    try {
      const starting = SidecarProcess.start({ dataDir: node.dataDir, args: world.sidecarArgs(0) });
      starting.catch(() => undefined); // looked at below, once the lock is gone
      // The sidecar has reached the spool (before, it refused to start: "database is locked").
      while (!openElsewhere(SPOOL)) await new Promise((resolve) => setTimeout(resolve, 20));
      await new Promise((resolve) => setTimeout(resolve, 200));
      writer.exec('COMMIT');
      node = await starting;
      world.sidecars[0] = node;
    } finally {
      if (writer.inTransaction) writer.exec('ROLLBACK');
      writer.close();
    }
    await eventually(async () => {
      assert.equal(spooledRows(SPOOL), 0);
      assert.equal((await recorded()).get('locked@t')?.count, 1);
    }, 30_000);
  });

  it('parks a CDR it cannot rate, takes the rows behind it, and bills it once when a sync brings its rate', async () => {
    const parkedGauge = async (): Promise<number> => {
      const match = /^sidecar_spool_parked_cdrs (\d+)$/m.exec((await node.get('/metrics')).text);
      assert.ok(match !== null, 'the gauge is exported');
      return Number(match[1]);
    };
    const placed = await world.control.send('PUT', '/api/opensips-nodes/1', { sidecar_address: node.url });
    assert.equal(placed.status, 200, JSON.stringify(placed.body));
    // Deck 1 sells 1900 numbers; carrier 21's cost deck (102) has no rate for them: a gap in the configuration.
    const gap = { ...cdrOf('rate-gap@t', 40), dnis: '19005550100' };
    const malformed = { ...cdrOf('malformed@t', 20), duration_seconds: -1 };
    const behind = cdrOf('after-gap@t', 20);
    assert.equal((await node.post('/api/cdrs/ingest', gap)).status, 422, "the endpoint still answers the contract's 422");
    spool(
      SPOOL,
      [
        ['cdr', gap],
        ['cdr', malformed],
        ['cdr', behind],
      ],
      statement,
    );

    const parkedLine = await node.waitForLog((line) => line.includes('spooled CDR parked'));
    assert.match(parkedLine, /"reason":"unrateable_cdr"/);
    assert.match(parkedLine, /"sip_call_id":"rate-gap@t"/);
    await eventually(async () => {
      assert.equal(spooledRows(SPOOL), 1, 'the parked CDR stays; the malformed one is dropped, the one behind taken');
      assert.equal((await recorded()).get('after-gap@t')?.count, 1);
      assert.equal(await parkedGauge(), 1);
    });
    await node.waitForLog((line) => line.includes('spooled request refused') && line.includes('duration_seconds'));
    const before = await recorded();
    assert.equal(before.has('rate-gap@t'), false);
    assert.equal(before.has('malformed@t'), false);

    await fillPremiumGap(world);

    await node.waitForLog((line) => line.includes('parked CDR billed') && line.includes('rate-gap@t'));
    await eventually(async () => {
      assert.equal(spooledRows(SPOOL), 0);
      assert.equal((await recorded()).get('rate-gap@t')?.count, 1, 'billed once');
      assert.equal(await parkedGauge(), 0);
    });
  });
});

/**
 * A parked CDR's Call-ID reused by the customer on the same node: that call is refused while the CDR waits (its
 * call has ended, though its reservation is still held), and a later call's CDR that took the Call-ID first (it
 * was admitted before the spool was read) does not get the parked one dropped as a 409: it waits for the Call-ID.
 */
describe('OpenSIPS spool: a parked CDR whose Call-ID the customer reuses', () => {
  const spoolPath = join(SPOOL_DIR, 'reused.db');
  let world: MoneyWorld;
  let node: SidecarProcess;

  before(async () => {
    world = await startMoneyWorld({ sidecars: 1, sidecarArgs: ['--opensips-spool', spoolPath] });
    node = world.sidecars[0];
    assert.equal(
      (await world.control.post('/api/balances/customer/1/balance/credit', { amount: '50.00', description: 'spool test' })).status,
      200,
    );
    assert.equal((await world.control.send('PUT', '/api/opensips-nodes/1', { sidecar_address: node.url })).status, 200);
  });
  after(() => world.stop());

  it('refuses the Call-ID while its CDR is parked, and keeps the parked CDR when a later CDR took the Call-ID', async () => {
    // Call A is admitted (its reservation held), ends, and its CDR is spooled: carrier 21 has no cost for 1900.
    const admitted = await node.post('/api/opensips/call/admit', { customer_trunk_id: 10, dnis: '19005550100', call_id: 'reused@t' });
    assert.equal(admitted.body.allowed, true, JSON.stringify(admitted.body));
    spool(spoolPath, [['cdr', { ...cdrOf('reused@t', 40), dnis: '19005550100' }]]);
    await node.waitForLog((line) => line.includes('spooled CDR parked') && line.includes('"reason":"unrateable_cdr"'));

    // The customer's next call under the same Call-ID is not call A's admission again.
    const reused = await node.post('/api/opensips/call/decide', { source_ip: '203.0.113.77', call_id: 'reused@t', dnis: '61400123456' });
    assert.deepEqual([reused.body.stage, reused.body.admit?.reason_code], ['admit', 'call_id_reused'], JSON.stringify(reused.body));

    // A call under it that was admitted before the spool was read: its CDR takes the Call-ID on this node first.
    const later = cdrOf('reused@t', 20);
    assert.equal((await node.post('/api/cdrs/ingest', later)).status, 201);
    await eventually(async () => {
      const billed = (await world.control.get('/api/cdrs/search?limit=10&sip_call_id=reused%40t')).body as { start_time: string }[];
      assert.deepEqual(
        billed.map((cdr) => Date.parse(cdr.start_time)),
        [Date.parse(String(later.start_time))],
      );
    });

    // The gap filled, call A's CDR is rated again and meets the later one: it waits, parked, instead of being dropped.
    await fillPremiumGap(world);
    await node.waitForLog((line) => line.includes('spooled CDR parked') && line.includes('"reason":"cdr_conflict"'));
    assert.equal(spooledRows(spoolPath), 1, 'call A is still to bill');
    assert.equal(
      node.logs.some((line) => line.includes('spooled request refused')),
      false,
    );
  });
});
