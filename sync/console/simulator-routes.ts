import { RequestError } from '../../src/core/http/errors.js';
import { guard } from '../../src/core/http/guard.js';
import type { Route } from '../../src/core/http/server.js';
import { mustExist, pathId } from '../http/handlers.js';
import type { NodePolicy } from '../nodes/policy.js';
import type { ConfigStore } from '../store/config-store.js';
import { sidecarRequest } from './sidecar-client.js';

/** Why the sidecar could not be asked, as the operator is told: the node's configuration (4xx) or its sidecar (502). */
const REFUSALS = {
  not_allowed: 'node_target_not_allowed',
  not_http: 'sidecar_not_http',
  unreachable: 'sidecar_unreachable',
} as const;

/** A simulation request is a handful of fields; anything larger is not one. */
const SIMULATION_MAX_BODY_BYTES = 16 * 1024;

/**
 * POST /api/console/nodes/{id}/route-simulator: the sidecar's own route simulator, asked on the console's
 * behalf, so the page shows the very answer that node's sidecar gives (it routes with the snapshot it serves,
 * which is what an operator debugging a call wants). The body goes through untouched and the sidecar's answer
 * (a refusal included) comes back as it was given; only a node without a reachable sidecar is our own error.
 */
export function simulatorRoutes(context: { store: ConfigStore; nodePolicy: NodePolicy }): Route[] {
  return [
    {
      method: 'POST',
      path: '/api/console/nodes/{id}/route-simulator',
      maxBodyBytes: SIMULATION_MAX_BODY_BYTES,
      retainsBody: true,
      handler: guard(async (request) => {
        const node = await mustExist(context.store, 'opensips_nodes', pathId(request, 'id'), 'OpenSIPS node');
        const reach = await sidecarRequest(
          context.nodePolicy,
          (node.sidecar_address as string | null) ?? null,
          '/api/admin/route-simulator',
          {
            method: 'POST',
            body: request.body,
          },
        );
        if (!reach.ok) throw new RequestError(REFUSALS[reach.why], `node ${String(node.hostname)}: ${reach.error}`);
        return { status: reach.status, body: JSON.stringify(reach.body) };
      }),
    },
  ];
}
