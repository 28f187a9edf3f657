import { json } from '../../src/core/http/respond.js';
import type { Route } from '../../src/core/http/server.js';
import type { DeltaFeed } from '../deltas/feed.js';
import type { SyncJob } from '../distribution/sync-job.js';
import type { LedgerStore } from '../ledger/store.js';
import type { NodePolicy } from '../nodes/policy.js';
import type { ConfigStore } from '../store/config-store.js';
import type { MetricsSampler } from './metrics-sampler.js';
import { sidecarRequest } from './sidecar-client.js';

/**
 * GET /api/console/network: the Network page's one read. Every OpenSIPS node with its sidecar's health as the
 * sidecar answers it now (asked in parallel, each bounded by a timeout, so one silent node shows as down
 * without holding the others), the last sync's result for that node, its decisions per second and p99 from
 * the centre's samples of its metrics, and its money rounds as the centre's ledger has them. `delta_seq` is the
 * centre's last live change; each sidecar's health says the one it has applied.
 */
export function networkRoutes(context: {
  store: ConfigStore;
  ledger: LedgerStore;
  syncJob: SyncJob;
  nodePolicy: NodePolicy;
  metricsSampler: MetricsSampler;
  deltas: DeltaFeed;
  leaseValidSeconds: number;
}): Route[] {
  return [
    {
      method: 'GET',
      path: '/api/console/network',
      maxBodyBytes: 0,
      handler: async () => {
        const { rows } = await context.store.list('opensips_nodes', { where: {}, limit: null, offset: 0 });
        const last = context.syncJob.lastRun();
        const rounds = new Map((await context.ledger.moneyRounds()).map((round) => [round.node, round]));
        const nodes = await Promise.all(
          rows.map(async (node) => {
            const reach = await sidecarRequest(context.nodePolicy, (node.sidecar_address as string | null) ?? null, '/api/health');
            const health = reach.ok && reach.status === 200 ? (reach.body as Record<string, unknown>) : null;
            return {
              id: node.id,
              hostname: node.hostname,
              region: node.region ?? null,
              status: node.status,
              sidecar_address: node.sidecar_address ?? null,
              sidecar: {
                up: health !== null,
                error: reach.ok ? (health === null ? `the sidecar answered ${reach.status}` : null) : reach.error,
                health,
              },
              metrics: context.metricsSampler.figures(node.hostname as string),
              money: rounds.get(node.hostname as string) ?? null,
              last_sync: {
                sidecar: last?.report.sidecar_results.find((result) => result.node_id === node.id) ?? null,
                reload: last?.report.reload_results.find((result) => result.node_id === node.id) ?? null,
              },
            };
          }),
        );
        return json(200, {
          checked_at: new Date().toISOString(),
          // A node's leases lapse after this long without a money round: the page marks a node silent that long.
          lease_valid_seconds: context.leaseValidSeconds,
          delta_seq: await context.deltas.lastSeq(),
          last_sync:
            last === null
              ? null
              : { finished_at: last.finishedAt, snapshot_version: last.report.snapshot_version, warnings: last.report.warnings },
          nodes,
        });
      },
    },
  ];
}
