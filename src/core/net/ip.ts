/**
 * IP address parsing for the hot path: hand-written scanners (no regex, no
 * split, no substrings) because every INVITE's source address goes through
 * them. Lengths are checked first, so hostile input costs O(1) to refuse.
 */

/** IPv4 in text[start, end) as an unsigned 32-bit number, or -1. */
function scanIPv4(text: string, start: number, end: number): number {
  if (end - start < 7 || end - start > 15) return -1;
  let value = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c === 46 /* . */) {
      if (digits === 0 || dots === 3) return -1;
      value = value * 256 + octet;
      octet = 0;
      digits = 0;
      dots++;
    } else if (c >= 48 && c <= 57) {
      // '010' is octal to inet_aton and decimal to others: refuse it rather than guess.
      if (digits > 0 && octet === 0) return -1;
      octet = octet * 10 + (c - 48);
      if (octet > 255) return -1;
      digits++;
    } else {
      return -1;
    }
  }
  if (dots !== 3 || digits === 0) return -1;
  return value * 256 + octet;
}

/** Dotted-quad IPv4 to an unsigned 32-bit number, or -1. Octets with leading zeros are refused (octal ambiguity). */
export function parseIPv4(text: string): number {
  return scanIPv4(text, 0, text.length);
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/**
 * IPv6 text (full, '::' compressed, embedded IPv4 tail, optional brackets)
 * into 8 groups in `out`, which the caller owns so nothing is allocated.
 * False when invalid (zone ids such as '%eth0' included); `out` is then garbage.
 */
export function parseIPv6(text: string, out: Uint16Array): boolean {
  let start = 0;
  let end = text.length;
  if (end > 2 && text.charCodeAt(0) === 91 /* [ */ && text.charCodeAt(end - 1) === 93 /* ] */) {
    start = 1;
    end--;
  }
  // 45 = six full groups plus a full IPv4 tail, the longest valid form.
  if (end - start < 2 || end - start > 45) return false;
  let group = 0;
  let gapAt = -1; // group index where '::' stands, -1 if none
  let i = start;
  if (text.charCodeAt(i) === 58 /* : */) {
    if (text.charCodeAt(i + 1) !== 58) return false; // a lone leading ':'
    gapAt = 0;
    i += 2;
  }
  while (i < end) {
    if (group === 8) return false;
    let j = i;
    let sawDot = false;
    while (j < end && text.charCodeAt(j) !== 58) {
      if (text.charCodeAt(j) === 46) sawDot = true;
      j++;
    }
    if (sawDot) {
      // An IPv4 tail fills the last two groups and must end the text.
      if (j !== end || group > 6) return false;
      const v4 = scanIPv4(text, i, end);
      if (v4 < 0) return false;
      out[group++] = v4 >>> 16;
      out[group++] = v4 & 0xffff;
      break;
    }
    if (j - i < 1 || j - i > 4) return false;
    let value = 0;
    for (let k = i; k < j; k++) {
      const h = hexValue(text.charCodeAt(k));
      if (h < 0) return false;
      value = value * 16 + h;
    }
    out[group++] = value;
    if (j === end) break;
    // text[j] is ':'.
    if (text.charCodeAt(j + 1) === 58) {
      if (gapAt >= 0) return false; // a second '::'
      gapAt = group;
      i = j + 2;
    } else {
      i = j + 1;
      if (i === end) return false; // a trailing single ':'
    }
  }
  if (gapAt < 0) return group === 8;
  if (group === 8) return false; // '::' must stand for at least one group
  // Slide the groups after '::' to the end and zero the gap.
  const tail = group - gapAt;
  for (let k = 1; k <= tail; k++) out[8 - k] = out[group - k];
  for (let k = gapAt; k < 8 - tail; k++) out[k] = 0;
  return true;
}

export function formatIPv4(value: number): string {
  return `${value >>> 24}.${(value >>> 16) & 255}.${(value >>> 8) & 255}.${value & 255}`;
}

/**
 * RFC 5952: lowercase, no leading zeros, the longest run of two or more zero
 * groups (the first on a tie) as '::'; IPv4-mapped addresses keep their IPv4
 * tail (section 5), e.g. '::ffff:192.0.2.1'.
 */
export function formatIPv6(groups: Uint16Array): string {
  if (groups[0] === 0 && groups[1] === 0 && groups[2] === 0 && groups[3] === 0 && groups[4] === 0 && groups[5] === 0xffff) {
    return `::ffff:${formatIPv4(groups[6] * 65536 + groups[7])}`;
  }
  let bestStart = -1;
  let bestLength = 1; // a single zero group is never compressed
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = (from: number, to: number): string => Array.from(groups.subarray(from, to), (g) => g.toString(16)).join(':');
  if (bestStart < 0) return hex(0, 8);
  return `${hex(0, bestStart)}::${hex(bestStart + bestLength, 8)}`;
}

export interface ParsedCidr {
  family: 4 | 6;
  prefixLength: number;
  /** Network address with host bits cleared, e.g. "203.0.113.0/24", "2001:db8::/32". */
  canonical: string;
  /** IPv4: the network as uint32; -1 for IPv6. */
  v4: number;
  /** IPv6: the network's 8 groups; null for IPv4. */
  v6: Uint16Array | null;
}

/** The decimal prefix length in text[start, end): 1-3 digits, no leading zero; -1 otherwise. */
function scanPrefixLength(text: string, start: number, end: number): number {
  if (end - start < 1 || end - start > 3) return -1;
  if (end - start > 1 && text.charCodeAt(start) === 48) return -1;
  let value = 0;
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c < 48 || c > 57) return -1;
    value = value * 10 + (c - 48);
  }
  return value;
}

