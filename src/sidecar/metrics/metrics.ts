import {
  Counter,
  Gauge,
  Histogram,
  renderAll,
  SeriesByLabel,
  type CounterHandle,
  type HistogramHandle,
} from '../../core/metrics/exposition.js';
import { ProcessMetrics } from '../../core/metrics/process.js';

interface RouteSeries {
  latency: HistogramHandle;
  byStatus: Map<number, CounterHandle>;
}

/** Every metric the sidecar exposes on GET /metrics. */
export class SidecarMetrics {
  readonly requests = new Counter('sidecar_http_requests_total', 'HTTP requests answered, by endpoint and status.');
  readonly latency = new Histogram(
    'sidecar_http_request_duration_seconds',
    'Time from request arrival to response, by endpoint.',
    [0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 1],
  );
  readonly decisions = new Counter('sidecar_decisions_total', 'Decisions by endpoint and outcome.');
  readonly snapshotVersion = new Gauge('sidecar_snapshot_version', 'Version of the snapshot being served (0 = none).');
  readonly deltaSeq = new Gauge('sidecar_delta_seq', 'Last delta-log sequence the serving state includes (issue 18).');
  readonly deltaApplySeconds = new Histogram(
    'sidecar_delta_apply_seconds',
    'Event-loop time to apply a batch of live changes (deltas) and swap it into service.',
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 1],
  );
  readonly snapshotCreated = new Gauge('sidecar_snapshot_created_timestamp_seconds', 'Creation time of the snapshot being served.');
  readonly snapshotLoads = new Counter('sidecar_snapshot_loads_total', 'Snapshot ingest attempts by source and result.');
  readonly compileSeconds = new Histogram(
    'sidecar_snapshot_compile_seconds',
    'Snapshot verify + compile + persist time (in the compile worker).',
    [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30],
  );
  readonly swapSeconds = new Histogram(
    'sidecar_snapshot_swap_seconds',
    'Main-thread time to take a compiled snapshot into service.',
    [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5],
  );
  /** Read from the HTTP server once it listens (main.ts). */
  readonly bodyBytesHeld = new Gauge(
    'sidecar_http_body_bytes_held',
    'Bytes of request bodies being read, counted against --max-inflight-body-bytes.',
  );
  /** The money path's figures, read at each scrape from the ledger (see main.ts). */
  readonly reservationsHeld = new Gauge('sidecar_reservations_held', 'Reservations of calls in progress.');
  readonly cdrOutbox = new Gauge('sidecar_cdr_outbox', 'Rated CDRs not yet settled by the control plane.');
  /** Read from the OpenSIPS spool (main.ts). */
  readonly spoolParked = new Gauge(
    'sidecar_spool_parked_cdrs',
    'Spooled CDRs this node cannot rate with the snapshot it serves (unrateable_cdr), kept until a change lets it.',
  );
  readonly centreRounds = new Counter('sidecar_centre_rounds_total', 'Money rounds with the control plane, by result.');
  readonly moneySignals = new Counter(
    'sidecar_money_signals_total',
    'Money signals from the control plane over the live channel, by kind (recall, refresh), one per entity.',
  );
  readonly centreRoundSeconds = new Histogram(
    'sidecar_centre_round_seconds',
    'Time of a money round with the control plane, request to answer.',
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
  );
  readonly centreAnswerAge = new Gauge(
    'sidecar_centre_answer_age_seconds',
    'Seconds since the control plane last answered a money round (NaN before the first).',
  );
  readonly leasesHeld = new Gauge('sidecar_credit_leases_held', 'Accounts this node holds a credit lease on.');
  readonly leasesLapsed = new Gauge(
    'sidecar_credit_leases_lapsed',
    '1 while no leases are admitted on: no answered money round within their validity.',
  );
  readonly balanceWarnings = new Counter('sidecar_balance_warnings_total', 'Admissions that left an account below its warning threshold.');
  readonly sliceEvents = new Counter(
    'sidecar_call_slices_total',
    'Sliced calls at their slice boundaries, by event: ended (next slice unaffordable, ended over MI), end_failed (MI could not end it), gone (dialog no longer in OpenSIPS).',
  );
  readonly cdrOverruns = new Counter(
    'sidecar_cdr_overrun_total',
    'CDRs of accounts held to a limit billed beyond their reservation, by kind: unadmitted (no live reservation), beyond_reservation (cost more than it held).',
  );
  readonly cdrUncoveredMicro = new Counter(
    'sidecar_cdr_uncovered_micro_total',
    'What those CDRs charged beyond their reservations, micro-units (1e-6) of the account currency, by currency.',
  );
  readonly cdrOverrunsByKind = new SeriesByLabel(this.cdrOverruns, 'kind');
  readonly cdrUncoveredByCurrency = new SeriesByLabel(this.cdrUncoveredMicro, 'currency');
  /** The console's Live page: where calls were sent, and which SIP failures sent them on. */
  readonly carrierRoutes = new Counter(
    'sidecar_carrier_routes_total',
    'Calls routed to a carrier (first choice or failover), by carrier trunk.',
  );
  readonly failovers = new Counter(
    'sidecar_failovers_total',
    'Carrier failures asked about by OpenSIPS, by SIP code and the action taken.',
  );
  /**
   * The process's health under Node.js's usual names: event-loop lag (every INVITE waits on this loop, so it is
   * the first thing to look at), heap, RSS (process_resident_memory_bytes), CPU and start time.
   */
  readonly process = new ProcessMetrics();
  private readonly routes = new Map<string, RouteSeries>();
  private readonly outcomes = new Map<string, Map<string, CounterHandle>>();
  private readonly byCarrier = new Map<number, CounterHandle>();
  private readonly byFailure = new Map<string, CounterHandle>();

  observeRequest(route: string, status: number, seconds: number): void {
    let series = this.routes.get(route);
    if (series === undefined) {
      series = { latency: this.latency.labels({ route }), byStatus: new Map() };
      this.routes.set(route, series);
    }
    let counter = series.byStatus.get(status);
    if (counter === undefined) {
      counter = this.requests.labels({ route, status: String(status) });
      series.byStatus.set(status, counter);
    }
    counter.value++;
    series.latency.observe(seconds);
  }

  decided(endpoint: string, outcome: string): void {
    let byOutcome = this.outcomes.get(endpoint);
    if (byOutcome === undefined) {
      byOutcome = new Map();
      this.outcomes.set(endpoint, byOutcome);
    }
    let counter = byOutcome.get(outcome);
    if (counter === undefined) {
      counter = this.decisions.labels({ endpoint, outcome });
      byOutcome.set(outcome, counter);
    }
    counter.value++;
  }

  /** A call sent to this carrier trunk (a handle per trunk, so the hot path only bumps a number). */
  routedTo(carrierTrunkId: number): void {
    let counter = this.byCarrier.get(carrierTrunkId);
    if (counter === undefined) {
      counter = this.carrierRoutes.labels({ carrier_trunk_id: String(carrierTrunkId) });
      this.byCarrier.set(carrierTrunkId, counter);
    }
    counter.value++;
  }

  /** A carrier failed with this SIP code and its failover rule chose `action`. */
  failedOver(sipCode: number, action: string): void {
    const key = `${sipCode} ${action}`;
    let counter = this.byFailure.get(key);
    if (counter === undefined) {
      counter = this.failovers.labels({ sip_code: String(sipCode), action });
      this.byFailure.set(key, counter);
    }
    counter.value++;
  }

  /** Every metric declared above, by renderAll: none can be left out of a list kept by hand (one once was). */
  render(): string {
    this.process.collect();
    return renderAll(this) + renderAll(this.process);
  }
}
