import { parseIPv4, parseIPv6 } from '../../src/core/net/ip.js';

/**
 * The Host headers an operator's request to the admin API and the console may carry (docs/operations.md, HTTP
 * edges). An operator is known by address alone, so a page whose name an attacker rebinds to the control
 * plane's address (DNS rebinding) is same-origin with it in the operator's browser: Sec-Fetch-Site and
 * Origin say nothing wrong, and the page could read and change everything. Its requests still carry its own
 * name as Host. So a Host must be an IP literal (no name to rebind), `localhost` (no one else's), or a name
 * the operator gave with `--admin-hostnames`.
 */

/** A DNS name: dot-separated labels of letters, digits and inner hyphens, 253 characters at most. */
const HOST_NAME = /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;
const PORT = /^:[0-9]{1,5}$/;
const scratchGroups = new Uint16Array(8);

/** A name as it is compared: lower case, without the trailing dot of a fully qualified name. */
const comparable = (name: string): string => name.toLowerCase().replace(/\.$/, '');

/**
 * `--admin-hostnames`: comma-separated names the console is reached by. Refused at start, naming the entry,
 * when one is not a bare name (a scheme, a port, a path or a wildcard would never match a Host).
 */
export function parseAdminHostnames(text: string): string[] {
  const names = text
    .split(',')
    .map((name) => comparable(name.trim()))
    .filter((name) => name !== '');
  for (const name of names)
    if (!HOST_NAME.test(name))
      throw new Error(`--admin-hostnames: ${JSON.stringify(name.slice(0, 300))} is not a host name (no scheme, port, path or wildcard)`);
  return names;
}

/** Whether a Host header (any port) names this control plane: an IP literal, IPv6 in brackets, `localhost`, or one of `names`. */
export function namesControlPlane(host: string, names: ReadonlySet<string>): boolean {
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
