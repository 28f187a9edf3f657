import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Decimal } from '../../src/core/money/decimal.js';
import { MOBILE, trunk10Cdr } from '../helpers/cdrs.js';
import { eventually, startMoneyWorld, type MoneyWorld } from '../helpers/money-world.js';
import { postgresUnreachable, scratchSchema, type ScratchSchema } from '../helpers/postgres.js';

/**
 * Two control planes serving one PostgreSQL store (issue 21), three nodes given both (`--control-url a,b`,
 * so they talk to the first until it fails). A live change made on the second reaches the nodes following
 * the first; only the first (it started first and holds the sync lock) syncs, the second handing it the
 * syncs its own changes need; and a stream of prepaid calls
 * on one small balance, during which the first is killed with SIGKILL, is billed exactly: nothing
 * overspent, each CDR once, the balance the start less the rated costs, and the second takes the lead.
 */
const unreachable = await postgresUnreachable();
const BALANCE = '2.00';

describe('two control planes on one PostgreSQL store', { skip: unreachable ?? false }, () => {
  let scratch: ScratchSchema | undefined;
  let world: MoneyWorld | undefined;

  before(async () => {
    scratch = await scratchSchema('centres');
    // Short calls and small leases: the nodes come back to a centre many times, across the kill too.
    world = await startMoneyWorld({
      sidecars: 3,
      centres: 2,
      store: scratch.url,
      sidecarArgs: ['--admission-seconds', '60', '--lease-chunk', '0.30'],
      change: (description) => {
        description.customer_trunks.find((trunk) => trunk.id === 10)!.port_limit = 10_000;
      },
    });
    assert.equal((await world.control.post('/api/balances/customer/1/balance/credit', { amount: BALANCE })).status, 200);
  });
  after(async () => {
    await world?.stop();
    await scratch?.drop();
  });

  it('carries an admin change made on the second centre to the nodes following the first', async () => {
    const [first, second] = world!.centres;
    const rule = await second.post('/api/block-rules', { scope: 'global', block_type: 'dnis', pattern: '61400999', match_type: 'prefix' });
    assert.equal(rule.status, 201, JSON.stringify(rule.body));
    const last = (await second.get('/api/opensips/deltas')).body.last_seq as number;
    assert.ok(last > 0);
    assert.equal((await first.get('/api/opensips/deltas')).body.last_seq, last, 'both centres read one delta log');
    for (const sidecar of world!.sidecars)
      await eventually(async () => assert.equal((await sidecar.get('/api/health')).body.delta_seq, last), 20_000);
  });

  it('syncs on the centre holding the sync lock only: the other refuses with sync_elsewhere', async () => {
    const [first, second] = world!.centres;
    const refused = await second.post('/api/opensips/routing/sync', {});
    assert.equal(refused.status, 409, JSON.stringify(refused.body));
    assert.equal(refused.body.reason_code, 'sync_elsewhere');
    const synced = await first.post('/api/opensips/routing/sync', {});
    assert.equal(synced.status, 200, JSON.stringify(synced.body));
  });

  it('hands a background sync asked of the second centre (a rate-deck update brought rates) to the first', async () => {
    const [first, second] = world!.centres;
    const created = await second.send('POST', '/api/rate-deck-updates', {
      rate_deck_id: 1,
      update_type: 'incremental',
      effective_at: '2099-01-01T00:00:00Z',
      rates: [{ prefix: '6178', destination_name: 'Future', rate_per_minute: '0.0100' }],
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const reason = `asked by another control plane: rate deck update ${created.body.id} brought 1 rates`;
    await first.waitForLog((line) => line.includes(reason) && line.includes('background sync'), 20_000);
    assert.ok(!second.logs.some((line) => line.includes('background sync done')), 'the second ran no sync of its own');
  });

  it('bills a stream of calls exactly across a kill -9 of the leading centre, and the other takes the lead', async (t) => {
    const [first, second] = world!.centres;
    const admitted: string[] = [];
    const refusals = new Map<string, number>();
    let billed = new Decimal(0);
    let killed: Promise<void> | null = null;
    /** Calls admitted once the first centre's process had exited: their CDRs can settle with the second only. */
    let admittedAfterKill = 0;
    let firstGone = false;
    await Promise.all(
      Array.from({ length: 24 }, async (_, worker) => {
        for (let i = 0; i < 10; i++) {
          // Calls in flight meet the kill; the next ones wait for the process to be gone, so that most of the
          // balance is still there to be spent through the second whatever the machine's pace.
          if (killed !== null) await killed;
          const node = world!.sidecars[(worker + i) % 3];
          const callId = `w${worker}-c${i}@centres`;
          const answer = await node.post('/api/opensips/call/admit', { customer_trunk_id: 10, dnis: MOBILE, call_id: callId });
          assert.equal(answer.status, 200, JSON.stringify(answer.body));
          if (!answer.body.allowed) {
            const code = String(answer.body.reason_code);
            refusals.set(code, (refusals.get(code) ?? 0) + 1);
            continue;
          }
          admitted.push(callId);
          if (firstGone) admittedAfterKill++;
          // Mid-stream: a quarter of the balance admitted (0.025 a call).
          if (admitted.length === 20)
            killed = first.kill('SIGKILL').then(() => {
              firstGone = true;
            });
          // Each call runs the whole length it was allowed: the worst case for the account.
          const ingested = await node.post('/api/cdrs/ingest', trunk10Cdr(callId, answer.body.max_duration_seconds, { ringMs: 0 }));
          assert.equal(ingested.status, 201, JSON.stringify(ingested.body));
          billed = billed.plus(ingested.body.customer_cost);
        }
      }),
    );
    assert.equal(first.alive(), false, 'the first centre was killed mid-stream');
    const shown = `${admitted.length} admitted (${admittedAfterKill} after the kill), refused ${JSON.stringify(Object.fromEntries(refusals))}`;
    t.diagnostic(shown);
    assert.ok(admittedAfterKill > 0 && refusals.size > 0, shown);
    assert.ok(billed.lessThanOrEqualTo(BALANCE), `${billed.toFixed()} billed of ${BALANCE}: overspent (${shown})`);

    // Every CDR reaches the surviving centre, once: the balance is the start less exactly what was rated.
    await eventually(async () => {
      const state = (await second.get('/api/balances/customer/1/balance')).body;
      assert.equal(new Decimal(state.balance).toFixed(4), new Decimal(BALANCE).minus(billed).toFixed(4), shown);
    }, 30_000);
    const cdrs = (await second.get('/api/cdrs/search?customer_trunk_id=10')).body as { sip_call_id: string }[];
    assert.deepEqual(cdrs.map((cdr) => cdr.sip_call_id).sort(), [...admitted].sort());

    // The lead passed: the survivor synced on taking it, and syncs when asked now.
    await second.waitForLog((line) => line.includes('this control plane took the lead') && line.includes('background sync'), 20_000);
    await eventually(async () => {
      const synced = await second.post('/api/opensips/routing/sync', {});
      assert.equal(synced.status, 200, JSON.stringify(synced.body));
    }, 20_000);
  });
});
