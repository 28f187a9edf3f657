import { buildPrefixTrie } from '../trie/prefix-trie.js';
import {
  BLOCK_SCOPE_CARRIER_TRUNK,
  BLOCK_SCOPE_CUSTOMER_TRUNK,
  BLOCK_SCOPE_GLOBAL,
  BLOCK_TYPES,
  BLOCKS_ANI,
  BLOCKS_DNIS,
  type BlockRuleIndex,
} from './model.js';
import type { SmallTables, SnapshotTables } from './schema.js';
import { idPosition } from './rows.js';

/**
 * The block rules' index (one digit trie for every scope, model.ts) and its live changes (issue 18). Building
 * the trie of the wholesale world's 5,000 rules costs the event loop milliseconds, so a block-rule delta does
 * not rebuild it: it gives a new index sharing the built trie, with an overlay holding every rule changed since
 * that trie was built, compiled on its own (a few rules). A lookup walks both and skips the built trie's entries
 * the overlay replaces (block-rules.ts). The built trie is never written: a request holding the index before
 * the delta keeps seeing the rules before it. The next snapshot brings a freshly built trie without overlay.
 */

/**
 * Past this many rules changed since the trie was built, the next change builds the index afresh: every change
 * compiles the overlay again, so its size bounds what a change costs.
 */
export const BLOCK_RULE_OVERLAY_LIMIT = 512;

export function compileBlockRules(
  tables: Pick<SnapshotTables, 'block_rules'>,
  customerTrunkById: Map<number, number>,
  carrierById: Map<number, number>,
): BlockRuleIndex {
  // 'route' scope has no defined target in the contract; such rules are kept in the store but not enforced here.
  const rules = tables.block_rules.filter((rule) => rule.is_active && rule.scope !== 'route');
  const { trie, order } = buildPrefixTrie(rules.map((rule) => rule.pattern));
  const n = rules.length;
  const index: BlockRuleIndex = {
    trie,
    ruleId: new Int32Array(n),
    scope: new Uint8Array(n),
    scopeIndex: new Int32Array(n),
    appliesTo: new Uint8Array(n),
    exact: new Uint8Array(n),
    sipCode: new Int32Array(n),
    blockType: new Uint8Array(n),
  };
  for (let position = 0; position < n; position++) {
    const rule = rules[order[position]];
    index.ruleId[position] = rule.id;
    if (rule.scope === 'global') {
      index.scope[position] = BLOCK_SCOPE_GLOBAL;
      index.scopeIndex[position] = -1;
    } else if (rule.scope === 'customer_trunk') {
      index.scope[position] = BLOCK_SCOPE_CUSTOMER_TRUNK;
      index.scopeIndex[position] = customerTrunkById.get(rule.scope_id!)!;
    } else {
      index.scope[position] = BLOCK_SCOPE_CARRIER_TRUNK;
      index.scopeIndex[position] = carrierById.get(rule.scope_id!)!;
    }
    index.appliesTo[position] =
      rule.block_type === 'ani' ? BLOCKS_ANI : rule.block_type === 'dnis' ? BLOCKS_DNIS : BLOCKS_ANI | BLOCKS_DNIS;
    index.exact[position] = rule.match_type === 'exact' ? 1 : 0;
    index.sipCode[position] = rule.sip_response_code;
    index.blockType[position] = BLOCK_TYPES.indexOf(rule.block_type);
  }
  return index;
}

/**
 * The index after live changes to the `touched` block_rules rows (`tables`: after the change, in id order), the
 * trunks' and carriers' dense indexes unchanged: `previous`'s built trie with an overlay of every rule changed
 * since it was built. Null past BLOCK_RULE_OVERLAY_LIMIT (the caller builds afresh).
 */
export function reviseBlockRules(
  previous: BlockRuleIndex,
  tables: Pick<SmallTables, 'block_rules'>,
  touched: ReadonlySet<number>,
  customerTrunkById: Map<number, number>,
  carrierById: Map<number, number>,
): BlockRuleIndex | null {
  const replaced = new Set(previous.overlay?.replaced);
  for (const id of touched) replaced.add(id);
  if (replaced.size > BLOCK_RULE_OVERLAY_LIMIT) return null;
  const rows: SnapshotTables['block_rules'] = [];
  for (const id of [...replaced].sort((a, b) => a - b)) {
    const at = idPosition(tables.block_rules, id);
    if (tables.block_rules[at]?.id === id) rows.push(tables.block_rules[at]);
  }
  const builtIds = previous.overlay?.builtIds ?? new Set(previous.ruleId);
  let replacedBuilt = 0;
  for (const id of replaced) if (builtIds.has(id)) replacedBuilt++;
  const rules = compileBlockRules({ block_rules: rows }, customerTrunkById, carrierById);
  // The built trie's columns are shared, never written; only the overlay is new.
  return { ...previous, overlay: { rules, replaced, builtIds, count: previous.ruleId.length - replacedBuilt + rules.ruleId.length } };
}

/** How many rules the index enforces, its overlay's included. */
export function blockRuleCount(index: BlockRuleIndex): number {
  return index.overlay?.count ?? index.ruleId.length;
}
