import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import pino from 'pino';
import { BACKGROUND_NICE } from '../../src/sidecar/threads/background-thread.js';
import { JournalWriteError, MoneyJournal, storedCdrOf } from '../../src/sidecar/journal/journal.js';
import { NodeCredit, type EntityMoney } from '../../src/sidecar/credit/node-credit.js';
import {
  decodeRecords,
  encodeRecord,
  listSegments,
  LogAppendError,
  LogAppender,
  packPosition,
  segmentPath,
  unpackPosition,
} from '../../src/sidecar/journal/log.js';
import type { JournalOp } from '../../src/sidecar/journal/ops.js';
import { applySegment, recoverLog, SegmentBuffer } from '../../src/sidecar/journal/replay.js';
import { JournalStore } from '../../src/sidecar/journal/store.js';
import type { RatedCdr } from '../../src/sidecar/journal/rated-cdr.js';
import { renderAnswer } from '../../src/sidecar/journal/reservation-answer.js';
import { ANSWERED_CDR } from '../fixtures/settlement.js';
import type { WriterReply } from '../../src/sidecar/journal/writer.js';

/**
 * The money log under the journal: records that a crash cut short or that
 * were damaged end the log and nothing after them is applied; whole records
 * reach money.db exactly once, across segments, partial passes and
 * restarts; CDRs not yet applied are still found for the duplicate check.
 */
const reserve = (id: number): Extract<JournalOp, { op: 'reserve' }> => ({
  op: 'reserve',
  id,
  callId: `call-${id}@log`,
  entityType: 'customer',
  entityId: 1,
  amountMicro: 1000 * id,
  maxDuration: 60,
  createdAt: 1,
  expiresAt: 2,
  answer: `{"n":${id}}`,
  slice: null,
});
const cdr = (id: number): JournalOp => ({
  op: 'cdr',
  id,
  sipCallId: `cdr-${id}@log`,
  fingerprint: `f${id}`,
  result: `{"cdr_id":${id}}`,
  settlement: '{}',
  accountId: 1,
  chargeMicro: 10 * id,
  createdAt: 1,
});

function scratch(): { dir: string; dbPath: string; logDir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'money-log-'));
  return { dir, dbPath: join(dir, 'money.db'), logDir: join(dir, 'money.db-log') };
}

function reservationIds(dbPath: string): number[] {
  const db = new Database(dbPath, { readonly: true });
  try {
    return (db.prepare('SELECT id FROM reservations ORDER BY id').all() as { id: number }[]).map((row) => row.id);
  } finally {
    db.close();
  }
}

describe('money log: records', () => {
  it('decodes whole records and stops at one cut short', () => {
    const records = [encodeRecord([reserve(1)]), encodeRecord([reserve(2), reserve(3)]), encodeRecord([reserve(4)])];
    const whole = Buffer.concat(records);
    assert.deepEqual(
      decodeRecords(whole).ops.map((op) => (op as { id: number }).id),
      [1, 2, 3, 4],
    );
    const torn = whole.subarray(0, whole.length - 3);
    const decoded = decodeRecords(torn);
    assert.deepEqual(
      decoded.ops.map((op) => (op as { id: number }).id),
      [1, 2, 3],
    );
    assert.equal(decoded.end, records[0].length + records[1].length);
    assert.equal(decoded.trailing, records[2].length - 3);
  });

  it('stops at a damaged record: nothing after it counts', () => {
    const records = [encodeRecord([reserve(1)]), encodeRecord([reserve(2)]), encodeRecord([reserve(3)])];
    const bytes = Buffer.concat(records);
    bytes[records[0].length + 12] ^= 0x20; // inside the second record's payload
    const decoded = decodeRecords(bytes);
    assert.deepEqual(
      decoded.ops.map((op) => (op as { id: number }).id),
      [1],
    );
    assert.equal(decoded.trailing, records[1].length + records[2].length);
  });
});

