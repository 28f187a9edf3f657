import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Delta } from '../../src/core/protocol/deltas.js';
import { applyDeltas, type LiveState } from '../../src/core/snapshot/live.js';
import type { CompiledSnapshot } from '../../src/core/snapshot/model.js';
import type { SnapshotTables } from '../../src/core/snapshot/schema.js';
import { routeCachesOutlive } from '../../src/core/lcr/lcr.js';
import { routingTables } from '../fixtures/routing.js';
import { compiledTables, liveStateOf } from '../helpers/live-state.js';

/**
 * The routing kinds of live change (carriers, gateways, failover rules, LCR config, SIP registrations): applied
 * copy-on-write they agree with a compile from scratch, rebuild the dense-indexed indexes only when a carrier's
 * index moved, and leave the state a request may still hold exactly as it was.
 */

/** What routing reads of a compiled snapshot, as plain data to compare. */
function routing(snapshot: CompiledSnapshot): unknown {
  return {
    carriers: snapshot.carriers.map((carrier) => ({ ...carrier, failoverRules: [...carrier.failoverRules] })),
    carrierById: [...snapshot.carrierById],
    decks: snapshot.decks,
    defaultLcrConfig: snapshot.defaultLcrConfig,
    blockRules: snapshot.blockRules,
    registrations: [...snapshot.registrations],
    customerTrunks: snapshot.customerTrunks,
    counts: snapshot.counts,
  };
}

/** Applies `deltas` (numbered from 1) and checks the result against a compile of `expected` from scratch. */
function appliedAgrees(
  tables: SnapshotTables,
  deltas: Omit<Delta, 'seq'>[],
  expected: SnapshotTables,
): { before: LiveState; after: LiveState } {
  const before = liveStateOf(tables);
  const beforeRouting = structuredClone(routing(before.compiled));
  const result = applyDeltas(
    before,
    deltas.map((delta, i) => ({ ...delta, seq: i + 1 })),
  );
  assert.ok(result.ok, result.ok ? '' : result.reason);
  assert.deepEqual(routing(result.state.compiled), routing(compiledTables(expected, deltas.length)));
  assert.deepEqual(routing(before.compiled), beforeRouting, 'a request holding the old state sees it whole, as it was');
  return { before, after: result.state };
}

const gateway = (id: number, carrierTrunkId: number, ip: string, status = 'active'): Record<string, unknown> => ({
  id,
  carrier_trunk_id: carrierTrunkId,
  ip_address: ip,
  port: 5060,
  weight: 1,
  priority: 1,
  status,
});

