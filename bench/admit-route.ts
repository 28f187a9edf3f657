/**
 * call/admit against call/route, in-process: what each costs the event loop per request, handed to the
 * endpoints' own handlers. uWS is left out, so this is the sidecar's own work, which is what the target
 * (admit ≤ 1.25× route's event-loop CPU per request) asks of admission. Blocks of route and of admit requests
 * alternate, each block `--per-turn` requests per event-loop turn (the admissions of a turn share one money-log
 * record, as the endpoint's do), and the event loop's CPU is read from the scheduler's nanoseconds for this
 * thread alone (the money-log applier has its own thread).
 *
 * Two pairings, each in its own world (an engine over the same compiled snapshot, its own caches, credit and
 * journal), measured in alternation in one run:
 * - `same`: route and admit over the same calls (trunk and number), each admission of a new Call-ID, the block
 *   of routes before the block of admissions of the same calls, as a switch routes a call and then admits it.
 *   The comparison the target is judged on.
 * - `old`: what this bench and run.js compared until 2026-12-07: route 5,000 calls round and round, admit
 *   `i % 20,000` numbers, so admission met 20,000 distinct numbers (cold caches) where routing met 5,000.
 * `--pairing same|old` measures one alone.
 *
 * `--only route|admit` runs one kind alone, for a profile (`--cpu-profile FILE`: V8's sampling profile of the
 * measured section alone, 100 µs samples), under perf (`--perf-control FIFO` with `perf record -D -1
 * --control=fifo:FIFO`: enabled around the measured section, so kernel time, the write() of each record, shows
 * too) or, under callgrind, `--dump-before='node::CPUUsage*'` around the measured section.
 *
 * Before the measured section (the JIT, and the caches): the same pairing routes and then admits its first
 * `--warm-up` calls, by default 20,000, every distinct call of the bench (caller i % 5,000, number i % 20,000),
 * so that both kinds are measured on caches that hold every call, as run.js measures them after its warm-up
 * (`--warm-up 5000`: the first 15,000 calls of the measured section are new to both, and the routes, which come
 * first, pay for those walks). The old pairing warms up as it always did: 10,000 of its routes, 5,000 admissions.
 *
 *   node dist/bench/admit-route.js [--size wholesale] [--requests 50000] [--blocks 10] [--per-turn 4] [--warm-up 20000]
 *     [--pairing same|old] [--only admit] [--cpu-profile FILE] [--perf-control FIFO]
 */
