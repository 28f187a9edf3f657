import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import pino from 'pino';
import { NodeCredit, type AdmitOutcome, type Plan } from '../../src/sidecar/credit/node-credit.js';
import { MoneyJournal } from '../../src/sidecar/journal/journal.js';
import { LivePorts } from '../../src/sidecar/limits/live-ports.js';
import { CREDIT_SETTINGS } from '../helpers/credit.js';

/**
 * Live calls per customer trunk: the counter itself, and its life with NodeCredit's reservations (a port is
 * taken with the reservation, given back whichever way the reservation ends, and counted again from the
 * journal after a restart).
 */
describe('LivePorts', () => {
  it('counts live calls per trunk and keeps no entry for a trunk without any', () => {
    const ports = new LivePorts();
    ports.take(10);
    ports.take(10);
    ports.take(12);
    assert.equal(ports.current(10), 2);
    assert.equal(ports.current(12), 1);
    assert.equal(ports.current(11), 0);
    assert.deepEqual(ports.trunks(), [10, 12]);
    ports.giveBack(12);
    ports.giveBack(10);
    assert.deepEqual(ports.trunks(), [10], 'a trunk whose last call ended is not listed');
    assert.equal(ports.current(10), 1);
  });

  it('is full at the limit; a limit of 0 or less is no limit', () => {
    const ports = new LivePorts();
    ports.take(10);
    ports.take(10);
    assert.equal(ports.full(10, 3), false);
    assert.equal(ports.full(10, 2), true);
    assert.equal(ports.full(10, 1), true, 'a limit lowered below the live calls refuses the next one');
    assert.equal(ports.full(10, 0), false);
    assert.equal(ports.full(10, -1), false);
    assert.equal(ports.full(11, 1), false);
  });
});

const log = pino({ level: 'silent' });
const NOW = 1_800_000_000_000;
const TRUNK = 10;
const LIMIT = 2;
// Postpaid without cutoff: admitted without a lease, so only ports can refuse.
const plan = (): Plan => ({ amountMicro: 1000, maxDurationSeconds: 60, slice: null });

function admit(credit: NodeCredit, callId: string, now = NOW): AdmitOutcome | Promise<AdmitOutcome> {
  return credit.admit({
    entity: { type: 'customer', id: 7 },
    callId,
    plan,
    enforce: false,
    admitWhenUnreachable: true,
    answer: 'admit',
    port: { trunkId: TRUNK, limit: LIMIT },
    now,
  });
}

async function admitted(credit: NodeCredit, callId: string, now = NOW): Promise<void> {
  const outcome = await admit(credit, callId, now);
  if (outcome.kind !== 'reserved') assert.fail(`${callId} not admitted: ${outcome.kind}`);
  await outcome.committed;
}

async function refusedFor(credit: NodeCredit, callId: string): Promise<string> {
  const outcome = await admit(credit, callId);
  return outcome.kind === 'refused' ? outcome.reason : outcome.kind;
}

