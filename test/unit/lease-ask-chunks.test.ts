import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import pino from 'pino';
import { MAX_LEASE_ASKS, type LeaseState, type NodeSyncReply, type NodeSyncRequest } from '../../src/core/protocol/node-sync.js';
import { CentreLink } from '../../src/sidecar/centre/link.js';
import { NodeCredit, type AdmitOutcome, type Round } from '../../src/sidecar/credit/node-credit.js';
import { MoneyJournal } from '../../src/sidecar/journal/journal.js';
import { SidecarMetrics } from '../../src/sidecar/metrics/metrics.js';
import { CREDIT_SETTINGS } from '../helpers/credit.js';

/**
 * The centre takes at most MAX_LEASE_ASKS lease asks a round (a round with more is refused whole, 400). A node
 * with more entities to ask after (a lapse or a restart asks after every lease it holds; a retail product has
 * tens of thousands of accounts) sends them over several rounds: none over the cap, no ask lost, and a lapse
 * ends only once every lease has been confirmed, or the node refuses every prepaid call for good.
 */
const log = pino({ level: 'silent' });
const NOW = 1_800_000_000_000;
/** Each account's lease: room for a few calls of CALL_MICRO. */
const LEASE_MICRO = 10_000;
const CALL_MICRO = 1000;

