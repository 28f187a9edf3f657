import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Delta } from '../../src/core/protocol/deltas.js';
import { parseDeltaBatch } from '../../src/core/protocol/deltas.js';
import { applyDeltas } from '../../src/core/snapshot/live.js';
import type { CompiledSnapshot } from '../../src/core/snapshot/model.js';
import type { SnapshotTables } from '../../src/core/snapshot/schema.js';
import { routingTables } from '../fixtures/routing.js';
import { compiledTables, liveStateOf } from '../helpers/live-state.js';

/** The pure half of live changes: deltas applied copy-on-write agree with a compile of the same tables from scratch. */

const blockRule = (id: number, pattern: string, isActive = true): Record<string, unknown> => ({
  id,
  scope: 'customer_trunk',
  scope_id: 10,
  block_type: 'dnis',
  pattern,
  match_type: 'prefix',
  sip_response_code: 403,
  is_active: isActive,
});

/** The indexes a delta may rebuild, as plain data to compare. */
function indexes(snapshot: CompiledSnapshot): unknown {
  return {
    accounts: [...snapshot.accounts],
    customerTrunks: snapshot.customerTrunks,
    customerTrunkById: [...snapshot.customerTrunkById],
    ipAuth: snapshot.ipAuth,
    registrations: [...snapshot.registrations],
    blockRules: snapshot.blockRules,
    exchangeRates: [...snapshot.exchangeRates],
    allowlists: snapshot.decks.map((deck) => deck.allowedCarriers),
    counts: snapshot.counts,
  };
}

