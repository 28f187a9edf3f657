import type { RequestObserver } from '../../src/core/http/server.js';
import {
  Counter,
  Gauge,
  Histogram,
  renderAll,
  SeriesByLabel,
  SeriesByLabelPair,
  type CounterHandle,
  type HistogramHandle,
} from '../../src/core/metrics/exposition.js';
import { ProcessMetrics } from '../../src/core/metrics/process.js';
import type { EntityType } from '../../src/core/protocol/node-sync.js';
import type { ReloadResult } from '../mi/reload.js';
import type { SidecarResult } from '../distribution/push.js';
import type { DeltaFeed } from '../deltas/feed.js';
import type { NodeProgress } from '../deltas/routes.js';
import type { RoundResult, RoundTally } from '../ledger/settlement.js';
import type { ThrottleLimit } from '../partner/limits.js';

/**
 * Every metric the control plane exposes on GET /metrics (sync/metrics/scrape-route.ts; the table is in
 * docs/operations.md, "Metrics and logs"). What it counts is what its modules already knew and logged: the
 * HTTP answers, the nodes' money rounds, the syncs and each node's part in them, the delta log and how far
 * behind each node follows it, the partner operations, the store and the sync lead.
 *
 * Labels are bounded: an API group, a status class, a result or an error code from the catalogue, a table, an
 * entity type, a partner operation's name, and a node's hostname (as registered in opensips_nodes, set only
 * once the node proved its secret or from the store's own rows: a caller cannot add series by naming nodes).
 * Never an account, a tenant, a call id or a token.
 */

export type SyncKind = 'sync' | 'drouting_follow';

const ENTITY_TYPES: readonly EntityType[] = ['customer', 'carrier', 'retail'];
const STATUS_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx'] as const;

/** One API group's series, made at its first request: the request only bumps numbers. */
interface ApiSeries {
  byClass: CounterHandle[];
  latency: HistogramHandle;
}

