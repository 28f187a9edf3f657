import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Decimal } from '../../src/core/money/decimal.js';
import { FakeOpensipsMi } from '../../src/devkit/fake-opensips-mi.js';
import { eventually, startMoneyWorld, type MoneyWorld } from '../helpers/money-world.js';
import { SidecarProcess } from '../helpers/sidecar.js';

/**
 * Prepaid in slices with real processes: a control plane, nodes started with --opensips-mi pointing at the
 * MI test double (it speaks OpenSIPS 3.6's dlg_list and dlg_end_dlg) and 12-second slices. Calls come in
 * through call/decide with the dialog id the script sends; CDRs go in as OpenSIPS would send them when the
 * dialog ends. The mobile rate is 0.0250/min billed 6/6 with one 0.0001 of rounding slack: a slice of 12 s
 * is 12 billable seconds, 0.0051 reserved.
 *
 * A call that cannot buy its next slice is ended SLICE_END_MARGIN_MS ahead of its paid time. The CDR's end
 * is when the MI call reached OpenSIPS, stamped in whole seconds from an answer the test takes as the moment
 * it sent the INVITE: the call stays within what it paid for while the upkeep tick, the MI call and the
 * admission's own round trip together are late by less than the margin less a second. With the default
 * margin of 8-s slices (2 s) a starved sidecar on a loaded machine once ended a call 1 s too late; 4.5 s
 * allows 3.5 s, and still ends every call within its last paid 6-s increment, which the CDRs show.
 */
const SLICE_SECONDS = 12;
const SLICE_END_MARGIN_MS = 4500;
const SLICE_ARGS = ['--slice-seconds', String(SLICE_SECONDS), '--slice-end-margin-ms', String(SLICE_END_MARGIN_MS)];
/** The least a call is admitted with when the balance left is short of a slice: one 6-s increment, 0.0026. */
const LEAST_SLICE_COST = new Decimal('0.0026');
/**
 * The longest any call on a balance can last: every slice bought at the least cost, all of them by one call, and
 * a slice's margin. Ended calls keep their reservations until their CDRs, so the calls share what the balance
 * buys; but how they share it is up to the nodes' leases: a call on a node with lease to spare keeps buying
 * slices while the others' nodes refuse (seen: 46 s on an idle machine, past a minute on a loaded one).
 */
function longestCallMs(balance: string): number {
  const leastSlices = new Decimal(balance).div(LEAST_SLICE_COST).floor().toNumber();
  return (leastSlices * 6 + SLICE_SECONDS) * 1000;
}

/**
 * A call ended for want of its next slice, as its CDR's answer shows it: charged no more than its node held
 * for it, and cut in its last paid increment, not a slice or an increment early (what the node held and did
 * not charge is less than one 6-s increment, the 0.0001 of slack at most when the cut came on time).
 */
function assertCutAtItsPaidTime(callId: string, answer: Record<string, unknown>): void {
  const adjustment = new Decimal(answer.adjustment as string);
  assert.ok(adjustment.lessThanOrEqualTo(0), `${callId} charged beyond its reservation: ${adjustment.toFixed()}`);
  assert.ok(adjustment.negated().lessThan(LEAST_SLICE_COST), `${callId} ended before its last paid increment: ${adjustment.toFixed()}`);
}

interface Admitted {
  node: number;
  callId: string;
  admittedAt: number;
  maxDuration: number;
}

const invite = (callId: string, dialogId: string): Record<string, unknown> => ({
  source_ip: '203.0.113.77',
  call_id: callId,
  dialog_id: dialogId,
  ani: '6125550100',
  dnis: '61400123456',
});