/**
 * "a.b.c.d/len", "x::/len" or a bare address (/32, /128). Host bits are
 * cleared, as Go's net.ParseCIDR does, so equal networks compare equal by
 * `canonical`. IPv4-mapped IPv6 stays IPv6. Null when invalid.
 */
export function parseCidr(text: string): ParsedCidr | null {
  if (text.length > 64) return null;
  const slash = text.indexOf('/');
  const address = slash < 0 ? text : text.slice(0, slash);
  const prefixLength = slash < 0 ? -1 : scanPrefixLength(text, slash + 1, text.length);
  if (slash >= 0 && prefixLength < 0) return null;

  const v4 = parseIPv4(address);
  if (v4 >= 0) {
    const length = slash < 0 ? 32 : prefixLength;
    if (length > 32) return null;
    // A shift by 32 is a shift by 0 in JS, hence the /0 special case.
    const network = length === 0 ? 0 : (v4 & (0xffffffff << (32 - length))) >>> 0;
    return { family: 4, prefixLength: length, canonical: `${formatIPv4(network)}/${length}`, v4: network, v6: null };
  }

  const groups = new Uint16Array(8);
  // Brackets belong around a bare address in a URI, not around a network.
  if (address.charCodeAt(0) === 91 || !parseIPv6(address, groups)) return null;
  const length = slash < 0 ? 128 : prefixLength;
  if (length > 128) return null;
  for (let g = 0; g < 8; g++) {
    const keep = Math.max(0, Math.min(16, length - g * 16)); // bits of this group inside the prefix
    groups[g] &= 0xffff << (16 - keep);
  }
  return { family: 6, prefixLength: length, canonical: `${formatIPv6(groups)}/${length}`, v4: -1, v6: groups };
}

/** An IPv4 address (uint32) as the eight groups of its IPv4-mapped IPv6 form. */
function mappedGroups(v4: number): Uint16Array {
  const groups = new Uint16Array(8);
  groups[5] = 0xffff;
  groups[6] = v4 >>> 16;
  groups[7] = v4 & 0xffff;
  return groups;
}

/** The address's eight IPv6 groups, IPv4 as IPv4-mapped; null when the text is not an address. */
export function addressGroups(text: string): Uint16Array | null {
  const v4 = parseIPv4(text);
  if (v4 >= 0) return mappedGroups(v4);
  const groups = new Uint16Array(8);
  return parseIPv6(text, groups) ? groups : null;
}

/** Whether the network holds the address (as `addressGroups` gives it): an IPv4 network holds only IPv4 and IPv4-mapped addresses. */
export function cidrContains(network: ParsedCidr, groups: Uint16Array): boolean {
  const mapped = groups[0] === 0 && groups[1] === 0 && groups[2] === 0 && groups[3] === 0 && groups[4] === 0 && groups[5] === 0xffff;
  if (network.family === 4) {
    if (!mapped) return false;
    const value = groups[6] * 65536 + groups[7];
    const mask = network.prefixLength === 0 ? 0 : (0xffffffff << (32 - network.prefixLength)) >>> 0;
    return (value & mask) >>> 0 === network.v4;
  }
  for (let g = 0; g < 8; g++) {
    const keep = Math.max(0, Math.min(16, network.prefixLength - g * 16));
    const mask = (0xffff << (16 - keep)) & 0xffff;
    if ((groups[g] & mask) !== network.v6![g]) return false;
  }
  return true;
}

/**
 * Whether two networks share an address. Networks are nested or apart, so they share one exactly when one
 * holds the other's network address. Through cidrContains an IPv4 network and its IPv4-mapped IPv6 form
 * (203.0.113.0/24, ::ffff:203.0.113.0/120) are the same hosts, as they are to a dual-stack socket, and an
 * IPv6 network around the mapped range (::/0) reaches every IPv4 one.
 */
export function cidrsOverlap(a: ParsedCidr, b: ParsedCidr): boolean {
  const groupsOf = (cidr: ParsedCidr): Uint16Array => cidr.v6 ?? mappedGroups(cidr.v4);
  return cidrContains(a, groupsOf(b)) || cidrContains(b, groupsOf(a));
}
