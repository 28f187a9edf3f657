import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Decimal } from '../../src/core/money/decimal.js';
import { FakeOpensipsMi } from '../../src/devkit/fake-opensips-mi.js';
import { eventually, startMoneyWorld, type MoneyWorld } from '../helpers/money-world.js';
import type { SidecarProcess } from '../helpers/sidecar.js';
import {
  SLICE_ARGS,
  LEAST_SLICE_COST,
  longestCallMs,
  assertCutAtItsPaidTime,
  type Admitted,
  cdr,
  credit,
  balance,
  decide,
} from '../helpers/call-slices.js';

/** Prepaid in slices with real processes (test/helpers/call-slices.ts says how): a call, and three nodes on one account. */
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
