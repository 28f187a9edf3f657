import { addressGroups, cidrContains, parseCidr, type ParsedCidr } from '../../src/core/net/ip.js';

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

/** Whether a URL's or a udp: address's host (brackets allowed around IPv6) is one the operator allowed. */
export function hostAllowed(allowlist: HostAllowlist, host: string): boolean {
  const bare = host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  const groups = addressGroups(bare);
  if (groups === null) return allowlist.names.has(bare.replace(/\.$/, ''));
  return allowlist.networks.some((network) => cidrContains(network, groups));
}
