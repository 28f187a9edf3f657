import { createCidrMatches, lookupCidr, type CidrIndex } from '../../src/core/net/cidr-index.js';

/**
 * What a CIDR index answers for `ip`: the values per network, most specific first, each network's sorted
 * (an index with an overlay keeps no insertion order within a network, and callers do not rely on one).
 */
export function cidrAnswer(index: CidrIndex, ip: string): number[][] {
  const out = createCidrMatches();
  const count = lookupCidr(index, ip, out);
  const groups: number[][] = [];
  for (let k = 0; k < count; k++)
    groups.push([...out.values.subarray(k === 0 ? 0 : out.groupEnds[k - 1], out.groupEnds[k])].sort((a, b) => a - b));
  return groups;
}