/** The CDR OpenSIPS sends when the dialog ends: answered at once (the worst case for the account), ended when MI ended it. */
function cdr(call: Admitted, endedAt: number): Record<string, unknown> {
  // OpenSIPS stamps whole seconds ($Ts): the answer's second floored, the end's second floored.
  const answer = Math.floor(call.admittedAt / 1000);
  const end = Math.floor(endedAt / 1000);
  return {
    sip_call_id: call.callId,
    customer_trunk_id: 10,
    carrier_trunk_id: 21,
    carrier_gateway_id: 211,
    ani: '6125550100',
    dnis: '61400123456',
    start_time: new Date(answer * 1000).toISOString(),
    answer_time: new Date(answer * 1000).toISOString(),
    end_time: new Date(end * 1000).toISOString(),
    duration_seconds: end - answer,
    sip_response_code: 200,
  };
}

async function credit(world: MoneyWorld, amount: string): Promise<void> {
  const answer = await world.control.post('/api/balances/customer/1/balance/credit', { amount, description: 'slices test' });
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
}

async function balance(world: MoneyWorld): Promise<{ balance: string; reserved: string }> {
  return (await world.control.get('/api/balances/customer/1/balance')).body as { balance: string; reserved: string };
}

async function decide(node: SidecarProcess, mi: FakeOpensipsMi, index: number, callId: string, dialogId: string): Promise<Admitted | null> {
  mi.openDialog(callId, dialogId);
  const admittedAt = Date.now();
  const answer = await node.post('/api/opensips/call/decide', invite(callId, dialogId));
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  if (answer.body.allowed !== true) {
    assert.equal(answer.body.stage, 'admit', JSON.stringify(answer.body));
    mi.hangUp(callId);
    return null;
  }
  return { node: index, callId, admittedAt, maxDuration: answer.body.admit.max_duration_seconds as number };
}

describe('prepaid in slices: a call that outlives its balance', () => {
  const mi = new FakeOpensipsMi(null);
  let world: MoneyWorld;
  let node: SidecarProcess;

  before(async () => {
    const url = await mi.startHttp();
    world = await startMoneyWorld({ sidecars: 1, sidecarArgs: ['--opensips-mi', url, ...SLICE_ARGS] });
    node = world.sidecars[0];
  });
  after(async () => {
    await world.stop();
    mi.close();
  });

  it('is ended over MI before its paid time runs out, and its CDR costs no more than was reserved', async () => {
    await credit(world, '0.0110'); // 24 billable seconds, two slices: 0.0100 + slack
    const call = await decide(node, mi, 0, 'outlives@slices', '2a1.5');
    assert.ok(call !== null, 'admitted');
    assert.equal(call.maxDuration, 24, 'the dialog is capped at what the whole balance affords');

    await eventually(() => {
      assert.notEqual(mi.dialogs.get(call.callId)!.endedAt, null, 'ended over MI');
      return Promise.resolve();
    }, 40_000);
    const endedAt = mi.dialogs.get(call.callId)!.endedAt!;
    assert.ok(endedAt - call.admittedAt < 24_000, `ended ${endedAt - call.admittedAt} ms after admission, with 24 s paid`);
    const ends = mi.calls.filter((request) => request.method === 'dlg_end_dlg');
    assert.deepEqual(
      ends.map((request) => request.params),
      [{ dialog_id: '2a1.5' }],
      'the dialog id the script sent',
    );
    assert.ok(
      mi.calls.some((request) => request.method === 'dlg_list' && (request.params as { callid: string }).callid === call.callId),
      'each whole slice looked for the dialog',
    );

    const ingest = await node.post('/api/cdrs/ingest', cdr(call, endedAt));
    assert.equal(ingest.status, 201, JSON.stringify(ingest.body));
    assertCutAtItsPaidTime(call.callId, ingest.body);
    await eventually(async () => {
      const now = await balance(world);
      assert.equal(new Decimal(now.balance).toFixed(4), new Decimal('0.0110').minus(ingest.body.customer_cost as string).toFixed(4));
    });
    assert.ok(new Decimal((await balance(world)).balance).greaterThanOrEqualTo(0));
  });

  it('gives its reservation back within a slice when OpenSIPS no longer has the dialog and no CDR came', async () => {
    await credit(world, '1.00');
    const call = await decide(node, mi, 0, 'gone@slices', '3.1');
    assert.ok(call !== null);
    mi.hangUp(call.callId); // the call ended; its CDR never reached the node
    await eventually(async () => {
      const metrics = (await node.get('/metrics')).text;
      assert.match(metrics, /sidecar_call_slices_total\{event="gone"\} 1\b/);
    }, 20_000);
    const release = await node.post('/api/opensips/call/release', { call_id: call.callId });
    assert.equal(release.body.released, false, 'nothing left held for it');
  });
});

