/**
 * IP address parsing for the hot path: a hand-written scanner (no regex, no
 * split) because every INVITE's source address goes through it.
 */

/** Dotted-quad IPv4 to an unsigned 32-bit number, or -1. Octets with leading zeros are refused (octal ambiguity). */
export function parseIPv4(text: string): number {
  const length = text.length;
  if (length < 7 || length > 15) return -1;
  let value = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < length; i++) {
    const c = text.charCodeAt(i);
    if (c === 46 /* . */) {
      if (digits === 0 || dots === 3) return -1;
      value = value * 256 + octet;
      octet = 0;
      digits = 0;
      dots++;
    } else if (c >= 48 && c <= 57) {
      if (digits > 0 && octet === 0) return -1; // leading zero
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

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/** IPv6 text (with '::', an embedded IPv4 tail, optional brackets) into 8 groups in `out`; false when invalid. */
export function parseIPv6(text: string, out: Uint16Array): boolean {
  let start = 0;
  let end = text.length;
  if (end > 2 && text.charCodeAt(0) === 91 /* [ */ && text.charCodeAt(end - 1) === 93 /* ] */) {
    start = 1;
    end--;
  }
  if (end - start < 2 || end - start > 45) return false;
  let group = 0;
  let doubleColonAt = -1;
  let i = start;
  if (text.charCodeAt(i) === 58 /* : */) {
    if (text.charCodeAt(i + 1) !== 58) return false;
    doubleColonAt = 0;
    i += 2;
    if (i === end) {
      out.fill(0);
      return true;
    }
  }
  while (i < end) {
    if (group === 8) return false;
    // Embedded IPv4 tail: a dot before the next colon.
    let j = i;
    let sawDot = false;
    while (j < end && text.charCodeAt(j) !== 58) {
      if (text.charCodeAt(j) === 46) sawDot = true;
      j++;
    }
    if (sawDot) {
      if (j !== end || group > 6) return false;
      const v4 = parseIPv4(text.slice(i, end));
      if (v4 < 0) return false;
      out[group++] = Math.floor(v4 / 65536);
      out[group++] = v4 % 65536;
      i = end;
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
    i = j;
    if (i === end) break;
    // At a ':'.
    if (text.charCodeAt(i + 1) === 58) {
      if (doubleColonAt >= 0) return false;
      doubleColonAt = group;
      i += 2;
    } else {
      i += 1;
      if (i === end) return false; // trailing single colon
    }
  }
  if (doubleColonAt < 0) return group === 8;
  if (group === 8) return false; // '::' must stand for at least one group
  const tail = group - doubleColonAt;
  for (let k = 0; k < tail; k++) out[7 - k] = out[group - 1 - k];
  for (let k = doubleColonAt; k < 8 - tail; k++) out[k] = 0;
  return true;
}

export function formatIPv4(value: number): string {
  return `${Math.floor(value / 16777216) % 256}.${Math.floor(value / 65536) % 256}.${Math.floor(value / 256) % 256}.${value % 256}`;
}

/** RFC 5952: lowercase, no leading zeros, the longest run of two or more zero groups (the first on a tie) as '::'. */
export function formatIPv6(groups: Uint16Array): string {
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
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
  /** IPv4: the network as uint32. */
  v4: number;
  /** IPv6: the network's 8 groups. */
  v6: Uint16Array | null;
}

/** "a.b.c.d/len", "x::/len" or a bare address (/32, /128). Host bits are cleared, as Go's net.ParseCIDR does. */
export function parseCidr(text: string): ParsedCidr | null {
  if (text.length > 64) return null;
  const slash = text.indexOf('/');
  const address = slash < 0 ? text : text.slice(0, slash);
  let prefixLength = -1;
  if (slash >= 0) {
    const lengthText = text.slice(slash + 1);
    if (!/^(0|[1-9][0-9]{0,2})$/.test(lengthText)) return null;
    prefixLength = Number(lengthText);
  }
  const v4 = parseIPv4(address);
  if (v4 >= 0) {
    if (prefixLength < 0) prefixLength = 32;
    if (prefixLength > 32) return null;
    const mask = prefixLength === 0 ? 0 : 2 ** 32 - 2 ** (32 - prefixLength);
    const network = Number((BigInt(v4) & BigInt(mask)).toString());
    return { family: 4, prefixLength, canonical: `${formatIPv4(network)}/${prefixLength}`, v4: network, v6: null };
  }
  const groups = new Uint16Array(8);
  if (address.startsWith('[') || !parseIPv6(address, groups)) return null;
  if (prefixLength < 0) prefixLength = 128;
  if (prefixLength > 128) return null;
  for (let g = 0; g < 8; g++) {
    const keep = Math.max(0, Math.min(16, prefixLength - g * 16));
    groups[g] = keep === 0 ? 0 : groups[g] & (0xffff << (16 - keep));
  }
  return { family: 6, prefixLength, canonical: `${formatIPv6(groups)}/${prefixLength}`, v4: -1, v6: groups };
}
