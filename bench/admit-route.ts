/**
 * call/admit against call/route, in-process: what each costs the event loop per request, with the bodies
 * `run.js --scenarios pairs` sends (its route requests, and admissions of new Call-IDs that stay held, as there),
 * handed to the endpoints' own handlers. uWS is left out, so this is the sidecar's own work, which is what the
 * issue's target (admit ≤ 1.25× route's event-loop CPU per request) asks of admission. Blocks of route and of
 * admit requests alternate, each block `--per-turn` requests per event-loop turn (the admissions of a turn
 * share one money-log record, as the endpoint's do), and the event loop's CPU is read from the scheduler's
 * nanoseconds for this thread alone (the money-log applier has its own thread). `--only route|admit` runs one
 * kind alone, for a profile (`--cpu-profile FILE`: V8's sampling profile of the measured section alone, 100 µs
 * samples), under perf (`--perf-control FIFO` with `perf record -D -1 --control=fifo:FIFO`: enabled around the
 * measured section, so kernel time, the write() of each record, shows too) or, under callgrind,
 * `--dump-before='node::CPUUsage*'` around the measured section.
 *
 * `--warm-up N` admissions (and twice as many routes) go first, outside the measured section (the JIT).
 *
 *   node dist/bench/admit-route.js [--size wholesale] [--requests 50000] [--blocks 10] [--per-turn 4] [--warm-up 5000] [--only admit]
 *     [--cpu-profile FILE] [--perf-control FIFO]
 */
import { openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { parseArgs } from 'node:util';
import type { IncomingRequest, Route } from '../src/core/http/server.js';
import { decisionRoutes } from '../src/sidecar/http/decision-routes.js';
import { moneyRoutes } from '../src/sidecar/http/money-routes.js';
import { jsonPost } from '../src/devkit/requests.js';
import { benchHandlers, loadWorld, openBenchCredit } from './bench-world.js';
import { reportResult } from './results.js';

/** The event loop's own CPU time in ns (its thread's schedstat: the applier and V8's helpers are other threads). */
function loopNanos(): number {
  return Number(readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ')[0]);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      size: { type: 'string', default: 'wholesale' },
      requests: { type: 'string', default: '50000' },
      blocks: { type: 'string', default: '10' },
      'per-turn': { type: 'string', default: '4' },
      'warm-up': { type: 'string', default: '5000' },
      only: { type: 'string' },
      'cpu-profile': { type: 'string' },
      'perf-control': { type: 'string' },
    },
  });
  const requests = Number(values.requests);
  const blocks = Number(values.blocks);
  const perTurn = Number(values['per-turn']);
  const only = values.only ?? null;
  if (only !== null && only !== 'route' && only !== 'admit') throw new Error('--only is route or admit');
  const { engine, traffic } = loadWorld(values.size);
  const { credit, log, close } = openBenchCredit('admit-route', traffic);
  const handlerOf = benchHandlers(engine, credit, log, [decisionRoutes, moneyRoutes]);
  const handlers: Record<string, Route['handler']> = {
    '/api/opensips/call/route': handlerOf('/api/opensips/call/route'),
    '/api/opensips/call/admit': handlerOf('/api/opensips/call/admit'),
  };

  // run.ts's bodies: 5,000 route requests sent round and round; each admission a new Call-ID.
  const callOf = (i: number): { trunkId: number; dnis: string } => ({
    trunkId: traffic.callers[i % traffic.callers.length][2],
    dnis: traffic.numbers[i % traffic.numbers.length],
  });
  const routeBodies = Array.from({ length: 5000 }, (_, i) =>
    jsonPost('/api/opensips/call/route', {
      customer_trunk_id: callOf(i).trunkId,
      ani: '61255500100',
      dnis: callOf(i).dnis,
      attempt: 1,
      tried_carrier_trunk_ids: [],
    }),
  );
  const admitBodies = Array.from({ length: requests }, (_, i) =>
    jsonPost('/api/opensips/call/admit', { customer_trunk_id: callOf(i).trunkId, dnis: callOf(i).dnis, call_id: `bench-${i}@opensips` }),
  );
  const warmAdmits = Array.from({ length: Number(values['warm-up']) }, (_, i) =>
    jsonPost('/api/opensips/call/admit', { customer_trunk_id: callOf(i).trunkId, dnis: callOf(i).dnis, call_id: `warm-${i}@opensips` }),
  );

  const statuses: Record<string, number> = {};
  const send = async (one: IncomingRequest): Promise<void> => {
    const response = await handlers[one.path](one);
    const refused = typeof response.body === 'string' && response.body.charCodeAt(11) === 0x66; // {"allowed":f…
    const key = `${one.path} ${response.status}${refused ? ' refused' : ''}`;
    statuses[key] = (statuses[key] ?? 0) + 1;
  };
  const run = async (list: IncomingRequest[], from: number, to: number): Promise<void> => {
    for (let i = from; i < to; i += perTurn) {
      const turn: Promise<void>[] = [];
      for (let k = i; k < Math.min(i + perTurn, to); k++) turn.push(send(list[k % list.length]));
      await Promise.all(turn);
      // A new turn, as the next requests would come in one (the journal's flush is a setImmediate).
      await new Promise((resolve) => setImmediate(resolve));
    }
  };

  try {
    // JIT: both kinds, before anything is measured.
    await run(routeBodies, 0, 2 * warmAdmits.length);
    await run(warmAdmits, 0, warmAdmits.length);
    const perBlock = Math.floor(requests / blocks);
    let routeNs = 0;
    let admitNs = 0;
    const profileFile = values['cpu-profile'];
    const session = profileFile === undefined ? null : new Session();
    if (session !== null) {
      session.connect();
      await session.post('Profiler.enable');
      await session.post('Profiler.setSamplingInterval', { interval: 100 });
      await session.post('Profiler.start');
    }
    const perf = values['perf-control'] === undefined ? null : openSync(values['perf-control'], 'w');
    if (perf !== null) writeSync(perf, 'enable\n');
    const cpuBefore = process.cpuUsage();
    for (let b = 0; b < blocks; b++) {
      if (only !== 'admit') {
        const started = loopNanos();
        await run(routeBodies, b * perBlock, (b + 1) * perBlock);
        routeNs += loopNanos() - started;
      }
      if (only !== 'route') {
        const started = loopNanos();
        await run(admitBodies, b * perBlock, (b + 1) * perBlock);
        admitNs += loopNanos() - started;
      }
    }
    const cpu = process.cpuUsage(cpuBefore);
    if (perf !== null) writeSync(perf, 'disable\n');
    if (session !== null) {
      const { profile } = await session.post('Profiler.stop');
      writeFileSync(profileFile!, JSON.stringify(profile));
      session.disconnect();
    }
    const measured = perBlock * blocks;
    const perRequest = (ns: number): number => Math.round(ns / measured / 10) / 100;
    reportResult('admit-route', `node dist/bench/admit-route.js ${process.argv.slice(2).join(' ')}`.trim(), {
      size: values.size,
      measured_per_kind: measured,
      per_turn: perTurn,
      route_loop_us_per_request: only === 'admit' ? null : perRequest(routeNs),
      admit_loop_us_per_request: only === 'route' ? null : perRequest(admitNs),
      admit_over_route: only === null ? Math.round((admitNs / routeNs) * 100) / 100 : null,
      // Every thread (the applier's too), over the measured section, per request of either kind.
      process_cpu_us_per_request: Math.round(((cpu.user + cpu.system) / (measured * (only === null ? 2 : 1))) * 10) / 10,
      statuses,
    });
  } finally {
    await close();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`admit-route bench failed: ${String(error)}\n`);
  process.exit(1);
});
