import type { Logger } from 'pino';
import { bearerToken } from '../../src/core/http/bearer.js';
import { RequestError, errorBody, statusOf } from '../../src/core/http/errors.js';
import { guard } from '../../src/core/http/guard.js';
import type { OutgoingResponse, Route } from '../../src/core/http/server.js';
import { formatIPv4, formatIPv6, parseIPv4, parseIPv6 } from '../../src/core/net/ip.js';
import { PORTAL_RULES, type PortalCustomer, type PortalPass } from '../portal/access-rules.js';
import { namesControlPlane } from './admin-hosts.js';
import { findSession } from '../portal/sessions.js';
import type { ConfigStore } from '../store/config-store.js';

/** The admin API's IP allowlist (`auth_ips`) and the portal's sessions: who may call the control plane at all. */

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

/**
 * A fresh store lets this machine in, so the operator can add the others. Control planes starting together on
 * one PostgreSQL store may all find it missing and all insert it: the unique key lets one in, and the others
 * find it there afterwards (rather than stop at start on the duplicate key).
 */
export async function seedLocalhost(store: ConfigStore): Promise<void> {
  const seeded = async (): Promise<boolean> =>
    (await store.list('auth_ips', { where: { ip_address: '127.0.0.1' }, limit: 1, offset: 0 })).rows.length > 0;
  if (await seeded()) return;
  const now = new Date().toISOString();
  try {
    await store.insert('auth_ips', {
      ip_address: '127.0.0.1',
      description: 'localhost seed',
      is_active: 1,
      created_at: now,
      updated_at: now,
    });
  } catch (error) {
    if (!(await seeded())) throw error;
  }
}

/**
 * Who may call the admin API, decided for each request at header time, before one byte of its body is
 * buffered:
 *
 * - a request with `Authorization: Bearer <token>` is a customer's portal request, whatever its address: the
 *   token must open a live session (else 401 session_expired, and it is not tried as an operator's), and the
 *   handler then runs only as the portal's rules allow (sync/portal/access-rules.ts);
 * - any other request is the operator's: its address must be an active `auth_ips` entry (else 403), and its
 *   Host must name the control plane (admin-hosts.ts; else 421 admin_host_not_allowed). A portal
 *   request is not held to the Host: its token is nothing a page elsewhere has, and a customer's portal may
 *   reach the control plane through a proxy under its own name.
 *
 * A route that reads its own credential from the header (a node's money round) is left to it: only the
 * allowlist guards it, and its Bearer is the node's secret, not a portal token.
 */
export function guardAdminApi(
  routes: readonly Route[],
  store: ConfigStore,
  log: Logger,
  /** Names besides IP literals and localhost an operator's Host may give (`--admin-hostnames`). */
  adminHostnames: readonly string[] = [],
): Route[] {
  const hostnames = new Set(adminHostnames);
  const allowlist = async (remoteAddress: string, path: string): Promise<OutgoingResponse | null> => {
    if (await isAuthorised(store, remoteAddress)) return null;
    log.warn({ remote_address: remoteAddress, path }, 'admin request from an address not in auth_ips');
    return { status: 403, body: errorBody('address_not_allowed') };
  };
  const admit = async (
    remoteAddress: string,
    path: string,
    authorization?: string,
    headers?: Record<string, string>,
  ): Promise<OutgoingResponse | null> => {
    const token = bearerToken(authorization);
    if (token === null) {
      const refused = await allowlist(remoteAddress, path);
      const host = headers?.host ?? '';
      if (refused !== null || namesControlPlane(host, hostnames)) return refused;
      log.warn({ remote_address: remoteAddress, path, host: host.slice(0, 300) }, 'operator request for a host name not the control plane');
      return { status: statusOf('admin_host_not_allowed'), body: errorBody('admin_host_not_allowed') };
    }
    if ((await findSession(store, token)).ok) return null;
    log.info({ remote_address: remoteAddress, path }, 'portal request with an unknown, expired or ended session');
    return { status: 401, body: errorBody('session_expired') };
  };
  return routes.map((route): Route => {
    if (route.readsAuthorization === true) return { ...route, admit: allowlist };
    return {
      ...route,
      admit,
      readsAuthorization: true,
      readsHeaders: [...(route.readsHeaders ?? []), ...BROWSER_SITE_HEADERS],
      handler: portalAware(route, store, log),
    };
  });
}