describe('prepaid in slices: three nodes, one account', () => {
  const mis = [new FakeOpensipsMi(null), new FakeOpensipsMi(null), new FakeOpensipsMi(null)];
  let world: MoneyWorld;
  const BALANCE = '0.1000';

  before(async () => {
    const urls = await Promise.all(mis.map((mi) => mi.startHttp()));
    // Small leases, so that the nodes come back to the centre for each few slices; each node its own OpenSIPS.
    world = await startMoneyWorld({
      sidecars: 3,
      sidecarArgs: [...SLICE_ARGS, '--lease-chunk', '0.03'],
      nodeArgs: (index) => ['--opensips-mi', urls[index]],
    });
    await credit(world, BALANCE);
  });
  after(async () => {
    await world.stop();
    for (const mi of mis) mi.close();
  });

  it(
    'carries a call per slice the balance affords, ends each when the balance is spent, and bills no more than it had',
    { timeout: longestCallMs(BALANCE) + 60_000 },
    async () => {
      const admitted = (
        await Promise.all(
          Array.from({ length: 45 }, (_, i) =>
            decide(world.sidecars[i % 3], mis[i % 3], i % 3, `c${i}@three-nodes`, `${[...(i + 1).toString(16)].reverse().join('')}.1`),
          ),
        )
      ).filter((call): call is Admitted => call !== null);
      // One slice each: 0.10 affords 19 of them (a whole 2-hour reservation would have let one call in).
      assert.ok(admitted.length >= 12, `${admitted.length} calls admitted on 0.10`);
      assert.ok(
        LEAST_SLICE_COST.mul(admitted.length).lessThanOrEqualTo(BALANCE),
        `${admitted.length} calls of at least 0.0026 exceed 0.10`,
      );

      // Every call keeps going until its node ends it: the balance runs out for all of them.
      await eventually(() => {
        const running = admitted.filter((call) => mis[call.node].dialogs.get(call.callId)!.endedAt === null);
        assert.equal(running.length, 0, `${running.length} calls still running`);
        return Promise.resolve();
      }, longestCallMs(BALANCE));

      let charged = new Decimal(0);
      for (const call of admitted) {
        const endedAt = mis[call.node].dialogs.get(call.callId)!.endedAt!;
        const ingest = await world.sidecars[call.node].post('/api/cdrs/ingest', cdr(call, endedAt));
        assert.equal(ingest.status, 201, JSON.stringify(ingest.body));
        assertCutAtItsPaidTime(call.callId, ingest.body);
        charged = charged.plus(ingest.body.customer_cost as string);
      }
      assert.ok(charged.lessThanOrEqualTo(BALANCE), `charged ${charged.toFixed()} of ${BALANCE}`);
      await eventually(async () => {
        const now = await balance(world);
        assert.equal(new Decimal(now.balance).toFixed(4), new Decimal(BALANCE).minus(charged).toFixed(4));
      }, 10_000);
    },
  );
});

