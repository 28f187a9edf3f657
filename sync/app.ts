import type { Logger } from 'pino';
import { json } from '../src/core/http/respond.js';
import type { Route } from '../src/core/http/server.js';
import { guardAdminApi, isAllowlisted } from './admin/access.js';
import { resourceRoutes } from './admin/crud.js';
import { nodeSecretRoutes } from './admin/node-secret-routes.js';
import type { MetricsSampler } from './console/metrics-sampler.js';
import { networkRoutes } from './console/network-routes.js';
import { consoleReadRoutes } from './console/read-routes.js';
import { simulatorRoutes } from './console/simulator-routes.js';
import { consoleFileRoutes } from './console/static-files.js';
import { rateImportRoutes } from './admin/rate-import.js';
import { RESOURCES } from './admin/resources.js';
import { adminRoutes } from './admin/routes.js';
import type { SyncJob } from './distribution/sync-job.js';
import type { DeltaFeed } from './deltas/feed.js';
import { deltaRoutes, type NodeProgress } from './deltas/routes.js';
import { answeredWhenDurable } from './http/durable.js';
import { balanceRoutes } from './ledger/balance-routes.js';
import type { NodeSilence } from './ledger/lease-reclaim.js';
import { LeaseRecalls } from './ledger/lease-recall.js';
import { ledgerRoutes } from './ledger/routes.js';
import type { ControlPlaneMetrics } from './metrics/control-plane-metrics.js';
import { metricsRoute } from './metrics/scrape-route.js';
import { rateDeckUpdateRoutes } from './rate-deck-updates/routes.js';
import type { RateDeckScheduler } from './rate-deck-updates/scheduler.js';
import type { RateDeckUpdateStore } from './rate-deck-updates/store.js';
import type { LedgerStore } from './ledger/store.js';
import type { NodePolicy } from './nodes/policy.js';
import { authRoutes } from './portal/auth-routes.js';
import { LoginThrottle } from './portal/throttle.js';
import type { ConfigStore } from './store/config-store.js';

/**
 * The control plane's HTTP surface: the declared admin resources, the admin endpoints that are not plain
 * records, rate sheet imports, rate-deck updates, balances, the nodes' money rounds and CDR search, behind the IP
 * allowlist or a customer's portal session (admin/access.ts); portal login and logout and health in front of it.
 */
export interface ControlPlaneContext {
  store: ConfigStore;
  ledger: LedgerStore;
  syncJob: SyncJob;
  log: Logger;
  maxBodyBytes: number;
  /** How long a node's credit leases stay valid without a money round (node-sync answers say so). */
  leaseValidSeconds: number;
  /** Told of every answered money round (the lease reclaim's own clock). */
  nodeSilence: NodeSilence;
  /** Where node addresses may lead (node files roots, node hosts): checked on every write of a node. */
  nodePolicy: NodePolicy;
  /** Rate-deck updates and the scheduler that activates them (started and stopped with the process). */
  deckUpdates: RateDeckUpdateStore;
  scheduler: RateDeckScheduler;
  /** A routing sync in the background, for changes that must reach the sidecars without an operator's sync. */
  requestSync: (reason: string) => void;
  /** The sidecars' metrics, sampled by the centre for the console's Network and Live pages. */
  metricsSampler: MetricsSampler;
  /** The delta log the nodes follow (sync/deltas/), on either engine. */
  deltas: DeltaFeed;
  /** Lease recalls and money signals shared by the money rounds, the balances, the nodes' channel and the partner API (absent: one of their own). */
  recalls?: LeaseRecalls;
  /** The store's group commit (store/wal-flush.ts): a write is answered once it is on disk. Absent: nothing to wait for. */
  flushed?: () => Promise<void>;
  /** Called after every successful configuration write. */
  onChange?: (table: string) => void;
  /** The control plane's metrics, counted by the routes and served on GET /metrics (absent: neither). */
  metrics?: ControlPlaneMetrics;
  /** The token a scraper may present instead of scraping from an auth_ips address (sync/metrics/scrape-route.ts). */
  metricsToken?: string | null;
  /** Names an operator's Host may give besides IP literals and localhost (`--admin-hostnames`; absent: none). */
  adminHostnames?: readonly string[];
}

/** The admin API's body limit (rate sheets and money rounds declare their own). */
export const ADMIN_MAX_BODY_BYTES = 1024 * 1024;

export function buildControlPlaneRoutes(given: ControlPlaneContext): Route[] {
  // One set of recalls and money signals for the rounds, the balances and the nodes' channel.
  // Each node's last delta ask: the delta routes keep it, the metrics read every node's lag from it.
  const progress = new Map<string, NodeProgress>();
  const { metrics } = given;
  const context = {
    ...given,
    recalls: given.recalls ?? new LeaseRecalls(),
    progress,
    onRound: metrics?.moneyRound.bind(metrics),
    onSnapshotRequired: metrics?.snapshotRequired.bind(metrics),
  };
  metrics?.followDeltas(context.deltas, progress);
  metrics?.followNodes(async () => {
    const { rows } = await given.store.list('opensips_nodes', { where: {}, limit: null, offset: 0 });
    return rows.map((row) => row.hostname as string);
  });
  const routes = [
    ...RESOURCES.flatMap((resource) => resourceRoutes(resource, context)),
    ...adminRoutes(context),
    ...nodeSecretRoutes(context),
    ...rateImportRoutes(context),
    ...rateDeckUpdateRoutes(context),
    ...balanceRoutes(context),
    ...ledgerRoutes(context),
    ...deltaRoutes(context),
    // The operator console: its files and the reads its pages make, behind the same allowlist as the rest.
    ...consoleFileRoutes(),
    ...networkRoutes(context),
    ...simulatorRoutes(context),
    ...consoleReadRoutes(context),
  ];
  const flushed = context.flushed ?? (() => Promise.resolve());
  return answeredWhenDurable(
    [
      ...guardAdminApi(routes, context.store, context.log, context.adminHostnames),
      // Open to any address: how a customer gets (and ends) a portal session.
      ...authRoutes({
        store: context.store,
        log: context.log,
        maxBodyBytes: context.maxBodyBytes,
        throttle: new LoginThrottle(),
        allowlisted: (address) => isAllowlisted(context.store, address),
      }),
      { method: 'GET', path: '/api/health', maxBodyBytes: 0, handler: () => json(200, { status: 'ok', valkey: 'disabled' }) },
      // Its own admission (the allowlist, or the scrape token), not the admin API's: a portal token is no scrape token.
      ...(metrics === undefined
        ? []
        : [
            metricsRoute(metrics, {
              token: context.metricsToken ?? null,
              allowlisted: (address) => isAllowlisted(context.store, address),
              adminHostnames: context.adminHostnames ?? [],
              log: context.log,
            }),
          ]),
    ],
    flushed,
  );
}
