/**
 * What the sidecar's process metrics (src/core/metrics/process.ts) cost the event loop that answers INVITEs:
 * - `route`: call/route requests in-process, 4 a turn (as admit-route.js sends them), in blocks alternating the
 *   event-loop delay sampler off and on (ProcessMetrics, a libuv timer every 20 ms), the event loop's CPU per
 *   request read from this thread's schedstat;
 * - `idle`: the event loop's CPU over `--idle-ms` of nothing but the sampler, off and at 1, 10 (Node's default),
 *   20, 50 and 100 ms, in alternation, with the thread's wake-ups (voluntary context switches): what the sampler
 *   costs per second whatever the traffic (a wake-up of an idle loop, on a VM, costs far more than the callback);
 * - `scrape`: one render() of /metrics with a realistic state (every endpoint answered with several statuses,
 *   every decision outcome, 300 carrier trunks routed to, failovers by code and action), its CPU and its parts
 *   (the process readings, the text).
 *
 *   node dist/bench/process-metrics.js [--size wholesale] [--requests 200000] [--blocks 20] [--idle-ms 2000] [--idle-rounds 6] [--renders 2000]
 */
import { readFileSync } from 'node:fs';
import { benchArgs } from './bench-args.js';
import { runNanos } from '../src/devkit/process-cpu.js';
import type { IncomingRequest } from '../src/core/http/server.js';
import { renderAll } from '../src/core/metrics/exposition.js';
import { ProcessMetrics } from '../src/core/metrics/process.js';
import { decisionRoutes } from '../src/sidecar/http/decision-routes.js';
import { SidecarMetrics } from '../src/sidecar/metrics/metrics.js';
import { jsonPost } from '../src/devkit/requests.js';
import { benchHandlers, loadWorld, openBenchCredit } from './bench-world.js';
import { reportResult } from './results.js';

/** How many times the event loop's thread went to sleep and was woken. */
function loopWakeUps(): number {
  return Number(/voluntary_ctxt_switches:\s+(\d+)/.exec(readFileSync(`/proc/self/task/${process.pid}/status`, 'utf8'))![1]);
}

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const round2 = (value: number): number => Math.round(value * 100) / 100;

/** A sidecar that has run a while: each endpoint answered with its usual statuses, each outcome counted. */
function realisticState(metrics: SidecarMetrics): void {
  const endpoints: [string, number[]][] = [
    ['/api/opensips/call/route', [200, 400, 404]],
    ['/api/opensips/call/admit', [200, 400, 409, 503]],
    ['/api/opensips/call/decide', [200, 400]],
    ['/api/opensips/call/auth', [200, 400]],
    ['/api/opensips/call/failover', [200, 400]],
    ['/api/opensips/call/reroute', [200, 400]],
    ['/api/opensips/call/release', [200, 400]],
    ['/api/opensips/register/auth', [200, 400]],
    ['/api/cdrs/ingest', [200, 201, 400, 413]],
    ['/api/call-admit/check', [200, 400]],
    ['/api/lcr/lookup', [200, 400]],
    ['/api/rate-lookup', [200, 400, 404]],
    ['/api/admin/route-simulator', [200, 400]],
    ['/api/metrics/per-minute/check', [200, 400]],
    ['/api/metrics/per-minute', [200]],
    ['/api/metrics/cps', [200]],
    ['/api/health', [200, 503]],
    ['/api/snapshot', [200, 400, 413]],
    ['/metrics', [200]],
    ['unmatched', [404, 405]],
  ];
  for (const [route, statuses] of endpoints)
    for (const status of statuses) for (let i = 0; i < 50; i++) metrics.observeRequest(route, status, 0.00001 * (i + 1));
  const outcomes: [string, string[]][] = [
    ['call_route', ['routed', 'no_route', 'unknown_trunk', 'blocked', 'rate_missing', 'insufficient_credit']],
    [
      'call_admit',
      [
        'admitted',
        'admitted_after_lease_wait',
        'admitted_after_recall',
        'replayed',
        'insufficient_credit',
        'account_suspended',
        'cps_exceeded',
        'concurrent_exceeded',
      ],
    ],
    ['call_admit_check', ['admitted', 'insufficient_credit']],
    ['call_auth', ['allowed', 'unknown_ip', 'tech_prefix_mismatch']],
    ['register_auth', ['allowed', 'bad_password', 'unknown_user']],
    ['call_failover', ['retry_next', 'stop', 'retry_same']],
    ['cdr_ingest', ['rated', 'duplicate']],
    ['call_release', ['released', 'none']],
    ['per_minute_check', ['allowed', 'exceeded']],
  ];
  for (const [endpoint, list] of outcomes) for (const outcome of list) metrics.decided(endpoint, outcome);
  for (let carrier = 1; carrier <= 300; carrier++) metrics.routedTo(1000 + carrier);
  for (const code of [404, 408, 480, 486, 487, 500, 502, 503, 504, 600, 603])
    for (const action of ['retry_next', 'stop']) metrics.failedOver(code, action);
  for (let i = 0; i < 20; i++) {
    metrics.deltaApplySeconds.observe(0.0003);
    metrics.centreRoundSeconds.observe(0.002);
    metrics.snapshotLoads.inc({ source: 'push', result: 'ok' });
    metrics.compileSeconds.observe(1.2);
    metrics.swapSeconds.observe(0.002);
  }
  for (const result of ['ok', 'failed', 'refused']) metrics.centreRounds.inc({ result });
  for (const kind of ['recall', 'refresh']) metrics.moneySignals.inc({ kind });
  for (const event of ['ended', 'end_failed', 'gone']) metrics.sliceEvents.inc({ event });
  metrics.cdrOverrunsByKind.of('unadmitted').value++;
  metrics.cdrUncoveredByCurrency.of('AUD').value += 1200;
  metrics.balanceWarnings.inc();
  for (const gauge of [metrics.snapshotVersion, metrics.deltaSeq, metrics.snapshotCreated, metrics.bodyBytesHeld]) gauge.set(7);
  for (const gauge of [metrics.reservationsHeld, metrics.cdrOutbox, metrics.centreAnswerAge, metrics.leasesHeld, metrics.leasesLapsed])
    gauge.set(3);
}

