import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { renderAnswer } from '../../src/sidecar/journal/reservation-answer.js';
import { decodeRecords, encodeRecord } from '../../src/sidecar/journal/log.js';
import { decodeOps, encodeOps } from '../../src/sidecar/journal/op-encoding.js';
import type { JournalOp } from '../../src/sidecar/journal/ops.js';
import { settlementText, type RatedCdr } from '../../src/sidecar/journal/rated-cdr.js';
import { decodeOpsToApply } from '../../src/sidecar/journal/rated-row.js';
import { ANSWERED_CDR } from '../fixtures/settlement.js';

/**
 * The log's op encoding: the hot ops' templates, with their JSON-text fields embedded as JSON, read back
 * as the very ops that were written, and records written before (plain JSON.stringify, those fields as
 * strings) read as they always did.
 */
const rated: RatedCdr = {
  ...ANSWERED_CDR,
  sipCallId: 'a"b\\c\u2028\u00e9@host',
  ani: '61"255\n50100',
  answerMs: null,
  sipResponseCode: null,
  customer: { ...ANSWERED_CDR.customer, rateDeckId: null },
  reservedMicro: null,
  uncoveredMicro: 32_500,
  retailAccountId: 9,
  namedRetailAccountId: null,
};

/** One of every op the log has held, the hot ones as the node makes them (strings that need escaping included). */
function everyOp(): JournalOp[] {
  return [
    rated,
    {
      ...rated,
      id: 43,
      sipCallId: 'cdr-43',
      answerMs: ANSWERED_CDR.answerMs,
      reservedMicro: 0,
      retailAccountId: null,
      namedRetailAccountId: 5,
      namedRateDeckId: 2,
    },
    // A CDR as logs written before 2026-12-07 hold it, with its texts.
    {
      op: 'cdr',
      id: 7,
      sipCallId: rated.sipCallId,
      fingerprint: JSON.stringify([10, 21, 211, rated.ani, '61400123456', 1, null, 3, 73, null]),
      result: JSON.stringify({ cdr_id: 7, customer_cost: '0.0325', reconciled: false, adjustment: null, uncovered: '0.0325' }),
      settlement: settlementText(rated),
      accountId: 1,
      chargeMicro: 32_500,
      createdAt: 1_733_400_000_123,
    },
    { op: 'finish', id: 3, state: 'settled', at: 1_733_400_000_123 },
    {
      op: 'held',
      id: 8,
      callId: 'call-"8"\u2028@x',
      entityType: 'retail',
      entityId: 4,
      amountMicro: 2_500_000,
      maxDuration: 7200,
      createdAt: 1_733_400_000_123,
      expiresAt: 1_733_407_260_123,
      answerKind: 'admit',
      headroom: '-0.000005',
      slice: JSON.stringify({ seconds: 300, paidUntil: 1_733_400_300_000, dialogId: 'd"1' }),
      trunkId: 10,
    },
    {
      op: 'held',
      id: 9,
      callId: 'c9',
      entityType: 'carrier',
      entityId: 3,
      amountMicro: 1,
      maxDuration: null,
      createdAt: 1,
      expiresAt: 2,
      answerKind: 'check',
      headroom: '0.00',
      slice: null,
      trunkId: null,
    },
    // A reservation as logs written before 2026-12-07 hold it, with its answer text.
    {
      op: 'reserve',
      id: 3,
      callId: 'call-"3"@x',
      entityType: 'customer',
      entityId: 1,
      amountMicro: 1_000_000,
      maxDuration: 7200,
      createdAt: 1,
      expiresAt: 2,
      answer: renderAnswer('admit', -5, 7200),
      slice: JSON.stringify({ seconds: 300, paidUntil: 1_733_400_300_000, dialogId: 'd"1' }),
      trunkId: 10,
    },
    {
      op: 'reserve',
      id: 4,
      callId: 'call-4',
      entityType: 'customer',
      entityId: 2,
      amountMicro: 5,
      maxDuration: null,
      createdAt: 1,
      expiresAt: 2,
      answer: renderAnswer('check', 0, null),
      slice: null,
    },
    {
      op: 'reserve',
      id: 5,
      callId: 'c5',
      entityType: 'carrier',
      entityId: 3,
      amountMicro: 1,
      maxDuration: 1,
      createdAt: 1,
      expiresAt: 2,
      answer: '{}',
      slice: null,
      trunkId: null,
    },
    { op: 'extend', id: 3, amountMicro: 9, expiresAt: 10, slice: '{"seconds":300}' },
    { op: 'lease', entityType: 'customer', entityId: 1, grantedMicro: 5, headroomMicro: null },
    { op: 'settledThrough', id: 6 },
    { op: 'prune', reservationsBefore: 1, cdrsBefore: 2 },
    { op: 'counter', key: 'k"ey', value: 12 },
  ];
}

/** A reservation's op in a record: its figures in this order (the log's format: a change is a new op). */
const held = (r: Extract<JournalOp, { op: 'held' }>): unknown[] => [
  ...[r.id, r.callId, r.entityType, r.entityId, r.amountMicro, r.maxDuration, r.createdAt, r.expiresAt - r.createdAt],
  ...[r.answerKind, r.headroom, r.slice === null ? null : JSON.parse(r.slice), r.trunkId],
];

/** A rated CDR's op in a record: its figures in this order (the log's format: a change is a new op). */
const figures = (c: RatedCdr): unknown[] => [
  ...[c.id, c.sipCallId, c.customerTrunkId, c.accountId, c.carrierTrunkId, c.carrierGatewayId, c.ani, c.dnis],
  ...[c.startMs, c.answerMs, c.endMs, c.durationSeconds, c.sipResponseCode],
  ...[c.customer, c.vendor].flatMap((s) => [s.rateDeckId, s.billableSeconds, s.cost, s.currency, s.precision, s.rounding]),
  ...[c.accountCharge, c.accountCurrency, c.chargeMicro, c.createdAt, c.reservedMicro, c.uncoveredMicro],
  ...[c.retailAccountId, c.namedRetailAccountId, c.namedRateDeckId],
];