describe('live routing changes', () => {
  it('a carrier limit change recompiles that carrier alone and keeps block rules, allowlists and the other carriers', () => {
    const tables = routingTables();
    const changedRow = { ...tables.carrier_trunks[1], cps_limit: 7, status: 'suspended' as const };
    const { before, after } = appliedAgrees(tables, [{ table: 'carrier_trunks', op: 'upsert', id: 21, row: changedRow }], {
      ...tables,
      carrier_trunks: tables.carrier_trunks.map((row) => (row.id === 21 ? changedRow : row)),
    });
    const carrier = after.compiled.carriers[after.compiled.carrierById.get(21)!];
    assert.equal(carrier.cpsLimit, 7);
    assert.equal(carrier.eligibility, 'carrier_not_active');
    assert.equal(after.compiled.carriers[0], before.compiled.carriers[0], 'an untouched carrier is reused');
    assert.equal(after.compiled.blockRules, before.compiled.blockRules);
    assert.equal(after.compiled.decks, before.compiled.decks);
    assert.equal(after.compiled.rates, before.compiled.rates);
  });

  it('a carrier that shifts the dense indexes rebuilds the block rules and allowlists that hold them', () => {
    const tables = routingTables();
    const newcomer = { ...tables.carrier_trunks[0], id: 19, name: 'Carrier Z - first' };
    const { before, after } = appliedAgrees(
      tables,
      [
        { table: 'carrier_trunks', op: 'upsert', id: 19, row: newcomer },
        { table: 'carrier_gateways', op: 'upsert', id: 191, row: gateway(191, 19, '192.0.2.19') },
      ],
      {
        ...tables,
        carrier_trunks: [newcomer, ...tables.carrier_trunks],
        carrier_gateways: [...tables.carrier_gateways, gateway(191, 19, '192.0.2.19') as never],
      },
    );
    assert.equal(after.compiled.carrierById.get(20), 1);
    assert.notEqual(after.compiled.blockRules, before.compiled.blockRules);
    assert.notEqual(after.compiled.decks, before.compiled.decks);
  });

  it('gateways and failover rules change their carrier only', () => {
    const tables = routingTables();
    const moved = gateway(212, 21, '198.51.100.99');
    const rule = { id: 3, carrier_trunk_id: 21, sip_code: 503, action: 'retry_next' };
    const { after } = appliedAgrees(
      tables,
      [
        { table: 'carrier_gateways', op: 'upsert', id: 212, row: moved },
        { table: 'carrier_gateways', op: 'delete', id: 221, row: null },
        { table: 'failover_rules', op: 'upsert', id: 3, row: rule },
        { table: 'failover_rules', op: 'delete', id: 1, row: null },
      ],
      {
        ...tables,
        carrier_gateways: tables.carrier_gateways.filter((row) => row.id !== 221).map((row) => (row.id === 212 ? (moved as never) : row)),
        failover_rules: [tables.failover_rules[1], rule as never],
      },
    );
    const carrierC = after.compiled.carriers[after.compiled.carrierById.get(22)!];
    assert.equal(carrierC.eligibility, 'no_active_gateway');
    assert.equal(after.compiled.carriers[after.compiled.carrierById.get(21)!].failoverRules.get(503), 'retry_next');
    assert.equal(after.compiled.carriers[0].failoverRules.has(486), false);
  });

  it('LCR config feeds the decks margin rules, the system-wide row every deck without its own', () => {
    const tables = routingTables();
    const global = { id: 1, rate_deck_id: null, block_if_cost_exceeds_sell: false, acceptable_loss_pct: '2.5', cache_ttl_seconds: 60 };
    const own = { id: 2, rate_deck_id: 101, block_if_cost_exceeds_sell: true, acceptable_loss_pct: '0', cache_ttl_seconds: 30 };
    const { before, after } = appliedAgrees(
      tables,
      [
        { table: 'lcr_config', op: 'upsert', id: 1, row: global },
        { table: 'lcr_config', op: 'upsert', id: 2, row: own },
      ],
      { ...tables, lcr_config: [global, own] },
    );
    assert.equal(after.compiled.defaultLcrConfig.blockIfCostExceedsSell, false);
    assert.equal(after.compiled.decks[after.compiled.deckById.get(1)!].lcrConfig.acceptableLossPct, '2.5');
    assert.equal(after.compiled.decks[after.compiled.deckById.get(101)!].lcrConfig.cacheTtlSeconds, 30);
    assert.equal(after.compiled.blockRules, before.compiled.blockRules);
  });

  it('a SIP registration rebuilds the registrations and nothing else', () => {
    const tables = routingTables();
    const enabled = { ...tables.sip_registrations[1], status: 'active' };
    const { before, after } = appliedAgrees(tables, [{ table: 'sip_registrations', op: 'upsert', id: 2, row: enabled }], {
      ...tables,
      sip_registrations: [tables.sip_registrations[0], enabled as never],
    });
    assert.equal(after.compiled.registrations.size, before.compiled.registrations.size + 1);
    assert.equal(after.compiled.carriers, before.compiled.carriers);
    assert.equal(after.compiled.ipAuth, before.compiled.ipAuth);
  });

  it('a customer trunk limit change reuses every other compiled trunk', () => {
    const tables = routingTables();
    const changedRow = { ...tables.customer_trunks[1], cps_limit: 3 };
    const { before, after } = appliedAgrees(tables, [{ table: 'customer_trunks', op: 'upsert', id: changedRow.id, row: changedRow }], {
      ...tables,
      customer_trunks: tables.customer_trunks.map((row) => (row.id === changedRow.id ? changedRow : row)),
    });
    assert.equal(after.compiled.customerTrunks[0], before.compiled.customerTrunks[0]);
    assert.equal(after.compiled.customerTrunks[1].cpsLimit, 3);
  });

  it('refuses a change naming a carrier, trunk or deck the node does not hold, and a carrier delete still named', () => {
    const state = liveStateOf(routingTables());
    for (const delta of [
      { table: 'carrier_gateways', op: 'upsert', id: 299, row: gateway(299, 99, '192.0.2.99') },
      { table: 'failover_rules', op: 'upsert', id: 9, row: { id: 9, carrier_trunk_id: 99, sip_code: 500, action: 'retry_next' } },
      {
        table: 'lcr_config',
        op: 'upsert',
        id: 9,
        row: { id: 9, rate_deck_id: 999, block_if_cost_exceeds_sell: true, acceptable_loss_pct: '0', cache_ttl_seconds: 1 },
      },
      { table: 'sip_registrations', op: 'upsert', id: 9, row: { ...state.tables.sip_registrations[0], id: 9, customer_trunk_id: 999 } },
      // Carrier 20 still has gateways, failover rules, an allowlist row and a cost deck.
      { table: 'carrier_trunks', op: 'delete', id: 20, row: null },
    ] as Omit<Delta, 'seq'>[]) {
      const result = applyDeltas(state, [{ ...delta, seq: 1 }]);
      assert.equal(result.ok ? 'applied' : result.code, 'invalid', `${delta.table} ${delta.op} ${delta.id}`);
    }
  });

  it('route caches do not outlive a change to carriers, gateways, failover or LCR config; they do a registration', () => {
    for (const table of ['carrier_trunks', 'carrier_gateways', 'failover_rules', 'lcr_config'])
      assert.equal(routeCachesOutlive(['block_rules', table]), false, table);
    assert.equal(routeCachesOutlive(['sip_registrations']), true);
  });
});