/** CPU per call of `work` on the event loop, in µs, over `times` calls (after as many to warm the JIT). */
function loopMicrosPer(times: number, work: () => unknown): number {
  for (let i = 0; i < times; i++) work();
  const started = runNanos(process.pid);
  for (let i = 0; i < times; i++) work();
  return round2((runNanos(process.pid) - started) / times / 1000);
}

async function main(): Promise<void> {
  const { values } = benchArgs({
    options: {
      size: { type: 'string', default: 'wholesale' },
      requests: { type: 'string', default: '200000' },
      blocks: { type: 'string', default: '20' },
      'idle-ms': { type: 'string', default: '2000' },
      'idle-rounds': { type: 'string', default: '6' },
      renders: { type: 'string', default: '2000' },
    },
  });
  const requests = Number(values.requests);
  const blocks = Number(values.blocks);

  // Scrape first, on a fresh heap: what one GET /metrics costs the loop that answers INVITEs.
  const scraped = new SidecarMetrics();
  realisticState(scraped);
  const text = scraped.render();
  const renders = Number(values.renders);
  const scrape = {
    series: text.split('\n').filter((line) => line !== '' && !line.startsWith('#')).length,
    bytes: text.length,
    render_us: loopMicrosPer(renders, () => scraped.render()),
    process_collect_us: loopMicrosPer(renders, () => scraped.process.collect()),
    text_us: loopMicrosPer(renders, () => renderAll(scraped) + renderAll(scraped.process)),
  };
  scraped.process.stop();

  // The sampler alone, per second of an idle loop: off, and at each resolution, in alternation.
  const resolutions = [0, 1, 10, 20, 50, 100];
  const idleNs = new Map(resolutions.map((ms) => [ms, 0]));
  const idleWakeUps = new Map(resolutions.map((ms) => [ms, 0]));
  const idleMs = Number(values['idle-ms']);
  const idleRounds = Number(values['idle-rounds']);
  for (let r = 0; r < idleRounds; r++)
    for (const ms of r % 2 === 0 ? resolutions : [...resolutions].reverse()) {
      const sampler = ms === 0 ? null : new ProcessMetrics(ms);
      const [started, woken] = [runNanos(process.pid), loopWakeUps()];
      await sleep(idleMs);
      idleNs.set(ms, idleNs.get(ms)! + runNanos(process.pid) - started);
      idleWakeUps.set(ms, idleWakeUps.get(ms)! + loopWakeUps() - woken);
      sampler?.stop();
    }
  const perSecond = (total: number): number => total / idleRounds / (idleMs / 1000);
  const idle = Object.fromEntries(
    resolutions.map((ms) => [
      ms === 0 ? 'off' : `${ms}ms`,
      { loop_us: Math.round(perSecond(idleNs.get(ms)!) / 1000), wake_ups: Math.round(perSecond(idleWakeUps.get(ms)!)) },
    ]),
  );

  // Routing with the sampler off and on, in alternating blocks, on handlers whose own sampler is stopped.
  const { engine, traffic } = loadWorld(values.size);
  const { credit, log, close } = openBenchCredit('process-metrics', traffic);
  const metrics = new SidecarMetrics();
  metrics.process.stop();
  const route = benchHandlers(engine, credit, log, [decisionRoutes], metrics)('/api/opensips/call/route');
  const bodies: IncomingRequest[] = Array.from({ length: 20_000 }, (_, i) =>
    jsonPost('/api/opensips/call/route', {
      customer_trunk_id: traffic.callers[i % traffic.callers.length][2],
      ani: '61255500100',
      dnis: traffic.numbers[i % traffic.numbers.length],
      attempt: 1,
      tried_carrier_trunk_ids: [],
    }),
  );
  const run = async (from: number, to: number): Promise<void> => {
    for (let i = from; i < to; i += 4) {
      const turn: Promise<unknown>[] = [];
      for (let k = i; k < Math.min(i + 4, to); k++) turn.push(Promise.resolve(route(bodies[k % bodies.length])));
      await Promise.all(turn);
      await nextTurn();
    }
  };
  await run(0, 40_000); // JIT and the route caches
  const perBlock = Math.floor(requests / blocks);
  const routeNs = { off: 0, on: 0 };
  for (let b = 0; b < blocks; b++) {
    const on = b % 4 === 1 || b % 4 === 2; // off on on off: neither always first
    const sampler = on ? new ProcessMetrics() : null;
    const started = runNanos(process.pid);
    await run(b * perBlock, (b + 1) * perBlock);
    routeNs[on ? 'on' : 'off'] += runNanos(process.pid) - started;
    sampler?.stop();
  }
  await close();
  const perRequest = (ns: number): number => round2(ns / ((perBlock * blocks) / 2) / 1000);
  reportResult('process-metrics', `node dist/bench/process-metrics.js ${process.argv.slice(2).join(' ')}`.trim(), {
    load_average: (await import('node:os')).loadavg().map(round2),
    scrape,
    idle_per_second: idle,
    route_loop_us_per_request: { off: perRequest(routeNs.off), on: perRequest(routeNs.on) },
    route_requests_per_arm: (perBlock * blocks) / 2,
  });
}

await main();
