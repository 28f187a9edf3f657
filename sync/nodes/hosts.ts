import { parseCidr, parseIPv4, parseIPv6, type ParsedCidr } from '../../src/core/net/ip.js';

/**
 * The hosts the control plane may send requests to on a node's behalf (`--node-hosts`): a sidecar's
 * snapshot PUT and an MI request over HTTP or UDP. Without this an admin-API caller could make the centre
 * PUT the whole snapshot, HA1s included, or POST JSON-RPC, to any URL. Entries are host names (compared
 * as written, no DNS lookup) or IP networks; an address is compared as an address, so `0x7f.1` or
 * `::ffff:127.0.0.1` is 127.0.0.1 and `[::1]` is ::1.
 */
export interface HostAllowlist {
  names: ReadonlySet<string>;
  networks: readonly ParsedCidr[];
  /** As configured, for messages. */
  text: string;
}

export const DEFAULT_NODE_HOSTS = '127.0.0.0/8,::1,localhost';

const HOST_NAME = /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/;

export function parseHostAllowlist(text: string): HostAllowlist {
  const names = new Set<string>();
  const networks: ParsedCidr[] = [];
  for (const raw of text.split(',')) {
    const entry = raw.trim().toLowerCase();
    if (entry === '') continue;
    const network = parseCidr(entry);
    if (network !== null) networks.push(network);
    else if (HOST_NAME.test(entry)) names.add(entry);
    else throw new Error(`--node-hosts: ${JSON.stringify(raw.trim())} is neither a host name nor an IP address or network`);
  }
  return { names, networks, text };
}

/** The address's eight IPv6 groups, IPv4 as IPv4-mapped; null when the text is not an address. */
function addressGroups(text: string): Uint16Array | null {
  const groups = new Uint16Array(8);
  const v4 = parseIPv4(text);
  if (v4 >= 0) {
    groups[5] = 0xffff;
    groups[6] = v4 >>> 16;
    groups[7] = v4 & 0xffff;
    return groups;
  }
  return parseIPv6(text, groups) ? groups : null;
}

function inNetwork(groups: Uint16Array, network: ParsedCidr): boolean {
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

/** Whether a URL's or a udp: address's host (brackets allowed around IPv6) is one the operator allowed. */
export function hostAllowed(allowlist: HostAllowlist, host: string): boolean {
  const bare = host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  const groups = addressGroups(bare);
  if (groups === null) return allowlist.names.has(bare.replace(/\.$/, ''));
  return allowlist.networks.some((network) => inNetwork(groups, network));
}
