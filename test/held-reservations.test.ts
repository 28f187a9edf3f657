import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HeldReservations } from '../src/ledger/held-reservations.js';

/** Live reservations by Call-ID and by expiry window: expiry finds exactly the ones due, and only visits due windows. */
interface Held {
  callId: string;
  expiresAt: number;
}
const NOW = Date.parse('2026-12-01T12:00:00Z');

function expireAll(held: HeldReservations<Held>, now: number): string[] {
  const due = held.due(now);
  for (const reservation of due) assert.ok(held.remove(reservation));
  return due.map((reservation) => reservation.callId);
}

describe('held reservations', () => {
  it('gives back exactly the reservations due, across windows, and keeps the rest', () => {
    const held = new HeldReservations<Held>();
    const expiries = [NOW - 25_000, NOW - 1, NOW, NOW + 1, NOW + 9_000, NOW + 600_000];
    expiries.forEach((expiresAt, i) => held.add({ callId: `c${i}`, expiresAt }));
    assert.deepEqual(expireAll(held, NOW).sort(), ['c0', 'c1', 'c2']);
    assert.equal(held.size, 3);
    assert.equal(held.get('c3')?.expiresAt, NOW + 1);
    assert.deepEqual(expireAll(held, NOW), []);
    assert.deepEqual(expireAll(held, NOW + 9_000).sort(), ['c3', 'c4']);
    assert.deepEqual(expireAll(held, NOW + 599_999), []);
    assert.deepEqual(expireAll(held, NOW + 600_000), ['c5']);
    assert.equal(held.size, 0);
  });

  it('finds reservations from long ago (a restart after days) and ones added behind the last expiry pass', () => {
    const held = new HeldReservations<Held>();
    held.add({ callId: 'recent', expiresAt: NOW + 1000 });
    assert.deepEqual(expireAll(held, NOW), []);
    // Back from the journal, or rolled back into the held set after a refused write.
    held.add({ callId: 'days-old', expiresAt: NOW - 3 * 86_400_000 });
    held.add({ callId: 'just-now', expiresAt: NOW - 5 });
    assert.deepEqual(expireAll(held, NOW).sort(), ['days-old', 'just-now']);
    assert.deepEqual(expireAll(held, NOW + 1000), ['recent']);
  });

  it('removes only the very reservation held under a Call-ID', () => {
    const held = new HeldReservations<Held>();
    const first = { callId: 'same', expiresAt: NOW };
    held.add(first);
    assert.equal(held.remove({ callId: 'same', expiresAt: NOW }), false);
    assert.equal(held.remove(first), true);
    assert.equal(held.remove(first), false);
    assert.deepEqual(held.due(NOW + 60_000), []);
  });

  it('at 200k held, expiry takes only the one that is due', () => {
    const held = new HeldReservations<Held>();
    for (let i = 0; i < 200_000; i++) held.add({ callId: `h${i}`, expiresAt: NOW + 60_000 + (i % 7_200) * 1000 });
    held.add({ callId: 'due', expiresAt: NOW - 1 });
    assert.deepEqual(expireAll(held, NOW), ['due']);
    assert.equal(held.size, 200_000);
  });
});
