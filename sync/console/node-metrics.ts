/**
 * What the console takes from one scrape of a sidecar's Prometheus metrics (src/sidecar/metrics/metrics.ts):
 * a handful of counters, flattened to `kind:label` keys, and the OpenSIPS requests' latency histogram.
 * Everything else in the exposition is ignored; a line that does not parse is skipped, never trusted.
 */
export interface NodeSample {
  /** When the centre read it (ms since the epoch). */
  at: number;
  /** Counter totals: `requests`, `calls:<outcome>`, `carrier:<trunk id>`, `failover:<SIP code>`. */
  counters: Record<string, number>;
  /** The OpenSIPS requests' latency histogram, summed over their endpoints: cumulative count at each bound. */
  latency: { le: number[]; counts: number[] };
}

/** The requests OpenSIPS makes of its sidecar: what "decisions per second" and its p99 count. */
const DECISION_ROUTE = /^\/api\/opensips\//;
/** At most this many series are kept from one scrape: a sidecar cannot grow the centre's memory without bound. */
const MAX_SERIES = 2_000;

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? ([-+0-9.eEInfa]+)$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

function labelsOf(text: string | undefined): Partial<Record<string, string>> {
  const labels: Partial<Record<string, string>> = {};
  if (text === undefined) return labels;
  for (const match of text.matchAll(LABEL)) labels[match[1]] = match[2].replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
  return labels;
}

/** How a refused or admitted call is named on the Live page: the stage's own outcome, admissions together. */
function callOutcome(endpoint: string, outcome: string): string | null {
  if (endpoint === 'call_admit') return outcome.startsWith('admitted') ? 'admitted' : outcome === 'replayed' ? null : outcome;
  if (endpoint === 'call_auth') return outcome === 'allowed' ? null : outcome;
  if (endpoint === 'call_route') return outcome === 'routed' ? null : outcome;
  return null;
}

export function parseNodeMetrics(text: string, at: number): NodeSample {
  const counters: Record<string, number> = {};
  const buckets = new Map<number, number>();
  let series = 0;
  const add = (key: string, value: number): void => {
    if (!(key in counters)) {
      if (series >= MAX_SERIES) return;
      series++;
    }
    counters[key] = (counters[key] ?? 0) + value;
  };
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = LINE.exec(line);
    if (match === null) continue;
    const [, name, labelText, valueText] = match;
    const value = Number(valueText);
    if (!Number.isFinite(value) || value < 0) continue;
    const labels = labelsOf(labelText);
    switch (name) {
      case 'sidecar_http_requests_total':
        if (DECISION_ROUTE.test(labels.route ?? '')) add('requests', value);
        break;
      case 'sidecar_http_request_duration_seconds_bucket': {
        if (!DECISION_ROUTE.test(labels.route ?? '')) break;
        const le = labels.le === '+Inf' ? Infinity : Number(labels.le);
        if (Number.isNaN(le) || (!buckets.has(le) && buckets.size >= 64)) break;
        buckets.set(le, (buckets.get(le) ?? 0) + value);
        break;
      }
      case 'sidecar_decisions_total': {
        const outcome = callOutcome(labels.endpoint ?? '', labels.outcome ?? '');
        if (outcome !== null) add(`calls:${outcome.slice(0, 64)}`, value);
        break;
      }
      case 'sidecar_carrier_routes_total':
        if (/^[0-9]{1,15}$/.test(labels.carrier_trunk_id ?? '')) add(`carrier:${labels.carrier_trunk_id}`, value);
        break;
      case 'sidecar_failovers_total':
        if (/^[1-6][0-9]{2}$/.test(labels.sip_code ?? '')) add(`failover:${labels.sip_code}`, value);
        break;
    }
  }
  const le = [...buckets.keys()].sort((a, b) => a - b);
  return { at, counters, latency: { le, counts: le.map((bound) => buckets.get(bound)!) } };
}

/** A counter's growth between two scrapes; a sidecar that restarted counts from zero again. */
export function growth(before: number | undefined, after: number | undefined): number {
  if (after === undefined) return 0;
  if (before === undefined || after < before) return after;
  return after - before;
}

/**
 * The 99th percentile of the requests between two scrapes, as the histogram bound it falls under (seconds),
 * or null when there were none. A histogram tells a bound, not an exact value: the page says "≤".
 */
export function p99Between(before: NodeSample, after: NodeSample): number | null {
  const { le, counts } = after.latency;
  const earlier = new Map(before.latency.le.map((bound, index) => [bound, before.latency.counts[index]]));
  const restarted = (counts.at(-1) ?? 0) < (earlier.get(le.at(-1) ?? Infinity) ?? 0);
  const deltas = counts.map((count, index) => (restarted ? count : count - (earlier.get(le[index]) ?? 0)));
  const total = deltas.at(-1) ?? 0;
  if (total <= 0) return null;
  const index = deltas.findIndex((count) => count >= 0.99 * total);
  return index === -1 ? null : le[index];
}