describe('prepaid in slices: when ending a call over MI goes wrong', () => {
  const mi = new FakeOpensipsMi(null);
  let world: MoneyWorld;

  before(async () => {
    const url = await mi.startHttp();
    world = await startMoneyWorld({ sidecars: 1, sidecarArgs: ['--opensips-mi', url, ...SLICE_ARGS] });
  });
  after(async () => {
    await world.stop();
    mi.close();
  });

  /** Waits until OpenSIPS (the double) has had the call's dialog ended. */
  async function endedOverMi(callId: string, ms: number): Promise<number> {
    await eventually(() => {
      assert.notEqual(mi.dialogs.get(callId)!.endedAt, null, `${callId} still running`);
      return Promise.resolve();
    }, ms);
    return mi.dialogs.get(callId)!.endedAt!;
  }

  it('ends a call that OpenSIPS lists under another dialog id than the admission named, under the listed one', async () => {
    await credit(world, '0.0110'); // two slices, as above
    const call = await decide(world.sidecars[0], mi, 0, 'moved@slices', '2a1.5');
    assert.ok(call !== null, 'admitted');
    // The dialog is up, but not under the id the script sent (a replication peer's takeover gives it a new one).
    mi.openDialog(call.callId, '9.2');
    const endedAt = await endedOverMi(call.callId, 40_000);
    assert.deepEqual(
      mi.calls.filter((request) => request.method === 'dlg_end_dlg').map((request) => request.params),
      [{ dialog_id: '2a1.5' }, { dialog_id: '9.2' }],
      'the id the script sent, then the one OpenSIPS lists for the Call-ID',
    );
    const ingest = await world.sidecars[0].post('/api/cdrs/ingest', cdr(call, endedAt));
    assert.equal(ingest.status, 201, JSON.stringify(ingest.body));
    assertCutAtItsPaidTime(call.callId, ingest.body);
  });

  it('ends, once restarted, a call the node was ending when it was killed', async () => {
    await credit(world, '0.0110');
    const call = await decide(world.sidecars[0], mi, 0, 'restarted@slices', '3.7');
    assert.ok(call !== null, 'admitted');
    mi.failDialogEnds = 1_000_000; // a busy OpenSIPS: every try fails
    await eventually(() => {
      const tries = mi.calls.filter(
        (request) => request.method === 'dlg_end_dlg' && (request.params as { dialog_id: string }).dialog_id === '3.7',
      );
      assert.ok(tries.length >= 2, `${tries.length} tries to end it`);
      return Promise.resolve();
    }, 40_000);
    const killed = world.sidecars[0];
    await killed.kill('SIGKILL');
    mi.failDialogEnds = 0;
    world.sidecars[0] = await SidecarProcess.start({ dataDir: killed.dataDir, args: world.sidecarArgs(0) });
    // Before, the restarted node held the reservation until the grace period was over and never asked again:
    // the call ran on, unpaid, until its cap.
    await endedOverMi(call.callId, 20_000);
  });
});

describe('prepaid in slices: while the MI does not answer', () => {
  const mi = new FakeOpensipsMi(null);
  let world: MoneyWorld;

  before(async () => {
    const url = await mi.startHttp();
    world = await startMoneyWorld({ sidecars: 1, sidecarArgs: ['--opensips-mi', url, ...SLICE_ARGS] });
    await credit(world, '1.00');
  });
  after(() => world.stop());

  it('reserves whole calls, so that calls it could not end cannot together run past the balance', async () => {
    const node = world.sidecars[0];
    mi.close(); // OpenSIPS's MI goes away: nothing answers on its port
    await node.waitForLog((line) => line.includes('OpenSIPS MI does not answer'), 30_000);
    // 1.00 at 0.0250/min affords 40 minutes: the first call reserves all of it (in slices it would reserve 0.0051),
    // and a second call on the account is refused, as without slices.
    const first = await decide(node, mi, 0, 'mi-down-1@slices', '1.3');
    assert.ok(first !== null, 'admitted');
    const second = await node.post('/api/opensips/call/decide', invite('mi-down-2@slices', '2.3'));
    assert.equal(second.body.allowed, false, JSON.stringify(second.body));
    assert.equal(second.body.reason_code, 'insufficient_balance', JSON.stringify(second.body));
  });
});
