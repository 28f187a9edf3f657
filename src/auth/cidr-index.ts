import { parseCidr, parseIPv4, parseIPv6 } from './ip.js';

/**
 * Longest-prefix match over many CIDRs without scanning them: a binary trie
 * per address family (one bit per level, at most 32 or 128 steps). Each node
 * owns a slice of a flat values array (CSR layout), so identical networks keep
 * every value. Plain typed arrays only: the index crosses from the compile
 * worker to the main thread by transfer.
 */
export interface CidrTrie {
  /** child[node * 2 + bit], 0 = none; node 0 is the root (/0). */
  child: Int32Array;
  valueStart: Int32Array;
  values: Int32Array;
}

export interface CidrIndex {
  v4: CidrTrie;
  v6: CidrTrie;
}

/**
 * Matches of one lookup, most specific network first: network k's values are
 * values[k === 0 ? 0 : groupEnds[k - 1] .. groupEnds[k]). Reused across lookups.
 */
export interface CidrMatches {
  values: Int32Array;
  groupEnds: Int32Array;
}

export interface CidrIndexBuilder {
  /** False when the text is not a CIDR (or address). */
  add(cidrText: string, value: number): boolean;
  build(): CidrIndex;
}

const MAX_DEPTH = 129;

class TrieBuilder {
  private child = new Int32Array(2 * 1024);
  private nodes = 1;
  private readonly entries: { node: number; value: number }[] = [];

  insert(bitAt: (depth: number) => number, prefixLength: number, value: number): void {
    let node = 0;
    for (let depth = 0; depth < prefixLength; depth++) {
      const slot = node * 2 + bitAt(depth);
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
    this.entries.push({ node, value });
  }

  build(): CidrTrie {
    const valueStart = new Int32Array(this.nodes + 1);
    for (const entry of this.entries) valueStart[entry.node + 1]++;
    for (let node = 0; node < this.nodes; node++) valueStart[node + 1] += valueStart[node];
    const cursor = valueStart.slice(0, this.nodes);
    const values = new Int32Array(this.entries.length);
    for (const entry of this.entries) values[cursor[entry.node]++] = entry.value;
    return { child: this.child.slice(0, this.nodes * 2), valueStart, values };
  }
}

export function createCidrIndexBuilder(): CidrIndexBuilder {
  const v4 = new TrieBuilder();
  const v6 = new TrieBuilder();
  return {
    add(cidrText, value) {
      const cidr = parseCidr(cidrText);
      if (cidr === null) return false;
      if (cidr.family === 4) {
        const network = cidr.v4;
        v4.insert((depth) => Math.floor(network / 2 ** (31 - depth)) & 1, cidr.prefixLength, value);
      } else {
        const groups = cidr.v6!;
        v6.insert((depth) => (groups[depth >> 4] >> (15 - (depth & 15))) & 1, cidr.prefixLength, value);
      }
      return true;
    },
    build: () => ({ v4: v4.build(), v6: v6.build() }),
  };
}

export function createCidrMatches(): CidrMatches {
  return { values: new Int32Array(256), groupEnds: new Int32Array(MAX_DEPTH) };
}

const scratchGroups = new Uint16Array(8);
const pathNodes = new Int32Array(MAX_DEPTH);

/** Walks the trie, then reports the networks found from the deepest up. */
function collect(trie: CidrTrie, bitAt: (depth: number) => number, bits: number, out: CidrMatches): number {
  const { child, valueStart, values } = trie;
  let found = 0;
  let node = 0;
  for (let depth = 0; ; depth++) {
    if (valueStart[node + 1] > valueStart[node]) pathNodes[found++] = node;
    if (depth === bits) break;
    node = child[node * 2 + bitAt(depth)];
    if (node === 0) break;
  }
  let total = 0;
  for (let k = 0; k < found; k++) total += valueStart[pathNodes[k] + 1] - valueStart[pathNodes[k]];
  if (total > out.values.length) out.values = new Int32Array(total * 2); // rare: many trunks on one network
  let written = 0;
  for (let k = 0; k < found; k++) {
    const matched = pathNodes[found - 1 - k];
    for (let v = valueStart[matched]; v < valueStart[matched + 1]; v++) out.values[written++] = values[v];
    out.groupEnds[k] = written;
  }
  return found;
}

let currentV4 = 0;
const v4Bit = (depth: number): number => (currentV4 >>> (31 - depth)) & 1;
const v6Bit = (depth: number): number => (scratchGroups[depth >> 4] >> (15 - (depth & 15))) & 1;

/** Number of matching networks for `ipText` (0 when it is not an address); results in `out`. */
export function lookupCidr(index: CidrIndex, ipText: string, out: CidrMatches): number {
  const v4 = parseIPv4(ipText);
  if (v4 >= 0) {
    currentV4 = v4;
    return collect(index.v4, v4Bit, 32, out);
  }
  if (!parseIPv6(ipText, scratchGroups)) return 0;
  const g = scratchGroups;
  if (g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff) {
    currentV4 = g[6] * 65536 + g[7]; // IPv4-mapped: the caller is an IPv4 host
    return collect(index.v4, v4Bit, 32, out);
  }
  return collect(index.v6, v6Bit, 128, out);
}
