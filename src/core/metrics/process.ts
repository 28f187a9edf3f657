import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { Counter, Gauge } from './exposition.js';

/** What ProcessMetrics reads of the event-loop delay sampler (perf_hooks' IntervalHistogram, in nanoseconds). */
export type DelaySampler = Pick<IntervalHistogram, 'count' | 'max' | 'percentile' | 'reset' | 'disable'>;

interface Lag {
  p99: number;
  max: number;
}

const NO_LAG: Lag = { p99: 0, max: 0 };

/**
 * The process's own health, under the names Node.js dashboards already use (prom-client's): how late the event
 * loop runs its callbacks, the V8 heap, RSS and CPU. Read at each scrape; nothing runs between scrapes but the
 * event-loop delay sampler (a libuv timer every `resolutionMs`, off the JavaScript heap).
 *
 * The lag is not reset by a scrape: a node has more than one reader (the sidecar's /metrics is read every 10 s by
 * the control plane's console as well as by Prometheus, and Prometheus often runs as a pair), and each would
 * reset the window of the others, so a stall before the console's read would never reach Prometheus. Instead
 * the lag is kept in windows of at least `windowMs`, started at the first read after the previous one ended, and
 * a read gives the worse of the window under way and the one before: a stall shows from when it happens until
 * a full window after its own ended, so every reader that reads at least once a window sees it.
 */
export class ProcessMetrics {
  readonly lagP99 = new Gauge(
    'nodejs_eventloop_lag_p99_seconds',
    '99th percentile of how late the event loop ran a timer, the worse of the current and the previous window (1 to 2 minutes).',
  );
  readonly lagMax = new Gauge(
    'nodejs_eventloop_lag_max_seconds',
    'Longest the event loop was late, over the current and the previous window (1 to 2 minutes).',
  );
  readonly heapUsed = new Gauge('nodejs_heap_size_used_bytes', 'V8 heap in use.');
  readonly heapTotal = new Gauge('nodejs_heap_size_total_bytes', 'V8 heap reserved.');
  readonly rss = new Gauge('process_resident_memory_bytes', 'Resident set size.');
  readonly cpu = new Counter('process_cpu_seconds_total', 'User and system CPU time the process used.');
  readonly startTime = new Gauge('process_start_time_seconds', 'When the process started (Unix time).');
  private previousWindow: Lag = NO_LAG;
  private windowStarted: number;
  private readonly resolutionNs: number;

  constructor(
    resolutionMs = 20,
    private readonly windowMs = 60_000,
    private readonly now: () => number = Date.now,
    private readonly delay: DelaySampler = enabledSampler(resolutionMs),
  ) {
    this.resolutionNs = resolutionMs * 1e6;
    this.windowStarted = now();
    this.startTime.set(Math.round((Date.now() - process.uptime() * 1000) / 1000));
  }

  /** Takes this moment's readings into the gauges. */
  collect(): void {
    const current = this.currentWindow();
    if (this.now() - this.windowStarted >= this.windowMs) {
      this.previousWindow = current;
      this.delay.reset();
      this.windowStarted = this.now();
    }
    this.lagP99.set(Math.max(current.p99, this.previousWindow.p99));
    this.lagMax.set(Math.max(current.max, this.previousWindow.max));
    const memory = process.memoryUsage();
    this.heapUsed.set(memory.heapUsed);
    this.heapTotal.set(memory.heapTotal);
    this.rss.set(memory.rss);
    const usage = process.cpuUsage();
    this.cpu.labels().value = (usage.user + usage.system) / 1e6;
  }

  stop(): void {
    this.delay.disable();
  }

  /**
   * The window under way, in seconds. The sampler records the time between its timer's runs, which is the
   * resolution when the loop is on time (an idle loop reads 20.1 ms): the lateness is what exceeds it. A
   * histogram with no sample yet reads NaN for its percentiles.
   */
  private currentWindow(): Lag {
    if (this.delay.count === 0) return NO_LAG;
    const late = (ns: number): number => Math.max(0, ns - this.resolutionNs) / 1e9;
    return { p99: late(this.delay.percentile(99)), max: late(this.delay.max) };
  }
}

function enabledSampler(resolutionMs: number): IntervalHistogram {
  const sampler = monitorEventLoopDelay({ resolution: resolutionMs });
  sampler.enable();
  return sampler;
}
