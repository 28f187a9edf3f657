import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Delta } from '../../src/core/protocol/deltas.js';
import { applyDeltas, type LiveState } from '../../src/core/snapshot/live.js';
import { allRows, CHUNK_ROWS } from '../../src/core/snapshot/row-chunks.js';
import { routingTables } from '../fixtures/routing.js';
import { cidrAnswer } from '../helpers/cidr.js';
import { mulberry32 } from '../helpers/fuzz-requests.js';
import { compiledTables, liveStateOf } from '../helpers/live-state.js';

const PROBES = [
  ...Array.from({ length: 64 }, (_, i) => `203.0.113.${i * 4 + 2}`),
  ...Array.from({ length: 32 }, (_, i) => `198.51.100.${i * 8 + 1}`),
  ...Array.from({ length: 32 }, (_, i) => `2001:db8::${(i * 0x801).toString(16)}`),
  '::ffff:203.0.113.10',
  '192.0.2.1',
];

/**
 * Random CIDR and trunk status changes, each batch checked against the same tables compiled from scratch.
 * `extraRows` more trunk_ip_auth rows (networks the probes do not reach) spread the table over several chunks
 * (row-chunks.ts), so writes and a trunk's rows land in different chunks.
 */
function randomChanges(extraRows: number): number {
  const random = mulberry32(18);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)];
  const networks = [
    '203.0.113.0/24',
    '203.0.113.0/26',
    '203.0.113.10/32',
    '203.0.113.64/27',
    '198.51.100.0/24',
    '198.51.100.0/25',
    '198.51.100.9/32',
    '2001:db8::/32',
    '2001:db8::/112',
    '2001:db8::801/128',
  ];
  const base = routingTables();
  const extra = Array.from({ length: extraRows }, (_, i) => ({
    // Even ids, the new rows' odd and far apart: new rows land among them, in every chunk.
    id: 8 + 2 * i,
    trunk_type: i % 5 === 0 ? ('carrier' as const) : ('customer' as const),
    trunk_id: i % 5 === 0 ? 20 : [10, 11, 12, 14][i % 4],
    cidr: `10.${i >> 8}.${i & 255}.0/24`,
  }));
  let state: LiveState = liveStateOf({ ...base, trunk_ip_auth: [...base.trunk_ip_auth, ...extra] });
  const trunkIds = state.tables.customer_trunks.map((trunk) => trunk.id);
  let seq = 0;
  let nextId = 9;
  let overlaid = 0;
  for (let step = 0; step < 80; step++) {
    const deltas: Delta[] = [];
    for (let k = Math.floor(random() * 3); k >= 0; k--) {
      const rows = allRows(state.tables.trunk_ip_auth);
      const roll = random();
      if (roll < 0.4) {
        const id = nextId;
        nextId += 2;
        deltas.push({
          seq: ++seq,
          table: 'trunk_ip_auth',
          op: 'upsert',
          id,
          row: { id, trunk_type: 'customer', trunk_id: pick(trunkIds), cidr: pick(networks) },
        });
      } else if (roll < 0.6 && rows.length > 0) {
        deltas.push({ seq: ++seq, table: 'trunk_ip_auth', op: 'delete', id: pick(rows).id, row: null });
      } else if (roll < 0.8 && rows.length > 0) {
        // A row moved to another network or customer trunk (a carrier's row becomes a customer's).
        const row = pick(rows);
        deltas.push({
          seq: ++seq,
          table: 'trunk_ip_auth',
          op: 'upsert',
          id: row.id,
          row: { ...row, trunk_type: 'customer', trunk_id: pick(trunkIds), cidr: pick(networks) },
        });
      } else {
        const trunk = pick(state.tables.customer_trunks);
        const row = { ...trunk, status: trunk.status === 'active' ? 'suspended' : 'active' };
        deltas.push({ seq: ++seq, table: 'customer_trunks', op: 'upsert', id: trunk.id, row });
      }
    }
    const previous = state;
    const answersBefore = PROBES.map((ip) => cidrAnswer(previous.compiled.ipAuth, ip));
    const result = applyDeltas(state, deltas);
    assert.ok(result.ok, result.ok ? '' : result.reason);
    state = result.state;
    if (state.compiled.ipAuth.overlay !== undefined) overlaid++;
    const scratch = compiledTables(
      { ...state.tables, trunk_ip_auth: allRows(state.tables.trunk_ip_auth), rate_deck_rates: routingTables().rate_deck_rates },
      seq,
    );
    for (const ip of PROBES) assert.deepEqual(cidrAnswer(state.compiled.ipAuth, ip), cidrAnswer(scratch.ipAuth, ip), `step ${step}: ${ip}`);
    assert.deepEqual(
      PROBES.map((ip) => cidrAnswer(previous.compiled.ipAuth, ip)),
      answersBefore,
      'a request holding the state before still sees the networks before',
    );
  }
  return overlaid;
}

describe('IP auth after live changes', () => {
  it('answers as the same tables compiled from scratch, through random CIDR and trunk status changes', () => {
    const overlaid = randomChanges(0);
    assert.ok(overlaid > 40, `the changes went through the overlay (${overlaid} of 80), not a rebuild each time`);
  });

  it('does so with the rows spread over many chunks', () => {
    assert.ok(randomChanges(4 * CHUNK_ROWS) > 0);
  });
});
