import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { setImmediate as nextTurn } from 'node:timers/promises';
import pino from 'pino';
import type { NodeSyncRequest } from '../../src/core/protocol/node-sync.js';
import { CentreLink } from '../../src/sidecar/centre/link.js';
import { NO_RESERVATION, NodeCredit, type Round } from '../../src/sidecar/credit/node-credit.js';
import { MoneyJournal } from '../../src/sidecar/journal/journal.js';
import { SidecarMetrics } from '../../src/sidecar/metrics/metrics.js';
import { ANSWERED_CDR } from '../fixtures/settlement.js';
import { CREDIT_SETTINGS } from '../helpers/credit.js';

/**
 * --round-cdrs (CentreLinkOptions.roundCdrs): a money round goes as soon as that many CDRs have come since the
 * last one was taken, not at the interval (an hour here, so only the count can send one), and fewer send none;
 * each CDR goes once; while the centre does not answer, the count sends nothing (the interval retries).
 * No timers: the count's round is taken in the turn after the CDR that fills it, so one turn later it is
 * taken or it is not.
 */
const log = pino({ level: 'silent' });
const ROUND_CDRS = 5;

interface World {
  credit: NodeCredit;
  link: CentreLink;
  /** Each round taken with CDRs in it, in order (the barriers' empty ones left out). */
  taken: Round[];
  /** The CDRs' Call-IDs of each round the centre received. */
  received: string[][];
  record: (count: number) => void;
}

async function withLink(centre: boolean, run: (world: World) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'round-cdrs-'));
  const journal = new MoneyJournal(join(dir, 'money.db'), 'normal', log);
  const credit = new NodeCredit(journal, CREDIT_SETTINGS, log);
  const received: string[][] = [];
  // A centre that settles every CDR of a round.
  const server: Server = createServer((request, response) => {
    let text = '';
    request.on('data', (chunk: Buffer) => (text += chunk.toString()));
    request.on('end', () => {
      const ids = (JSON.parse(text) as NodeSyncRequest).settlements.map((cdr) => cdr.sip_call_id);
      received.push(ids);
      response.setHeader('content-type', 'application/json');
      response.end(JSON.stringify({ settled: ids, unbilled: [], leases: [], lease_valid_seconds: 3600 }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const taken: Round[] = [];
  const takeRound = credit.takeRound.bind(credit);
  credit.takeRound = (max) => {
    const round = takeRound(max);
    if (round.settlements.length > 0) taken.push(round);
    return round;
  };
  const link = new CentreLink(
    { urls: centre ? [url] : null, node: 'node-1', timeoutMs: 2000, intervalMs: 3_600_000, roundCdrs: ROUND_CDRS, maxSettlements: 1000 },
    credit,
    journal,
    new SidecarMetrics(),
    log,
  );
  let next = 1;
  const record = (count: number): void => {
    for (let i = 0; i < count; i++, next++)
      void credit.recordCdr(
        { ...ANSWERED_CDR, id: 0, sipCallId: `call-${next}@round-cdrs`, accountId: 7 },
        false,
        Date.now(),
        NO_RESERVATION,
      );
  };
  link.start();
  // start() asks for a round at once (the leases' refresh), outbox empty: let it pass before counting.
  await link.round();
  try {
    await run({ credit, link, taken, received, record });
  } finally {
    link.stop();
    server.close();
    await journal.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

it('sends a round as soon as --round-cdrs CDRs have come, not before, each CDR once', () =>
  withLink(true, async ({ credit, link, taken, received, record }) => {
    record(ROUND_CDRS - 1);
    await nextTurn();
    assert.equal(taken.length, 0, 'fewer CDRs than --round-cdrs send no round before the interval');
    record(1);
    await nextTurn();
    assert.deepEqual(
      taken.map((round) => round.settlements.length),
      [ROUND_CDRS],
      'the CDR that makes --round-cdrs sends them',
    );
    await link.round(); // a barrier: the rounds before it have had their answers (one round in flight at a time)
    // The count starts again from the round taken: the next round also waits for a full count.
    record(ROUND_CDRS - 1);
    await nextTurn();
    assert.equal(taken.length, 1);
    record(1);
    await nextTurn();
    assert.equal(taken.length, 2, 'the second full count sends a round');
    await link.round();
    assert.deepEqual(
      received.map((ids) => ids.length),
      [ROUND_CDRS, ROUND_CDRS],
    );
    const ids = received.flat();
    assert.equal(new Set(ids).size, ROUND_CDRS * 2, 'no CDR sent twice');
    assert.equal(credit.outboxSize, 0, 'every CDR settled');
  }));

it('sends no round by count while the centre does not answer: the interval retries', () =>
  withLink(false, async ({ credit, taken, record }) => {
    record(ROUND_CDRS);
    await nextTurn();
    assert.equal(taken.length, 1, 'the first full count tries');
    record(ROUND_CDRS * 3);
    await nextTurn();
    assert.equal(taken.length, 1, 'not again after a failed round');
    assert.equal(credit.outboxSize, ROUND_CDRS * 4, 'nothing lost');
  }));