async function withCredit(run: (credit: NodeCredit, journal: MoneyJournal) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'lease-ask-chunks-'));
  const journal = new MoneyJournal(join(dir, 'money.db'), 'normal', log);
  const credit = new NodeCredit(journal, CREDIT_SETTINGS, log);
  // The test takes and answers each round itself (unless a CentreLink it makes does).
  credit.connect(() => Promise.resolve(true));
  try {
    await run(credit, journal);
  } finally {
    await journal.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

function lease(id: number, grantedMicro = LEASE_MICRO): LeaseState {
  return { entity_type: 'customer', entity_id: id, granted: (grantedMicro / 1e6).toFixed(6), headroom: '1.000000' };
}

const noRound: Round = { settlements: [], asks: [], confirmsLeases: false, lapse: 0, leftOut: [], durable: null };

function answer(credit: NodeCredit, round: Round, reply: Partial<NodeSyncReply>, now = NOW): void {
  credit.applyReply(round, { settled: [], unbilled: [], leases: [], lease_valid_seconds: 86_400, ...reply }, now);
}

/** The centre's answer to a round: every entity asked after keeps its lease. */
function answerAll(credit: NodeCredit, round: Round): void {
  answer(credit, round, { leases: round.asks.map(({ ask }) => lease(ask.entity_id)) });
}

function admit(credit: NodeCredit, id: number, callId: string, amountMicro = CALL_MICRO): AdmitOutcome | Promise<AdmitOutcome> {
  return credit.admit({
    entity: { type: 'customer', id },
    callId,
    plan: (available) => (amountMicro <= available ? { amountMicro, maxDurationSeconds: null, slice: null } : null),
    enforce: true,
    admitWhenUnreachable: false,
    answer: 'check',
    port: null,
    now: NOW,
  });
}

/** `count` accounts (ids 1..count) leased LEASE_MICRO each, then a silence past the leases' validity: lapsed. */
function leasedThenLapsed(credit: NodeCredit, count: number): Promise<AdmitOutcome> {
  const leases = Array.from({ length: count }, (_, index) => lease(index + 1));
  // A validity of 0 s: the leases lapse at the next admission, without the test waiting for a clock.
  answer(credit, noRound, { leases, lease_valid_seconds: 0 });
  const waiting = admit(credit, count, 'lapsed@chunks');
  assert.ok(waiting instanceof Promise, 'lapsed: the admission waits for the centre');
  assert.equal(credit.leasesLapsed, true);
  return waiting;
}

/** Read afresh (an assertion before a loop narrows the property itself to what it asserted). */
const stillLapsed = (credit: NodeCredit): boolean => credit.leasesLapsed;

/** Lets an admission whose round was answered reach its next await. */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

it('confirms more leases than a round carries over several rounds, and admits again once all are confirmed', async () => {
  await withCredit(async (credit) => {
    const count = MAX_LEASE_ASKS + 1500;
    const waiting = leasedThenLapsed(credit, count);
    const askedFor = new Map<number, number>();
    let rounds = 0;
    while (credit.leasesLapsed) {
      assert.ok(rounds < 10, 'the confirmation makes progress');
      const round = credit.takeRound(0);
      rounds++;
      assert.ok(
        round.asks.length <= MAX_LEASE_ASKS,
        `round ${rounds} carries ${round.asks.length} asks, over the centre's ${MAX_LEASE_ASKS}`,
      );
      assert.equal(round.asks[0].ask.entity_id, rounds === 1 ? count : MAX_LEASE_ASKS, 'the entity an admission waits on first');
      for (const { ask } of round.asks) askedFor.set(ask.entity_id, (askedFor.get(ask.entity_id) ?? 0) + 1);
      answerAll(credit, round);
      if (rounds === 1) assert.equal(credit.leasesLapsed, true, 'a round that asked after only part of the leases does not end the lapse');
      await settle();
    }
    assert.equal(rounds, 2);
    assert.equal(askedFor.size, count, 'every lease asked after');
    askedFor.delete(count);
    assert.ok(
      [...askedFor.values()].every((times) => times === 1),
      'each once, but the one the admission waited on',
    );
    assert.equal((await waiting).kind, 'reserved', 'the admission that waited through the confirmation');
    const after = admit(credit, 1, 'after@chunks');
    assert.ok(!(after instanceof Promise) && after.kind === 'reserved', 'admitted on the confirmed lease at once');
  });
});

it('does not end a lapse on a round that was refused part-way: the leases it left out are asked after again', async () => {
  await withCredit(async (credit) => {
    const count = 5;
    const waiting = leasedThenLapsed(credit, count);
    const first = credit.takeRound(0, 2);
    answerAll(credit, first);
    await settle();
    const failed = credit.takeRound(0, 2);
    credit.roundFailed(failed);
    assert.equal((await waiting).kind, 'refused', 'the admission gets the failed round’s answer');
    assert.equal(credit.leasesLapsed, true);
    const asked: number[][] = [];
    do {
      assert.ok(asked.length < 5, 'the confirmation makes progress');
      const round = credit.takeRound(0, 2);
      asked.push(round.asks.map(({ ask }) => ask.entity_id));
      answerAll(credit, round);
    } while (stillLapsed(credit));
    assert.deepEqual(asked.flat().sort(), [2, 3, 4], 'every lease no answered round asked after (the first round’s answer still counts)');
    assert.ok(asked.every((ids) => ids.length <= 2));
  });
});

it('keeps the asks of the entities a full round leaves out, as they were, for the next', async () => {
  await withCredit(async (credit) => {
    answer(credit, noRound, { leases: [1, 2, 3, 4, 5].map((id) => lease(id)) });
    // Recalls over the live channel on 1 and 5; the figures of 3 wanted; a call on 4 that its lease does not cover.
    credit.moneySignals(
      {
        recall: [1, 5].map((id) => ({ entity_type: 'customer' as const, entity_id: id })),
        refresh: [],
      },
      NOW,
    );
    credit.learnHeadroom(credit.entity({ type: 'customer', id: 3 }), NOW);
    const waiting = admit(credit, 4, 'big@chunks', 2 * LEASE_MICRO);
    assert.ok(waiting instanceof Promise);

    const first = credit.takeRound(0, 2);
    assert.deepEqual(
      first.asks.map(({ ask }) => [ask.entity_id, ask.give_back, ask.answers_recall]),
      [
        [4, '0.00', false],
        [1, '0.01', true],
      ],
      'what an admission waits on first, then the rest in turn',
    );
    assert.deepEqual(
      first.leftOut.map((entity) => entity.id),
      [3, 5],
    );
    const five = credit.entity({ type: 'customer', id: 5 });
    assert.equal(five.recalled && five.recallSignalled, true, 'the recall of 5 still to act on');
    assert.equal(five.availableMicro, LEASE_MICRO, "5's lease not yet handed back");
    assert.equal(credit.entity({ type: 'customer', id: 3 }).waiters.length, 1, "3's figures still wanted");
    // Enough for the call and a few more like it: no top-up to ask for in the next round.
    answer(credit, first, { leases: [lease(4, 10 * LEASE_MICRO), lease(1, 0)] });
    assert.equal((await waiting).kind, 'reserved');

    const second = credit.takeRound(0, 2);
    assert.deepEqual(
      second.asks.map(({ ask }) => [ask.entity_id, ask.give_back, ask.answers_recall]),
      [
        [3, '0.00', false],
        [5, '0.01', true],
      ],
      'the rest in the next round, the recall acted on then',
    );
    assert.deepEqual(second.leftOut, []);
    answer(credit, second, { leases: [lease(3), lease(5, 0)] });
    assert.deepEqual(credit.takeRound(0, 2).asks, [], 'nothing asked twice');
  });
});

it('puts an admission waiting first among a restart’s asks after every lease', async () => {
  await withCredit(async (credit) => {
    answer(credit, noRound, { leases: [1, 2, 3, 4, 5].map((id) => lease(id)) });
    credit.refreshAll();
    const waiting = admit(credit, 5, 'restart@chunks', 2 * LEASE_MICRO);
    assert.ok(waiting instanceof Promise);
    const rounds = [credit.takeRound(0, 2), credit.takeRound(0, 2), credit.takeRound(0, 2)];
    assert.deepEqual(
      rounds.map((round) => round.asks.map(({ ask }) => ask.entity_id)),
      [[5, 1], [2, 3], [4]],
    );
    rounds.forEach((round) => answerAll(credit, round));
    assert.equal((await waiting).kind, 'refused', 'answered (the centre kept its lease as it was)');
  });
});

it('answers the admissions a failed round left out, rather than leaving them waiting for a round that may not come', async () => {
  await withCredit(async (credit) => {
    answer(credit, noRound, { leases: [lease(1), lease(2)] });
    const one = admit(credit, 1, 'one@chunks', 2 * LEASE_MICRO);
    const two = admit(credit, 2, 'two@chunks', 2 * LEASE_MICRO);
    const round = credit.takeRound(0, 1);
    assert.equal(round.asks.length, 1);
    credit.roundFailed(round);
    for (const outcome of await Promise.all([one, two]))
      assert.deepEqual(outcome.kind === 'refused' && outcome.reason, 'credit_unavailable');
  });
});

/**
 * A CentreLink to a centre that refuses a round over its cap, as sync/ledger/routes.ts does, and keeps every lease
 * asked after; `received`: the asks of each round it got. The interval is an hour: only asks and `more` send rounds.
 */
async function withCentre(
  credit: NodeCredit,
  journal: MoneyJournal,
  run: (link: CentreLink, received: number[], allAsked: (count: number) => Promise<void>) => Promise<void>,
): Promise<void> {
  const received: number[] = [];
  let asked = 0;
  let wanted = Number.POSITIVE_INFINITY;
  let done = (): void => undefined;
  const server: Server = createServer((request, response) => {
    let text = '';
    request.on('data', (chunk: Buffer) => (text += chunk.toString()));
    request.on('end', () => {
      const { leases } = JSON.parse(text) as NodeSyncRequest;
      received.push(leases.length);
      response.setHeader('content-type', 'application/json');
      if (leases.length > MAX_LEASE_ASKS) {
        response.statusCode = 400;
        response.end(JSON.stringify({ error: 'invalid_field' }));
        return;
      }
      const reply: NodeSyncReply = {
        settled: [],
        unbilled: [],
        leases: leases.map((ask) => lease(ask.entity_id)),
        lease_valid_seconds: 3600,
      };
      response.end(JSON.stringify(reply), () => {
        asked += leases.length;
        if (asked >= wanted) done();
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const link = new CentreLink(
    {
      urls: [`http://127.0.0.1:${(server.address() as AddressInfo).port}`],
      node: 'node-1',
      timeoutMs: 10_000,
      intervalMs: 3_600_000,
      maxSettlements: 1000,
    },
    credit,
    journal,
    new SidecarMetrics(),
    log,
  );
  const allAsked = (count: number): Promise<void> =>
    new Promise((resolve) => {
      wanted = count;
      done = resolve;
      if (asked >= wanted) resolve();
    });
  try {
    await run(link, received, allAsked);
  } finally {
    link.stop();
    server.close();
  }
}

it('sends the rounds a lapse needs one after another, each within the centre’s cap, and admits once they are answered', async () => {
  await withCredit(async (credit, journal) => {
    await withCentre(credit, journal, async (_link, received) => {
      const count = 2 * MAX_LEASE_ASKS + 10;
      const outcome = await leasedThenLapsed(credit, count);
      assert.equal(outcome.kind, 'reserved', 'admitted once every lease is confirmed');
      assert.equal(credit.leasesLapsed, false);
      assert.ok(
        received.every((asks) => asks <= MAX_LEASE_ASKS),
        `rounds of ${received.join(', ')} asks`,
      );
      assert.ok(received.length >= 3);
    });
  });
});

it('sends the rest of a restart’s asks right after the first round, not at the next interval', async () => {
  await withCredit(async (credit, journal) => {
    const count = MAX_LEASE_ASKS + 10;
    answer(credit, noRound, { leases: Array.from({ length: count }, (_, index) => lease(index + 1)) });
    await withCentre(credit, journal, async (link, received, allAsked) => {
      let taken = 0;
      const takeRound = credit.takeRound.bind(credit);
      credit.takeRound = (max, asks) => {
        taken++;
        return takeRound(max, asks);
      };
      // The link's next step after the first answer runs within that turn: by the next, the next round is taken, or none is.
      const firstAnswered = new Promise<void>((resolve) => {
        const applyReply = credit.applyReply.bind(credit);
        credit.applyReply = (round, reply, now) => {
          applyReply(round, reply, now);
          setImmediate(resolve);
        };
      });
      link.start(); // asks after every lease held (refreshAll)
      await firstAnswered;
      assert.equal(taken, 2, 'the asks left out go at once');
      await allAsked(count);
      assert.deepEqual(received, [MAX_LEASE_ASKS, 10]);
    });
  });
});
