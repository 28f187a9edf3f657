import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ReservationTable, type ReservationRecord } from '../../src/sidecar/credit/reservation-table.js';

/**
 * The off-heap reservation table: Call-ID lookups (hash index with deletions), expiry by windows, the ring
 * of recently finished reservations, and slot reuse, checked against a plain Map model.
 */
const NOW = Date.parse('2026-12-01T12:00:00Z');
let nextId = 1;

function record(callId: string, expiresAt = NOW + 60_000, extra: Partial<ReservationRecord> = {}): ReservationRecord {
  return {
    id: nextId++,
    callId,
    entityIndex: 3,
    amountMicro: 1_250_000,
    maxDurationSeconds: 7200,
    expiresAt,
    answerKind: 'admit',
    headroomMicro: 98_765_432,
    slice: null,
    trunkId: null,
    ...extra,
  };
}

function expireAll(table: ReservationTable, now: number): string[] {
  const due = table.due(now);
  for (const slot of due) assert.ok(table.finish(slot, table.id(slot)));
  return due.map((slot) => table.read(slot).callId);
}

describe('reservation table', () => {
  it('gives back every field as held, for short, long and non-Latin-1 Call-IDs', () => {
    const table = new ReservationTable(16);
    const ids = [
      'a84b4c76e66710@pc33.atlanta.com',
      'x'.repeat(48),
      'y'.repeat(49),
      `${'z'.repeat(200)}@long`,
      'caf\u00e9@latin1',
      'call-\u263a@not-latin1',
      '',
    ];
    const held = ids.map((callId, i) =>
      record(callId, NOW + i, {
        maxDurationSeconds: i === 0 ? null : i,
        answerKind: i % 2 === 0 ? 'admit' : 'check',
        amountMicro: i * 1_000_001,
        headroomMicro: -i,
      }),
    );
    const slots = held.map((entry) => table.hold(entry));
    assert.equal(table.size, ids.length);
    held.forEach((entry, i) => {
      assert.equal(table.find(entry.callId), slots[i]);
      assert.deepEqual(table.read(slots[i]), entry);
    });
    // Same length, same hash bucket or not: a different Call-ID is not found.
    assert.equal(table.find('a84b4c76e66710@pc33.atlanta.con'), -1);
    assert.equal(table.find('x'.repeat(48)), slots[1]);
    assert.equal(table.find('y'.repeat(48)), -1);
    assert.equal(table.find('x'.repeat(49)), -1);
    assert.equal(table.find('call-\u263b@not-latin1'), -1);
  });

  it('gives back exactly the reservations due, across windows, and keeps the rest', () => {
    const table = new ReservationTable(16);
    const expiries = [NOW - 25_000, NOW - 1, NOW, NOW + 1, NOW + 9_000, NOW + 600_000];
    expiries.forEach((expiresAt, i) => table.hold(record(`c${i}`, expiresAt)));
    assert.deepEqual(expireAll(table, NOW).sort(), ['c0', 'c1', 'c2']);
    assert.equal(table.size, 3);
    assert.equal(table.read(table.find('c3')).expiresAt, NOW + 1);
    assert.deepEqual(expireAll(table, NOW), []);
    assert.deepEqual(expireAll(table, NOW + 9_000).sort(), ['c3', 'c4']);
    assert.deepEqual(expireAll(table, NOW + 599_999), []);
    assert.deepEqual(expireAll(table, NOW + 600_000), ['c5']);
    assert.equal(table.size, 0);
  });

  it('finds reservations from long ago (a restart after days) and ones added behind the last expiry pass', () => {
    const table = new ReservationTable(16);
    table.hold(record('recent', NOW + 1000));
    assert.deepEqual(expireAll(table, NOW), []);
    table.hold(record('days-old', NOW - 3 * 86_400_000));
    table.hold(record('just-now', NOW - 5));
    assert.deepEqual(expireAll(table, NOW).sort(), ['days-old', 'just-now']);
    assert.deepEqual(expireAll(table, NOW + 1000), ['recent']);
  });

  it('finishes only the very reservation held in a slot, and keeps it findable among the finished', () => {
    const table = new ReservationTable(16);
    const first = record('same');
    const slot = table.hold(first);
    assert.equal(table.finish(slot, first.id + 1), false);
    assert.equal(table.finish(slot, first.id), true);
    assert.equal(table.finish(slot, first.id), false);
    assert.equal(table.size, 0);
    assert.equal(table.find('same'), slot);
    assert.equal(table.isHeld(slot, first.id), false);
    assert.deepEqual(table.due(NOW + 600_000), []);
    // A refused write's rollback makes it live again, and due again.
    assert.equal(table.rehold(slot, first.id), true);
    assert.deepEqual(table.due(NOW + 600_000), [slot]);
  });

  it('keeps the newest finished reservations and forgets the oldest, reusing their slots', () => {
    const table = new ReservationTable(3);
    const slots = ['f1', 'f2', 'f3', 'f4'].map((callId) => {
      const entry = record(callId);
      const slot = table.hold(entry);
      table.finish(slot, entry.id);
      return slot;
    });
    assert.equal(table.find('f1'), -1);
    assert.deepEqual(
      ['f2', 'f3', 'f4'].map((callId) => table.find(callId)),
      slots.slice(1),
    );
    // f1's slot is free again: the next reservation takes it, and f1's old figures are not found under it.
    const next = record('n1');
    assert.equal(table.hold(next), slots[0]);
    assert.equal(table.isHeld(slots[0], next.id), true);
    assert.equal(table.find('f1'), -1);
  });

  it('a reservation held again after finishing is not forgotten by the ring while live', () => {
    const table = new ReservationTable(2);
    const entry = record('comeback');
    const slot = table.hold(entry);
    table.finish(slot, entry.id);
    table.rehold(slot, entry.id);
    for (const callId of ['o1', 'o2', 'o3']) {
      const other = record(callId);
      table.finish(table.hold(other), other.id);
    }
    assert.equal(table.find('comeback'), slot);
    assert.equal(table.isHeld(slot, entry.id), true);
  });

  it('drop forgets a reservation whose write was refused', () => {
    const table = new ReservationTable(16);
    const entry = record('refused');
    const slot = table.hold(entry);
    assert.equal(table.drop(slot, entry.id), true);
    assert.equal(table.find('refused'), -1);
    assert.equal(table.size, 0);
    assert.deepEqual(table.due(NOW + 600_000), []);
  });

  it('matches a Map model over 200k random holds, finishes, drops and lookups (index growth, deletions, page growth)', () => {
    const kept = 1000;
    const table = new ReservationTable(kept, 1 << 10);
    const live = new Map<string, { slot: number; id: number }>();
    const finished: string[] = []; // oldest first, at most `kept`
    let seed = 7;
    const random = (): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed / 2 ** 32;
    };
    for (let step = 0; step < 200_000; step++) {
      const roll = random();
      if (roll < 0.7 || live.size === 0) {
        const callId = `${Math.floor(random() * 1e9)}-${step}@10.0.${step % 255}.1`;
        const entry = record(callId);
        live.set(callId, { slot: table.hold(entry), id: entry.id });
      } else {
        // One of the oldest few: finished calls leave from the middle of probe runs as well as their ends.
        const iterator = live.keys();
        let callId = iterator.next().value!;
        for (let skip = Math.floor(random() * 16); skip > 0; skip--) callId = iterator.next().value ?? callId;
        const { slot, id } = live.get(callId)!;
        live.delete(callId);
        if (roll < 0.97) {
          assert.ok(table.finish(slot, id));
          finished.push(callId);
          if (finished.length > kept) finished.shift();
        } else {
          assert.ok(table.drop(slot, id));
        }
      }
      if (step % 9973 === 0) {
        for (const [callId, { slot }] of live) assert.equal(table.find(callId), slot, callId);
        for (const callId of finished) assert.notEqual(table.find(callId), -1, callId);
        assert.equal(table.size, live.size);
      }
    }
    assert.ok(live.size > 70_000, 'more than one page of live reservations');
    for (const [callId, { slot }] of live) assert.equal(table.find(callId), slot);
    assert.equal(table.find('never@held'), -1);
  });
});
