import type { Logger } from 'pino';
import { bearerToken } from '../../src/core/http/bearer.js';
import { errorBody, statusOf } from '../../src/core/http/errors.js';
import type { Admission, Route } from '../../src/core/http/server.js';
import { EXPOSITION_CONTENT_TYPE } from '../../src/core/metrics/exposition.js';
import { sameSecret } from '../../src/core/protocol/node-credential.js';
import { namesControlPlane } from '../admin/admin-hosts.js';
import type { ControlPlaneMetrics } from './control-plane-metrics.js';

/**
 * GET /metrics on the admin listener, never on the partner API's (which faces the internet). Who may scrape:
 *
 * - a request without an Authorization header is the operator's, as on the admin API: its address must be an
 *   active `auth_ips` entry (else 403 address_not_allowed), and its Host must name the control plane (an IP
 *   literal, localhost or one of --admin-hostnames; else 421 admin_host_not_allowed): a page whose name is
 *   rebound to the control plane's address would otherwise read the metrics through an operator's browser;
 * - a request with one must carry `Bearer <scrape token>` (--metrics-token-file, CONTROL_METRICS_TOKEN), else
 *   401 metrics_token_invalid: a Prometheus on another host scrapes with the token alone, without being let into
 *   the admin API by an `auth_ips` entry. A portal session's token is not a scrape token.
 *
 * Decided at header time, before the handler reads anything, as the admin API's admission is.
 */
export function metricsRoute(
  metrics: ControlPlaneMetrics,
  access: {
    token: string | null;
    allowlisted: (address: string) => Promise<boolean>;
    /** `--admin-hostnames`: names besides IP literals and localhost an address-admitted scrape's Host may give. */
    adminHostnames: readonly string[];
    log: Logger;
  },
): Route {
  const hostnames = new Set(access.adminHostnames);
  const admit: Admission = async (remoteAddress, path, authorization, headers) => {
    if (authorization !== undefined && authorization !== '') {
      const token = bearerToken(authorization);
      if (access.token !== null && token !== null && sameSecret(token, access.token)) return null;
      access.log.warn({ remote_address: remoteAddress, path }, 'metrics scrape refused: it does not carry the scrape token');
      return { status: statusOf('metrics_token_invalid'), body: errorBody('metrics_token_invalid') };
    }
    if (!(await access.allowlisted(remoteAddress))) {
      access.log.warn({ remote_address: remoteAddress, path }, 'metrics scrape from an address not in auth_ips');
      return { status: statusOf('address_not_allowed'), body: errorBody('address_not_allowed') };
    }
    // The scrape token is nothing a rebound page has: only a scrape let in by its address is held to the Host.
    const host = headers?.host ?? '';
    if (namesControlPlane(host, hostnames)) return null;
    access.log.warn(
      { remote_address: remoteAddress, path, host: host.slice(0, 300) },
      'metrics scrape for a host name not the control plane',
    );
    return { status: statusOf('admin_host_not_allowed'), body: errorBody('admin_host_not_allowed') };
  };
  return {
    method: 'GET',
    path: '/metrics',
    maxBodyBytes: 0,
    readsAuthorization: true,
    readsHeaders: ['host'],
    admit,
    handler: async () => ({ status: 200, body: await metrics.render(), contentType: EXPOSITION_CONTENT_TYPE }),
  };
}

/**
 * The API group of an admin-listener route (its registered path), the `api` label of the HTTP metrics: a
 * handful of values whatever the path, so that a scan of made-up paths (all 'unmatched') adds no series.
 */
export function adminApiOf(route: string): string {
  if (route === '/metrics' || route === '/api/health') return 'status';
  if (route === '/api/ledger/node-sync') return 'node_money';
  if (route === '/api/nodes/deltas') return 'node_deltas';
  if (route === '/api/auth/login' || route === '/api/auth/logout') return 'portal';
  if (route === '/console' || route.startsWith('/console/') || route.startsWith('/api/console/')) return 'console';
  return 'admin';
}
