import { parseIPv4, parseIPv6 } from '../net/ip.js';

/**
 * The Host headers a listener answers requests known by their address alone under (docs/operations.md, HTTP
 * edges). A page whose name an attacker rebinds to this server's address (DNS rebinding) is same-origin with
 * it in the browser of someone who can reach it: the page could read what the address lets it. Its requests
 * still carry its own name as Host. So a Host must be an IP literal (no name to rebind), `localhost` (no one
 * else's), or a name the operator gave (`--admin-hostnames` on the control plane, `--metrics-hostnames` on the
 * sidecar).
 */

/** A DNS name: dot-separated labels of letters, digits and inner hyphens, 253 characters at most. */
const HOST_NAME = /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;
const PORT = /^:[0-9]{1,5}$/;
const scratchGroups = new Uint16Array(8);

/** A name as it is compared: lower case, without the trailing dot of a fully qualified name. */
const comparable = (name: string): string => name.toLowerCase().replace(/\.$/, '');

/**
 * A comma-separated list of names the server is reached by. Refused at start, naming `flag` and the entry,
 * when one is not a bare name (a scheme, a port, a path or a wildcard would never match a Host).
 */
export function parseHostnames(text: string, flag: string): string[] {
  const names = text
    .split(',')
    .map((name) => comparable(name.trim()))
    .filter((name) => name !== '');
  for (const name of names)
    if (!HOST_NAME.test(name))
      throw new Error(`${flag}: ${JSON.stringify(name.slice(0, 300))} is not a host name (no scheme, port, path or wildcard)`);
  return names;
}

/** Whether a Host header (any port) names this server: an IP literal, IPv6 in brackets, `localhost`, or one of `names`. */
export function namesThisServer(host: string, names: ReadonlySet<string>): boolean {
  if (host.startsWith('[')) {
    const close = host.indexOf(']');
    return close > 0 && (close === host.length - 1 || PORT.test(host.slice(close + 1))) && parseIPv6(host.slice(1, close), scratchGroups);
  }
  const colon = host.indexOf(':');
  if (colon >= 0 && !PORT.test(host.slice(colon))) return false;
  const name = colon < 0 ? host : host.slice(0, colon);
  if (parseIPv4(name) >= 0) return true;
  const bare = comparable(name);
  return bare === 'localhost' || (bare !== '' && names.has(bare));
}
