import type { Route } from '../core/http/server.js';
import { callRoutes } from './http/call-routes.js';
import { sidecarContext, type SidecarContext } from './http/context.js';
import { decisionRoutes } from './http/decision-routes.js';
import { moneyRoutes } from './http/money-routes.js';
import { statusRoutes } from './http/status-routes.js';

/**
 * The sidecar's HTTP surface: the per-call decisions, the money path, and status and snapshots. Paths
 * and fields are the switch API's; deviations are listed in docs/contract-notes.md.
 */
export function buildSidecarRoutes(parts: Omit<SidecarContext, 'post' | 'get'>): Route[] {
  const context = sidecarContext(parts);
  return [...callRoutes(context), ...decisionRoutes(context), ...moneyRoutes(context), ...statusRoutes(context)];
}
