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
 * The rules whose pattern matches `digits` and that apply to this kind of number (exact rules only at the
 * full length), shallowest first: their terms in `matched.terms`, their depths in `matched.depths`, the count
 * returned. Into scratch arrays rather than through a callback: the closure and the result objects were
 * allocations on every call/auth and call/route. Valid until the next call.
 */
const matched = { terms: new Int32Array(64), depths: new Int32Array(64) };

function matchingRules(index: BlockRuleIndex, digits: string, applies: number): number {
  const { children, termStart } = index.trie;
  let count = 0;
  let node = 0;
  for (let depth = 1; depth <= digits.length; depth++) {
    node = children[node * 10 + digits.charCodeAt(depth - 1) - 48];
    if (node === 0) break;
    const end = termStart[node + 1];
    for (let term = termStart[node]; term < end; term++) {
      if ((index.appliesTo[term] & applies) === 0) continue;
      if (index.exact[term] === 1 && depth !== digits.length) continue;
      if (count === matched.terms.length) {
        const terms = new Int32Array(count * 2);
        const depths = new Int32Array(count * 2);
        terms.set(matched.terms);
        depths.set(matched.depths);
        matched.terms = terms;
        matched.depths = depths;
      }
      matched.terms[count] = term;
      matched.depths[count] = depth;
      count++;
    }
  }
  return count;
}

/** The deepest global or customer-trunk rule matching `digits` (-1: none; the first of the deepest); its depth left in `bestDepth`. */
let bestDepth = 0;

function bestCustomerTerm(index: BlockRuleIndex, digits: string, applies: number, trunk: number): number {
  const count = matchingRules(index, digits, applies);
  let best = -1;
  bestDepth = 0;
  for (let i = 0; i < count; i++) {
    const term = matched.terms[i];
    const scope = index.scope[term];
    if (scope !== BLOCK_SCOPE_GLOBAL && !(scope === BLOCK_SCOPE_CUSTOMER_TRUNK && index.scopeIndex[term] === trunk)) continue;
    if (best < 0 || matched.depths[i] > bestDepth) {
      best = term;
      bestDepth = matched.depths[i];
    }
  }
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
  const dnisDepth = bestDepth;
  const onAni = ani.length > 0 ? bestCustomerTerm(index, ani, BLOCKS_ANI, trunk) : -1;
  const aniDepth = onAni < 0 ? 0 : bestDepth;
  if (onDnis < 0 && onAni < 0) return null;
  return dnisDepth >= aniDepth ? hit(index, onDnis, 'dnis') : hit(index, onAni, 'ani');
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
  // Two walks, no closure: every routed call comes here.
  const onDnis = markCarrierRules(index, dnis, BLOCKS_DNIS, stamp, blockedRule, generation);
  const onAni = ani.length > 0 && markCarrierRules(index, ani, BLOCKS_ANI, stamp, blockedRule, generation);
  return onDnis || onAni;
}

/** markCarrierBlocks for one of the call's numbers: the carrier-trunk rules among those matching `digits`. */
function markCarrierRules(
  index: BlockRuleIndex,
  digits: string,
  applies: number,
  stamp: Int32Array,
  blockedRule: Int32Array,
  generation: number,
): boolean {
  const count = matchingRules(index, digits, applies);
  let any = false;
  for (let i = 0; i < count; i++) {
    const term = matched.terms[i];
    if (index.scope[term] !== BLOCK_SCOPE_CARRIER_TRUNK) continue;
    const carrier = index.scopeIndex[term];
    stamp[carrier] = generation;
    blockedRule[carrier] = index.ruleId[term];
    any = true;
  }
  return any;
}
