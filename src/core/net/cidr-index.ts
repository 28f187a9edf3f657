import { parseCidr, parseIPv4, parseIPv6 } from './ip.js';

/**
 * Longest-prefix match over many CIDRs without scanning them: a binary trie
 * per address family (one bit per level, at most 32 or 128 steps). Each node
 * owns a slice of a flat values array (CSR layout), so identical networks keep
 * every value. Plain objects of typed arrays only, each array owning its whole
 * buffer: the index crosses from the compile worker to the main thread by
 * postMessage with its buffers transferred.
 */
export interface CidrTrie {
  /** child[node * 2 + bit], 0 = none (the root, node 0, is nobody's child). */
  child: Int32Array;
  /** Node n's values are values[valueStart[n] .. valueStart[n + 1]). */
  valueStart: Int32Array;
  values: Int32Array;
}

export interface CidrIndex {
  v4: CidrTrie;
  v6: CidrTrie;
  /**
   * Live changes since the tries were built (cidr-overlay.ts), consulted with them on each lookup; absent
   * on an index fresh from a builder. The tries are never written after build, so an index with an overlay
   * shares them with the one it was changed from.
   */
  overlay?: CidrOverlay;
}

/**
 * Networks added and values removed since a base index was built. `added` holds only what was added; a
 * removed value is named by the base trie's node of its network (the node stands for the network).
 */
export interface CidrOverlay {
  added: { v4: CidrTrie; v6: CidrTrie };
  /** Base node -> values taken out of it, a value repeated as often as it was taken out. */
  removedV4: ReadonlyMap<number, readonly number[]>;
  removedV6: ReadonlyMap<number, readonly number[]>;
  /** Net change per entry (see cidr-overlay.ts): what the next change starts from. */
  net: ReadonlyMap<string, number>;
}

/**
 * Matches of one lookup, most specific network first: network k's values are
 * values[k === 0 ? 0 : groupEnds[k - 1] .. groupEnds[k]). Create once and reuse;
 * `values` is replaced by a bigger array in the rare lookup that needs one.
 */
export interface CidrMatches {
  values: Int32Array;
  groupEnds: Int32Array;
}

export interface CidrIndexBuilder {
  /** False when the text is not a CIDR (or bare address). `value` must be a non-negative int32. */
  add(cidrText: string, value: number): boolean;
  build(): CidrIndex;
}

/** Networks on one path: /0 to /128. */
const MAX_DEPTH = 129;

/** Bit `depth` (0 = most significant) of an address held as four big-endian 32-bit words. */
function bitAt(words: Uint32Array, depth: number): number {
  return (words[depth >>> 5] >>> (31 - (depth & 31))) & 1;
}

/** Build-time only (never part of the index), so a class is fine here. */
export class TrieBuilder {
  private child = new Int32Array(2048);
  private nodes = 1;
  // (node, value) pairs in insertion order, which is the order duplicates are reported in.
  private readonly entryNodes: number[] = [];
  private readonly entryValues: number[] = [];

  insert(words: Uint32Array, prefixLength: number, value: number): void {
    let node = 0;
    for (let depth = 0; depth < prefixLength; depth++) {
      const slot = node * 2 + bitAt(words, depth);
      let next = this.child[slot];
      if (next === 0) {
        if (this.nodes * 2 >= this.child.length) {
          const grown = new Int32Array(this.child.length * 2);
          grown.set(this.child);
          this.child = grown;
        }
        next = this.nodes++;
        this.child[slot] = next;
      }
      node = next;
    }
    this.entryNodes.push(node);
    this.entryValues.push(value);
  }

  build(): CidrTrie {
    // Counting sort of the entries by node: count, prefix-sum, then place.
    const valueStart = new Int32Array(this.nodes + 1);
    for (const node of this.entryNodes) valueStart[node + 1]++;
    for (let node = 0; node < this.nodes; node++) valueStart[node + 1] += valueStart[node];
    const cursor = valueStart.slice(0, this.nodes);
    const values = new Int32Array(this.entryValues.length);
    for (let e = 0; e < this.entryNodes.length; e++) values[cursor[this.entryNodes[e]]++] = this.entryValues[e];
    // slice, not subarray: the trimmed copy owns its buffer, so it can be transferred.
    return { child: this.child.slice(0, this.nodes * 2), valueStart, values };
  }
}