export class ControlPlaneMetrics {
  readonly httpRequests = new Counter(
    'control_plane_http_requests_total',
    'HTTP requests answered, by API (admin, console, portal, node_money, node_deltas, partner, status) and status class.',
  );
  readonly httpSeconds = new Histogram(
    'control_plane_http_request_duration_seconds',
    'Time from request arrival to response, by API (node_deltas includes the long poll hold).',
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  );
  readonly moneyRounds = new Counter(
    'control_plane_money_rounds_total',
    "Nodes' money rounds (POST /api/ledger/node-sync), by result: ok, resent (a lost answer asked again), invalid, error, or the refusal code.",
  );
  readonly moneyRoundSeconds = new Histogram(
    'control_plane_money_round_seconds',
    "Time to apply (or find the kept answer of) a money round, its transaction included: the node_money API's latency adds the group commit.",
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
  );
  readonly cdrsSettled = new Counter(
    'control_plane_cdrs_settled_total',
    'CDRs recorded by money rounds (each once; a resent one is not counted again).',
  );
  readonly cdrsUnbilled = new Counter(
    'control_plane_cdrs_unbilled_total',
    'Of those, CDRs recorded without a debit: their account is not in this store.',
  );
  readonly leaseGrants = new Counter(
    'control_plane_lease_grants_total',
    'Credit leases granted or raised by money rounds, by entity type.',
  );
  readonly leaseReturns = new Counter(
    'control_plane_lease_returns_total',
    'Unused credit leases handed back by money rounds, by entity type.',
  );
  readonly leasesReclaimed = new Counter(
    'control_plane_leases_reclaimed_total',
    'Credit leases of silent nodes taken back by the lease reclaim.',
  );
  readonly nodeLastRound = new Gauge(
    'control_plane_node_last_round_timestamp_seconds',
    'When this control plane last answered a money round of the node (Unix time), by node.',
  );
  readonly syncs = new Counter(
    'control_plane_syncs_total',
    'Sync job runs by kind (sync, drouting_follow) and result: ok, partial (a node did not take its part), failed.',
  );
  readonly syncSeconds = new Histogram(
    'control_plane_sync_seconds',
    'Duration of a sync job run, by kind.',
    [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
  );
  readonly snapshotVersion = new Gauge(
    'control_plane_snapshot_version',
    'Version of the last snapshot a sync built (0: none since start).',
  );
  readonly lastSyncTime = new Gauge(
    'control_plane_last_sync_timestamp_seconds',
    'When the last sync that built a snapshot finished (Unix time; 0: none since start).',
  );
  readonly snapshotPushes = new Counter(
    'control_plane_snapshot_pushes_total',
    'Snapshot pushes to a node sidecar, by node and result (ok, failed).',
  );
  readonly sidecarReachable = new Gauge(
    'control_plane_node_sidecar_reachable',
    "Whether the node took the last sync's snapshot (1) or not (0), by node.",
  );
  readonly droutingReloads = new Counter(
    'control_plane_drouting_reloads_total',
    'drouting table writes and MI dr_reload per node, by result: ok, skipped (the node had this data), failed.',
  );
  readonly droutingLoaded = new Gauge(
    'control_plane_node_drouting_loaded',
    "Whether the node's last drouting write and reload succeeded (1) or not (0), by node.",
  );
  readonly deltaSeq = new Gauge('control_plane_delta_seq', 'Head of the delta log: the last sequence handed out.');
  readonly deltaOldestSeq = new Gauge('control_plane_delta_oldest_seq', 'Oldest sequence the delta log still holds (0: none).');
  readonly nodeDeltaLag = new Gauge(
    'control_plane_node_delta_lag',
    'Deltas the node has not yet applied (head minus the sequence of its last ask), by node.',
  );
  readonly nodeDeltaAskAge = new Gauge(
    'control_plane_node_delta_ask_age_seconds',
    'Seconds since the node last asked for deltas, by node.',
  );
  readonly deltaSnapshotsRequired = new Counter(
    'control_plane_delta_snapshot_required_total',
    'Delta asks answered snapshot_required (the node was behind the log, or could not apply a delta).',
  );
  readonly partnerOperations = new Counter(
    'control_plane_partner_operations_total',
    'Partner API operations by operation and outcome: ok, replayed (an Idempotency-Key seen before), error, or the refusal code.',
  );
  readonly partnerThrottles = new Counter(
    'control_plane_partner_throttled_total',
    'Partner API requests answered 429 by a limit: address_auth_failures (unverified tokens from one address) or tenant_rate.',
  );
  readonly configWrites = new Counter('control_plane_config_writes_total', 'Configuration writes through the admin API, by table.');
  readonly storeInfo = new Gauge('control_plane_store_info', 'The store engine (sqlite or postgres): always 1.');
  readonly syncLeader = new Gauge(
    'control_plane_sync_leader',
    'Whether this control plane runs the syncs and drouting writes (1): it holds the PostgreSQL sync lock, or is alone on SQLite.',
  );
  readonly leadershipChanges = new Counter(
    'control_plane_leadership_changes_total',
    'Times this control plane took or lost the sync lead.',
  );
  readonly process = new ProcessMetrics();

  private readonly apis = new Map<string, ApiSeries>();
  private readonly rounds = new SeriesByLabel(this.moneyRounds, 'result');
  private readonly grants = new Map(ENTITY_TYPES.map((type) => [type, this.leaseGrants.labels({ entity_type: type })]));
  private readonly returns = new Map(ENTITY_TYPES.map((type) => [type, this.leaseReturns.labels({ entity_type: type })]));
  private readonly settled = this.cdrsSettled.labels();
  private readonly unbilled = this.cdrsUnbilled.labels();
  private readonly snapshotsRequired = this.deltaSnapshotsRequired.labels();
  private readonly lastRoundAt = new Map<string, number>();
  private readonly partner = new SeriesByLabelPair(this.partnerOperations, 'operation', 'outcome');
  private readonly tables = new SeriesByLabel(this.configWrites, 'table');
  private readonly throttles = new SeriesByLabel(this.partnerThrottles, 'limit');
  private nodeHostnames: (() => Promise<readonly string[]>) | null = null;
  /** Read at each scrape before rendering: what is not counted as it happens (the delta log's head, the nodes' progress). */
  private readonly readings: (() => void | Promise<void>)[] = [];

  constructor(engine: 'sqlite' | 'postgres') {
    this.storeInfo.set(1, { engine });
    this.snapshotVersion.set(0);
    this.lastSyncTime.set(0);
    // Every series an operator alerts on is there from the start, at zero: a rate() over a series that
    // appears only with its first failure misses that failure.
    for (const result of ['ok', 'invalid', 'node_unauthenticated'] as const) this.rounds.of(result);
    for (const kind of ['sync', 'drouting_follow'] as const)
      for (const result of ['ok', 'partial', 'failed']) this.syncs.labels({ kind, result });
    for (const limit of ['address_auth_failures', 'tenant_rate'] as const) this.throttles.of(limit);
    this.leasesReclaimed.labels();
    this.leadershipChanges.labels();
  }

  /** The delta log's head and how far behind each node that asks for deltas is, read at each scrape. */
  followDeltas(deltas: DeltaFeed, progress: ReadonlyMap<string, NodeProgress>): void {
    this.readAtScrape(async () => {
      const last = await deltas.lastSeq();
      this.deltaSeq.set(last);
      this.deltaOldestSeq.set((await deltas.oldestSeq()) ?? 0);
      this.nodeDeltaLag.clear();
      this.nodeDeltaAskAge.clear();
      const now = Date.now();
      // Only nodes that proved their secret are in `progress` (deltas/routes.ts): a caller cannot add series.
      for (const [node, seen] of progress) {
        this.nodeDeltaLag.set(Math.max(0, last - seen.applied_seq), { node });
        this.nodeDeltaAskAge.set(Math.max(0, Math.round((now - Date.parse(seen.seen_at)) / 1000)), { node });
      }
    });
  }

  /**
   * The registered nodes' hostnames, read at each scrape after the other readings: a node deleted (here or on
   * another control plane sharing the store) or renamed drops its per-node series, which would otherwise stay
   * until a restart.
   */
  followNodes(hostnames: () => Promise<readonly string[]>): void {
    this.nodeHostnames = hostnames;
  }

  private async forgetGoneNodes(): Promise<void> {
    if (this.nodeHostnames === null) return;
    const known = new Set(await this.nodeHostnames());
    const keep = (node: string): boolean => known.has(node);
    for (const node of this.lastRoundAt.keys()) if (!keep(node)) this.lastRoundAt.delete(node);
    for (const metric of [
      this.snapshotPushes,
      this.droutingReloads,
      this.sidecarReachable,
      this.droutingLoaded,
      this.nodeDeltaLag,
      this.nodeDeltaAskAge,
    ])
      metric.retain('node', keep);
  }

  private readAtScrape(read: () => void | Promise<void>): void {
    this.readings.push(read);
  }

  async render(): Promise<string> {
    for (const read of this.readings) await read();
    this.process.collect();
    await this.forgetGoneNodes();
    this.nodeLastRound.clear();
    for (const [node, at] of this.lastRoundAt) this.nodeLastRound.set(Math.round(at / 1000), { node });
    return renderAll(this) + renderAll(this.process);
  }

  /**
   * The HTTP metrics of one listener, as its server's observer: `apiOf` names a route's API group, once per
   * route (the registered path, or 'unmatched'); each request then bumps the numbers of its route's handles.
   */
  observer(apiOf: (route: string) => string): RequestObserver {
    const byRoute = new Map<string, ApiSeries>();
    return (route, status, seconds) => {
      let series = byRoute.get(route);
      if (series === undefined) byRoute.set(route, (series = this.apiSeries(apiOf(route))));
      const index = Math.floor(status / 100) - 1;
      series.byClass[index >= 0 && index < STATUS_CLASSES.length ? index : STATUS_CLASSES.length - 1].value++;
      series.latency.observe(seconds);
    };
  }

  private apiSeries(api: string): ApiSeries {
    let series = this.apis.get(api);
    if (series === undefined) {
      series = {
        byClass: STATUS_CLASSES.map((status_class) => this.httpRequests.labels({ api, status_class })),
        latency: this.httpSeconds.labels({ api }),
      };
      this.apis.set(api, series);
    }
    return series;
  }

  /** A money round answered: `node` only once the node proved its secret (ok, resent), `tally` what it did. */
  moneyRound(result: RoundResult, seconds: number, node?: string, tally?: RoundTally): void {
    this.rounds.of(result).value++;
    if (result !== 'ok' && result !== 'resent') return;
    this.moneyRoundSeconds.observe(seconds);
    if (node !== undefined) this.lastRoundAt.set(node, Date.now());
    if (tally === undefined) return;
    this.settled.value += tally.settled;
    this.unbilled.value += tally.unbilled;
    for (const type of ENTITY_TYPES) {
      this.grants.get(type)!.value += tally.granted[type];
      this.returns.get(type)!.value += tally.returned[type];
    }
  }

  /** A sync job run ended: its report (per-node results) or the error it failed with. */
  syncFinished(
    kind: SyncKind,
    seconds: number,
    report: { sidecar_results: SidecarResult[]; reload_results: ReloadResult[]; snapshot_version: number } | null,
  ): void {
    this.syncSeconds.observe(seconds, { kind });
    if (report === null) {
      this.syncs.inc({ kind, result: 'failed' });
      return;
    }
    const partial = report.sidecar_results.some((result) => !result.success) || report.reload_results.some((result) => !result.success);
    this.syncs.inc({ kind, result: partial ? 'partial' : 'ok' });
    if (kind === 'sync') {
      this.snapshotVersion.set(report.snapshot_version);
      this.lastSyncTime.set(Math.round(Date.now() / 1000));
      // Refilled from this sync's results: a node deleted or deactivated since drops out.
      this.sidecarReachable.clear();
      for (const result of report.sidecar_results) {
        this.snapshotPushes.inc({ node: result.hostname, result: result.success ? 'ok' : 'failed' });
        this.sidecarReachable.set(result.success ? 1 : 0, { node: result.hostname });
      }
    }
    this.droutingLoaded.clear();
    for (const result of report.reload_results) {
      this.droutingReloads.inc({ node: result.hostname, result: result.success ? (result.skipped ? 'skipped' : 'ok') : 'failed' });
      this.droutingLoaded.set(result.success ? 1 : 0, { node: result.hostname });
    }
  }

  /** A node's delta ask was answered snapshot_required. */
  snapshotRequired(): void {
    this.snapshotsRequired.value++;
  }

  /** A partner operation answered (`operation` one of the API's names, `outcome` ok, replayed, error or a refusal code). */
  partnerOperation(operation: string, outcome: string): void {
    this.partner.of(operation, outcome).value++;
  }

  /** A partner request refused by one of the API's limits (sync/partner/limits.ts). */
  partnerThrottled(limit: ThrottleLimit): void {
    this.throttles.of(limit).value++;
  }

  configWritten(table: string): void {
    this.tables.of(table).value++;
  }
}
