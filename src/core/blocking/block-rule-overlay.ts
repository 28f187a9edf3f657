import {
  BLOCK_SCOPE_CARRIER_TRUNK,
  BLOCK_SCOPE_CUSTOMER_TRUNK,
  BLOCK_SCOPE_GLOBAL,
  BLOCKS_ANI,
  BLOCKS_DNIS,
  type BlockRuleIndex,
  type BlockRuleOverlay,
} from '../snapshot/model.js';
import { hit, type BlockHit } from './block-rules.js';

/**
 * Block-rule lookups on an index changed live (src/core/snapshot/block-rule-index.ts): the built trie and the
 * overlay of rules changed since, walked together. Kept apart from block-rules.ts, whose single-trie walk every
 * index from a snapshot takes: merging two tries there made every call's lookups ~10–40% dearer
 * (docs/performance-log.md, 2026-12-06), so the two exported lookups repeat their small scope logic here.
 */

/** A rule that matched: the index holding it (the built trie's or its overlay's), its position there, at what depth. */
type Visit = (index: BlockRuleIndex, term: number, depth: number) => void;

/**
 * Calls `visit` for every rule whose pattern matches `digits` and that applies to this kind of number (exact
 * rules only at the full length), shallow to deep and, at one depth, in rule id order. With an overlay of live
 * changes (block-rule-index.ts) the overlay's trie is walked in step, its rules merged in by id, and the built
 * trie's rules it replaces skipped: the same rules, in the same order, as a trie built from scratch, so the
 * same rule decides.
 */
function forEachMatchingRule(index: BlockRuleIndex, overlay: BlockRuleOverlay, digits: string, applies: number, visit: Visit): void {
  const built = index.trie;
  const extra = overlay.rules;
  let node = 0;
  let extraNode = 0;
  for (let depth = 1; depth <= digits.length; depth++) {
    const digit = digits.charCodeAt(depth - 1) - 48;
    // 0 (or past the array, for a character that is not a digit): no child.
    if (node >= 0) node = built.children[node * 10 + digit] > 0 ? built.children[node * 10 + digit] : -1;
    if (extraNode >= 0) extraNode = extra.trie.children[extraNode * 10 + digit] > 0 ? extra.trie.children[extraNode * 10 + digit] : -1;
    if (node < 0 && extraNode < 0) return;
    let term = node < 0 ? 0 : built.termStart[node];
    const end = node < 0 ? 0 : built.termStart[node + 1];
    let extraTerm = extraNode < 0 ? 0 : extra.trie.termStart[extraNode];
    const extraEnd = extraNode < 0 ? 0 : extra.trie.termStart[extraNode + 1];
    while (term < end || extraTerm < extraEnd) {
      if (extraTerm >= extraEnd || (term < end && index.ruleId[term] < extra.ruleId[extraTerm])) {
        if (!overlay.replaced.has(index.ruleId[term])) visitIfApplies(index, term, depth, digits, applies, visit);
        term++;
      } else {
        visitIfApplies(extra, extraTerm, depth, digits, applies, visit);
        extraTerm++;
      }
    }
  }
}

function visitIfApplies(index: BlockRuleIndex, term: number, depth: number, digits: string, applies: number, visit: Visit): void {
  if ((index.appliesTo[term] & applies) === 0) return;
  if (index.exact[term] === 1 && depth !== digits.length) return;
  visit(index, term, depth);
}

/** The deepest global or customer-trunk rule matching `digits` (the lowest id among equally deep ones). */
function bestCustomerTerm(
  index: BlockRuleIndex,
  overlay: BlockRuleOverlay,
  digits: string,
  applies: number,
  trunk: number,
): { index: BlockRuleIndex; term: number; depth: number } {
  const best = { index, term: -1, depth: 0 };
  forEachMatchingRule(index, overlay, digits, applies, (holder, term, depth) => {
    const scope = holder.scope[term];
    if (scope !== BLOCK_SCOPE_GLOBAL && !(scope === BLOCK_SCOPE_CUSTOMER_TRUNK && holder.scopeIndex[term] === trunk)) return;
    if (best.term < 0 || depth > best.depth) {
      best.index = holder;
      best.term = term;
      best.depth = depth;
    }
  });
  return best;
}

/** findCustomerBlock (block-rules.ts) on an index with an overlay. */
export function findCustomerBlockWithOverlay(index: BlockRuleIndex, trunk: number, ani: string, dnis: string): BlockHit | null {
  const overlay = index.overlay!;
  const onDnis = bestCustomerTerm(index, overlay, dnis, BLOCKS_DNIS, trunk);
  const onAni = ani.length > 0 ? bestCustomerTerm(index, overlay, ani, BLOCKS_ANI, trunk) : { index, term: -1, depth: 0 };
  if (onDnis.term < 0 && onAni.term < 0) return null;
  return onDnis.depth >= onAni.depth ? hit(onDnis.index, onDnis.term, 'dnis') : hit(onAni.index, onAni.term, 'ani');
}

/** markCarrierBlocks (block-rules.ts) on an index with an overlay. */
export function markCarrierBlocksWithOverlay(
  index: BlockRuleIndex,
  ani: string,
  dnis: string,
  stamp: Int32Array,
  blockedRule: Int32Array,
  generation: number,
): boolean {
  const overlay = index.overlay!;
  let any = false;
  const mark = (holder: BlockRuleIndex, term: number): void => {
    if (holder.scope[term] !== BLOCK_SCOPE_CARRIER_TRUNK) return;
    const carrier = holder.scopeIndex[term];
    stamp[carrier] = generation;
    blockedRule[carrier] = holder.ruleId[term];
    any = true;
  };
  forEachMatchingRule(index, overlay, dnis, BLOCKS_DNIS, mark);
  if (ani.length > 0) forEachMatchingRule(index, overlay, ani, BLOCKS_ANI, mark);
  return any;
}
