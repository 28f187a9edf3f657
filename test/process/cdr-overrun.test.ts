import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { SidecarProcess } from '../helpers/sidecar.js';
import { eventually, startMoneyWorld, type MoneyWorld } from '../helpers/money-world.js';
import { MOBILE, trunk10Cdr } from '../helpers/cdrs.js';

/**
 * Issue 17, finding 6: CDRs billed beyond what was reserved for them drove prepaid balances below zero
 * unnoticed. The four ways it happened, on one node with admissions capped at 60 s and a prepaid account
 * (the fixture's, 0.0250 a minute, 6/6): each CDR is still billed, but the ingest answer says what its
 * reservation did not cover, the node counts and logs it, the centre records it against the account, and
 * the headroom the account's next leases come out of is smaller by exactly that amount.
 */
const cdr = (sipCallId: string, durationSeconds: number) => trunk10Cdr(sipCallId, durationSeconds);
const micro = (amount: string): number => Math.round(Number(amount) * 1e6); // test arithmetic on 4-decimal figures only

describe('CDRs billed beyond their reservation (prepaid)', () => {
  let world: MoneyWorld;
  let node: SidecarProcess;
  let uncoveredSoFar = 0;
  let cdrsSoFar = 0;

  /** The account's headroom as the node admits on it: its unused lease plus what the centre has left (read-only). */
  const headroom = async (): Promise<number> => {
    const simulated = await node.post('/api/admin/route-simulator', { customer_trunk_id: 10, dnis: MOBILE, duration_seconds: 6 });
    assert.equal(simulated.status, 200);
    return micro(simulated.body.headroom);
  };
  const metric = async (pattern: RegExp): Promise<number> => Number(pattern.exec((await node.get('/metrics')).text)?.[1] ?? 0);

  /** Ingests `callId`'s CDR and checks everything the finding asks of an uncovered one. */
  async function ingestUncovered(
    callId: string,
    durationSeconds: number,
    expected: { cost: string; uncovered: string; adjustment: string | null; kind: 'unadmitted' | 'beyond_reservation' },
  ): Promise<void> {
    const before = await headroom();
    const kindCount = await metric(new RegExp(`^sidecar_cdr_overrun_total\\{kind="${expected.kind}"\\} (\\d+)$`, 'm'));
    const ingested = await node.post('/api/cdrs/ingest', cdr(callId, durationSeconds));
    // Billed: the call happened.
    assert.equal(ingested.status, 201);
    assert.equal(ingested.body.customer_cost, expected.cost);
    // Flagged in the answer.
    assert.equal(ingested.body.reconciled, false);
    assert.equal(ingested.body.uncovered, expected.uncovered);
    assert.equal(ingested.body.adjustment, expected.adjustment);
    // A resend is answered the same and counted once.
    assert.deepEqual((await node.post('/api/cdrs/ingest', cdr(callId, durationSeconds))).body, ingested.body);
    uncoveredSoFar += micro(expected.uncovered);
    cdrsSoFar++;

    // Counted and logged at the node.
    assert.equal(await metric(new RegExp(`^sidecar_cdr_overrun_total\\{kind="${expected.kind}"\\} (\\d+)$`, 'm')), kindCount + 1);
    assert.equal(await metric(/^sidecar_cdr_uncovered_micro_total\{currency="AUD"\} (\d+)$/m), uncoveredSoFar);
    const warning = await node.waitForLog((line) => line.includes('"level":40') && line.includes(`"sip_call_id":"${callId}"`));
    const logged = JSON.parse(warning);
    assert.deepEqual([logged.customer_account_id, logged.kind, micro(logged.uncovered)], [1, expected.kind, micro(expected.uncovered)]);

    // The next leases come out of a headroom smaller by what was not covered.
    assert.equal(await headroom(), before - micro(expected.uncovered));

    // Recorded at the centre, per CDR and per account.
    await eventually(async () => {
      const found = (await world.control.get(`/api/cdrs/search?sip_call_id=${encodeURIComponent(callId)}`)).body;
      assert.equal(found.length, 1);
      assert.equal(micro(found[0].uncovered), micro(expected.uncovered));
      const balance = (await world.control.get('/api/balances/customer/1/balance')).body;
      assert.equal(micro(balance.uncovered), uncoveredSoFar);
      assert.equal(balance.uncovered_cdrs, cdrsSoFar);
      assert.equal(balance.last_uncovered_call_id, callId);
    });
  }

  before(async () => {
    world = await startMoneyWorld({ sidecars: 1, sidecarArgs: ['--admission-seconds', '60'] });
    node = world.sidecars[0];
    assert.equal((await world.control.post('/api/balances/customer/1/balance/credit', { amount: '1.00' })).status, 200);
  });
  after(() => world.stop());

  it('flags a CDR for a call that was never admitted', async () => {
    await ingestUncovered('never-admitted@test', 73, { cost: '0.0325', uncovered: '0.0325', adjustment: null, kind: 'unadmitted' });
  });

  it('flags a CDR of 7,260 s after an admission capped at 60 s', async () => {
    const admitted = await node.post('/api/opensips/call/admit', { customer_trunk_id: 10, dnis: MOBILE, call_id: 'capped-60@test' });
    assert.equal(admitted.body.allowed, true);
    assert.equal(admitted.body.max_duration_seconds, 60); // 0.0250 + 0.0001 reserved
    await ingestUncovered('capped-60@test', 7260, {
      cost: '3.0250',
      uncovered: '2.9999',
      adjustment: '2.9999',
      kind: 'beyond_reservation',
    });
    const balance = (await world.control.get('/api/balances/customer/1/balance')).body;
    assert.equal(balance.balance, '-2.0575'); // billed what happened: 1.00 - 0.0325 - 3.0250
  });

  it('flags a CDR for a call refused with 402', async () => {
    const refused = await node.post('/api/opensips/call/admit', { customer_trunk_id: 10, dnis: MOBILE, call_id: 'refused-402@test' });
    assert.deepEqual([refused.body.allowed, refused.body.reject_code], [false, 402]);
    await ingestUncovered('refused-402@test', 73, { cost: '0.0325', uncovered: '0.0325', adjustment: null, kind: 'unadmitted' });
  });

  it('caps an admission with estimated_cost, and flags a 10 h CDR after it', async () => {
    assert.equal((await world.control.post('/api/balances/customer/1/balance/credit', { amount: '10.00' })).status, 200);
    // Once the dry spell after the refusal is over (credit/node-credit.ts: an account found dry is asked for again after 1 s).
    await eventually(async () => {
      const admitted = await node.post('/api/opensips/call/admit', {
        customer_trunk_id: 10,
        dnis: MOBILE,
        call_id: 'estimated@test',
        estimated_cost: '0.01',
      });
      assert.equal(admitted.body.allowed, true);
      // 0.01 buys 18 s at 0.0250 a minute (0.0075 + 0.0001); 24 s would cost 0.0101.
      assert.equal(admitted.body.max_duration_seconds, 18);
    });
    await ingestUncovered('estimated@test', 36_000, {
      cost: '15.0000',
      uncovered: '14.9900',
      adjustment: '14.9900',
      kind: 'beyond_reservation',
    });
  });

  it('does not flag a CDR its reservation covers', async () => {
    assert.equal((await world.control.post('/api/balances/customer/1/balance/credit', { amount: '20.00' })).status, 200);
    // Once the dry spell after its refusals is over (credit/node-credit.ts: an account found dry is asked for again after 1 s).
    await eventually(async () => {
      const admitted = await node.post('/api/opensips/call/admit', { customer_trunk_id: 10, dnis: MOBILE, call_id: 'covered@test' });
      assert.equal(admitted.body.allowed, true);
    });
    const ingested = await node.post('/api/cdrs/ingest', cdr('covered@test', 30));
    assert.equal(ingested.status, 201);
    assert.deepEqual([ingested.body.reconciled, ingested.body.uncovered], [true, '0.0000']);
    assert.equal(await metric(/^sidecar_cdr_uncovered_micro_total\{currency="AUD"\} (\d+)$/m), uncoveredSoFar);
  });
});