/** What a browser says about the page a request was made for (an operator's scripts send none of them). */
const BROWSER_SITE_HEADERS = ['sec-fetch-site', 'origin', 'host'] as const;

/**
 * Whether a browser made this request for a page of another site. An operator is known by address alone, and
 * every page the operator's browser shows has that address: without this, a page elsewhere could POST to the
 * admin API (a Blob body has no Content-Type, so no CORS preflight, and a body without one is read as JSON)
 * and add its own address to auth_ips. Sec-Fetch-Site, when sent, decides (it stays `same-origin` behind a
 * proxy that rewrites Host); a browser without it still sends Origin on a cross-origin POST.
 */
function madeForAnotherSite(headers: Record<string, string> | undefined): boolean {
  const site = headers?.['sec-fetch-site'] ?? '';
  if (site !== '') return site === 'cross-site' || site === 'same-site';
  const origin = headers?.origin ?? '';
  if (origin === '') return false;
  try {
    return new URL(origin).host !== (headers?.host ?? '').toLowerCase();
  } catch {
    return true; // `null` (a sandboxed frame, a file) or anything unreadable: no page of ours
  }
}

/** The route's handler for operators; for a portal request, the same handler behind the portal's rule for it. */
function portalAware(route: Route, store: ConfigStore, log: Logger): Route['handler'] {
  const rule = PORTAL_RULES.get(`${route.method} ${route.path}`);
  return guard(async (request) => {
    const token = bearerToken(request.authorization);
    if (token === null) {
      // A read changes nothing and its answer stays with the browser (no CORS headers): a link from elsewhere still opens the console.
      if (route.method !== 'GET' && madeForAnotherSite(request.headers))
        throw new RequestError('cross_site_request', `${route.method} ${route.path} was made by a browser for another site`);
      return route.handler(request);
    }
    const customer = await portalCustomer(store, token);
    if (rule === undefined) throw new RequestError('permission_denied', `a portal session may not call ${route.method} ${route.path}`);
    if (rule.flag !== null && customer.account[rule.flag] !== 1)
      throw new RequestError('permission_denied', `${rule.flag} is not granted to this account`);
    const checkedAndRun = async (): Promise<{ passed: PortalPass; response: OutgoingResponse }> => {
      const passed = await rule.check(request, customer, store);
      return { passed, response: await route.handler(passed.request) };
    };
    const { passed, response } =
      rule.exclusive === undefined ? await checkedAndRun() : await store.exclusively(rule.exclusive, checkedAndRun);
    if (response.status >= 200 && response.status < 300 && passed.narrow !== undefined && typeof response.body === 'string')
      return { ...response, body: JSON.stringify(passed.narrow(JSON.parse(response.body))) };
    if (route.method !== 'GET' && response.status < 300)
      log.info(
        { customer_account_id: customer.account.id, method: route.method, path: route.path, status: response.status },
        'portal change',
      );
    return response;
  });
}

/** The account a portal token acts for; the session is looked up again (it may have ended since admission). */
async function portalCustomer(store: ConfigStore, token: string): Promise<PortalCustomer> {
  const found = await findSession(store, token);
  if (!found.ok) throw new RequestError('session_expired');
  const account = await store.get('customer_accounts', found.session.customerAccountId);
  if (account === null) throw new RequestError('session_expired');
  // An account suspended or closed since login acts no more, though its session has not expired.
  if (account.status !== 'active') throw new RequestError('login_account_not_active', `customer account is ${String(account.status)}`);
  const { rows } = await store.list('customer_trunks', { where: { customer_account_id: account.id as number }, limit: null, offset: 0 });
  return { account, trunkIds: new Set(rows.map((row) => row.id as number)) };
}

/** Whether the address is an active auth_ips entry (an operator's). */
export function isAllowlisted(store: ConfigStore, address: string): Promise<boolean> {
  return isAuthorised(store, address);
}
