import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import pino from 'pino';
import type { LeaseState, NodeSyncReply } from '../../src/core/protocol/node-sync.js';
import { NodeCredit, type AdmitOutcome, type CreditSettings, type Plan, type Round } from '../../src/sidecar/credit/node-credit.js';
import { MoneyJournal } from '../../src/sidecar/journal/journal.js';
import { parseMicro } from '../../src/core/money/micro.js';
import { CREDIT_SETTINGS } from '../helpers/credit.js';

/**
 * The node's side of sharing a balance (NodeCredit, the rounds driven by hand): a recalled entity's unused
 * lease goes back in the next round while what live calls hold, and what a waiting call was just leased,
 * stays; and an admission the lease does not cover asks the centre even right after it said the account was
 * empty, so a top-up there reaches the next call.
 */
const log = pino({ level: 'silent' });
const ACCOUNT = { type: 'customer' as const, id: 7 };
const NOW = 1_800_000_000_000;

async function withCredit(
  run: (credit: NodeCredit, rounds: { asked: boolean[] }) => Promise<void>,
  overrides: Partial<CreditSettings> = {},
): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'lease-recall-'));
  const journal = new MoneyJournal(join(dir, 'money.db'), 'normal', log);
  const credit = new NodeCredit(journal, { ...CREDIT_SETTINGS, ...overrides }, log);
  const rounds = { asked: [] as boolean[] };
  // The test takes and answers each round itself; this only notes that one was asked for (urgent or not).
  credit.connect((urgent) => {
    rounds.asked.push(urgent);
    return Promise.resolve(true);
  });
  try {
    await run(credit, rounds);
  } finally {
    await journal.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const exactly =
  (amountMicro: number) =>
  (available: number): Plan | null =>
    amountMicro <= available ? { amountMicro, maxDurationSeconds: null, slice: null } : null;

function admit(credit: NodeCredit, callId: string, amountMicro: number, now = NOW): AdmitOutcome | Promise<AdmitOutcome> {
  return credit.admit({
    entity: ACCOUNT,
    callId,
    plan: exactly(amountMicro),
    enforce: true,
    admitWhenUnreachable: false,
    answer: 'check',
    port: null,
    now,
  });
}

const micro = (amount: string | null | undefined): number => parseMicro(amount ?? '0');

function lease(grantedMicro: number, headroomMicro: number): LeaseState {
  return { entity_type: 'customer', entity_id: 7, granted: (grantedMicro / 1e6).toFixed(6), headroom: (headroomMicro / 1e6).toFixed(6) };
}

function answer(credit: NodeCredit, round: Round, reply: Partial<NodeSyncReply>, now = NOW): void {
  credit.applyReply(round, { settled: [], unbilled: [], leases: [], lease_valid_seconds: 86_400, ...reply }, now);
}

it('gives back a recalled lease but what its live calls hold, at the next round', async () => {
  await withCredit(async (credit) => {
    const first = admit(credit, 'a@recall', 1000);
    assert.ok(first instanceof Promise, 'no lease yet: it asks');
    const ask = credit.takeRound(0);
    assert.deepEqual(
      ask.asks.map((entry) => [micro(entry.ask.need), micro(entry.ask.per_call)]),
      [[1000, 1000]],
    );
    answer(credit, ask, { leases: [lease(10_000, 90_000)] });
    assert.equal((await first).kind, 'reserved');

    // Another node was short: this node's next answer recalls the account.
    answer(credit, credit.takeRound(0), { recall: [{ entity_type: 'customer', entity_id: 7 }] });
    const back = credit.takeRound(0).asks.map((entry) => [micro(entry.ask.want), micro(entry.ask.give_back)]);
    assert.deepEqual(back, [[0, 9000]], 'all but the live call’s 1000');
    assert.equal(credit.entity(ACCOUNT).availableMicro, 0);
    assert.equal(credit.entity(ACCOUNT).heldMicro, 1000);
  });
});

it('keeps a recalled lease for a call waiting on the entity, and gives back the rest once it has reserved', async () => {
  await withCredit(async (credit) => {
    answer(credit, credit.takeRound(0), { leases: [lease(500, 0)], recall: [{ entity_type: 'customer', entity_id: 7 }] });
    const waiting = admit(credit, 'b@recall', 1000);
    assert.ok(waiting instanceof Promise);
    const round = credit.takeRound(0);
    assert.deepEqual(
      round.asks.map((entry) => [micro(entry.ask.need), micro(entry.ask.give_back)]),
      [[1000, 0]],
      'the 500 it holds is kept for the waiting call',
    );
    answer(credit, round, { leases: [lease(1500, 0)] });
    assert.equal((await waiting).kind, 'reserved');
    assert.deepEqual(
      credit.takeRound(0).asks.map((entry) => micro(entry.ask.give_back)),
      [500],
      'the recall, acted on after the call reserved its 1000',
    );
  });
});

it('asks the centre before refusing a call, even right after it said the account was empty', async () => {
  await withCredit(async (credit, rounds) => {
    const first = admit(credit, 'c@dry', 1000);
    const empty = credit.takeRound(0);
    answer(credit, empty, { leases: [lease(0, 0)] });
    assert.equal((await first).kind, 'refused');
    assert.ok(credit.entity(ACCOUNT).dryUntil > NOW, 'taken for empty for a while');

    // The account is topped up at the centre; the next call, 10 ms later, asks rather than trusting that reading.
    rounds.asked.length = 0;
    const next = admit(credit, 'd@dry', 1000, NOW + 10);
    assert.ok(next instanceof Promise, 'it waits for the centre');
    assert.deepEqual(rounds.asked, [true], 'a round at once');
    answer(credit, credit.takeRound(0), { leases: [lease(1000, 4000)] }, NOW + 20);
    assert.equal((await next).kind, 'reserved');
  });
});

it('refuses an admission the centre answered after --admission-deadline-ms, reserving nothing (OpenSIPS stopped waiting)', async () => {
  await withCredit(
    async (credit) => {
      const late = admit(credit, 'e@late', 1000);
      assert.ok(late instanceof Promise, 'no lease yet: it asks');
      const round = credit.takeRound(0);
      // The centre's answer comes well after the deadline (a timer may fire early by the loop's staleness: 4x).
      await new Promise((resolve) => setTimeout(resolve, 200));
      answer(credit, round, { leases: [lease(10_000, 90_000)] });
      const outcome = await late;
      assert.deepEqual([outcome.kind, outcome.kind === 'refused' ? outcome.reason : null], ['refused', 'credit_unavailable']);
      assert.equal(credit.entity(ACCOUNT).heldMicro, 0, 'nothing held for a call OpenSIPS has already answered');
      assert.equal(credit.entity(ACCOUNT).availableMicro, 10_000, 'the lease it brought stays for the next calls');
      // The Call-ID is not taken: OpenSIPS's retry of it (or its next call) is admitted on the lease at once.
      const next = admit(credit, 'e@late', 1000);
      assert.ok(!(next instanceof Promise), 'within the lease: no wait');
      assert.equal(next.kind, 'reserved');
    },
    { admissionDeadlineMs: 50 },
  );
});

it('journals a lease handed back before the round that hands it back is sent, so a restart does not admit on it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lease-return-'));
  let journal = new MoneyJournal(join(dir, 'money.db'), 'normal', log);
  try {
    const credit = new NodeCredit(journal, CREDIT_SETTINGS, log);
    credit.connect(() => Promise.resolve(true));
    answer(credit, credit.takeRound(0), { leases: [lease(10_000, 0)] });
    assert.equal((await admit(credit, 'e@return', 1000)).kind, 'reserved');
    credit.returnIdleLeases(NOW + 1, 0);
    const round = credit.takeRound(0);
    assert.deepEqual(
      round.asks.map((entry) => micro(entry.ask.give_back)),
      [9000],
    );
    // The link sends the round once this resolves; the node is killed right after (before any answer).
    await round.durable;
    await journal.close();
    journal = new MoneyJournal(join(dir, 'money.db'), 'normal', log);
    const restarted = new NodeCredit(journal, CREDIT_SETTINGS, log);
    assert.equal(restarted.entity(ACCOUNT).grantedMicro, 1000, 'the lease its live call holds, not the 10,000 before the return');
    assert.equal(restarted.entity(ACCOUNT).availableMicro, 0);
  } finally {
    await journal.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

it('keeps an idle lease handed back while a round is in flight as gone when that round is answered', async () => {
  await withCredit(async (credit) => {
    answer(credit, credit.takeRound(0), { leases: [lease(10_000, 0)] });
    assert.equal((await admit(credit, 'j@idle', 1000)).kind, 'reserved');
    // A round in flight that names the account (a CDR of it settling, here its figures asked for)...
    credit.learnHeadroom(credit.entity(ACCOUNT), NOW);
    const inFlight = credit.takeRound(0);
    // ... while the upkeep hands the idle lease back: 9000 counted as gone at once, to go in the next round.
    credit.returnIdleLeases(NOW + 1, 0);
    assert.equal(credit.entity(ACCOUNT).availableMicro, 0);
    // The answer names the lease as the centre held it when that round was applied: the 9000 has not reached it yet.
    answer(credit, inFlight, { leases: [lease(10_000, 0)] });
    assert.equal(credit.entity(ACCOUNT).availableMicro, 0, 'the 9000 on its way back is not admitted on again');
    const giving = credit.takeRound(0);
    assert.deepEqual(
      giving.asks.map((entry) => micro(entry.ask.give_back)),
      [9000],
    );
    // Before that round's answer, a call of 5000 must not be admitted on the lease being handed back.
    const meanwhile = admit(credit, 'k@idle', 5000);
    assert.ok(meanwhile instanceof Promise, 'nothing left in the lease: it asks the centre');
    answer(credit, giving, { leases: [lease(1000, 9000)] });
    assert.equal(credit.entity(ACCOUNT).availableMicro, 0);
    assert.equal(credit.entity(ACCOUNT).heldMicro, 1000);
    answer(credit, credit.takeRound(0), { leases: [lease(1000, 0)] });
    assert.equal((await meanwhile).kind, 'refused');
  });
});

/** The live channel (issue 18): the centre's money signals, and an admission waiting while a recall is under way. */
const SIGNALLED = { entity_type: 'customer' as const, entity_id: 7 };

/** Lets the admission waiting on a round reach its next await (the wait for a refresh, or for the next round). */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

it('a call short while the centre recalls other nodes’ lease waits for the refresh and is admitted on what came back', async () => {
  await withCredit(
    async (credit) => {
      const call = admit(credit, 'f@channel', 1000);
      assert.ok(call instanceof Promise);
      answer(credit, credit.takeRound(0), { leases: [{ ...lease(0, 0), recalling: true }] });
      await settle();
      // Another node handed its lease back; the centre refreshes this node, and the call asks again.
      credit.moneySignals({ recall: [], refresh: [SIGNALLED] }, NOW);
      await settle();
      const again = credit.takeRound(0);
      assert.deepEqual(
        again.asks.map((entry) => micro(entry.ask.need)),
        [1000],
        'asked again for what the call needs',
      );
      answer(credit, again, { leases: [lease(1000, 0)] });
      const outcome = await call;
      assert.deepEqual([outcome.kind, 'waited' in outcome && outcome.waited], ['reserved', 'recall']);
    },
    { recallWaitMs: 60_000 },
  );
});

it('a short call waits for no refresh when no recall is under way, nor beyond --recall-wait-ms', async () => {
  await withCredit(
    async (credit) => {
      const plain = admit(credit, 'g@channel', 1000);
      answer(credit, credit.takeRound(0), { leases: [lease(0, 0)] });
      assert.equal((await plain).kind, 'refused', 'nothing recalled: refused at once');

      // It waited rather than being refused at once. The wait is bounded from the admission's start (NodeCredit:
      // waitUntil), so the clock starts before it; and a timer fires early by however stale the event loop's time
      // was when it was set (several ms when both cores are busy), so the bound read is half the wait, not all.
      const started = performance.now();
      const waiting = admit(credit, 'h@channel', 1000);
      answer(credit, credit.takeRound(0), { leases: [{ ...lease(0, 0), recalling: true }] });
      const outcome = await waiting;
      assert.deepEqual([outcome.kind, outcome.kind === 'refused' && outcome.reason], ['refused', 'insufficient_balance']);
      assert.ok(performance.now() - started >= 100, 'it did wait for the refresh');
      assert.deepEqual(credit.entity(ACCOUNT).refreshWaiters, [], 'and left nothing behind');
    },
    { recallWaitMs: 200 },
  );
});

it('answers a recall from the channel with a round at once, naming the entity even with nothing to give back', async () => {
  await withCredit(async (credit, rounds) => {
    answer(credit, credit.takeRound(0), { leases: [lease(4000, 0)] });
    assert.equal((await admit(credit, 'i@channel', 4000)).kind, 'reserved');
    rounds.asked.length = 0;
    credit.moneySignals({ recall: [SIGNALLED], refresh: [] }, NOW);
    assert.deepEqual(rounds.asked, [true], 'a round at once');
    assert.deepEqual(
      credit.takeRound(0).asks.map((entry) => [micro(entry.ask.want), micro(entry.ask.give_back)]),
      [[0, 0]],
      'its live call holds it all: the answer the centre waits for, with nothing in it',
    );
    // A refresh with no call waiting: the node takes the new figures, and lease sized to its demand.
    credit.moneySignals({ recall: [], refresh: [SIGNALLED] }, NOW);
    assert.ok(micro(credit.takeRound(0).asks[0].ask.want) >= 4000);
  });
});
