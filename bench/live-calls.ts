/**
 * What a node's live calls cost it: admissions in-process (priced, reserved, journalled; ten per event-loop
 * turn) until `--calls` are held, then the JavaScript heap, the RSS and the pause of a full garbage
 * collection with that many reservations live, and the young-generation pauses seen on the way. A full GC
 * pause is what every request waits through when it happens, so it grows the tail with the calls up.
 *
 *   node --expose-gc dist/bench/live-calls.js [--calls 1000000] [--size wholesale] [--warm-up 20000]
 *
 * Uses bench/data/<size>.msgpack and its traffic file when present (make bench writes them), else
 * generates the dataset.
 */
import { PerformanceObserver } from 'node:perf_hooks';
import { benchArgs } from './bench-args.js';
import { admitCall } from '../src/sidecar/admission/admit.js';
import { SidecarMetrics } from '../src/sidecar/metrics/metrics.js';
import { loadWorld, openBenchCredit } from './bench-world.js';
import { reportResult } from './results.js';

async function main(): Promise<void> {
  const { values } = benchArgs({
    options: {
      calls: { type: 'string', default: '1000000' },
      size: { type: 'string', default: 'wholesale' },
      'warm-up': { type: 'string', default: '20000' },
    },
  });
  const calls = Number(values.calls);
  const warmUp = Number(values['warm-up']);
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error('run with node --expose-gc');
  const { engine, traffic } = loadWorld(values.size);

  const { credit, log, close } = openBenchCredit('live-calls', traffic);
  const context = { engine, credit, metrics: new SidecarMetrics(), log };
  const admit = async (from: number, to: number): Promise<void> => {
    for (let i = from; i < to; i += 10) {
      const turn: Promise<unknown>[] = [];
      for (let k = i; k < Math.min(i + 10, to); k++) {
        const [, , trunkId] = traffic.callers[k % traffic.callers.length];
        const answer = admitCall(
          context,
          {
            customer_trunk_id: trunkId,
            dnis: traffic.numbers[k % traffic.numbers.length],
            call_id: `live-${k}@bench`,
            estimatedCostMicro: null,
            dialogId: null,
          },
          Date.now(),
        );
        // Admitted once its reservation is durable, as the endpoint answers.
        turn.push(answer instanceof Promise ? answer.then((settled) => settled.committed) : (answer.committed ?? Promise.resolve()));
      }
      await Promise.all(turn);
    }
  };

  try {
    await admit(0, warmUp); // JIT warm-up (these calls stay up too)
    const scavenges: number[] = [];
    const observer = new PerformanceObserver((list) => {
      for (const entry of list.getEntries())
        if ((entry as { detail?: { kind?: number } }).detail?.kind === 1) scavenges.push(entry.duration);
    });
    observer.observe({ entryTypes: ['gc'] });
    const started = performance.now();
    const cpuBefore = process.cpuUsage();
    await admit(warmUp, calls);
    const cpu = process.cpuUsage(cpuBefore);
    const admitMicros = ((performance.now() - started) * 1000) / (calls - warmUp);
    observer.disconnect();
    const fullGcMs: number[] = [];
    for (let k = 0; k < 3; k++) {
      const gcStarted = performance.now();
      gc();
      fullGcMs.push(Math.round((performance.now() - gcStarted) * 10) / 10);
    }
    const memory = process.memoryUsage();
    scavenges.sort((a, b) => a - b);
    const quantile = (q: number): number =>
      Math.round((scavenges[Math.min(scavenges.length - 1, Math.floor(q * scavenges.length))] ?? NaN) * 100) / 100;
    reportResult('live-calls', `node --expose-gc dist/bench/live-calls.js ${process.argv.slice(2).join(' ')}`.trim(), {
      live_calls: credit.heldCount,
      admit_wall_us: Math.round(admitMicros * 10) / 10,
      // The whole process: the event loop and the applier thread writing money.db.
      admit_cpu_us: Math.round(((cpu.user + cpu.system) / (calls - warmUp)) * 10) / 10,
      full_gc_ms: fullGcMs,
      heap_used_mb: Math.round(memory.heapUsed / 1e6),
      array_buffers_mb: Math.round(memory.arrayBuffers / 1e6),
      rss_mb: Math.round(memory.rss / 1e6),
      scavenges: { count: scavenges.length, p50_ms: quantile(0.5), p90_ms: quantile(0.9), max_ms: quantile(1) },
    });
  } finally {
    await close();
  }
}

let finished = false;
// An admission waiting on a centre that is not there would leave nothing to run: say so rather than exit quietly.
process.on('beforeExit', () => {
  if (finished) return;
  process.stderr.write('live-calls bench failed: admissions waited for a centre round that never came\n');
  process.exit(1);
});
main().then(
  () => (finished = true),
  (error: unknown) => {
    process.stderr.write(`live-calls bench failed: ${String(error)}\n`);
    process.exit(1);
  },
);