import { openSync, writeFileSync, writeSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { benchArgs } from './bench-args.js';
import { runNanos } from '../src/devkit/process-cpu.js';
import type { IncomingRequest, Route } from '../src/core/http/server.js';
import { DecisionEngine } from '../src/sidecar/engine/engine.js';
import { decisionRoutes } from '../src/sidecar/http/decision-routes.js';
import { moneyRoutes } from '../src/sidecar/http/money-routes.js';
import { jsonPost } from '../src/devkit/requests.js';
import type { TrafficHints } from '../src/devkit/dataset.js';
import { benchHandlers, loadWorld, openBenchCredit } from './bench-world.js';
import { reportResult } from './results.js';

const PAIRINGS = ['same', 'old'] as const;
type Pairing = (typeof PAIRINGS)[number];

/** run.js's calls: call i is caller i % 5,000 dialling number i % 20,000. */
function callOf(traffic: TrafficHints, i: number): { trunkId: number; dnis: string } {
  return { trunkId: traffic.callers[i % traffic.callers.length][2], dnis: traffic.numbers[i % traffic.numbers.length] };
}

function routeBody(traffic: TrafficHints, i: number): IncomingRequest {
  const { trunkId, dnis } = callOf(traffic, i);
  return jsonPost('/api/opensips/call/route', {
    customer_trunk_id: trunkId,
    ani: '61255500100',
    dnis,
    attempt: 1,
    tried_carrier_trunk_ids: [],
  });
}

function admitBody(traffic: TrafficHints, i: number, callId: string): IncomingRequest {
  const { trunkId, dnis } = callOf(traffic, i);
  return jsonPost('/api/opensips/call/admit', { customer_trunk_id: trunkId, dnis, call_id: callId });
}

/** One pairing's world and the requests it sends: `routes[k]` and `admits[k]` are the k-th of each kind. */
interface World {
  pairing: Pairing;
  handlers: Record<string, Route['handler']>;
  warmRoutes: IncomingRequest[];
  warmAdmits: IncomingRequest[];
  routes: IncomingRequest[];
  admits: IncomingRequest[];
  close: () => Promise<void>;
  routeNs: number;
  admitNs: number;
  statuses: Record<string, number>;
}

/** The old pairing's warm-up, as it was before the pairings (--warm-up's default then). */
const OLD_WARM_UP = 5000;

function openWorld(pairing: Pairing, engine: DecisionEngine, traffic: TrafficHints, requests: number, sameWarmUp: number): World {
  const { credit, log, close } = openBenchCredit(`admit-route-${pairing}`, traffic);
  const warmUp = pairing === 'old' ? OLD_WARM_UP : sameWarmUp;
  const handlerOf = benchHandlers(engine, credit, log, [decisionRoutes, moneyRoutes]);
  const admits = Array.from({ length: requests }, (_, i) => admitBody(traffic, i, `bench-${i}@opensips`));
  const warmAdmits = Array.from({ length: warmUp }, (_, i) => admitBody(traffic, i, `warm-${i}@opensips`));
  // old: 5,000 route requests sent round and round (as run.js's route file was); same: the admitted calls.
  const oldRoutes = pairing === 'old' ? Array.from({ length: 5000 }, (_, i) => routeBody(traffic, i)) : [];
  const routes = pairing === 'old' ? oldRoutes : Array.from({ length: requests }, (_, i) => routeBody(traffic, i));
  const warmRoutes =
    pairing === 'old'
      ? Array.from({ length: 2 * warmUp }, (_, i) => oldRoutes[i % oldRoutes.length])
      : Array.from({ length: warmUp }, (_, i) => routeBody(traffic, i));
  return {
    pairing,
    handlers: {
      '/api/opensips/call/route': handlerOf('/api/opensips/call/route'),
      '/api/opensips/call/admit': handlerOf('/api/opensips/call/admit'),
    },
    warmRoutes,
    warmAdmits,
    routes,
    admits,
    close,
    routeNs: 0,
    admitNs: 0,
    statuses: {},
  };
}

async function main(): Promise<void> {
  const { values } = benchArgs({
    options: {
      size: { type: 'string', default: 'wholesale' },
      requests: { type: 'string', default: '50000' },
      blocks: { type: 'string', default: '10' },
      'per-turn': { type: 'string', default: '4' },
      'warm-up': { type: 'string', default: '20000' },
      pairing: { type: 'string' },
      only: { type: 'string' },
      'cpu-profile': { type: 'string' },
      'perf-control': { type: 'string' },
    },
  });
  const requests = Number(values.requests);
  const blocks = Number(values.blocks);
  const perTurn = Number(values['per-turn']);
  const warmUp = Number(values['warm-up']);
  const only = values.only ?? null;
  if (only !== null && only !== 'route' && only !== 'admit') throw new Error('--only is route or admit');
  const pairings = values.pairing === undefined ? PAIRINGS : PAIRINGS.filter((pairing) => pairing === values.pairing);
  if (pairings.length === 0) throw new Error(`--pairing is one of ${PAIRINGS.join(', ')}`);
  const { engine, traffic } = loadWorld(values.size);
  // Each pairing its own engine (its own route and row caches) over the one compiled snapshot.
  const worlds = pairings.map((pairing, i) =>
    openWorld(pairing, i === 0 ? engine : new DecisionEngine(engine.snapshot), traffic, requests, warmUp),
  );

  const send = async (world: World, one: IncomingRequest): Promise<void> => {
    const response = await world.handlers[one.path](one);
    const refused = typeof response.body === 'string' && response.body.charCodeAt(11) === 0x66; // {"allowed":f…
    const key = `${one.path} ${response.status}${refused ? ' refused' : ''}`;
    world.statuses[key] = (world.statuses[key] ?? 0) + 1;
  };
  const run = async (world: World, list: IncomingRequest[], from: number, to: number): Promise<void> => {
    for (let i = from; i < to; i += perTurn) {
      const turn: Promise<void>[] = [];
      for (let k = i; k < Math.min(i + perTurn, to); k++) turn.push(send(world, list[k % list.length]));
      await Promise.all(turn);
      // A new turn, as the next requests would come in one (the journal's flush is a setImmediate).
      await new Promise((resolve) => setImmediate(resolve));
    }
  };

  try {
    // JIT: both kinds, before anything is measured (each call routed before it is admitted).
    for (const world of worlds) {
      await run(world, world.warmRoutes, 0, world.warmRoutes.length);
      await run(world, world.warmAdmits, 0, world.warmAdmits.length);
    }
    const perBlock = Math.floor(requests / blocks);
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
      // Which pairing goes first swaps from block to block: neither always follows the other's admissions.
      for (const world of b % 2 === 0 ? worlds : [...worlds].reverse()) {
        if (only !== 'admit') {
          const started = runNanos(process.pid);
          await run(world, world.routes, b * perBlock, (b + 1) * perBlock);
          world.routeNs += runNanos(process.pid) - started;
        }
        if (only !== 'route') {
          const started = runNanos(process.pid);
          await run(world, world.admits, b * perBlock, (b + 1) * perBlock);
          world.admitNs += runNanos(process.pid) - started;
        }
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
    const byPairing = Object.fromEntries(
      worlds.map((world) => [
        world.pairing,
        {
          route_loop_us_per_request: only === 'admit' ? null : perRequest(world.routeNs),
          admit_loop_us_per_request: only === 'route' ? null : perRequest(world.admitNs),
          admit_over_route: only === null ? Math.round((world.admitNs / world.routeNs) * 100) / 100 : null,
          statuses: world.statuses,
        },
      ]),
    );
    const kinds = (only === null ? 2 : 1) * worlds.length;
    reportResult('admit-route', `node dist/bench/admit-route.js ${process.argv.slice(2).join(' ')}`.trim(), {
      size: values.size,
      measured_per_kind: measured,
      per_turn: perTurn,
      ...byPairing,
      // Every thread (the appliers' too), over the measured section, per request of any kind and pairing.
      process_cpu_us_per_request: Math.round(((cpu.user + cpu.system) / (measured * kinds)) * 10) / 10,
    });
  } finally {
    for (const world of worlds) await world.close();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`admit-route bench failed: ${String(error)}\n`);
  process.exit(1);
});