describe('journal op encoding', () => {
  it('reads back every op exactly as written, the JSON-text fields byte for byte', () => {
    const ops = everyOp();
    const decoded = decodeOps(encodeOps(ops));
    assert.deepEqual(decoded, ops);
    for (const [i, op] of ops.entries()) {
      if (op.op === 'cdr') assert.equal((decoded[i] as typeof op).settlement, op.settlement);
      if (op.op === 'reserve') assert.equal((decoded[i] as typeof op).answer, op.answer);
    }
    for (const op of ops) assert.deepEqual(decodeOps(encodeOps([op])), [op]);
  });

  it('writes what JSON.stringify writes once the JSON-text fields are values (a rated CDR: its figures as an array)', () => {
    const asValues = everyOp().map((op) =>
      op.op === 'rated'
        ? { op: 'rated', v: figures(op) }
        : op.op === 'held'
          ? { op: 'held', v: held(op) }
          : op.op === 'cdr'
            ? { ...op, result: JSON.parse(op.result), settlement: JSON.parse(op.settlement) }
            : op.op === 'reserve'
              ? { ...op, answer: JSON.parse(op.answer), slice: op.slice === null ? null : JSON.parse(op.slice) }
              : op,
    );
    assert.equal(encodeOps(everyOp()), JSON.stringify(asValues));
  });

  it('reads a rated CDR written before the named sell deck (33 figures) as naming none', () => {
    const before = { op: 'rated', v: figures(rated).slice(0, 33) };
    assert.deepEqual(decodeOps(JSON.stringify([before])), [{ ...rated, namedRateDeckId: null }]);
  });

  it('reads records written before, with those fields as strings, unchanged', () => {
    const ops = everyOp().filter((op) => op.op !== 'rated' && op.op !== 'held');
    assert.deepEqual(decodeOps(JSON.stringify(ops)), ops);
  });

  it('writes a field that is not JSON text of an object or array as a string, and reads it back the same', () => {
    const odd: JournalOp = { ...(everyOp()[2] as Extract<JournalOp, { op: 'cdr' }>), result: 'not json {', settlement: '' };
    const text = encodeOps([odd]);
    assert.doesNotThrow(() => JSON.parse(text));
    assert.deepEqual(decodeOps(text), [odd]);
  });

  it("gives the applier a rated CDR's row with the op's bytes as the record holds them, and every other op as decodeOps does", () => {
    const tricky: JournalOp[] = [
      { ...rated, id: 44, sipCallId: ']},{"op":"rated","v":[1,"x"]}]', ani: '\\"]' },
      { ...(everyOp().find((op) => op.op === 'held') as JournalOp & { op: 'held' }), callId: '{"op":"rated","v":[' },
      { ...rated, id: 45, sipCallId: 'plain-45@host', chargeMicro: NaN },
    ];
    const all = [...everyOp(), ...tricky];
    for (const ops of [all, [...all].reverse(), ...all.map((op) => [op]), [tricky[0], tricky[2]]]) {
      const payload = Buffer.from(encodeOps(ops));
      const applied = decodeOpsToApply(payload);
      const parsed = decodeOps(payload.toString('utf8'));
      assert.equal(applied.length, ops.length);
      for (const [i, op] of ops.entries()) {
        const got = applied[i];
        if (op.op !== 'rated') {
          assert.deepEqual(got, parsed[i]);
          continue;
        }
        assert.equal(got.op, 'ratedRow');
        const { bytes, ...figures } = got;
        assert.deepEqual(figures, {
          op: 'ratedRow',
          id: op.id,
          sipCallId: op.sipCallId,
          accountId: op.accountId,
          chargeMicro: Number.isFinite(op.chargeMicro) ? op.chargeMicro : null,
          createdAt: op.createdAt,
        });
        // The bytes writeRatedOp writes for it: the op alone in a payload, less the array's brackets.
        assert.equal(Buffer.from(bytes).toString('utf8'), encodeOps([op]).slice(1, -1));
      }
    }
  });

  it('keeps a record valid JSON whatever a number field holds', () => {
    const op: JournalOp = { op: 'finish', id: NaN, state: 'released', at: Infinity };
    assert.deepEqual(JSON.parse(encodeOps([op])), [{ op: 'finish', id: null, state: 'released', at: null }]);
  });

  it('writes a rated CDR as valid JSON whatever its numbers hold, and its settlement too', () => {
    const odd: RatedCdr = { ...rated, id: NaN, durationSeconds: NaN, customer: { ...rated.customer, rateDeckId: Infinity } };
    const [back] = decodeOps(encodeOps([odd])) as RatedCdr[];
    assert.equal(back.id, null);
    assert.equal(back.durationSeconds, null);
    assert.equal(back.customer.rateDeckId, null);
    assert.doesNotThrow(() => JSON.parse(settlementText(odd)));
  });

  it('writes a reservation as valid JSON whatever its numbers and slice text hold', () => {
    const base = everyOp().find((op) => op.op === 'held')!;
    const odd: JournalOp = { ...base, amountMicro: NaN, trunkId: Infinity, slice: 'not json {' };
    const [back] = decodeOps(encodeOps([odd]));
    assert.deepEqual(back, { ...odd, amountMicro: null, trunkId: null });
  });

  it('round-trips through a whole log record', () => {
    const ops = everyOp();
    assert.deepEqual(decodeRecords(encodeRecord(ops)).ops, ops);
  });
});
