import { checkCidrValue, cidrWords, findCidrNode, TrieBuilder, type CidrIndex, type CidrTrie } from './cidr-index.js';

/**
 * Live changes to a CIDR index without rebuilding it (issue 18): a new index sharing the old one's tries,
 * with an overlay of what was added and removed since they were built (CidrIndex.overlay). Building 100k
 * networks again costs ~100 ms of the event loop; a change costs the overlay's size, which stays small until
 * the next snapshot brings a freshly built index. The old index object is left as it was, so a request
 * holding it sees the old networks, and one holding the new sees the new: never a mix.
 */
export interface CidrChange {
  cidr: string;
  value: number;
  /** +1: the network gains the value; -1: it loses it (it must hold it). */
  count: 1 | -1;
}

/**
 * `index` with `changes` applied, or null when a change removes a value the index does not hold (the
 * caller's diff is wrong: it builds the index afresh instead). A text that is not a CIDR is skipped, as
 * the builder skips it. Returns a plain built-index shape again when the changes cancel out.
 */
export function changeCidrIndex(index: CidrIndex, changes: Iterable<CidrChange>): CidrIndex | null {
  const net = new Map(index.overlay?.net);
  const words = new Uint32Array(4);
  for (const change of changes) {
    checkCidrValue(change.value);
    const cidr = cidrWords(change.cidr, words);
    if (cidr === null) continue;
    // One key per (network, value): the canonical network, so 10.0.0.1/24 and 10.0.0.0/24 are one.
    const key = `${cidr.canonical} ${change.value}`;
    const count = (net.get(key) ?? 0) + change.count;
    if (count === 0) net.delete(key);
    else net.set(key, count);
  }
  if (net.size === 0) return { v4: index.v4, v6: index.v6 };
  const added = { v4: new TrieBuilder(), v6: new TrieBuilder() };
  const removed = { v4: new Map<number, number[]>(), v6: new Map<number, number[]>() };
  for (const [key, count] of net) {
    const [network, valueText] = key.split(' ');
    const value = Number(valueText);
    const { v6, prefixLength } = cidrWords(network, words)!;
    const family = v6 ? 'v6' : 'v4';
    if (count > 0) {
      for (let k = 0; k < count; k++) added[family].insert(words, prefixLength, value);
      continue;
    }
    const node = findCidrNode(index[family], words, prefixLength);
    if (node < 0 || holds(index[family], node, value) < -count) return null;
    const gone = removed[family].get(node) ?? [];
    for (let k = 0; k < -count; k++) gone.push(value);
    removed[family].set(node, gone);
  }
  return {
    v4: index.v4,
    v6: index.v6,
    overlay: { added: { v4: added.v4.build(), v6: added.v6.build() }, removedV4: removed.v4, removedV6: removed.v6, net },
  };
}

/** How many entries an index's overlay holds: what the next change to it costs. */
export function cidrOverlaySize(index: CidrIndex): number {
  return index.overlay?.net.size ?? 0;
}

/** How many times base node `node` holds `value`. */
function holds(trie: CidrTrie, node: number, value: number): number {
  let times = 0;
  for (let v = trie.valueStart[node]; v < trie.valueStart[node + 1]; v++) if (trie.values[v] === value) times++;
  return times;
}
