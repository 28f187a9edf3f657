import { addressGroups, cidrContains, formatIPv4, parseCidr, type ParsedCidr } from '../../src/core/net/ip.js';

/**
 * Whom a partner request came from, as the per-address limit on refused tokens keys it (limits.ts).
 *
 * The socket's peer, unless that peer is one of `--partner-trusted-proxies` (the load balancer or TLS proxy in
 * front): then the `X-Forwarded-For` entry that proxy appended, read from the right past every trusted proxy.
 * Anything left of that is what the caller wrote itself and is never believed. No proxies configured: the
 * socket's peer alone, and a header a caller sends changes nothing.
 *
 * An IPv6 caller is keyed by its /64: one host is commonly given a whole /64, and keying single addresses
 * would hand it 2^64 fresh allowances.
 */
export class ClientAddresses {
  constructor(private readonly trustedProxies: readonly ParsedCidr[]) {}

  get trustsProxies(): boolean {
    return this.trustedProxies.length > 0;
  }

  /** The key of the request's client: its IPv4 address, or its IPv6 /64 (`2001:db8:1:2::/64`). */
  keyOf(socketAddress: string, forwardedFor: string | undefined): string {
    const peer = addressGroups(socketAddress);
    // uWS always gives an address; should it not, the text itself is the key (still bounded by the table).
    if (peer === null) return socketAddress;
    if (!this.trusted(peer) || forwardedFor === undefined || forwardedFor === '') return keyOfGroups(peer);
    const hops = forwardedFor.split(',');
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = hopGroups(hops[i].trim());
      // A hop the proxy wrote that is not an address: the proxy is misconfigured; the proxy itself is keyed.
      if (hop === null) return keyOfGroups(peer);
      if (!this.trusted(hop)) return keyOfGroups(hop);
    }
    // Every hop a trusted proxy: the leftmost (the request began at one of them).
    return keyOfGroups(hopGroups(hops[0].trim())!);
  }

  private trusted(groups: Uint16Array): boolean {
    for (const network of this.trustedProxies) if (cidrContains(network, groups)) return true;
    return false;
  }
}

/** `--partner-trusted-proxies`: comma-separated addresses and networks; refused at start naming the bad entry. */
export function parseTrustedProxies(text: string): ParsedCidr[] {
  return text
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '')
    .map((entry) => {
      const network = parseCidr(entry);
      if (network === null)
        throw new Error(`--partner-trusted-proxies: ${JSON.stringify(entry.slice(0, 100))} is not an address or network`);
      return network;
    });
}

/** An IPv4 address with a port ("198.51.100.1:50123"). */
const IPV4_WITH_PORT = /^(\d{1,3}(?:\.\d{1,3}){3}):\d{1,5}$/;
/** An IPv6 address in brackets, with a port or without ("[2001:db8::1]:443"). */
const IPV6_BRACKETED = /^\[([^\]]+)\](?::\d{1,5})?$/;

/**
 * An X-Forwarded-For entry's address. Some proxies write the client's port with it (Azure's Application Gateway):
 * read as not an address, every client behind such a proxy was keyed as the proxy, one allowance for them all.
 */
function hopGroups(hop: string): Uint16Array | null {
  const groups = addressGroups(hop);
  if (groups !== null) return groups;
  const match = IPV4_WITH_PORT.exec(hop) ?? IPV6_BRACKETED.exec(hop);
  return match === null ? null : addressGroups(match[1]);
}

function keyOfGroups(groups: Uint16Array): string {
  if (groups[0] === 0 && groups[1] === 0 && groups[2] === 0 && groups[3] === 0 && groups[4] === 0 && groups[5] === 0xffff)
    return formatIPv4(groups[6] * 65536 + groups[7]);
  return `${groups[0].toString(16)}:${groups[1].toString(16)}:${groups[2].toString(16)}:${groups[3].toString(16)}::/64`;
}
