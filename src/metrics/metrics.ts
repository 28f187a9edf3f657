/**
 * Prometheus text exposition (format 0.0.4) without a client library: a few
 * counters, gauges and fixed-bucket histograms are all the sidecar needs, and
 * the hot path only bumps numbers in pre-built maps.
 */

type Labels = Record<string, string>;

function labelText(labels: Labels): string {
  const parts = Object.entries(labels).map(([name, value]) => `${name}="${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`);
  return parts.length === 0 ? '' : `{${parts.join(',')}}`;
}

export class Counter {
  private readonly values = new Map<string, { labels: Labels; value: number }>();
  constructor(readonly name: string, readonly help: string) {}

  inc(labels: Labels = {}, by = 1): void {
    const key = labelText(labels);
    const entry = this.values.get(key);
    if (entry === undefined) this.values.set(key, { labels, value: by });
    else entry.value += by;
  }

  get(labels: Labels = {}): number {
    return this.values.get(labelText(labels))?.value ?? 0;
  }

  render(): string {
    let out = `# HELP ${this.name} ${this.help}\n# TYPE ${this.name} counter\n`;
    for (const [key, entry] of this.values) out += `${this.name}${key} ${entry.value}\n`;
    return out;
  }
}

export class Gauge {
  private readonly values = new Map<string, number>();
  constructor(readonly name: string, readonly help: string, private readonly collect?: () => number) {}

  set(value: number, labels: Labels = {}): void {
    this.values.set(labelText(labels), value);
  }

  render(): string {
    let out = `# HELP ${this.name} ${this.help}\n# TYPE ${this.name} gauge\n`;
    if (this.collect) out += `${this.name} ${this.collect()}\n`;
    for (const [key, value] of this.values) out += `${this.name}${key} ${value}\n`;
    return out;
  }
}

export class Histogram {
  private readonly series = new Map<string, { labels: string; counts: Float64Array; sum: number; count: number }>();
  constructor(readonly name: string, readonly help: string, private readonly buckets: readonly number[]) {}

  observe(value: number, labels: Labels = {}): void {
    const key = labelText(labels);
    let entry = this.series.get(key);
    if (entry === undefined) {
      entry = { labels: key, counts: new Float64Array(this.buckets.length), sum: 0, count: 0 };
      this.series.set(key, entry);
    }
    for (let i = 0; i < this.buckets.length; i++) {
      if (value <= this.buckets[i]) {
        entry.counts[i]++;
        break;
      }
    }
    entry.sum += value;
    entry.count++;
  }

  render(): string {
    let out = `# HELP ${this.name} ${this.help}\n# TYPE ${this.name} histogram\n`;
    for (const entry of this.series.values()) {
      const inner = entry.labels === '' ? '' : `${entry.labels.slice(1, -1)},`;
      let cumulative = 0;
      for (let i = 0; i < this.buckets.length; i++) {
        cumulative += entry.counts[i];
        out += `${this.name}_bucket{${inner}le="${this.buckets[i]}"} ${cumulative}\n`;
      }
      out += `${this.name}_bucket{${inner}le="+Inf"} ${entry.count}\n`;
      out += `${this.name}_sum${entry.labels} ${entry.sum}\n${this.name}_count${entry.labels} ${entry.count}\n`;
    }
    return out;
  }
}

/** Every metric the sidecar exposes on GET /metrics. */
export class SidecarMetrics {
  readonly requests = new Counter('sidecar_http_requests_total', 'HTTP requests answered, by endpoint and status.');
  readonly latency = new Histogram('sidecar_http_request_duration_seconds', 'Time from request arrival to response, by endpoint.', [
    0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 1,
  ]);
  readonly decisions = new Counter('sidecar_decisions_total', 'Decisions by endpoint and outcome.');
  readonly snapshotVersion = new Gauge('sidecar_snapshot_version', 'Version of the snapshot being served (0 = none).');
  readonly snapshotCreated = new Gauge('sidecar_snapshot_created_timestamp_seconds', 'Creation time of the snapshot being served.');
  readonly snapshotLoads = new Counter('sidecar_snapshot_loads_total', 'Snapshot ingest attempts by source and result.');
  readonly compileSeconds = new Histogram('sidecar_snapshot_compile_seconds', 'Snapshot verify + compile + persist time (in the compile worker).', [
    0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30,
  ]);
  readonly swapSeconds = new Histogram('sidecar_snapshot_swap_seconds', 'Main-thread time to take a compiled snapshot into service.', [
    0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5,
  ]);
  readonly rss = new Gauge('process_resident_memory_bytes', 'Resident set size.', () => process.memoryUsage.rss());

  observeRequest(route: string, status: number, seconds: number): void {
    this.requests.inc({ route, status: String(status) });
    this.latency.observe(seconds, { route });
  }

  render(): string {
    return [
      this.requests,
      this.latency,
      this.decisions,
      this.snapshotVersion,
      this.snapshotCreated,
      this.snapshotLoads,
      this.compileSeconds,
      this.swapSeconds,
      this.rss,
    ]
      .map((metric) => metric.render())
      .join('');
  }
}
