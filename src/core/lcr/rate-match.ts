import type { RateIndex } from '../snapshot/model.js';

/**
 * Longest effective prefix match in several rate decks with one walk down the
 * number's digits. Scratch arrays are sized per snapshot and reused by every
 * request (the event loop runs one decision at a time), so a match allocates
 * nothing. A row whose effective_at is still in the future does not exist yet:
 * the walk falls back to the next shorter prefix that is in force.
 */
export class DeckMatcher {
  private readonly wanted: Int32Array;
  private readonly bestTerm: Int32Array;
  private readonly bestDepth: Int32Array;
  private generation = 0;

  constructor(deckCount: number) {
    this.wanted = new Int32Array(deckCount);
    this.bestTerm = new Int32Array(deckCount).fill(-1);
    this.bestDepth = new Int32Array(deckCount);
  }

  /** Starts a new match: no deck is wanted. */
  begin(): void {
    this.generation++;
  }

  want(deck: number): void {
    this.wanted[deck] = this.generation;
    this.bestTerm[deck] = -1;
    this.bestDepth[deck] = -1;
  }

  /** Written out rather than shared with the block rules' walk: the hottest loop of a call, with no callback per term. */
  walk(index: RateIndex, digits: string, now: number): void {
    const { children, termStart } = index.trie;
    const { deck: deckOf, effectiveAt } = index;
    const { wanted, bestTerm, bestDepth, generation } = this;
    let node = 0;
    for (let depth = 1; depth <= digits.length; depth++) {
      node = children[node * 10 + digits.charCodeAt(depth - 1) - 48];
      if (node === 0) return;
      const end = termStart[node + 1];
      for (let term = termStart[node]; term < end; term++) {
        const deck = deckOf[term];
        // Rows of one deck sit newest first: the first one in force at this depth wins.
        if (wanted[deck] !== generation || effectiveAt[term] > now || bestDepth[deck] === depth) continue;
        bestTerm[deck] = term;
        bestDepth[deck] = depth;
      }
    }
  }

  /**
   * The match of one deck alone (what begin, want(deck), walk and match answer), without looking at the other
   * decks' rows: a node's rows sit by deck (compileRates), so the deck's are found by a binary search, where
   * walk reads every deck's rows at every node of the number (admission's price row, looked up per call).
   */
  static matchOne(index: RateIndex, deck: number, digits: string, now: number): number {
    const { children, termStart } = index.trie;
    const { deck: deckOf, effectiveAt } = index;
    let node = 0;
    let best = -1;
    for (let depth = 0; depth < digits.length; depth++) {
      node = children[node * 10 + digits.charCodeAt(depth) - 48];
      if (node === 0) break;
      let low = termStart[node];
      let high = termStart[node + 1];
      const end = high;
      // The first of the node's rows whose deck is not below `deck`.
      while (low < high) {
        const middle = (low + high) >>> 1;
        if (deckOf[middle] < deck) low = middle + 1;
        else high = middle;
      }
      // Newest first: the first in force wins at this depth, and a deeper one over it.
      for (let term = low; term < end && deckOf[term] === deck; term++) {
        if (effectiveAt[term] > now) continue;
        best = term;
        break;
      }
    }
    return best;
  }

  /** Matched rate row (position in the RateIndex columns), or -1. */
  match(deck: number): number {
    return this.wanted[deck] === this.generation ? this.bestTerm[deck] : -1;
  }

  /** Length of the matched prefix. */
  matchedLength(deck: number): number {
    return this.bestDepth[deck];
  }
}