/**
 * The network of `cidrText` as big-endian words filled into `words` (parseCidr clears the bits past the
 * prefix), or null when the text is not a CIDR (or bare address).
 */
export function cidrWords(cidrText: string, words: Uint32Array): { v6: boolean; prefixLength: number; canonical: string } | null {
  const cidr = parseCidr(cidrText);
  if (cidr === null) return null;
  if (cidr.v6 === null) words[0] = cidr.v4;
  else for (let w = 0; w < 4; w++) words[w] = cidr.v6[w * 2] * 65536 + cidr.v6[w * 2 + 1];
  return { v6: cidr.v6 !== null, prefixLength: cidr.prefixLength, canonical: cidr.canonical };
}

/** Values come from the caller's own tables: a bad one is a bug there, not bad input. */
export function checkCidrValue(value: number): void {
  if (!Number.isInteger(value) || value < 0 || value > 0x7fffffff)
    throw new RangeError(`CIDR value must be a non-negative int32, got ${value}`);
}

export function createCidrIndexBuilder(): CidrIndexBuilder {
  const v4 = new TrieBuilder();
  const v6 = new TrieBuilder();
  const words = new Uint32Array(4);
  return {
    add(cidrText, value) {
      checkCidrValue(value);
      const cidr = cidrWords(cidrText, words);
      if (cidr === null) return false;
      (cidr.v6 ? v6 : v4).insert(words, cidr.prefixLength, value);
      return true;
    },
    build: () => ({ v4: v4.build(), v6: v6.build() }),
  };
}

/** The node of the network `words`/`prefixLength` in `trie`, -1 when the trie has none. */
export function findCidrNode(trie: CidrTrie, words: Uint32Array, prefixLength: number): number {
  let node = 0;
  for (let depth = 0; depth < prefixLength; depth++) {
    node = trie.child[node * 2 + bitAt(words, depth)];
    if (node === 0) return -1;
  }
  return node;
}

export function createCidrMatches(): CidrMatches {
  return { values: new Int32Array(256), groupEnds: new Int32Array(MAX_DEPTH) };
}

// Module-level scratch so a lookup allocates nothing (lookups never interleave: JS is single-threaded).
const scratchGroups = new Uint16Array(8);
const scratchWords = new Uint32Array(4);
const pathNodes = new Int32Array(MAX_DEPTH);
const pathDepths = new Int32Array(MAX_DEPTH);
const addedNodes = new Int32Array(MAX_DEPTH);
const addedDepths = new Int32Array(MAX_DEPTH);
let removedTaken = new Uint8Array(16);

/** How many values the last walk's nodes hold (scratch, so a walk returns one number and allocates nothing). */
const walkTotal = new Int32Array(1);

/**
 * Walks `bits` bits of scratchWords down the trie; the nodes holding values on the way land in `nodes`
 * (with their depths), shallowest first. Returns how many.
 */
function walk(trie: CidrTrie, bits: number, nodes: Int32Array, depths: Int32Array): number {
  const { child, valueStart } = trie;
  let found = 0;
  let total = 0;
  let node = 0;
  for (let depth = 0; ; depth++) {
    const count = valueStart[node + 1] - valueStart[node];
    if (count > 0) {
      nodes[found] = node;
      depths[found++] = depth;
      total += count;
    }
    if (depth === bits) break;
    node = child[node * 2 + bitAt(scratchWords, depth)];
    if (node === 0) break;
  }
  walkTotal[0] = total;
  return found;
}

/** The networks found walking `bits` bits of scratchWords, reported from the deepest up. */
function collect(trie: CidrTrie, bits: number, out: CidrMatches): number {
  const found = walk(trie, bits, pathNodes, pathDepths);
  if (walkTotal[0] > out.values.length) out.values = new Int32Array(walkTotal[0] * 2); // rare: very many values along one path
  let written = 0;
  for (let k = 0; k < found; k++) {
    written = copyValues(trie, pathNodes[found - 1 - k], out, written);
    out.groupEnds[k] = written;
  }
  return found;
}