async function withJournal(run: (dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'live-ports-'));
  try {
    await run(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('ports held by reservations', () => {
  it('takes a port per admitted call, refuses the trunk at its limit, and frees the port on release', () =>
    withJournal(async (dir) => {
      const journal = new MoneyJournal(join(dir, 'money.db'), 'normal', log);
      try {
        const credit = new NodeCredit(journal, CREDIT_SETTINGS, log);
        await admitted(credit, 'a@ports');
        await admitted(credit, 'b@ports');
        assert.equal(credit.ports.current(TRUNK), 2);
        assert.equal(await refusedFor(credit, 'c@ports'), 'port_limit_reached');
        assert.equal(credit.ports.current(TRUNK), 2, 'a refused call takes no port');
        assert.equal(await refusedFor(credit, 'a@ports'), 'replayed', 'an admitted call asked again is answered again, not refused');
        assert.equal(await credit.release('a@ports', NOW + 1000), true);
        assert.equal(credit.ports.current(TRUNK), 1);
        await admitted(credit, 'c@ports');
        assert.equal(credit.ports.current(TRUNK), 2);
      } finally {
        await journal.close();
      }
    }));

  it('refuses a Call-ID of an ended call (call_id_reused), holding nothing, before and after a restart', () =>
    withJournal(async (dir) => {
      const path = join(dir, 'money.db');
      const journal = new MoneyJournal(path, 'normal', log);
      try {
        const credit = new NodeCredit(journal, CREDIT_SETTINGS, log);
        await admitted(credit, 'ended@ports');
        assert.equal(await credit.release('ended@ports', NOW + 1000), true);
        // Answered from its first admission, it would be a second call holding nothing and billed nowhere.
        assert.equal(await refusedFor(credit, 'ended@ports'), 'call_id_reused');
        assert.equal(credit.heldCount, 0);
        assert.equal(credit.ports.current(TRUNK), 0, 'the refused call takes no port');
      } finally {
        await journal.close();
      }
      const reopened = new MoneyJournal(path, 'normal', log);
      try {
        const credit = new NodeCredit(reopened, CREDIT_SETTINGS, log);
        assert.equal(await refusedFor(credit, 'ended@ports'), 'call_id_reused', 'the ended calls are kept across a restart');
        await admitted(credit, 'new@ports');
      } finally {
        await reopened.close();
      }
    }));

  it('expires a reservation by the steady clock: a wall-clock step neither ends it early nor keeps it', () =>
    withJournal(async (dir) => {
      const journal = new MoneyJournal(join(dir, 'money.db'), 'normal', log);
      try {
        let steady = NOW;
        const credit = new NodeCredit(journal, { ...CREDIT_SETTINGS, steadyClock: () => steady }, log);
        await admitted(credit, 'a@stepped');
        // 10 s on, NTP steps the wall clock an hour ahead: the call's 60 s and the grace period are not over.
        steady = NOW + 10_000;
        assert.equal(credit.expire(NOW + 3_600_000 + 10_000).expired, 0);
        assert.equal(credit.ports.current(TRUNK), 1);
        // Then two hours back: 130 s after its admission its time is over all the same.
        steady = NOW + 130_000;
        assert.equal(credit.expire(NOW - 7_200_000 + 130_000).expired, 1);
        assert.equal(credit.ports.current(TRUNK), 0);
      } finally {
        await journal.close();
      }
    }));

  it('frees the port of a call that never reported when its reservation expires', () =>
    withJournal(async (dir) => {
      const journal = new MoneyJournal(join(dir, 'money.db'), 'normal', log);
      try {
        const credit = new NodeCredit(journal, CREDIT_SETTINGS, log);
        await admitted(credit, 'a@silent');
        await admitted(credit, 'b@silent');
        // Its longest call (60 s) plus the grace period (60 s), and a ten-second expiry window.
        assert.equal(credit.expire(NOW + 60_000).expired, 0);
        assert.equal(credit.ports.current(TRUNK), 2);
        assert.equal(credit.expire(NOW + 130_000).expired, 2);
        assert.equal(credit.ports.current(TRUNK), 0);
        assert.deepEqual(credit.ports.trunks(), []);
      } finally {
        await journal.close();
      }
    }));

  it('counts the live calls again after a restart, and keeps refusing past the limit', () =>
    withJournal(async (dir) => {
      const path = join(dir, 'money.db');
      let journal = new MoneyJournal(path, 'normal', log);
      try {
        const credit = new NodeCredit(journal, CREDIT_SETTINGS, log);
        await admitted(credit, 'a@restart');
        await admitted(credit, 'b@restart');
        assert.equal(await refusedFor(credit, 'c@restart'), 'port_limit_reached');
        assert.equal(await credit.release('b@restart', NOW + 1000), true);
        await journal.close();

        journal = new MoneyJournal(path, 'normal', log);
        const restarted = new NodeCredit(journal, CREDIT_SETTINGS, log);
        assert.equal(restarted.ports.current(TRUNK), 1, 'a@restart is still live; b@restart was released');
        await admitted(restarted, 'd@restart');
        assert.equal(await refusedFor(restarted, 'e@restart'), 'port_limit_reached');
        assert.equal(await restarted.release('a@restart', NOW + 2000), true);
        assert.equal(restarted.ports.current(TRUNK), 1);
      } finally {
        await journal.close();
      }
    }));

  it('takes no port for a reservation that names no trunk (call-admit/check)', () =>
    withJournal(async (dir) => {
      const journal = new MoneyJournal(join(dir, 'money.db'), 'normal', log);
      try {
        const credit = new NodeCredit(journal, CREDIT_SETTINGS, log);
        const outcome = await credit.admit({
          entity: { type: 'customer', id: 7 },
          callId: 'x@check',
          plan,
          enforce: false,
          admitWhenUnreachable: true,
          answer: 'check',
          port: null,
          now: NOW,
        });
        assert.equal(outcome.kind, 'reserved');
        assert.deepEqual(credit.ports.trunks(), []);
      } finally {
        await journal.close();
      }
    }));
});

describe('ports after an upgrade', () => {
  it('opens a money.db from before ports were counted: its live calls hold none, new ones do', () =>
    withJournal(async (dir) => {
      const path = join(dir, 'money.db');
      // The reservations table as it was, with a call still live when the node was upgraded.
      const old = new Database(path);
      old.exec(`CREATE TABLE reservations (
        id INTEGER PRIMARY KEY, call_id TEXT NOT NULL, entity_type TEXT NOT NULL, entity_id INTEGER NOT NULL, amount_micro INTEGER NOT NULL,
        max_duration INTEGER, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, state TEXT NOT NULL,
        finished_at INTEGER, answer TEXT NOT NULL, slice TEXT)`);
      old
        .prepare(`INSERT INTO reservations VALUES (1, 'old@upgrade', 'customer', 7, 1000, 60, ?, ?, 'held', NULL, ?, NULL)`)
        .run(NOW, NOW + 120_000, '{"allowed":true,"headroom":"1.0000","max_duration_seconds":60}');
      old.close();

      const journal = new MoneyJournal(path, 'normal', log);
      try {
        const credit = new NodeCredit(journal, CREDIT_SETTINGS, log);
        assert.equal(credit.heldCount, 1, 'the old live call is recovered');
        assert.deepEqual(credit.ports.trunks(), [], 'but holds no port: its trunk was never recorded');
        await admitted(credit, 'new@upgrade');
        assert.equal(credit.ports.current(TRUNK), 1);
        assert.equal(await credit.release('old@upgrade', NOW + 1000), true);
        assert.equal(credit.ports.current(TRUNK), 1, 'ending the old call gives back no port it did not take');
      } finally {
        await journal.close();
      }
    }));
});