describe('money log: into money.db', () => {
  it('applies a crash-torn segment up to its last whole record, once, and starts the next segment after it', () => {
    const { dir, dbPath, logDir } = scratch();
    try {
      const appender = new LogAppender(logDir, 0, false);
      for (let id = 1; id <= 5; id++) appender.append(encodeRecord([reserve(id)]));
      appender.close();
      // The process died in the middle of the sixth append.
      const partial = encodeRecord([reserve(6)]).subarray(0, 20);
      writeFileSync(segmentPath(logDir, 0), Buffer.concat([readFileSync(segmentPath(logDir, 0)), partial]));

      const store = new JournalStore(dbPath);
      const first = recoverLog(store, logDir);
      assert.deepEqual(first.next, { segment: 1, offset: 0 });
      assert.equal(first.applied[0].lostBytes, 20);
      assert.deepEqual(listSegments(logDir), []);
      // A second start-up finds nothing more to apply.
      assert.deepEqual(recoverLog(store, logDir).applied, []);
      store.close();
      assert.deepEqual(reservationIds(dbPath), [1, 2, 3, 4, 5]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('carries on from a partial pass without applying anything twice, across segments', () => {
    const { dir, dbPath, logDir } = scratch();
    try {
      // Segments of ~300 bytes: a few records each.
      const appender = new LogAppender(logDir, 0, false, 300);
      for (let id = 1; id <= 4; id++) appender.append(encodeRecord([reserve(id)]));
      const store = new JournalStore(dbPath);
      // The applier's passes while the node runs: finished segments are applied and deleted, the current one in part.
      let position = store.position();
      for (;;) {
        const final = listSegments(logDir).includes(position.segment + 1);
        position = applySegment(store, logDir, position, final).position;
        if (!final) break;
      }
      const appliedWhileRunning = reservationIds(dbPath);
      assert.ok(appliedWhileRunning.length === 4, `applied ${appliedWhileRunning.join(',')}`);
      assert.ok(listSegments(logDir).length === 1, 'finished segments are deleted');
      for (let id = 5; id <= 12; id++) appender.append(encodeRecord([reserve(id)]));
      appender.close();
      assert.ok(listSegments(logDir).length > 2, 'the log rotated');
      // The node stops (kill -9): start-up applies the rest, from where the applier was.
      recoverLog(store, logDir);
      store.close();
      assert.deepEqual(reservationIds(dbPath), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('durability full: applies only what the writer has synced, and the rest once it is', () => {
    const { dir, dbPath, logDir } = scratch();
    try {
      const durable = new BigInt64Array(new SharedArrayBuffer(8));
      const appender = new LogAppender(logDir, 7, true, 1000, durable);
      assert.deepEqual(unpackPosition(Atomics.load(durable, 0)), { segment: 7, offset: 0 });
      const records = [1, 2, 3].map((id) => encodeRecord([reserve(id)]));
      appender.append(records[0]);
      appender.append(records[1]);
      const twoSynced = records[0].length + records[1].length;
      assert.deepEqual(unpackPosition(Atomics.load(durable, 0)), { segment: 7, offset: twoSynced });
      appender.append(records[2]);
      // The applier read the synced position before the third append's fdatasync returned: two records count.
      const store = new JournalStore(dbPath);
      const partial = applySegment(store, logDir, { segment: 7, offset: 0 }, false, twoSynced);
      assert.deepEqual(partial.position, { segment: 7, offset: twoSynced });
      assert.deepEqual(reservationIds(dbPath), [1, 2]);
      const synced = unpackPosition(Atomics.load(durable, 0));
      assert.deepEqual(synced, { segment: 7, offset: twoSynced + records[2].length });
      applySegment(store, logDir, partial.position, false, synced.offset);
      store.close();
      assert.deepEqual(reservationIds(dbPath), [1, 2, 3]);
      // Past the segment size the appender moves on, and says so.
      while (unpackPosition(Atomics.load(durable, 0)).segment === 7) appender.append(encodeRecord([reserve(4), reserve(5), reserve(6)]));
      assert.deepEqual(unpackPosition(Atomics.load(durable, 0)), { segment: 8, offset: 0 });
      appender.close();
      assert.deepEqual(unpackPosition(packPosition(1_000_000, 64 * 1024 * 1024 + 12_345)), {
        segment: 1_000_000,
        offset: 64 * 1024 * 1024 + 12_345,
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('replays reservations journalled with their answer text (logs from before 2026-12-07) and with its figures alike', () => {
    const { dir, dbPath, logDir } = scratch();
    try {
      const figures = { entityType: 'customer' as const, entityId: 1, amountMicro: 5, createdAt: 1, expiresAt: 2 };
      const slice = JSON.stringify({ seconds: 300, paidUntil: 1_733_400_300_000, dialogId: 'd"1' });
      const appender = new LogAppender(logDir, 0, false);
      appender.append(
        encodeRecord([
          { ...reserve(1), answer: renderAnswer('admit', 2_500_000, 60), maxDuration: 60 },
          { ...reserve(2), answer: renderAnswer('check', -1_250, null), maxDuration: null, slice },
        ]),
      );
      appender.append(
        encodeRecord([
          {
            op: 'held',
            id: 3,
            callId: 'c"3',
            ...figures,
            maxDuration: 60,
            answerKind: 'admit',
            headroom: '2.50',
            slice: null,
            trunkId: 4,
          },
          {
            op: 'held',
            id: 4,
            callId: 'c4',
            ...figures,
            maxDuration: null,
            answerKind: 'check',
            headroom: '-0.00125',
            slice,
            trunkId: null,
          },
        ]),
      );
      appender.close();
      const store = new JournalStore(dbPath);
      recoverLog(store, logDir);
      store.close();
      const db = new Database(dbPath, { readonly: true });
      const rows = db.prepare('SELECT id, call_id, answer, slice, customer_trunk_id FROM reservations ORDER BY id').all();
      db.close();
      const admitted = renderAnswer('admit', 2_500_000, 60);
      const checked = renderAnswer('check', -1_250, null);
      assert.deepEqual(rows, [
        { id: 1, call_id: 'call-1@log', answer: admitted, slice: null, customer_trunk_id: null },
        { id: 2, call_id: 'call-2@log', answer: checked, slice, customer_trunk_id: null },
        { id: 3, call_id: 'c"3', answer: admitted, slice: null, customer_trunk_id: 4 },
        { id: 4, call_id: 'c4', answer: checked, slice, customer_trunk_id: null },
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("reads a rated CDR back from money.db's figures with the texts it was taken with, beside CDRs journalled with their texts, in a money.db made before the figures column", async () => {
    const { dir, dbPath, logDir } = scratch();
    const log = pino({ level: 'silent' });
    try {
      // money.db as nodes made it before: no `rated` column, one unsettled CDR row with its texts.
      const old = new Database(dbPath);
      old.exec(`CREATE TABLE cdrs (
        id INTEGER PRIMARY KEY, sip_call_id TEXT NOT NULL UNIQUE, fingerprint TEXT NOT NULL, result TEXT NOT NULL,
        settlement TEXT NOT NULL, account_id INTEGER NOT NULL, charge_micro INTEGER NOT NULL, created_at INTEGER NOT NULL)`);
      old.prepare('INSERT INTO cdrs VALUES (1, ?, ?, ?, ?, 1, 10, 1)').run('old@db', 'f-old', '{"cdr_id":1}', '{"node_cdr_id":1}');
      old.close();
      const rated: RatedCdr = { ...ANSWERED_CDR, id: 3 };
      const appender = new LogAppender(logDir, 0, false);
      appender.append(encodeRecord([cdr(2), rated]));
      appender.close();
      const journal = new MoneyJournal(dbPath, 'normal', log); // start-up applies the log into money.db
      const expected = [
        {
          id: 1,
          sip_call_id: 'old@db',
          fingerprint: 'f-old',
          result: '{"cdr_id":1}',
          settlement: '{"node_cdr_id":1}',
          account_id: 1,
          charge_micro: 10,
        },
        { id: 2, sip_call_id: 'cdr-2@log', fingerprint: 'f2', result: '{"cdr_id":2}', settlement: '{}', account_id: 1, charge_micro: 20 },
        storedCdrOf(rated),
      ];
      assert.deepEqual(journal.unsettledCdrs(), expected);
      assert.deepEqual(journal.findCdr(rated.sipCallId), storedCdrOf(rated));
      assert.deepEqual(journal.findCdr('old@db'), expected[0]);
      await journal.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('skips an op money.db refuses on a constraint and applies the rest of its record', () => {
    const { dir, dbPath, logDir } = scratch();
    try {
      const appender = new LogAppender(logDir, 0, false);
      appender.append(encodeRecord([reserve(1)]));
      appender.append(encodeRecord([reserve(1), reserve(2)])); // a defect upstream: the same id twice
      appender.close();
      const store = new JournalStore(dbPath);
      const { applied } = recoverLog(store, logDir);
      store.close();
      assert.equal(applied[0].skipped.length, 1);
      assert.match(applied[0].skipped[0].code ?? '', /^SQLITE_CONSTRAINT/);
      assert.deepEqual(reservationIds(dbPath), [1, 2]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('writes a reservation admitted and finished in one pass as op-by-op application leaves it, finishing it once', () => {
    const held = (id: number): JournalOp => ({
      op: 'held',
      id,
      callId: `held-${id}@log`,
      entityType: 'customer',
      entityId: 1,
      amountMicro: 7 * id,
      maxDuration: 60,
      createdAt: 10 * id,
      expiresAt: 10 * id + 60_000,
      answerKind: 'admit',
      headroom: '2.50',
      slice: null,
      trunkId: 3,
    });
    const finish = (id: number, state: 'settled' | 'released' | 'expired' | 'ended', at: number): JournalOp => ({
      op: 'finish',
      id,
      state,
      at,
    });
    const ops: JournalOp[] = [
      held(1),
      reserve(2),
      held(3),
      held(4),
      held(5),
      finish(1, 'settled', 100), // folded into 1's row
      { op: 'extend', id: 3, amountMicro: 99, expiresAt: 500, slice: '{"seconds":30}' },
      finish(3, 'ended', 110), // after an extend: both applied as they are
      finish(2, 'released', 120), // an old log's reserve op, folded too
      { op: 'prune', reservationsBefore: 1_000, cdrsBefore: 0 }, // deletes 1 and 2, finished before it; 3 too
      finish(4, 'expired', 130), // 4 finished after the prune: the prune must not see it finished
      finish(1, 'released', 140), // a second finish finds no held row: 1 stays as the first left it (deleted)
      finish(9, 'settled', 150), // no such reservation
      held(6),
      finish(6, 'settled', 160),
      finish(6, 'ended', 170), // the second finish of a folded one changes nothing
      held(7),
      { op: 'extend', id: 7, amountMicro: 99, expiresAt: 500, slice: '{"seconds":30}' },
      finish(7, 'ended', 180), // after an extend: both applied as they are
    ];
    const rows = (dbPath: string): unknown[] => {
      const db = new Database(dbPath, { readonly: true });
      try {
        return db.prepare('SELECT * FROM reservations ORDER BY id').all();
      } finally {
        db.close();
      }
    };
    const folded = scratch();
    const oneByOne = scratch();
    try {
      const store = new JournalStore(folded.dbPath);
      assert.deepEqual(store.applyOps(ops, { segment: 0, offset: 1 }), []);
      store.close();
      // Each op in a transaction of its own: nothing to fold, the statements as they always ran.
      const reference = new JournalStore(oneByOne.dbPath);
      ops.forEach((op, i) => reference.applyOps([op], { segment: 0, offset: i + 1 }));
      reference.close();
      const expected = rows(oneByOne.dbPath);
      assert.deepEqual(
        (expected as { id: number; state: string; finished_at: number | null }[]).map(({ id, state, finished_at }) => [
          id,
          state,
          finished_at,
        ]),
        [
          [4, 'expired', 130],
          [5, 'held', null],
          [6, 'settled', 160],
          [7, 'ended', 180],
        ],
      );
      assert.deepEqual(rows(folded.dbPath), expected);
      assert.deepEqual((expected[3] as { amount_micro: number }).amount_micro, 99, 'the extend applied');
      const db = new Database(folded.dbPath, { readonly: true });
      assert.deepEqual(
        db.prepare("SELECT id FROM reservations WHERE state = 'held' ORDER BY id").all(),
        [{ id: 5 }],
        'the held index holds only the live one',
      );
      db.close();
    } finally {
      rmSync(folded.dir, { recursive: true, force: true });
      rmSync(oneByOne.dir, { recursive: true, force: true });
    }
  });

  it("writes a rated CDR's row from the record's bytes as it would from the parsed op", () => {
    const cdrs: RatedCdr[] = [
      { ...ANSWERED_CDR, id: 1, sipCallId: 'é"]}\\@x' },
      { ...ANSWERED_CDR, id: 2, sipCallId: 'plain@x', chargeMicro: 7, createdAt: 99 },
      { ...ANSWERED_CDR, id: 3, sipCallId: 'three@x', accountId: 5, answerMs: null, reservedMicro: null, retailAccountId: 8 },
    ];
    const records = [
      [cdrs[0], { op: 'finish', id: 1, state: 'settled', at: 5 }],
      [reserve(9), cdrs[1], cdrs[2]],
    ] as JournalOp[][];
    const rows = (dbPath: string): unknown[] => {
      const db = new Database(dbPath, { readonly: true });
      try {
        return db.prepare('SELECT * FROM cdrs ORDER BY id').all();
      } finally {
        db.close();
      }
    };
    const fromLog = scratch();
    const fromOps = scratch();
    try {
      const appender = new LogAppender(fromLog.logDir, 0, false);
      for (const ops of records) appender.append(encodeRecord(ops));
      appender.close();
      const store = new JournalStore(fromLog.dbPath);
      assert.equal(recoverLog(store, fromLog.logDir).applied[0].lastCdrId, 3);
      store.close();
      // The parsed ops, each rated CDR written again by writeRatedOp (what the applier did before).
      const reference = new JournalStore(fromOps.dbPath);
      reference.applyOps(
        records.flatMap((ops) => decodeRecords(encodeRecord(ops)).ops),
        { segment: 1, offset: 0 },
      );
      reference.close();
      assert.equal(rows(fromLog.dbPath).length, 3);
      assert.deepEqual(rows(fromLog.dbPath), rows(fromOps.dbPath));
    } finally {
      rmSync(fromLog.dir, { recursive: true, force: true });
      rmSync(fromOps.dir, { recursive: true, force: true });
    }
  });

  it('reads passes into memory it keeps, each pass its own records', () => {
    const { dir, dbPath, logDir } = scratch();
    try {
      const appender = new LogAppender(logDir, 0, false);
      const store = new JournalStore(dbPath);
      const buffer = new SegmentBuffer();
      let position = store.position();
      // A long pass, then shorter ones: a kept buffer longer than the read must not hand the last pass's tail back.
      for (const [first, count] of [
        [1, 40],
        [41, 1],
        [42, 3],
      ]) {
        for (let id = first; id < first + count; id++) appender.append(encodeRecord([reserve(id)]));
        const result = applySegment(store, logDir, position, false, Number.POSITIVE_INFINITY, buffer);
        assert.equal(result.lostBytes, 0);
        position = result.position;
      }
      appender.close();
      store.close();
      assert.deepEqual(
        reservationIds(dbPath),
        Array.from({ length: 44 }, (_, i) => i + 1),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

for (const durability of ['normal', 'full'] as const) {
  describe(`money journal (durability ${durability})`, () => {
    it('finds a CDR before and after the applier has it, and after a restart; a torn tail is ignored at start-up', async () => {
      const { dir, dbPath, logDir } = scratch();
      const log = pino({ level: 'silent' });
      try {
        const journal = new MoneyJournal(dbPath, durability, log);
        await journal.write(reserve(1));
        await journal.write(cdr(1), { op: 'finish', id: 1, state: 'settled', at: 3 });
        // Acknowledged: found at once, whether or not money.db has it yet.
        assert.equal(journal.findCdr('cdr-1@log')?.result, '{"cdr_id":1}');
        const deadline = Date.now() + 10_000;
        while (Date.now() < deadline) {
          const db = new Database(dbPath, { readonly: true });
          const row = db.prepare('SELECT result FROM cdrs WHERE sip_call_id = ?').get('cdr-1@log');
          db.close();
          if (row !== undefined) break;
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
        assert.equal(journal.findCdr('cdr-1@log')?.id, 1);
        await journal.write(reserve(2));
        await journal.close();

        // A crash in the middle of an append leaves a torn record behind: not acknowledged, not applied.
        const [segment] = listSegments(logDir);
        writeFileSync(segmentPath(logDir, segment), encodeRecord([reserve(3)]).subarray(0, 30), { flag: 'a' });
        const reopened = new MoneyJournal(dbPath, durability, log);
        assert.equal(reopened.findCdr('cdr-1@log')?.fingerprint, 'f1');
        assert.deepEqual(
          reopened.heldReservations().map((row) => row.id),
          [2],
        );
        assert.equal(reopened.lastReservationId(), 2);
        await reopened.close();
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('keeps finding an unsettled CDR through a prune, and forgets the settled one the prune deleted', async () => {
      const { dir, dbPath } = scratch();
      const log = pino({ level: 'silent' });
      try {
        const journal = new MoneyJournal(dbPath, durability, log);
        await journal.write(cdr(1));
        await journal.write(cdr(2));
        await journal.write({ op: 'settledThrough', id: 1 });
        await journal.write({ op: 'prune', reservationsBefore: 0, cdrsBefore: 1000 }); // both were created at 1
        const deadline = Date.now() + 10_000;
        let kept: number[] = [];
        while (Date.now() < deadline) {
          const db = new Database(dbPath, { readonly: true });
          kept = (db.prepare('SELECT id FROM cdrs ORDER BY id').all() as { id: number }[]).map((row) => row.id);
          db.close();
          // money.db commits before the applier's word of it reaches the event loop, where the journal lets go
          // of what it held in memory: wait for both.
          if (kept.length === 1 && journal.findCdr('cdr-1@log') === null) break;
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
        assert.deepEqual(kept, [2]);
        assert.equal(journal.findCdr('cdr-1@log'), null);
        assert.equal(journal.findCdr('cdr-2@log')?.id, 2, 'unsettled: still a duplicate if it comes again');
        await journal.close();
        const reopened = new MoneyJournal(dbPath, durability, log);
        assert.equal(reopened.findCdr('cdr-1@log'), null);
        assert.equal(reopened.findCdr('cdr-2@log')?.fingerprint, 'f2');
        await reopened.close();
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it("answers duplicate checks while the filter of money.db's CDRs loads beside the event loop, and skips money.db for new CDRs once it has", async () => {
      const { dir, dbPath } = scratch();
      const log = pino({ level: 'silent' });
      try {
        const journal = new MoneyJournal(dbPath, durability, log);
        await journal.write(...Array.from({ length: 3000 }, (_, i) => cdr(i + 1)));
        await journal.close();

        const reopened = new MoneyJournal(dbPath, durability, log);
        let loaded = false;
        void reopened.cdrFilterLoaded.then(() => (loaded = true));
        const findCdr = (reopened as unknown as { statements: { findCdr: { get: (id: string) => unknown } } }).statements.findCdr;
        const read = findCdr.get.bind(findCdr);
        let reads = 0;
        findCdr.get = (id: string) => {
          reads++;
          return read(id);
        };
        assert.equal(loaded, false, 'the sidecar starts answering before the filter is loaded');
        assert.equal(reopened.findCdr('cdr-2999@log')?.id, 2999, 'meanwhile money.db answers');
        assert.equal(reopened.findCdr('new-1@log'), null);
        assert.equal(reads, 2);
        await reopened.cdrFilterLoaded;
        for (let id = 1; id <= 3000; id++) assert.equal(reopened.findCdr(`cdr-${id}@log`)?.id, id);
        reads = 0;
        for (let n = 0; n < 1000; n++) assert.equal(reopened.findCdr(`new-${n}@log`), null);
        assert.ok(reads < 30, `${reads} reads of money.db for 1000 new CDRs`);
        await reopened.close();
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('hands out counter blocks that survive a restart, written through the log', async () => {
      const { dir, dbPath } = scratch();
      const log = pino({ level: 'silent' });
      try {
        const journal = new MoneyJournal(dbPath, durability, log);
        assert.equal(await journal.reserveCounterBlock('round_seq', 10), 1);
        assert.equal(await journal.reserveCounterBlock('round_seq', 10), 11);
        await journal.raiseCounter('round_seq', 5); // below the high mark: nothing changes
        await journal.close();
        const reopened = new MoneyJournal(dbPath, durability, log);
        assert.equal(await reopened.reserveCounterBlock('round_seq', 10), 21);
        await reopened.raiseCounter('round_seq', 100);
        assert.equal(await reopened.reserveCounterBlock('round_seq', 10), 101);
        await reopened.close();
        const db = new Database(dbPath, { readonly: true });
        assert.deepEqual(db.prepare("SELECT value FROM meta WHERE key = 'round_seq'").get(), { value: 110 });
        db.close();
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
}

describe('money journal: the applier thread', () => {
  /** Nice value of each thread of this process, by thread id (Linux /proc). */
  const threadNices = (): Map<number, number> =>
    new Map(
      readdirSync('/proc/self/task').map((tid) => {
        const fields = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8').split(') ')[1].split(' ');
        return [Number(tid), Number(fields[16])]; // field 19 of stat(5), counted from the state field
      }),
    );

  it(
    'runs at the lowest CPU priority, so its passes never take the core from the event loop',
    { skip: process.platform !== 'linux' },
    async () => {
      const { dir, dbPath } = scratch();
      try {
        const before = threadNices();
        const journal = new MoneyJournal(dbPath, 'normal', pino({ level: 'silent' }));
        let niced: number[] = [];
        for (let i = 0; i < 200 && niced.length === 0; i++) {
          await new Promise((resolve) => setTimeout(resolve, 10)); // the thread sets its priority as it starts
          niced = [...threadNices()].filter(([tid, nice]) => !before.has(tid) && nice === BACKGROUND_NICE).map(([tid]) => tid);
        }
        assert.equal(niced.length, 1, 'one new thread at the background priority');
        assert.equal(threadNices().get(process.pid), before.get(process.pid), 'the event loop keeps its priority');
        await journal.close();
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});

describe('money journal: a record the log refuses (a full disk)', () => {
  const settings = {
    admissionSeconds: 3600,
    reservationGraceSeconds: 60,
    leaseChunkMicro: 0,
    idleReturnMs: 60_000,
    offlinePostpaid: 'allow' as const,
    sliceSeconds: null,
  };
  const plan = () => ({ amountMicro: 5_000_000, maxDurationSeconds: 60, slice: null });
  // Postpaid without cutoff: admitted without a lease, so only the journal decides.
  const admitOn = (credit: NodeCredit, callId: string) =>
    credit.admit({
      entity: { type: 'customer', id: 7 },
      callId,
      plan,
      enforce: false,
      admitWhenUnreachable: true,
      answer: 'admit',
      port: null,
      now: Date.now(),
    });

  /** A journal and credit on a scratch directory, with the log's appender to fail on demand. */
  async function withCredit(
    run: (world: {
      journal: MoneyJournal;
      appender: LogAppender;
      account: EntityMoney;
      admit: (callId: string) => ReturnType<NodeCredit['admit']>;
      dbPath: string;
      credit: NodeCredit;
    }) => Promise<void>,
  ): Promise<void> {
    const { dir, dbPath } = scratch();
    const log = pino({ level: 'silent' });
    try {
      const journal = new MoneyJournal(dbPath, 'normal', log);
      const credit = new NodeCredit(journal, settings, log);
      const admit = (callId: string) => admitOn(credit, callId);
      const appender = (journal as unknown as { appender: LogAppender }).appender;
      await run({ journal, appender, account: credit.entity({ type: 'customer', id: 7 }), admit, dbPath, credit });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  it('answers a Call-ID admitted before a restart with the bytes it answered then, from the log and from money.db', async () => {
    const { dir, dbPath, logDir } = scratch();
    const log = pino({ level: 'silent' });
    try {
      // A node from before 2026-12-07 left a reservation with its answer text in the log.
      const legacyAnswer = renderAnswer('admit', 1_234_500, 60);
      const appender = new LogAppender(logDir, 0, false);
      appender.append(encodeRecord([{ ...reserve(1), callId: 'old@restart', entityId: 7, answer: legacyAnswer }]));
      appender.close();
      const journal = new MoneyJournal(dbPath, 'normal', log);
      const credit = new NodeCredit(journal, settings, log);
      const first = admitOn(credit, 'new@restart');
      assert.ok(!(first instanceof Promise) && first.kind === 'reserved');
      await first.committed;
      await journal.close();

      const reopened = new MoneyJournal(dbPath, 'normal', log);
      const again = new NodeCredit(reopened, settings, log);
      const repeated = await admitOn(again, 'new@restart');
      assert.deepEqual(repeated.kind === 'replayed' ? repeated.answer : repeated.kind, first.answer);
      const old = await admitOn(again, 'old@restart');
      assert.deepEqual(old.kind === 'replayed' ? old.answer : old.kind, legacyAnswer);
      await reopened.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('acknowledges none of its admissions, takes their reservations back, and keeps working once the disk has room', () =>
    withCredit(async ({ journal, appender, account, admit, dbPath }) => {
      const append = appender.append.bind(appender);
      appender.append = () => {
        throw new LogAppendError('no space left on device', 'ENOSPC', true);
      };
      const first = admit('a@refused');
      const second = admit('b@refused');
      const repeated = admit('a@refused'); // the same Call-ID before the record is written: waits for it
      assert.ok(!(first instanceof Promise) && first.kind === 'reserved' && !(second instanceof Promise) && second.kind === 'reserved');
      assert.ok(repeated instanceof Promise);
      assert.equal(account.heldMicro, 10_000_000);
      await assert.rejects(first.committed, JournalWriteError);
      await assert.rejects(second.committed, JournalWriteError);
      await assert.rejects(repeated, JournalWriteError);
      assert.equal(account.heldMicro, 0, 'nothing held for calls never admitted');

      appender.append = append;
      const again = admit('a@refused');
      assert.ok(!(again instanceof Promise) && again.kind === 'reserved', 'a new admission, not a replay of one never committed');
      await again.committed;
      assert.equal(account.heldMicro, 5_000_000);
      await journal.close();
      const db = new Database(dbPath, { readonly: true });
      assert.deepEqual(db.prepare('SELECT call_id, amount_micro FROM reservations').all(), [
        { call_id: 'a@refused', amount_micro: 5_000_000 },
      ]);
      db.close();
    }));

  it('takes back a CDR whose record it refuses: not billed, not in the outbox, its call live again; a resend is taken once the disk has room', () =>
    withCredit(async ({ journal, appender, account, admit, credit }) => {
      const admitted = admit('c@refused');
      assert.ok(!(admitted instanceof Promise) && admitted.kind === 'reserved');
      await admitted.committed;
      const record = () => {
        // The answered call of the encoders' fixture, on this world's account, charged 1.20 AUD.
        const cdr: RatedCdr = {
          ...ANSWERED_CDR,
          id: 0,
          sipCallId: 'c@refused',
          accountId: 7,
          customer: { ...ANSWERED_CDR.customer, cost: '1.2000' },
          accountCharge: '1.2000',
          chargeMicro: 1_200_000,
          reservedMicro: null,
        };
        const committed = credit.recordCdr(cdr, false, Date.now(), credit.reservationOf('c@refused'));
        return { committed, reservedMicro: cdr.reservedMicro };
      };
      const append = appender.append.bind(appender);
      appender.append = () => {
        throw new LogAppendError('no space left on device', 'ENOSPC', true);
      };
      const refused = record();
      assert.equal(refused.reservedMicro, 5_000_000);
      assert.equal(account.heldMicro, 0, 'the reservation closed with the CDR');
      assert.ok(credit.findCdr('c@refused') !== null, 'a resend meanwhile waits for the record');
      await assert.rejects(refused.committed, JournalWriteError);
      assert.equal(account.heldMicro, 5_000_000, 'the call is live again');
      assert.equal(account.spentMicro, 0, 'nothing billed');
      assert.equal(credit.outboxSize, 0, 'nothing to settle at the centre');
      assert.equal(credit.findCdr('c@refused'), null, 'a resend is a new CDR');

      appender.append = append;
      const taken = record();
      assert.equal(taken.reservedMicro, 5_000_000);
      await taken.committed;
      assert.equal(account.heldMicro, 0);
      assert.equal(account.spentMicro, 1_200_000);
      assert.equal(credit.outboxSize, 1);
      await journal.close();
    }));

  it('a CDR the centre settled before the writer refused its record (durability full) is taken off what was spent once', async () => {
    const { dir, dbPath } = scratch();
    const log = pino({ level: 'silent' });
    const journal = new MoneyJournal(dbPath, 'full', log);
    try {
      const credit = new NodeCredit(journal, settings, log);
      credit.connect(() => Promise.resolve(true));
      const account = credit.entity({ type: 'customer', id: 7 });
      const admitted = admitOn(credit, 'd@refused');
      assert.ok(!(admitted instanceof Promise) && admitted.kind === 'reserved');
      await admitted.committed;
      // The writer thread syncs the next record slowly, then fails it: the round goes meanwhile.
      const inner = journal as unknown as {
        writer: { postMessage: (message: { seq: number }, transfer: unknown[]) => void };
        settle: (reply: WriterReply) => void;
      };
      const held: number[] = [];
      const post = inner.writer.postMessage.bind(inner.writer);
      // The next record is kept from the writer (its reply is the test's); the ones after go on.
      inner.writer.postMessage = (message, transfer) => (held.length === 0 ? held.push(message.seq) : post(message, transfer));
      const cdr: RatedCdr = {
        ...ANSWERED_CDR,
        id: 0,
        sipCallId: 'd@refused',
        accountId: 7,
        customer: { ...ANSWERED_CDR.customer, cost: '1.2000' },
        accountCharge: '1.2000',
        chargeMicro: 1_200_000,
        reservedMicro: null,
      };
      const committed = credit.recordCdr(cdr, false, Date.now(), credit.reservationOf('d@refused'));
      const round = credit.takeRound(10);
      assert.deepEqual(
        round.settlements.map((entry) => entry.sipCallId),
        ['d@refused'],
      );
      credit.applyReply(round, { settled: ['d@refused'], unbilled: [], leases: [], lease_valid_seconds: 86_400 }, Date.now());
      assert.equal(account.spentMicro, 0, 'settled: no longer spent here');
      await new Promise((resolve) => setImmediate(resolve));
      assert.equal(held.length, 1, 'the record is at the writer');
      inner.settle({ seq: held[0], failure: { message: 'input/output error', code: 'EIO', intact: true } });
      await assert.rejects(committed, JournalWriteError);
      assert.equal(account.spentMicro, 0, 'its charge is not taken off a second time');
      assert.equal(account.heldMicro, 5_000_000, 'the call is live again, its CDR to come again (the centre has it once)');
    } finally {
      await journal.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses every later admission, holding nothing, once the log could not be cut back', () =>
    withCredit(async ({ journal, appender, account, admit }) => {
      appender.append = () => {
        throw new LogAppendError('input/output error', 'EIO', false);
      };
      const torn = admit('a@broken');
      assert.ok(!(torn instanceof Promise) && torn.kind === 'reserved');
      await assert.rejects(torn.committed, JournalWriteError);
      const later = admit('b@broken'); // refused at once: the log takes nothing more until a restart
      assert.ok(!(later instanceof Promise) && later.kind === 'reserved');
      await assert.rejects(later.committed, JournalWriteError);
      assert.equal(account.heldMicro, 0);
      await journal.close();
    }));
});

describe('credit lease validity: measured on the monotonic clock while the node runs', () => {
  const settings = {
    admissionSeconds: 3600,
    reservationGraceSeconds: 60,
    leaseChunkMicro: 0,
    idleReturnMs: 60_000,
    offlinePostpaid: 'deny' as const,
    sliceSeconds: null,
  };
  const plan = () => ({ amountMicro: 5_000_000, maxDurationSeconds: 60, slice: null });
  /** A credit whose centre is unreachable: every round fails. */
  const cutOff = (credit: NodeCredit): NodeCredit => {
    credit.connect(() => {
      credit.roundFailed(credit.takeRound(0));
      return Promise.resolve(false);
    });
    return credit;
  };
  const admitOn = (credit: NodeCredit) => (callId: string, now: number) =>
    credit.admit({
      entity: { type: 'customer', id: 7 },
      callId,
      plan,
      enforce: true,
      admitWhenUnreachable: false,
      answer: 'admit',
      port: null,
      now,
    });
  /** The centre grants 100.00, valid for `validSeconds` without another answered round. */
  const grant = (credit: NodeCredit, validSeconds: number, now: number): void =>
    credit.applyReply(
      credit.takeRound(0),
      {
        settled: [],
        unbilled: [],
        leases: [{ entity_type: 'customer', entity_id: 7, granted: '100', headroom: '100' }],
        lease_valid_seconds: validSeconds,
      },
      now,
    );

  it('keeps the validity the centre last gave across a restart, for the time before its next answer', async () => {
    const { dir, dbPath } = scratch();
    const log = pino({ level: 'silent' });
    try {
      const journal = new MoneyJournal(dbPath, 'normal', log);
      const wall = Date.now();
      grant(new NodeCredit(journal, settings, log), 2, wall);
      await journal.close();

      const reopened = new MoneyJournal(dbPath, 'normal', log);
      const admit = admitOn(cutOff(new NodeCredit(reopened, settings, log)));
      const within = admit('a@within', wall + 1000);
      assert.ok(!(within instanceof Promise) && within.kind === 'reserved', 'the lease held before the restart, within its validity');
      await within.committed;
      const after = await admit('b@after', wall + 3000); // past 2 s, far within the default 900 s
      assert.deepEqual(after.kind === 'refused' ? after.reason : after.kind, 'credit_unavailable');
      await reopened.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('ends the leases after their validity even if the wall clock stepped back, and not early if it stepped forward', async () => {
    const { dir, dbPath } = scratch();
    const log = pino({ level: 'silent' });
    try {
      const journal = new MoneyJournal(dbPath, 'normal', log);
      const credit = cutOff(new NodeCredit(journal, settings, log));
      const wall = Date.now();
      grant(credit, 1, wall);
      const admit = admitOn(credit);

      const ahead = admit('a@ahead', wall + 3_600_000); // the wall clock an hour ahead at once
      assert.ok(!(ahead instanceof Promise) && ahead.kind === 'reserved', 'still within the validity: admitted on the lease');
      await ahead.committed;
      await new Promise((resolve) => setTimeout(resolve, 1100));
      const back = await admit('b@back', wall); // the wall clock back at the answer's time; 1.1 s have passed
      assert.deepEqual(back.kind === 'refused' ? back.reason : back.kind, 'credit_unavailable');
      assert.equal(credit.leasesLapsed, true);
      await journal.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
