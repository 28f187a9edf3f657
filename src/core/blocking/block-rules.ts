import {
  BLOCK_SCOPE_CARRIER_TRUNK,
  BLOCK_SCOPE_CUSTOMER_TRUNK,
  BLOCK_SCOPE_GLOBAL,
  BLOCK_TYPES,
  BLOCKS_ANI,
  BLOCKS_DNIS,
  type BlockRuleIndex,
} from '../snapshot/model.js';
import { findCustomerBlockWithOverlay, markCarrierBlocksWithOverlay } from './block-rule-overlay.js';

/**
 * Block rules: ANI/DNIS deny lists by scope (global, a customer trunk, a
 * carrier trunk), matched exactly or by prefix. A 'number_code' rule applies
 * to both numbers. When several rules match, the most specific (longest
 * pattern) decides the SIP code.
 */
export interface BlockHit {
  ruleId: number;
  sipCode: number;
  blockType: (typeof BLOCK_TYPES)[number];
  /** Which number it matched. */
  number: 'ani' | 'dnis';
}

/**
 * Calls `visit` for every rule whose pattern matches `digits` and that applies
 * to this kind of number (exact rules only at the full length).
 */
function forEachMatchingRule(index: BlockRuleIndex, digits: string, applies: number, visit: (term: number, depth: number) => void): void {
  const { children, termStart } = index.trie;
  let node = 0;
  for (let depth = 1; depth <= digits.length; depth++) {
    node = children[node * 10 + digits.charCodeAt(depth - 1) - 48];
    if (node === 0) return;
    const end = termStart[node + 1];
    for (let term = termStart[node]; term < end; term++) {
      if ((index.appliesTo[term] & applies) === 0) continue;
      if (index.exact[term] === 1 && depth !== digits.length) continue;
      visit(term, depth);
    }
  }
}

/** The deepest global or customer-trunk rule matching `digits`. */
function bestCustomerTerm(index: BlockRuleIndex, digits: string, applies: number, trunk: number): { term: number; depth: number } {
  const best = { term: -1, depth: 0 };
  forEachMatchingRule(index, digits, applies, (term, depth) => {
    const scope = index.scope[term];
    if (scope !== BLOCK_SCOPE_GLOBAL && !(scope === BLOCK_SCOPE_CUSTOMER_TRUNK && index.scopeIndex[term] === trunk)) return;
    if (best.term < 0 || depth > best.depth) {
      best.term = term;
      best.depth = depth;
    }
  });
  return best;
}

export function hit(index: BlockRuleIndex, term: number, number: 'ani' | 'dnis'): BlockHit {
  return { ruleId: index.ruleId[term], sipCode: index.sipCode[term], blockType: BLOCK_TYPES[index.blockType[term]], number };
}

/** Global and customer-trunk rules against a call's numbers (ANI may be '' when withheld). */
export function findCustomerBlock(index: BlockRuleIndex, trunk: number, ani: string, dnis: string): BlockHit | null {
  // An index changed live walks its overlay too (block-rule-overlay.ts); one from a snapshot, this path as it was.
  if (index.overlay !== undefined) return findCustomerBlockWithOverlay(index, trunk, ani, dnis);
  if (index.ruleId.length === 0) return null;
  const onDnis = bestCustomerTerm(index, dnis, BLOCKS_DNIS, trunk);
  const onAni = ani.length > 0 ? bestCustomerTerm(index, ani, BLOCKS_ANI, trunk) : { term: -1, depth: 0 };
  if (onDnis.term < 0 && onAni.term < 0) return null;
  return onDnis.depth >= onAni.depth ? hit(index, onDnis.term, 'dnis') : hit(index, onAni.term, 'ani');
}

/**
 * Carrier-trunk rules matching the call: fills blockedRule[carrier] with the
 * rule id for every carrier a rule blocks (stamped with `generation`, so the
 * caller's arrays need no clearing). Returns whether any matched.
 */
export function markCarrierBlocks(
  index: BlockRuleIndex,
  ani: string,
  dnis: string,
  stamp: Int32Array,
  blockedRule: Int32Array,
  generation: number,
): boolean {
  if (index.overlay !== undefined) return markCarrierBlocksWithOverlay(index, ani, dnis, stamp, blockedRule, generation);
  if (index.ruleId.length === 0) return false;
  let any = false;
  const mark = (term: number): void => {
    if (index.scope[term] !== BLOCK_SCOPE_CARRIER_TRUNK) return;
    const carrier = index.scopeIndex[term];
    stamp[carrier] = generation;
    blockedRule[carrier] = index.ruleId[term];
    any = true;
  };
  forEachMatchingRule(index, dnis, BLOCKS_DNIS, mark);
  if (ani.length > 0) forEachMatchingRule(index, ani, BLOCKS_ANI, mark);
  return any;
}
