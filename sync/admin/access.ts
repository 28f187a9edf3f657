import type { Logger } from 'pino';
import { errorBody } from '../../src/core/http/errors.js';
import type { OutgoingResponse, Route } from '../../src/core/http/server.js';
import { formatIPv4, formatIPv6, parseIPv4, parseIPv6 } from '../../src/core/net/ip.js';
import type { ConfigStore } from '../store/config-store.js';

/** The admin API's IP allowlist (`auth_ips`): who may call the control plane at all. */

/** Canonical text of a peer address: IPv4-mapped IPv6 as IPv4. */
export function canonicalAddress(text: string): string {
  const v4 = parseIPv4(text);
  if (v4 >= 0) return formatIPv4(v4);
  const groups = new Uint16Array(8);
  if (!parseIPv6(text, groups)) return text;
  if (groups[0] === 0 && groups[1] === 0 && groups[2] === 0 && groups[3] === 0 && groups[4] === 0 && groups[5] === 0xffff)
    return formatIPv4(groups[6] * 65536 + groups[7]);
  return formatIPv6(groups);
}

async function isAuthorised(store: ConfigStore, address: string): Promise<boolean> {
  const { rows } = await store.list('auth_ips', { where: { ip_address: canonicalAddress(address), is_active: 1 }, limit: 1, offset: 0 });
  return rows.length > 0;
}

/** A fresh store lets this machine in, so the operator can add the others. */
export async function seedLocalhost(store: ConfigStore): Promise<void> {
  const { rows } = await store.list('auth_ips', { where: { ip_address: '127.0.0.1' }, limit: 1, offset: 0 });
  if (rows.length > 0) return;
  const now = new Date().toISOString();
  await store.insert('auth_ips', {
    ip_address: '127.0.0.1',
    description: 'localhost seed',
    is_active: 1,
    created_at: now,
    updated_at: now,
  });
}

/**
 * Each route answers only callers from an active `auth_ips` address; the others get 403 and a warning in the
 * log. The check is the route's admission, run from the connection at header time: a caller that may not call
 * gets its 403 before the server buffers one byte of its body.
 */
export function behindAllowlist(routes: readonly Route[], store: ConfigStore, log: Logger): Route[] {
  const admit = async (remoteAddress: string, path: string): Promise<OutgoingResponse | null> => {
    if (await isAuthorised(store, remoteAddress)) return null;
    log.warn({ remote_address: remoteAddress, path }, 'admin request from an address not in auth_ips');
    return { status: 403, body: errorBody('address_not_allowed') };
  };
  return routes.map((route): Route => ({ ...route, admit }));
}
