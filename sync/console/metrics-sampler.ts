import type { Logger } from 'pino';
import type { NodePolicy } from '../nodes/policy.js';
import type { ConfigStore } from '../store/config-store.js';
import { growth, p99Between, parseNodeMetrics, type NodeSample } from './node-metrics.js';
import { sidecarRequest } from './sidecar-client.js';

/**
 * The centre reads every node's sidecar metrics on a timer and keeps the last hour of them in memory, a
 * bounded ring per node: the Network page's decisions per second and p99, and the Live page's charts, come
 * from it. Sampled here rather than in the page so that the hour is there when an operator opens the page
 * during an incident, and every browser open on the console costs the sidecars nothing more
 * (docs/decisions.md). Lost on restart: the charts then start from that moment.
 */
export const LIVE_WINDOW_MS = 3_600_000;
/** The Live page's bins: a minute each over the hour. */
export const LIVE_BIN_MS = 60_000;
/** The window decisions per second and p99 are measured over (or the two last samples, if longer apart). */
const RATE_WINDOW_MS = 60_000;

interface NodeRing {
  samples: NodeSample[];
  /** Why the last scrape failed (null when it succeeded). */
  error: string | null;
}

export interface NodeFigures {
  decisions_per_second: number | null;
  /** The histogram bound the p99 falls under; `p99_over`: above its last finite bound, which is then given. */
  p99_ms: number | null;
  p99_over: boolean;
  sampled_at: string | null;
  error: string | null;
}

export interface LiveSeries {
  key: string;
  values: number[];
}

export class MetricsSampler {
  private readonly rings = new Map<string, NodeRing>();
  private timer: NodeJS.Timeout | null = null;
  private ticking = false;
  private readonly capacity: number;

  constructor(
    private readonly store: ConfigStore,
    private readonly policy: NodePolicy,
    private readonly intervalMs: number,
    private readonly log: Logger,
  ) {
    this.capacity = Math.ceil(LIVE_WINDOW_MS / intervalMs) + 2;
  }

  start(): void {
    void this.tick();
    this.timer = setInterval(() => void this.tick(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  /** One scrape of every node; a tick still running when the next is due is not overlapped. */
  private async tick(): Promise<void> {
    if (this.ticking) return;
    this.ticking = true;
    try {
      const { rows } = await this.store.list('opensips_nodes', { where: {}, limit: null, offset: 0 });
      const hostnames = new Set(rows.map((node) => node.hostname as string));
      for (const hostname of this.rings.keys()) if (!hostnames.has(hostname)) this.rings.delete(hostname);
      await Promise.all(
        rows.map(async (node) => {
          const address = (node.sidecar_address as string | null) ?? null;
          const reach = await sidecarRequest(this.policy, address, '/metrics', {
            method: 'GET',
            text: true,
            timeoutMs: Math.min(this.intervalMs, 5_000),
          });
          const hostname = node.hostname as string;
          let ring = this.rings.get(hostname);
          if (ring === undefined) this.rings.set(hostname, (ring = { samples: [], error: null }));
          if (!reach.ok || reach.status !== 200 || typeof reach.body !== 'string') {
            ring.error = reach.ok ? `the sidecar answered ${reach.status}` : reach.error;
            return;
          }
          ring.error = null;
          ring.samples.push(parseNodeMetrics(reach.body, Date.now()));
          if (ring.samples.length > this.capacity) ring.samples.splice(0, ring.samples.length - this.capacity);
        }),
      );
    } catch (error) {
      this.log.warn({ err: error }, 'console metrics sampling failed');
    } finally {
      this.ticking = false;
    }
  }

  /** A node's decisions per second and p99 over the last minute (null until two samples are in). */
  figures(hostname: string): NodeFigures {
    const ring = this.rings.get(hostname);
    const none = { decisions_per_second: null, p99_ms: null, p99_over: false, sampled_at: null, error: ring?.error ?? null };
    // A node whose last scrape failed has no current figures: the last ones it gave would look live.
    if (ring === undefined || ring.error !== null || ring.samples.length < 2) return none;
    const last = ring.samples[ring.samples.length - 1];
    let first = ring.samples.findIndex((sample) => sample.at >= last.at - RATE_WINDOW_MS);
    if (first >= ring.samples.length - 1) first = ring.samples.length - 2;
    const start = ring.samples[first];
    const seconds = (last.at - start.at) / 1000;
    const p99 = p99Between(start, last);
    return {
      decisions_per_second: seconds > 0 ? Math.round((growth(start.counters.requests, last.counters.requests) / seconds) * 10) / 10 : null,
      p99_ms: p99 === null ? null : Number.isFinite(p99) ? p99 * 1000 : (last.latency.le.at(-2) ?? 0) * 1000,
      p99_over: p99 !== null && !Number.isFinite(p99),
      sampled_at: new Date(last.at).toISOString(),
      error: ring.error,
    };
  }

  /**
   * The last hour in minute bins, summed over every node: each counter's growth between a node's consecutive
   * samples, counted in the bin of the later one. Keys by group (`calls`, `carrier`, `failover`).
   */
  live(now: number): { from: string; bin_seconds: number; groups: Partial<Record<string, LiveSeries[]>> } {
    const bins = LIVE_WINDOW_MS / LIVE_BIN_MS;
    const end = Math.ceil(now / LIVE_BIN_MS) * LIVE_BIN_MS;
    const from = end - LIVE_WINDOW_MS;
    const totals = new Map<string, number[]>();
    for (const ring of this.rings.values())
      for (let i = 1; i < ring.samples.length; i++) {
        const [before, after] = [ring.samples[i - 1], ring.samples[i]];
        const bin = Math.floor((after.at - from) / LIVE_BIN_MS);
        if (bin < 0 || bin >= bins) continue;
        for (const [key, value] of Object.entries(after.counters)) {
          if (key === 'requests') continue;
          const added = growth(before.counters[key], value);
          if (added === 0) continue;
          let series = totals.get(key);
          if (series === undefined) totals.set(key, (series = new Array<number>(bins).fill(0)));
          series[bin] += added;
        }
      }
    const groups: Partial<Record<string, LiveSeries[]>> = { calls: [], carrier: [], failover: [] };
    for (const [key, values] of [...totals].sort(([a], [b]) => a.localeCompare(b))) {
      const colon = key.indexOf(':');
      groups[key.slice(0, colon)]?.push({ key: key.slice(colon + 1), values });
    }
    return { from: new Date(from).toISOString(), bin_seconds: LIVE_BIN_MS / 1000, groups };
  }
}
