import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { FakeOpensipsMi } from '../../src/devkit/fake-opensips-mi.js';
import { eventually, startMoneyWorld, type MoneyWorld } from '../helpers/money-world.js';
import { SidecarProcess } from '../helpers/sidecar.js';
import { SLICE_ARGS, assertCutAtItsPaidTime, invite, cdr, credit, decide } from '../helpers/call-slices.js';

/**
 * Prepaid in slices when the node's OpenSIPS MI misbehaves (test/helpers/call-slices.ts says how the calls run): a
 * file of its own, as each case waits out slices of real time and call-slices.test.ts is long enough.
 */
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
