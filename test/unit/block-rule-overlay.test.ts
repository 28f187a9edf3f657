import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { findCustomerBlock, markCarrierBlocks } from '../../src/core/blocking/block-rules.js';
import type { Delta } from '../../src/core/protocol/deltas.js';
import { BLOCK_RULE_OVERLAY_LIMIT, reviseBlockRules } from '../../src/core/snapshot/block-rule-index.js';
import { applyDeltas } from '../../src/core/snapshot/live.js';
import type { BlockRuleIndex, CompiledSnapshot } from '../../src/core/snapshot/model.js';
import { allRows } from '../../src/core/snapshot/row-chunks.js';
import type { BlockRuleRow, SnapshotTables } from '../../src/core/snapshot/schema.js';
import { routingTables } from '../fixtures/routing.js';
import { mulberry32 } from '../helpers/fuzz-requests.js';
import { compiledTables, liveStateOf } from '../helpers/live-state.js';

/**
 * Block-rule deltas ride an overlay on the built trie (block-rule-index.ts): whatever the sequence of rules
 * created, edited, switched off and deleted, every call must be blocked (or not) by the same rule as with an
 * index built from scratch from the same rows.
 */

/** Numbers over two digits, so that random patterns over the same digits match often, at every depth. */
const NUMBERS = ['', '1', '12', '121', '1212', '2121', '2211', '1111', '12121', '21212', '222', '11'];

function randomRule(random: () => number, id: number): BlockRuleRow {
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)];
  const scope = pick(['global', 'customer_trunk', 'carrier_trunk', 'route'] as const);
  const length = 1 + Math.floor(random() * 4);
  return {
    id,
    scope,
    scope_id:
      scope === 'customer_trunk'
        ? pick([10, 11, 12, 14])
        : scope === 'carrier_trunk'
          ? pick([20, 21, 22, 23, 24])
          : scope === 'route'
            ? 1
            : null,
    block_type: pick(['ani', 'dnis', 'number_code'] as const),
    pattern: Array.from({ length }, () => pick(['1', '2'])).join(''),
    match_type: pick(['exact', 'prefix'] as const),
    sip_response_code: pick([403, 488, 603]),
    is_active: random() < 0.85,
  };
}

/** Every answer the block rules give, for every trunk and every pair of numbers. */
function answers(snapshot: CompiledSnapshot): string[] {
  const carriers = snapshot.carriers.length;
  const stamp = new Int32Array(carriers);
  const blockedRule = new Int32Array(carriers);
  let generation = 0;
  const seen: string[] = [];
  for (const ani of NUMBERS)
    for (const dnis of NUMBERS) {
      if (dnis === '') continue;
      for (let trunk = 0; trunk < snapshot.customerTrunks.length; trunk++)
        seen.push(JSON.stringify(findCustomerBlock(snapshot.blockRules, trunk, ani, dnis)));
      generation++;
      markCarrierBlocks(snapshot.blockRules, ani, dnis, stamp, blockedRule, generation);
      seen.push(Array.from(blockedRule, (rule, carrier) => (stamp[carrier] === generation ? rule : 0)).join(','));
    }
  return seen;
}

describe('block rules after live changes', () => {
  it('block as an index built from scratch, through random creations, edits, switch-offs and deletes', () => {
    const random = mulberry32(1818);
    const base = routingTables();
    const initial: BlockRuleRow[] = [...base.block_rules];
    for (let id = 10; id < 70; id++) initial.push(randomRule(random, id));
    let state = liveStateOf({ ...base, block_rules: initial });
    let seq = 0;
    let nextId = 70;
    let overlaid = 0;
    for (let step = 0; step < 150; step++) {
      const deltas: Delta[] = [];
      for (let k = Math.floor(random() * 3); k >= 0; k--) {
        const rules = state.tables.block_rules;
        const roll = random();
        if (roll < 0.35 || rules.length === 0) {
          const row = randomRule(random, nextId++);
          deltas.push({ seq: ++seq, table: 'block_rules', op: 'upsert', id: row.id, row: row as unknown as Record<string, unknown> });
        } else if (roll < 0.75) {
          // An edit: a new pattern, scope or code, or switched on or off.
          const id = rules[Math.floor(random() * rules.length)].id;
          const row = randomRule(random, id);
          deltas.push({ seq: ++seq, table: 'block_rules', op: 'upsert', id, row: row as unknown as Record<string, unknown> });
        } else {
          deltas.push({ seq: ++seq, table: 'block_rules', op: 'delete', id: rules[Math.floor(random() * rules.length)].id, row: null });
        }
      }
      const previous = state;
      const before = answers(previous.compiled);
      const result = applyDeltas(state, deltas);
      assert.ok(result.ok, result.ok ? '' : result.reason);
      state = result.state;
      if (state.compiled.blockRules.overlay !== undefined) overlaid++;
      const tables: SnapshotTables = {
        ...state.tables,
        trunk_ip_auth: allRows(state.tables.trunk_ip_auth),
        rate_deck_rates: base.rate_deck_rates,
      };
      const scratch = compiledTables(tables, seq);
      assert.deepEqual(answers(state.compiled), answers(scratch), `step ${step}`);
      assert.equal(state.compiled.counts.block_rules, scratch.counts.block_rules, `step ${step}: rules enforced`);
      assert.deepEqual(answers(previous.compiled), before, `step ${step}: a request holding the index before sees the rules before`);
    }
    assert.equal(overlaid, 150, 'every change went through the overlay, none built the trie again');
  });

  it('builds afresh past the overlay limit', () => {
    const state = liveStateOf(routingTables());
    const index: BlockRuleIndex = state.compiled.blockRules;
    const touched = new Set(Array.from({ length: BLOCK_RULE_OVERLAY_LIMIT + 1 }, (_, i) => 1000 + i));
    const revised = reviseBlockRules(index, state.tables, touched, state.compiled.customerTrunkById, state.compiled.carrierById);
    assert.equal(revised, null);
  });
});
