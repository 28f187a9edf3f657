import type { Logger } from 'pino';
import type { NodePolicy } from '../nodes/policy.js';
import type { ConfigStore } from '../store/config-store.js';
import { growth, p99Between, parseNodeMetrics, type NodeSample } from './node-metrics.js';
import { sidecarRequest } from './sidecar-client.js';

/**
 * The centre reads every node's sidecar metrics on a timer and keeps the last hour of them in memory: each
 * counter's growth in one-minute bins summed over the nodes (the Live page's charts; at most 60 bins, each
 * a map of the series that grew in that minute), and each node's readings of the last minute (the Network
 * page's decisions per second and p99). Sampled here rather than in the page so that the hour is there when an operator opens the page
 * during an incident, and every browser open on the console costs the sidecars nothing more
 * (docs/decisions.md). Lost on restart: the charts then start from that moment.
 */
export const LIVE_WINDOW_MS = 3_600_000;
/** The Live page's bins: a minute each over the hour. */
export const LIVE_BIN_MS = 60_000;
/** The window decisions per second and p99 are measured over (or the two last samples, if longer apart). */
const RATE_WINDOW_MS = 60_000;

interface NodeRing {
  /** The readings of the last RATE_WINDOW_MS, and the one before (the window's start). */
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
  /** Minute (ms since the epoch / LIVE_BIN_MS) → series key → growth in that minute, over every node. */
  private readonly bins = new Map<number, Map<string, number>>();
  private timer: NodeJS.Timeout | null = null;
  private ticking = false;

  constructor(
    private readonly store: ConfigStore,
    private readonly policy: NodePolicy,
    private readonly intervalMs: number,
    private readonly log: Logger,
  ) {}

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
          if (!reach.ok || reach.status !== 200 || typeof reach.body !== 'string') {
            this.ringOf(hostname).error = reach.ok ? `the sidecar answered ${reach.status}` : reach.error;
            return;
          }
          this.record(hostname, parseNodeMetrics(reach.body, Date.now()));
        }),
      );
    } catch (error) {
      this.log.warn({ err: error }, 'console metrics sampling failed');
    } finally {
      this.ticking = false;
    }
  }

  private ringOf(hostname: string): NodeRing {
    let ring = this.rings.get(hostname);
    if (ring === undefined) this.rings.set(hostname, (ring = { samples: [], error: null }));
    return ring;
  }

  /** Counts a reading's growth since the node's previous one into its minute, and keeps the last minute's. */
  record(hostname: string, sample: NodeSample): void {
    const ring = this.ringOf(hostname);
    ring.error = null;
    const previous = ring.samples.at(-1);
    if (previous !== undefined) {
      const minute = Math.floor(sample.at / LIVE_BIN_MS);
      let bin = this.bins.get(minute);
      if (bin === undefined) this.bins.set(minute, (bin = new Map<string, number>()));
      // A counter lower than before, or gone, means the sidecar restarted: every counter then counts from zero.
      const restarted = Object.entries(previous.counters).some(([key, value]) => (sample.counters[key] ?? 0) < value);
      for (const [key, value] of Object.entries(sample.counters)) {
        const added = key === 'requests' ? 0 : restarted ? value : growth(previous.counters[key], value);
        if (added > 0) bin.set(key, (bin.get(key) ?? 0) + added);
      }
      const oldest = minute - LIVE_WINDOW_MS / LIVE_BIN_MS;
      for (const kept of this.bins.keys()) if (kept <= oldest) this.bins.delete(kept);
    }
    ring.samples.push(sample);
    const start = ring.samples.findIndex((kept) => kept.at >= sample.at - RATE_WINDOW_MS);
    if (start > 1) ring.samples.splice(0, start - 1);
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
   * The last hour in minute bins (the current minute last), summed over every node: each counter's growth
   * between a node's consecutive readings, counted in the minute of the later one. Keys by group (`calls`,
   * `carrier`, `failover`).
   */
  live(now: number): { from: string; bin_seconds: number; groups: Partial<Record<string, LiveSeries[]>> } {
    const bins = LIVE_WINDOW_MS / LIVE_BIN_MS;
    const first = Math.floor(now / LIVE_BIN_MS) - bins + 1;
    const totals = new Map<string, number[]>();
    for (const [minute, bin] of this.bins) {
      const index = minute - first;
      if (index < 0 || index >= bins) continue;
      for (const [key, added] of bin) {
        let series = totals.get(key);
        if (series === undefined) totals.set(key, (series = new Array<number>(bins).fill(0)));
        series[index] += added;
      }
    }
    const groups: Partial<Record<string, LiveSeries[]>> = { calls: [], carrier: [], failover: [] };
    for (const [key, values] of [...totals].sort(([a], [b]) => a.localeCompare(b))) {
      const colon = key.indexOf(':');
      groups[key.slice(0, colon)]?.push({ key: key.slice(colon + 1), values });
    }
    return { from: new Date(first * LIVE_BIN_MS).toISOString(), bin_seconds: LIVE_BIN_MS / 1000, groups };
  }
}
