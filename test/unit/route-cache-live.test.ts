import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Delta } from '../../src/core/protocol/deltas.js';
import { compileSnapshot } from '../../src/core/snapshot/compile.js';
import { applyDeltas, smallTablesOf } from '../../src/core/snapshot/live.js';
import { routeCachesOutlive } from '../../src/core/lcr/lcr.js';
import { DecisionEngine } from '../../src/sidecar/engine/engine.js';
import { routingTables } from '../fixtures/routing.js';

/**
 * call/route's cache across live changes: an engine that replaces another after a change to tables the cache
 * does not read takes its cache over, and still answers as an engine started afresh on the same snapshot
 * would (block rules are checked per call); any other change starts the cache empty.
 */
const NOW = Date.parse('2026-06-01T00:00:00Z');
const MOBILE = '61400123456';

function cheapestCarrierId(engine: DecisionEngine): number | null {
  const index = engine.lcr.cheapest({
    trunk: engine.customerTrunkIndex(10),
    dnis: MOBILE,
    ani: '6125550100',
    triedCarrierIds: [],
    triedGatewayIds: [],
    now: NOW,
  });
  return index < 0 ? null : engine.snapshot.carriers[index].id;
}

/** The engine the node swaps in after `deltas`, as SnapshotService.applyDeltas builds it. */
function after(engine: DecisionEngine, deltas: Delta[]): DecisionEngine {
  const result = applyDeltas({ compiled: engine.snapshot, tables: engine.tables! }, deltas);
  assert.ok(result.ok, JSON.stringify(result));
  const carry = routeCachesOutlive(deltas.map((delta) => delta.table));
  return new DecisionEngine(result.state.compiled, result.state.tables, carry ? engine : null);
}

describe('the route cache across live changes', () => {
  const tables = routingTables();
  const compiled = compileSnapshot({
    format_version: 1,
    version: 1,
    created_at: '2026-01-01T00:00:00.000Z',
    checksum: 'x',
    tables: { ...tables, delta_seq: 0 },
  }).compiled;

  it('is kept through a block rule, which still bites on the cached route; an allowlist change starts it afresh', () => {
    const first = new DecisionEngine(compiled, smallTablesOf(tables));
    const before = cheapestCarrierId(first);
    assert.notEqual(before, null);
    assert.ok(first.lcr.routeCacheSize > 0);

    // Block the cheapest carrier for this number: the cache is taken over, and the next carrier answers.
    const blocked = after(first, [
      {
        seq: 1,
        table: 'block_rules',
        op: 'upsert',
        id: 90,
        row: {
          id: 90,
          scope: 'carrier_trunk',
          scope_id: before,
          block_type: 'dnis',
          pattern: '614',
          match_type: 'prefix',
          sip_response_code: 403,
          is_active: true,
        },
      },
    ]);
    assert.ok(blocked.lcr.routeCacheSize > 0, 'the cache came over');
    assert.notEqual(blocked.snapshot.blockRules.overlay, undefined, 'the rule rode the overlay on the built rule trie');
    const fresh = new DecisionEngine(blocked.snapshot, blocked.tables);
    assert.notEqual(cheapestCarrierId(blocked), before);
    assert.equal(cheapestCarrierId(blocked), cheapestCarrierId(fresh));

    // The rule deleted again: the carrier comes back through the same kept cache.
    const unblocked = after(blocked, [{ seq: 2, table: 'block_rules', op: 'delete', id: 90, row: null }]);
    assert.ok(unblocked.lcr.routeCacheSize > 0, 'the cache came over');
    assert.equal(cheapestCarrierId(unblocked), before);
    assert.equal(cheapestCarrierId(blocked), cheapestCarrierId(fresh), 'the engine before the delete still blocks');

    // Take the carrier now chosen off the deck's allowlist: the cache starts empty and the answer moves on.
    const chosen = cheapestCarrierId(blocked);
    const allowlistRow = blocked.tables!.rate_deck_allowlist.find((row) => row.carrier_trunk_id === chosen)!;
    const narrowed = after(blocked, [{ seq: 2, table: 'rate_deck_allowlist', op: 'delete', id: allowlistRow.id, row: null }]);
    assert.equal(narrowed.lcr.routeCacheSize, 0, 'started afresh');
    assert.notEqual(cheapestCarrierId(narrowed), chosen);
    assert.equal(cheapestCarrierId(narrowed), cheapestCarrierId(new DecisionEngine(narrowed.snapshot, narrowed.tables)));
  });

  it('outlives only the tables it does not read', () => {
    assert.equal(routeCachesOutlive(['block_rules', 'customer_trunks', 'trunk_ip_auth', 'customer_accounts']), true);
    assert.equal(routeCachesOutlive(['block_rules', 'exchange_rates']), false);
    assert.equal(routeCachesOutlive(['rate_deck_allowlist']), false);
    assert.equal(routeCachesOutlive(['a_table_added_later']), false);
  });

  it('keeps the caches through a batch of setup_call translations and product changes', () => {
    // The partner API's changes are frequent (one per setup_call): a batch of only those must not empty the caches.
    assert.equal(routeCachesOutlive(['call_translations', 'retail_products', 'call_translations']), true);
    assert.equal(routeCachesOutlive(['call_translations', 'exchange_rates']), false);
  });
});
