/**
 * Prometheus text exposition (format 0.0.4) without a client library: a few counters, gauges and fixed-bucket
 * histograms are all either process needs (the sidecar's src/sidecar/metrics/, the control plane's sync/metrics/).
 * Label sets are rendered once: the hot path keeps a handle per label set and only bumps numbers.
 */

export type Labels = Record<string, string>;

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function labelText(labels: Labels): string {
  const parts = Object.entries(labels).map(([name, value]) => `${name}="${escapeLabel(value)}"`);
  return parts.length === 0 ? '' : `{${parts.join(',')}}`;
}

/** Drops from `series` (and `labelSets`) each series whose `label` has a value `keep` refuses. */
function retainSeries(series: Map<string, unknown>, labelSets: Map<string, Labels>, label: string, keep: (value: string) => boolean): void {
  for (const [key, labels] of labelSets) {
    if (Object.hasOwn(labels, label) && !keep(labels[label])) {
      series.delete(key);
      labelSets.delete(key);
    }
  }
}

export interface CounterHandle {
  value: number;
}

export class Counter {
  private readonly series = new Map<string, CounterHandle>();
  /** Each series' labels, by its key: what `retain` judges. */
  private readonly labelSets = new Map<string, Labels>();
  constructor(
    readonly name: string,
    readonly help: string,
  ) {}

  /** The series for a label set; keep it to count without re-rendering labels. */
  labels(labels: Labels = {}): CounterHandle {
    const key = labelText(labels);
    let handle = this.series.get(key);
    if (handle === undefined) {
      handle = { value: 0 };
      this.series.set(key, handle);
      this.labelSets.set(key, { ...labels });
    }
    return handle;
  }

  /**
   * Drops every series whose `label` has a value `keep` refuses (a node deleted): a handle kept elsewhere for it
   * still counts, but is no longer rendered, so whoever keeps handles drops them too.
   */
  retain(label: string, keep: (value: string) => boolean): void {
    retainSeries(this.series, this.labelSets, label, keep);
  }

  inc(labels: Labels = {}, by = 1): void {
    this.labels(labels).value += by;
  }

  render(): string {
    let out = `# HELP ${this.name} ${this.help}\n# TYPE ${this.name} counter\n`;
    for (const [key, handle] of this.series) out += `${this.name}${key} ${handle.value}\n`;
    return out;
  }
}

/**
 * A counter's series by the value of its one label, each handle made once: the label set is rendered and
 * looked up by its text only the first time a value is seen (a per-CDR count paid both every time).
 */
export class SeriesByLabel {
  private readonly handles = new Map<string, CounterHandle>();
  constructor(
    private readonly counter: Counter,
    private readonly label: string,
  ) {}

  of(value: string): CounterHandle {
    let handle = this.handles.get(value);
    if (handle === undefined) {
      handle = this.counter.labels({ [this.label]: value });
      this.handles.set(value, handle);
    }
    return handle;
  }
}

/** SeriesByLabel for a counter with two labels: a handle per pair of values, looked up without making a key. */
export class SeriesByLabelPair {
  private readonly handles = new Map<string, Map<string, CounterHandle>>();
  constructor(
    private readonly counter: Counter,
    private readonly first: string,
    private readonly second: string,
  ) {}

  of(first: string, second: string): CounterHandle {
    let bySecond = this.handles.get(first);
    if (bySecond === undefined) this.handles.set(first, (bySecond = new Map<string, CounterHandle>()));
    let handle = bySecond.get(second);
    if (handle === undefined) {
      handle = this.counter.labels({ [this.first]: first, [this.second]: second });
      bySecond.set(second, handle);
    }
    return handle;
  }
}

export class Gauge {
  private readonly values = new Map<string, number>();
  /** Each series' labels, by its key: what `retain` judges. */
  private readonly labelSets = new Map<string, Labels>();
  constructor(
    readonly name: string,
    readonly help: string,
    private collect?: () => number,
  ) {}

  /** Read the value at each scrape from `collect`. */
  collectFrom(collect: () => number): void {
    this.collect = collect;
  }

  set(value: number, labels: Labels = {}): void {
    const key = labelText(labels);
    if (!this.values.has(key)) this.labelSets.set(key, { ...labels });
    this.values.set(key, value);
  }

  /** Forgets every labelled series: a gauge refilled at each scrape drops what is gone (a node deleted). */
  clear(): void {
    this.values.clear();
    this.labelSets.clear();
  }

  /** Drops every series whose `label` has a value `keep` refuses (as Counter.retain). */
  retain(label: string, keep: (value: string) => boolean): void {
    retainSeries(this.values, this.labelSets, label, keep);
  }

  render(): string {
    let out = `# HELP ${this.name} ${this.help}\n# TYPE ${this.name} gauge\n`;
    if (this.collect) out += `${this.name} ${this.collect()}\n`;
    for (const [key, value] of this.values) out += `${this.name}${key} ${value}\n`;
    return out;
  }
}

export class HistogramHandle {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  constructor(private readonly buckets: readonly number[]) {
    this.counts = new Float64Array(buckets.length);
  }

  observe(value: number): void {
    const { buckets } = this;
    for (let i = 0; i < buckets.length; i++) {
      if (value <= buckets[i]) {
        this.counts[i]++;
        break;
      }
    }
    this.sum += value;
    this.count++;
  }
}

export class Histogram {
  private readonly series = new Map<string, HistogramHandle>();
  constructor(
    readonly name: string,
    readonly help: string,
    private readonly buckets: readonly number[],
  ) {}

  labels(labels: Labels = {}): HistogramHandle {
    const key = labelText(labels);
    let handle = this.series.get(key);
    if (handle === undefined) {
      handle = new HistogramHandle(this.buckets);
      this.series.set(key, handle);
    }
    return handle;
  }

  observe(value: number, labels: Labels = {}): void {
    this.labels(labels).observe(value);
  }

  render(): string {
    let out = `# HELP ${this.name} ${this.help}\n# TYPE ${this.name} histogram\n`;
    for (const [key, handle] of this.series) {
      const inner = key === '' ? '' : `${key.slice(1, -1)},`;
      let cumulative = 0;
      for (let i = 0; i < this.buckets.length; i++) {
        cumulative += handle.counts[i];
        out += `${this.name}_bucket{${inner}le="${this.buckets[i]}"} ${cumulative}\n`;
      }
      out += `${this.name}_bucket{${inner}le="+Inf"} ${handle.count}\n`;
      out += `${this.name}_sum${key} ${handle.sum}\n${this.name}_count${key} ${handle.count}\n`;
    }
    return out;
  }
}

/** What a metrics owner holds and renders: any of the three kinds. */
export type Metric = Counter | Gauge | Histogram;

function isMetric(value: unknown): value is Metric {
  return value instanceof Counter || value instanceof Gauge || value instanceof Histogram;
}

/**
 * Every metric `owner` holds as a property, rendered in the order it declares them: one declared is scraped,
 * with no list to keep in step by hand (the sidecar's hand-kept list once left a metric out).
 */
export function renderAll(owner: object): string {
  let out = '';
  for (const value of Object.values(owner)) if (isMetric(value)) out += value.render();
  return out;
}

/** The content type of what render() and renderAll() produce. */
export const EXPOSITION_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
