/**
 * A decimal-digit trie in flat typed arrays. One trie holds the prefixes of
 * many tables at once (every rate deck, every block-rule scope): walking a
 * number's digits once visits every prefix of it in every table, and the
 * caller keeps the entries it cares about. Terminal entries sit in CSR layout:
 * node n owns positions termStart[n] .. termStart[n + 1] - 1 of the caller's
 * payload columns, which it permutes with `order`.
 *
 * Plain typed arrays only: the compiled snapshot crosses from the compile
 * worker to the main thread by transfer, without copying.
 */
export interface PrefixTrie {
  /** children[node * 10 + digit] = child node, 0 = none (node 0 is the root). */
  children: Int32Array;
  termStart: Int32Array;
  nodeCount: number;
}

export interface BuiltPrefixTrie {
  trie: PrefixTrie;
  /** order[position] = index of the item stored at that CSR position. */
  order: Int32Array;
}

/** Builds the trie for items whose prefixes are non-empty digit strings. */
export function buildPrefixTrie(prefixes: readonly string[]): BuiltPrefixTrie {
  const ends = new Uint32Array(prefixes.length);
  let length = 0;
  prefixes.forEach((prefix, i) => (ends[i] = length += prefix.length));
  return buildPrefixTrieFromText(prefixes.join(''), ends);
}

/** The same, from concatenated digits: item i's prefix is digits[ends[i - 1] (0 for item 0), ends[i]). */
export function buildPrefixTrieFromText(digits: string, ends: Uint32Array): BuiltPrefixTrie {
  const count = ends.length;
  let capacity = 1024;
  let children = new Int32Array(capacity * 10);
  let nodeCount = 1;
  const nodeOf = new Int32Array(count);
  for (let item = 0; item < count; item++) {
    let node = 0;
    for (let i = item === 0 ? 0 : ends[item - 1]; i < ends[item]; i++) {
      const slot = node * 10 + (digits.charCodeAt(i) - 48);
      let child = children[slot];
      if (child === 0) {
        if (nodeCount === capacity) {
          capacity *= 2;
          const grown = new Int32Array(capacity * 10);
          grown.set(children);
          children = grown;
        }
        child = nodeCount++;
        children[slot] = child;
      }
      node = child;
    }
    nodeOf[item] = node;
  }
  // Counting sort of items by node: stable, O(items + nodes).
  const termStart = new Int32Array(nodeCount + 1);
  for (let item = 0; item < count; item++) termStart[nodeOf[item] + 1]++;
  for (let node = 0; node < nodeCount; node++) termStart[node + 1] += termStart[node];
  const cursor = termStart.slice(0, nodeCount);
  const order = new Int32Array(count);
  for (let item = 0; item < count; item++) order[cursor[nodeOf[item]]++] = item;
  return { trie: { children: children.slice(0, nodeCount * 10), termStart, nodeCount }, order };
}

/** Permutes a payload column into CSR order. */
export function permute<T extends Int32Array | Uint32Array | Uint16Array | Uint8Array | Float64Array>(
  column: T,
  order: Int32Array,
  make: (n: number) => T,
): T {
  const out = make(order.length);
  for (let i = 0; i < order.length; i++) out[i] = column[order[i]];
  return out;
}

/** The deepest node a number's digits reach (0: not even its first digit): where a walk down them stops. */
export function deepestNode(trie: PrefixTrie, digits: string): number {
  const { children } = trie;
  let node = 0;
  for (let i = 0; i < digits.length; i++) {
    const child = children[node * 10 + digits.charCodeAt(i) - 48];
    if (child === 0) break;
    node = child;
  }
  return node;
}
