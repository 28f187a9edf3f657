import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import pino from 'pino';
import { costBoundMicro, type CallPrice } from '../../src/core/rating/cost-bound.js';
import { NodeCredit, type CreditSettings, type Plan, type SliceAction } from '../../src/sidecar/credit/node-credit.js';
import { SliceKeeper, defaultEndMarginMs, endAt, renewAt } from '../../src/sidecar/credit/slices.js';
import { parseMiAddress } from '../../src/core/mi/client.js';
import { FakeOpensipsMi } from '../../src/devkit/fake-opensips-mi.js';
import { SidecarMetrics } from '../../src/sidecar/metrics/metrics.js';
import { MoneyJournal } from '../../src/sidecar/journal/journal.js';

/**
 * Prepaid in slices at the node (NodeCredit): a call holds what its paid time costs, buys the next slice
 * from the lease ahead of time, and is to be ended before its paid time runs out when the next cannot be
 * bought; what the calls hold never exceeds the lease. The clock is the `now` each step is given.
 */
const SLICE = 60;
const GRACE = 60;
/** 0.0600 per minute, billed per second, one 1e-4 unit of rounding slack: a second costs 1000 micro. */
const PRICE: CallPrice = { rateNano: 60_000_000, perCall: false, initial: 1, step: 1, slackMicro: 100 };
const log = pino({ level: 'silent' });
const settings = {
  admissionSeconds: 3600,
  reservationGraceSeconds: GRACE,
  leaseChunkMicro: 0,
  idleReturnMs: 3_600_000,
  offlinePostpaid: 'deny' as const,
  sliceSeconds: SLICE,
};

/** The first slice of a call, as call/admit's sliced plan makes it. */
const firstSlice =
  (dialogId: string) =>
  (available: number): Plan | null => {
    const amountMicro = costBoundMicro(PRICE, SLICE);
    if (amountMicro > available) return null;
    return {
      amountMicro,
      maxDurationSeconds: 3600,
      slice: { paidBillable: SLICE, rateNano: PRICE.rateNano, slackMicro: PRICE.slackMicro, initial: 1, step: 1, dialogId },
    };
  };

