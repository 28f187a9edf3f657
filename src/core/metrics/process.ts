import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { Counter, Gauge } from './exposition.js';

/**
 * The process's own health, under the names Node.js dashboards already use (prom-client's): how late the event
 * loop runs its callbacks, the V8 heap, RSS and CPU. Read at each scrape; nothing runs between scrapes but the
 * event-loop delay sampler (a libuv timer every `resolutionMs`, off the JavaScript heap).
 */
export class ProcessMetrics {
  private readonly delay: IntervalHistogram;
  readonly lagP99 = new Gauge(
    'nodejs_eventloop_lag_p99_seconds',
    '99th percentile of how late the event loop ran a timer, since the previous scrape.',
  );
  readonly lagMax = new Gauge('nodejs_eventloop_lag_max_seconds', 'Longest the event loop was late, since the previous scrape.');
  readonly heapUsed = new Gauge('nodejs_heap_size_used_bytes', 'V8 heap in use.');
  readonly heapTotal = new Gauge('nodejs_heap_size_total_bytes', 'V8 heap reserved.');
  readonly rss = new Gauge('process_resident_memory_bytes', 'Resident set size.');
  readonly cpu = new Counter('process_cpu_seconds_total', 'User and system CPU time the process used.');
  readonly startTime = new Gauge('process_start_time_seconds', 'When the process started (Unix time).');

  constructor(resolutionMs = 20) {
    this.delay = monitorEventLoopDelay({ resolution: resolutionMs });
    this.delay.enable();
    this.startTime.set(Math.round((Date.now() - process.uptime() * 1000) / 1000));
  }

  /** Takes this moment's readings into the gauges; the event-loop delay restarts from the scrape. */
  collect(): void {
    // Nanoseconds; a histogram with no sample yet reads NaN for its percentiles and a huge min.
    const hasSamples = this.delay.count > 0;
    this.lagP99.set(hasSamples ? this.delay.percentile(99) / 1e9 : 0);
    this.lagMax.set(hasSamples ? this.delay.max / 1e9 : 0);
    this.delay.reset();
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
}