/** Copies trie node `node`'s values into `out` from `written` on; returns where the next value goes. */
function copyValues(trie: CidrTrie, node: number, out: CidrMatches, written: number): number {
  const { valueStart, values } = trie;
  for (let v = valueStart[node]; v < valueStart[node + 1]; v++) out.values[written++] = values[v];
  return written;
}

/**
 * As collect, through an overlay: at each depth, the base network's values but those removed, then the
 * added network's; a network left with no value is not reported.
 */
function collectWithOverlay(
  base: CidrTrie,
  added: CidrTrie,
  removed: ReadonlyMap<number, readonly number[]>,
  bits: number,
  out: CidrMatches,
): number {
  const baseFound = walk(base, bits, pathNodes, pathDepths);
  const baseTotal = walkTotal[0];
  const addedFound = walk(added, bits, addedNodes, addedDepths);
  const total = baseTotal + walkTotal[0];
  if (total > out.values.length) out.values = new Int32Array(total * 2);
  let b = baseFound - 1;
  let a = addedFound - 1;
  let written = 0;
  let groups = 0;
  while (b >= 0 || a >= 0) {
    const depth = Math.max(b >= 0 ? pathDepths[b] : -1, a >= 0 ? addedDepths[a] : -1);
    const start = written;
    if (b >= 0 && pathDepths[b] === depth) written = copyKept(base, pathNodes[b--], removed, out, written);
    if (a >= 0 && addedDepths[a] === depth) written = copyValues(added, addedNodes[a--], out, written);
    if (written > start) out.groupEnds[groups++] = written;
  }
  return groups;
}

/** Copies base node `node`'s values into `out` from `written` on, each removed one left out once. */
function copyKept(
  trie: CidrTrie,
  node: number,
  removed: ReadonlyMap<number, readonly number[]>,
  out: CidrMatches,
  written: number,
): number {
  const gone = removed.get(node);
  if (gone === undefined) return copyValues(trie, node, out, written);
  const { valueStart, values } = trie;
  if (gone.length > removedTaken.length) removedTaken = new Uint8Array(gone.length * 2);
  removedTaken.fill(0, 0, gone.length);
  for (let v = valueStart[node]; v < valueStart[node + 1]; v++) {
    let taken = false;
    for (let g = 0; g < gone.length && !taken; g++)
      if (removedTaken[g] === 0 && gone[g] === values[v]) {
        removedTaken[g] = 1;
        taken = true;
      }
    if (!taken) out.values[written++] = values[v];
  }
  return written;
}

/**
 * Number of networks holding `ipText` (0 when it is not an address); their
 * values land in `out`, most specific network first. An IPv4-mapped IPv6
 * source (::ffff:a.b.c.d) is an IPv4 host on a dual-stack socket, so it is
 * looked up as IPv4. The order of the values within one network is the
 * insertion order on a built index; through an overlay, the kept base values
 * come before the added ones.
 */
export function lookupCidr(index: CidrIndex, ipText: string, out: CidrMatches): number {
  const v4 = parseIPv4(ipText);
  if (v4 >= 0) {
    scratchWords[0] = v4;
    return index.overlay === undefined ? collect(index.v4, 32, out) : collectV4WithOverlay(index, index.overlay, out);
  }
  const g = scratchGroups;
  if (!parseIPv6(ipText, g)) return 0;
  if (g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff) {
    scratchWords[0] = g[6] * 65536 + g[7];
    return index.overlay === undefined ? collect(index.v4, 32, out) : collectV4WithOverlay(index, index.overlay, out);
  }
  for (let w = 0; w < 4; w++) scratchWords[w] = g[w * 2] * 65536 + g[w * 2 + 1];
  const overlay = index.overlay;
  return overlay === undefined ? collect(index.v6, 128, out) : collectWithOverlay(index.v6, overlay.added.v6, overlay.removedV6, 128, out);
}

function collectV4WithOverlay(index: CidrIndex, overlay: CidrOverlay, out: CidrMatches): number {
  return collectWithOverlay(index.v4, overlay.added.v4, overlay.removedV4, 32, out);
}