async function withCredit(
  run: (credit: NodeCredit, reopen: () => Promise<NodeCredit>) => Promise<void>,
  changed: Partial<CreditSettings> = {},
): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'slices-'));
  let journal = new MoneyJournal(join(dir, 'money.db'), 'normal', log);
  const open = (): NodeCredit => {
    const credit = new NodeCredit(journal, { ...settings, ...changed }, log);
    // The centre cannot be reached for more: only the lease granted below is there.
    credit.connect(() => {
      credit.roundFailed(credit.takeRound(0));
      return Promise.resolve(false);
    });
    return credit;
  };
  try {
    await run(open(), async () => {
      await journal.close();
      journal = new MoneyJournal(join(dir, 'money.db'), 'normal', log);
      return open();
    });
  } finally {
    await journal.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The centre grants `granted` micro-units of lease to account 7. */
function grant(credit: NodeCredit, granted: number, now: number): void {
  credit.applyReply(
    credit.takeRound(0),
    {
      settled: [],
      unbilled: [],
      leases: [{ entity_type: 'customer', entity_id: 7, granted: (granted / 1e6).toFixed(6), headroom: '0' }],
      lease_valid_seconds: 86_400,
    },
    now,
  );
}

async function admit(credit: NodeCredit, callId: string, dialogId: string, now: number): Promise<void> {
  const outcome = await credit.admit({
    entity: { type: 'customer', id: 7 },
    callId,
    plan: firstSlice(dialogId),
    enforce: true,
    admitWhenUnreachable: false,
    answer: 'admit',
    port: null,
    now,
  });
  if (outcome.kind !== 'reserved') assert.fail(`not admitted: ${outcome.kind}`);
  await outcome.committed;
}

const T0 = Date.parse('2026-12-04T12:00:00Z');

describe('prepaid in slices (NodeCredit)', () => {
  it('buys slice after slice from the lease, then asks for the call to end before its paid time runs out', () =>
    withCredit(async (credit) => {
      const lease = 1_000_000; // 1.00: 999 seconds at 0.06/min after the slack
      grant(credit, lease, T0);
      await admit(credit, 'c1@t', '2a1.5', T0);
      const account = credit.entity({ type: 'customer', id: 7 });
      assert.equal(account.heldMicro, costBoundMicro(PRICE, SLICE), 'admission holds one slice, not the longest call');

      let now = T0;
      let paidUntil = T0 + SLICE * 1000;
      const actions: SliceAction[] = [];
      // Nothing is due before the renewal point.
      assert.deepEqual(credit.expire(renewAt({ paidUntil }, SLICE) - 1).slices, []);
      for (let step = 0; step < 100; step++) {
        now = renewAt({ paidUntil }, SLICE);
        let slices = credit.expire(now).slices;
        assert.ok(account.heldMicro <= lease, `held ${account.heldMicro} of a ${lease} lease`);
        // Short of a whole slice: tried again every second until the end is due.
        for (let retry = now + 250; slices.length === 0 && retry <= now + 2 * SLICE * 1000; retry += 250)
          slices = credit.expire(retry).slices;
        actions.push(...slices);
        if (slices.some((action) => action.kind === 'end')) break;
        paidUntil = slices[0].paidUntil;
      }
      const end = actions.at(-1)!;
      assert.equal(end.kind, 'end');
      assert.equal(end.dialogId, '2a1.5');
      assert.equal(end.callId, 'c1@t');
      // The lease paid for 999 seconds from the admission: the call holds exactly that, and is ended ahead of it.
      assert.equal(end.paidUntil, T0 + 999_000);
      assert.equal(account.heldMicro, costBoundMicro(PRICE, 999));
      assert.ok(account.heldMicro <= lease);
      assert.equal(actions.filter((action) => action.kind === 'check').length, 15, 'a dialog check with each whole slice bought');

      // Ending: the call may run on until its dialog's cap (3600 s from the admission) if the end does not land
      // (an MI down), so the reservation is held until then and the grace period, and the keeper tries as long.
      assert.equal(end.expiresAt, T0 + (3600 + GRACE) * 1000);
      assert.deepEqual(credit.expire(end.paidUntil + GRACE * 1000), { expired: 0, slices: [] });
      assert.deepEqual(credit.expire(end.expiresAt - 1), { expired: 0, slices: [] });
      assert.deepEqual(credit.expire(end.expiresAt), { expired: 1, slices: [] });
      assert.equal(account.heldMicro, 0);
    }));

  it('once the end lands, holds the reservation a grace period past the paid time for the CDR, not until the cap', () =>
    withCredit(async (credit) => {
      grant(credit, costBoundMicro(PRICE, 90), T0); // one slice and half of the next
      await admit(credit, 'c5@t', '5.1', T0);
      let end: SliceAction | undefined;
      for (let now = T0; end === undefined && now < T0 + 200_000; now += 250)
        end = credit.expire(now).slices.find((action) => action.kind === 'end');
      assert.ok(end !== undefined);
      assert.equal(end.paidUntil, T0 + 90_000);
      credit.endedOverMi(end.slot, end.id, end.paidUntil - 5000);
      assert.deepEqual(credit.expire(end.paidUntil + GRACE * 1000 - 1), { expired: 0, slices: [] });
      assert.deepEqual(credit.expire(end.paidUntil + GRACE * 1000), { expired: 1, slices: [] });
      assert.equal(credit.entity({ type: 'customer', id: 7 }).heldMicro, 0);
    }));

  for (const margin of [undefined, 20_000])
    it(`is ended no later than the end margin (${margin ?? 'the default'}) before its paid time, however the upkeep ticks fall`, () =>
      withCredit(
        async (credit) => {
          grant(credit, costBoundMicro(PRICE, 90), T0); // one slice and half of the next
          await admit(credit, 'c2@t', '1.1', T0);
          const paidUntil = T0 + SLICE * 1000;
          const marginMs = margin ?? defaultEndMarginMs(SLICE);
          let ended: SliceAction | undefined;
          let last = 0;
          for (let now = renewAt({ paidUntil }, SLICE); ended === undefined && now < T0 + 200_000; now += 250) {
            ended = credit.expire(now).slices.find((action) => action.kind === 'end');
            last = now;
          }
          assert.ok(ended !== undefined);
          assert.equal(ended.paidUntil, T0 + 90_000, 'it bought the half slice the lease still had');
          const endsAt = endAt({ paidUntil: ended.paidUntil }, marginMs);
          // Not before the margin (the retries run until then), and within one upkeep tick of it.
          assert.ok(last >= endsAt && last <= endsAt + 250, `ended at +${last - T0} ms, due at +${endsAt - T0} ms`);
        },
        { sliceEndMarginMs: margin },
      ));

  it('gives the reservation back at once when OpenSIPS no longer has the dialog', () =>
    withCredit(async (credit) => {
      grant(credit, 1_000_000, T0);
      await admit(credit, 'c3@t', '3.1', T0);
      const [check] = credit.expire(renewAt({ paidUntil: T0 + SLICE * 1000 }, SLICE)).slices;
      assert.equal(check.kind, 'check');
      assert.equal(credit.dialogGone(check.slot, check.id, T0 + 31_000), true);
      assert.equal(credit.entity({ type: 'customer', id: 7 }).heldMicro, 0);
      assert.equal(credit.dialogGone(check.slot, check.id, T0 + 31_000), false, 'only once');
      assert.equal(await credit.release('c3@t', T0 + 32_000), false, 'nothing left to release');
    }));

  it('keeps a sliced call’s terms across a restart: the next slice is bought where it left off', () =>
    withCredit(async (credit, reopen) => {
      grant(credit, 1_000_000, T0);
      await admit(credit, 'c4@t', 'f67d52b7.322', T0);
      const [first] = credit.expire(renewAt({ paidUntil: T0 + SLICE * 1000 }, SLICE)).slices;
      assert.equal(first.paidUntil, T0 + 2 * SLICE * 1000);
      await new Promise((resolve) => setTimeout(resolve, 50)); // the extension's journal write

      const restarted = await reopen();
      assert.equal(restarted.entity({ type: 'customer', id: 7 }).heldMicro, costBoundMicro(PRICE, 2 * SLICE));
      assert.deepEqual(restarted.expire(renewAt({ paidUntil: first.paidUntil }, SLICE) - 1).slices, []);
      const [second] = restarted.expire(renewAt({ paidUntil: first.paidUntil }, SLICE)).slices;
      assert.equal(second.kind, 'check');
      assert.equal(second.dialogId, 'f67d52b7.322');
      assert.equal(second.paidUntil, T0 + 3 * SLICE * 1000);
    }));
});

describe('ending a sliced call over MI (SliceKeeper)', () => {
  it('keeps trying past the paid time while OpenSIPS fails, until the reservation lapses, and ends the call', () =>
    withCredit(async (credit) => {
      const mi = new FakeOpensipsMi(null);
      const address = parseMiAddress(await mi.startHttp())!;
      try {
        const now = Date.now();
        grant(credit, costBoundMicro(PRICE, SLICE), now);
        await admit(credit, 'late@t', '7.1', now);
        const slot = credit.reservationOf('late@t');
        mi.openDialog('late@t', '7.1');
        mi.failDialogEnds = 3; // a busy OpenSIPS: the first tries fail, the paid time is already up
        const keeper = new SliceKeeper(credit, address, new SidecarMetrics(), log);
        keeper.act([{ kind: 'end', slot, id: 1, callId: 'late@t', dialogId: '7.1', paidUntil: now - 1000, expiresAt: now + 60_000 }]);
        await new Promise<void>((resolve) => {
          const ended = (): void => (mi.dialogs.get('late@t')!.endedAt === null ? void setTimeout(ended, 50) : resolve());
          ended();
        });
        assert.equal(mi.calls.filter((call) => call.method === 'dlg_end_dlg').length, 4, 'three failures, then the end');
      } finally {
        mi.close();
      }
    }));

  it('holds the reservation of a call it ended a grace period past its paid time, not until its cap', () =>
    withCredit(async (credit) => {
      const mi = new FakeOpensipsMi(null);
      const address = parseMiAddress(await mi.startHttp())!;
      try {
        const t0 = Date.now();
        grant(credit, costBoundMicro(PRICE, SLICE), t0); // one slice: the call is to be ended at its first renewal
        await admit(credit, 'short@t', '8.1', t0);
        mi.openDialog('short@t', '8.1');
        let end: SliceAction | undefined;
        for (let now = t0; end === undefined && now < t0 + 200_000; now += 250)
          end = credit.expire(now).slices.find((action) => action.kind === 'end');
        assert.ok(end !== undefined);
        const lapses = end.paidUntil + GRACE * 1000;
        assert.equal(credit.expire(lapses).expired, 0, 'until it is ended, held until the cap');
        new SliceKeeper(credit, address, new SidecarMetrics(), log).act([end]);
        // The keeper shortens the reservation once OpenSIPS has answered: polled, as the answer lands in its own time.
        let expired = 0;
        for (let tries = 0; expired === 0 && tries < 200; tries++) {
          await new Promise((resolve) => setTimeout(resolve, 25));
          expired = credit.expire(lapses).expired;
        }
        assert.notEqual(mi.dialogs.get('short@t')!.endedAt, null, 'ended over MI');
        assert.equal(expired, 1, 'the reservation lapses a grace period past the paid time');
      } finally {
        mi.close();
      }
    }));

  it(
    'stops trying to end a call whose reservation has ended meanwhile, and never ends a new call under its Call-ID',
    { timeout: 30_000 },
    () =>
      withCredit(async (credit) => {
        const mi = new FakeOpensipsMi(null);
        const address = parseMiAddress(await mi.startHttp())!;
        const lines: string[] = [];
        const sink = new Writable({
          write(chunk: Buffer, _encoding, done) {
            lines.push(chunk.toString());
            done();
          },
        });
        try {
          const now = Date.now();
          grant(credit, costBoundMicro(PRICE, SLICE), now);
          await admit(credit, 'reused@t', '4.1', now);
          const slot = credit.reservationOf('reused@t');
          mi.openDialog('reused@t', '4.1');
          mi.delayMs = 3000; // a busy OpenSIPS: the tries time out (1 s) until the test is done below
          new SliceKeeper(credit, address, new SidecarMetrics(), pino({ level: 'info' }, sink)).act([
            { kind: 'end', slot, id: 1, callId: 'reused@t', dialogId: '4.1', paidUntil: now - 1000, expiresAt: now + 60_000 },
          ]);
          while (!mi.calls.some((call) => call.method === 'dlg_end_dlg')) await new Promise((resolve) => setTimeout(resolve, 10));
          // Meanwhile the call hangs up, its release comes, and a new call reuses the Call-ID (a dialog of its own).
          mi.hangUp('reused@t');
          assert.equal(await credit.release('reused@t', Date.now()), true);
          mi.openDialog('reused@t', '4.2');
          mi.delayMs = 0;
          while (!lines.some((line) => line.includes('holds no reservation any more')))
            await new Promise((resolve) => setTimeout(resolve, 20));
          assert.equal(mi.dialogs.get('reused@t')!.endedAt, null, 'the new call under the Call-ID is not ended');
          for (const call of mi.calls) assert.notDeepEqual(call.params, { dialog_id: '4.2' }, 'nothing asked to end the new call');
        } finally {
          mi.close();
        }
      }),
  );

  it('tells admission whether the MI answers: slices stop while it does not, and come back when it does', () =>
    withCredit(async (credit) => {
      const mi = new FakeOpensipsMi(null);
      const url = await mi.startHttp();
      const keeper = new SliceKeeper(credit, parseMiAddress(url)!, new SidecarMetrics(), log);
      const settled = async (expected: boolean): Promise<void> => {
        keeper.probe();
        for (let tries = 0; credit.slicesEnforceable !== expected && tries < 400; tries++)
          await new Promise((resolve) => setTimeout(resolve, 25));
        assert.equal(credit.slicesEnforceable, expected);
      };
      await settled(true); // the double answers uptime with "Method not found": an answer all the same
      mi.close();
      await settled(false);
      const back = new FakeOpensipsMi(null);
      try {
        const keeperBack = new SliceKeeper(credit, parseMiAddress(await back.startHttp())!, new SidecarMetrics(), log);
        keeperBack.probe();
        for (let tries = 0; !credit.slicesEnforceable && tries < 400; tries++) await new Promise((resolve) => setTimeout(resolve, 25));
        assert.equal(credit.slicesEnforceable, true);
      } finally {
        back.close();
      }
    }));
});