describe('applying deltas', () => {
  it('agrees with compiling the changed tables from scratch, for every live kind', () => {
    const tables = routingTables();
    const deltas: Delta[] = [
      { seq: 1, table: 'block_rules', op: 'upsert', id: 50, row: blockRule(50, '61477') },
      { seq: 2, table: 'block_rules', op: 'delete', id: 1, row: null },
      { seq: 3, table: 'customer_accounts', op: 'upsert', id: 2, row: { ...tables.customer_accounts[1], status: 'active' } },
      { seq: 4, table: 'customer_trunks', op: 'upsert', id: 10, row: { ...tables.customer_trunks[0], status: 'suspended', cps_limit: 3 } },
      { seq: 5, table: 'customer_trunks', op: 'upsert', id: 15, row: { ...tables.customer_trunks[0], id: 15, tech_prefix: '77' } },
      { seq: 6, table: 'trunk_ip_auth', op: 'upsert', id: 9, row: { id: 9, trunk_type: 'customer', trunk_id: 15, cidr: '100.64.0.0/10' } },
      {
        seq: 7,
        table: 'exchange_rates',
        op: 'upsert',
        id: 9,
        row: { id: 9, from_currency: 'USD', to_currency: 'AUD', rate: '2.5', effective_at: '2026-01-01T00:00:00.000Z' },
      },
      { seq: 8, table: 'rate_deck_allowlist', op: 'delete', id: 2, row: null },
    ];
    const result = applyDeltas(liveStateOf(tables), deltas);
    assert.ok(result.ok, result.ok ? '' : result.reason);
    assert.equal(result.applied, 8);
    assert.equal(result.state.compiled.deltaSeq, 8);

    const expected: SnapshotTables = {
      ...tables,
      block_rules: [...tables.block_rules.filter((rule) => rule.id !== 1), blockRule(50, '61477') as never],
      customer_accounts: tables.customer_accounts.map((row) => (row.id === 2 ? { ...row, status: 'active' as const } : row)),
      customer_trunks: [
        ...tables.customer_trunks.map((row) => (row.id === 10 ? { ...row, status: 'suspended' as const, cps_limit: 3 } : row)),
        { ...tables.customer_trunks[0], id: 15, tech_prefix: '77' },
      ],
      trunk_ip_auth: [...tables.trunk_ip_auth, { id: 9, trunk_type: 'customer', trunk_id: 15, cidr: '100.64.0.0/10' }],
      exchange_rates: [
        ...tables.exchange_rates,
        { id: 9, from_currency: 'USD', to_currency: 'AUD', rate: '2.5', effective_at: '2026-01-01T00:00:00.000Z' },
      ],
      rate_deck_allowlist: tables.rate_deck_allowlist.filter((row) => row.id !== 2),
    };
    assert.deepEqual(indexes(result.state.compiled), indexes(compiledTables(expected, 8)));
  });

  it('leaves the state it started from untouched and shares what the change does not reach', () => {
    const tables = routingTables();
    const state = liveStateOf(tables);
    const rulesBefore = state.compiled.blockRules;
    const tableBefore = state.tables.block_rules;
    const result = applyDeltas(state, [{ seq: 1, table: 'block_rules', op: 'upsert', id: 50, row: blockRule(50, '61477') }]);
    assert.ok(result.ok);
    assert.equal(state.compiled.blockRules, rulesBefore, 'the old state still holds its own index');
    assert.equal(state.tables.block_rules, tableBefore);
    assert.equal(tableBefore.length, tables.block_rules.length);
    assert.notEqual(result.state.compiled.blockRules, rulesBefore);
    assert.equal(result.state.compiled.rates, state.compiled.rates, 'the rate index is shared, not rebuilt');
    assert.equal(result.state.compiled.ipAuth, state.compiled.ipAuth, 'an index the change does not feed is shared');
    assert.equal(result.state.tables.customer_trunks, state.tables.customer_trunks);
  });

  it('refuses the delete of a trunk other rows still name', () => {
    const state = liveStateOf(routingTables());
    // Checked by reference only (live.ts): the CIDRs and registrations of trunk 10 name it, nothing parses them again.
    const named = applyDeltas(state, [{ seq: 1, table: 'customer_trunks', op: 'delete', id: 10, row: null }]);
    assert.equal(named.ok ? null : named.code, 'invalid');
    assert.match(named.ok ? '' : named.reason, /customer trunk 10 does not exist/);
  });

  it('skips what it already has, and refuses a gap or an invalid row whole', () => {
    const state = liveStateOf(routingTables());
    const first = applyDeltas(state, [{ seq: 1, table: 'block_rules', op: 'upsert', id: 50, row: blockRule(50, '61477') }]);
    assert.ok(first.ok);
    const again = applyDeltas(first.state, [{ seq: 1, table: 'block_rules', op: 'upsert', id: 50, row: blockRule(50, '9') }]);
    assert.ok(again.ok);
    assert.equal(again.applied, 0);
    assert.equal(again.state, first.state);

    const gap = applyDeltas(first.state, [{ seq: 3, table: 'block_rules', op: 'delete', id: 50, row: null }]);
    assert.deepEqual(gap.ok ? null : gap.code, 'gap');

    // A CIDR for a trunk the node does not hold, after a good delta in the same batch: neither is applied.
    const invalid = applyDeltas(first.state, [
      { seq: 2, table: 'block_rules', op: 'delete', id: 50, row: null },
      { seq: 3, table: 'trunk_ip_auth', op: 'upsert', id: 9, row: { id: 9, trunk_type: 'customer', trunk_id: 999, cidr: '10.0.0.0/8' } },
    ]);
    assert.deepEqual(invalid.ok ? null : invalid.code, 'invalid');
    assert.equal(first.state.compiled.deltaSeq, 1);
    assert.equal(first.state.tables.block_rules.at(-1)?.id, 50);

    const badShape = applyDeltas(first.state, [{ seq: 2, table: 'block_rules', op: 'upsert', id: 51, row: { ...blockRule(51, 'abc') } }]);
    assert.equal(badShape.ok, false);
  });

  it('takes only well-formed batches off the wire', () => {
    const good = { deltas: [{ seq: 1, table: 'block_rules', op: 'delete', id: 3, row: null }], last_seq: 1, snapshot_required: false };
    assert.deepEqual(parseDeltaBatch(good), good);
    for (const bad of [
      null,
      { ...good, last_seq: -1 },
      { ...good, deltas: [{ seq: 1, table: 'rate_deck_rates', op: 'delete', id: 3, row: null }] },
      { ...good, deltas: [{ seq: 1, table: 'block_rules', op: 'upsert', id: 3, row: null }] },
      { ...good, deltas: [{ seq: 1, table: 'block_rules', op: 'upsert', id: 3, row: { id: 4 } }] },
      { ...good, deltas: [{ seq: 1, table: 'block_rules', op: 'drop', id: 3, row: null }] },
    ])
      assert.equal(parseDeltaBatch(bad), null, JSON.stringify(bad));
  });
});
