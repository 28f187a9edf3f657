/**
 * Money rounds at the centre on SQLite and on PostgreSQL, in the same run (issue 21's target: p99 < 20 ms
 * on PostgreSQL at 3 nodes × 2k calls/s). Three nodes each send a round every 200 ms (the sidecar's
 * interval; see --round-cdrs), all at once (`--phase aligned`, the worst case, and what the target has been read on) or each
 * at a random point of every 200 ms (`--phase random`: independent sidecars, whose timers start with their
 * processes), for `--seconds`; a round carries the CDRs of 200 ms at `--calls` calls/s (400 at 2k/s) spread
 * over `--accounts` prepaid accounts, and a lease ask for each account it billed, made before its clock
 * starts (a node makes it on its own machine, not on the centre's cores). Timed: the round's transaction as
 * the node-sync route runs it (nodeRound), not HTTP. Needs the machine's PostgreSQL (postgres@127.0.0.1:5432,
 * database test, or TEST_POSTGRES_URL as the tests take it; a scratch schema, dropped after). Then one node alone (`solo`): its rounds one after another, each timed and its event
 * loop's CPU counted, the CDRs made before the clock starts: a round's own cost, which unlike the
 * three-node latency hardly moves with the machine's load. On PostgreSQL the solo rounds also report where
 * the server's part goes: each statement's time as the client sees it (send to result, by its first words),
 * the CPU of the bench's own server backends (found by application_name, read from /proc: the server must
 * run on this machine) and the WAL written per round (the cluster's, so other sessions' writes count too
 * on a shared server). The three-node phase also reports how long a round held its balances' locks
 * (`balances_locked`, as the client saw it): the span the other nodes' rounds on the same accounts queue for.
 *
 * `--compare-phase N`: then N blocks of 3 s of three nodes' rounds, alternating `aligned` and `random`, so both
 * see the same load (on this shared box, runs one after the other do not).
 *
 * `--round-cdrs N`: rounds of N CDRs instead, each node sending one as often as N are due at `--calls` (every
 * N / calls seconds: 50 ms for 100 at 2k/s), as a sidecar does with `--round-cdrs` (centre/link.ts) when its
 * calls fill a round before the 200 ms interval. `--compare-round-cdrs 400,200,100`: then, for each of those
 * sizes in turn, `--compare-round-passes` times (the order reversed every other pass), a 3 s block of three nodes
 * (in `--phase`) and 8,000 CDRs of solo rounds: for each size the three nodes' latency, the centre's CPU (this
 * process: the round's transaction as the route runs it, without HTTP, plus the bench's own hash of the body) and
 * the server backends' CPU per CDR, the solo rounds' CPU per round, and a straight line through the latter: a
 * round's fixed CPU and a CDR's, what smaller rounds pay for their latency.
 *
 * `--compare-commit N` (PostgreSQL): then N blocks alternating the round's commit as the route makes it (its row
 * locks released at its commit record, the answer waiting for the flush: pg-store.ts) with a plain synchronous
 * COMMIT, each block three nodes at once for 15 rounds then 20 solo rounds: both see the same load, which a
 * run of each one after the other on this shared box does not.
 *
 *   node dist/bench/money-rounds.js [--seconds 10] [--calls 2000] [--accounts 20] [--solo-rounds 100]
 *     [--compare-commit 0] [--phase aligned] [--compare-phase 0] [--round-cdrs N]
 *     [--compare-round-cdrs 400,200,100] [--compare-round-passes 2]
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { benchArgs } from './bench-args.js';
import pg from 'pg';
import type { NodeSyncRequest } from '../src/core/protocol/node-sync.js';
import { openLedgerWorld, settledCall, type LedgerWorld } from '../src/devkit/ledger-world.js';
import { runSeconds } from '../src/devkit/process-cpu.js';
import { medianAndTail } from './live-world.js';
import { saveResult } from './results.js';

const { values } = benchArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    calls: { type: 'string', default: '2000' },
    accounts: { type: 'string', default: '20' },
    'solo-rounds': { type: 'string', default: '100' },
    'compare-commit': { type: 'string', default: '0' },
    'compare-phase': { type: 'string', default: '0' },
    phase: { type: 'string', default: 'aligned' },
    'round-cdrs': { type: 'string', default: '' },
    'compare-round-cdrs': { type: 'string', default: '' },
    'compare-round-passes': { type: 'string', default: '2' },
  },
});
const seconds = Number(values.seconds);
/** Each node's calls a second: a round of N CDRs is due every N / callsPerSecond seconds. */
const callsPerSecond = Number(values.calls);
/** The CDRs of one 200 ms interval at --calls, the sidecar's round; --round-cdrs sends rounds of that many instead, each as soon as they are due. */
const callsPerRound = values['round-cdrs'] === '' ? Math.round((callsPerSecond * 200) / 1000) : Number(values['round-cdrs']);
if (!(Number.isInteger(callsPerRound) && callsPerRound > 0))
  throw new Error(`--round-cdrs is a positive integer, not ${values['round-cdrs']}`);
const comparedSizes = values['compare-round-cdrs'] === '' ? [] : values['compare-round-cdrs'].split(',').map(Number);
if (comparedSizes.some((size) => !(Number.isInteger(size) && size > 0)))
  throw new Error(`--compare-round-cdrs is positive integers separated by commas, not ${values['compare-round-cdrs']}`);
const sizePasses = Number(values['compare-round-passes']);
const accounts = Array.from({ length: Number(values.accounts) }, (_, i) => i + 1);
const NODES = ['node-1', 'node-2', 'node-3'];
/** How often a node's round of `callsPerRound` CDRs is due at --calls calls/s (200 ms unless --round-cdrs says otherwise). */
const roundMs = (cdrs: number): number => (cdrs * 1000) / callsPerSecond;
const ROUND_MS = roundMs(callsPerRound);
const SERVER = process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const soloRounds = Number(values['solo-rounds']);
const compareBlocks = Number(values['compare-commit']);
const phaseBlocks = Number(values['compare-phase']);
type Phase = 'aligned' | 'random';
const PHASES: readonly Phase[] = ['aligned', 'random'];
const phase = values.phase as Phase;
if (!PHASES.includes(phase)) throw new Error(`--phase is one of ${PHASES.join(', ')}, not ${values.phase}`);
/** The bench's connections' name at the server, to find their backends. */
const APPLICATION = `money-rounds-${process.pid}`;

/** A round's body: `cdrs` CDRs numbered on from `first` (so no two rounds bill one CDR), an ask per account billed. */
function roundBody(name: string, first: number, cdrs = callsPerRound): Omit<NodeSyncRequest, 'node' | 'seq'> {
  const settlements = Array.from({ length: cdrs }, (_, i) =>
    settledCall(`${name}-${first + i}`, accounts[(first + i) % accounts.length], '0.0125'),
  );
  const billed = [...new Set(settlements.map((cdr) => cdr.customer_account_id))];
  return {
    settlements,
    leases: billed.map((id) => ({ entity_type: 'customer' as const, entity_id: id, want: '1', give_back: '0' })),
  };
}

/**
 * One node's rounds of `cdrs` CDRs for the run, each timed, about one every roundMs(cdrs) (a period: 200 ms for
 * the sidecar's interval). `aligned`: every node's first at once, and each next one a period after the last one
 * started, as the bench always ran them (the nodes drift apart only by their timers' lateness, so most rounds
 * still meet the other two: a round queues behind them on 2 cores); `random`: each at a random point of each period, as independent sidecars' rounds fall (each node's
 * timer starts with its process and drifts on its own), so two or three meet only by chance, in about the share
 * of time they would. The bodies are made before the first round: a real node makes them on its own machine.
 */
async function node(world: LedgerWorld, name: string, until: number, phase: Phase, first = 0, cdrs = callsPerRound): Promise<number[]> {
  return sendRounds(world, name, until, phase, blockBodies(name, until, first, cdrs), roundMs(cdrs));
}

/** The bodies a node can send from now until `until`, one every `roundMs(cdrs)` (and one more for a late timer), CDRs numbered on from `first`. */
function blockBodies(name: string, until: number, first: number, cdrs: number): Omit<NodeSyncRequest, 'node' | 'seq'>[] {
  return Array.from({ length: Math.ceil((until - Date.now()) / roundMs(cdrs)) + 2 }, (_, i) => roundBody(name, first + 1 + i * cdrs, cdrs));
}

/** node()'s rounds, of bodies made beforehand (so a block's CPU counts the centre's work only), one every `period` ms. */
async function sendRounds(
  world: LedgerWorld,
  name: string,
  until: number,
  phase: Phase,
  bodies: Omit<NodeSyncRequest, 'node' | 'seq'>[],
  period: number,
): Promise<number[]> {
  const times: number[] = [];
  const at = (start: number): number => start + (phase === 'random' ? Math.random() * period : 0);
  let start = Date.now();
  for (let next = at(start), i = 0; next < until && i < bodies.length; next = at(start), i++) {
    await sleep(Math.max(0, next - Date.now()));
    const startedAt = Date.now();
    const started = performance.now();
    await world.round(name, bodies[i]);
    times.push(performance.now() - started);
    start = phase === 'aligned' ? startedAt + period : start + period;
  }
  return times;
}

/** A query's text: a batch's (sync/store/pg-batch.ts) is its statements' joined by ';\n'. */
function queryText(query: unknown): string {
  return typeof query === 'string' ? query : ((query as { text?: string }).text ?? '?');
}

/** A query's label: each statement's first words (a batch's joined by ' + '), enough to tell the round's apart. */
function label(query: unknown): string {
  const parts = queryText(query).split(';\n');
  return parts
    .map((part) =>
      part
        .replace(/\s+/g, ' ')
        .trim()
        .slice(0, parts.length === 1 ? 48 : 32),
    )
    .join(' + ');
}

/** The round's statement that locks its balances (LEDGER_SQL.roundBalances), by its first words (alone, or in a batch). */
const LOCKS_BALANCES = 'SELECT t.entity_type, t.entity_id, t.balance';

/**
 * Times every statement sent to PostgreSQL (every pg client's, BEGIN and COMMIT included; send to result) by
 * label until `stop`: how many per round, the statements in each (a batch's: sync/store/pg-batch.ts) and their
 * mean ms. The count is a round's round trips, the figure that decides its latency on an idle server and that,
 * unlike the latency, does not move with the machine's load; on a loaded one each waits twice for a core.
 * Also how long each round held its balances' locks, as its client saw it: from the answer to the statement that
 * took them to the COMMIT's sending (the server releases them as it reads the COMMIT: pg-store.ts). With three
 * nodes at once, that span is what the others' rounds queue for.
 */
function timeStatements(): {
  stop(rounds: number): Record<string, { per_round: number; statements: number; mean_ms: number }>;
  locksHeld: number[];
} {
  const client = pg.Client.prototype as unknown as { query: (...args: unknown[]) => unknown };
  const query = client.query;
  const totals = new Map<string, { count: number; ms: number; statements: number }>();
  const locked = new WeakMap<object, number>();
  const locksHeld: number[] = [];
  client.query = function (this: object, ...args: unknown[]) {
    const started = performance.now();
    const name = label(args[0]);
    const locks = queryText(args[0]).includes(LOCKS_BALANCES);
    if (/(^| \+ )COMMIT/.test(name) && locked.has(this)) {
      locksHeld.push(started - locked.get(this)!);
      locked.delete(this);
    }
    const result = query.apply(this, args);
    // A batch (sync/store/pg-batch.ts) is returned as itself, its answer in `finished`.
    const answered = result instanceof Promise ? result : (result as { finished?: Promise<unknown> } | undefined)?.finished;
    const entry = totals.get(name) ?? { count: 0, ms: 0, statements: name.split(' + ').length };
    totals.set(name, entry);
    const done = (): void => {
      entry.count++;
      entry.ms += performance.now() - started;
      if (locks) locked.set(this, performance.now());
    };
    if (answered instanceof Promise) answered.then(done, done);
    return result;
  };
  return {
    locksHeld,
    stop: (rounds) => {
      client.query = query;
      return Object.fromEntries(
        [...totals].map(([name, { count, ms, statements }]) => [
          name,
          { per_round: Math.round((count / rounds) * 100) / 100, statements, mean_ms: Math.round((ms / count) * 100) / 100 },
        ]),
      );
    },
  };
}

/** The CPU seconds of each of this bench's server backends (PostgreSQL on this machine) by pid, and the cluster's WAL position in bytes. */
async function serverCounters(admin: pg.Client): Promise<{ cpu: Map<number, number>; wal: bigint }> {
  const pids = await admin.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE application_name = $1', [APPLICATION]);
  const cpu = new Map<number, number>();
  for (const { pid } of pids.rows) {
    try {
      // A backend is one thread: the scheduler's nanoseconds, not stat's ticks (40 rounds of ~7 ms each).
      cpu.set(pid, runSeconds(pid));
    } catch {
      // a backend on another machine, or one that ended: not counted
    }
  }
  const wal = await admin.query<{ lsn: string }>("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::text AS lsn");
  return { cpu, wal: BigInt(wal.rows[0].lsn.split('.')[0]) };
}

/** CPU seconds the backends alive at both readings spent between them (one the pool closed meanwhile is left out). */
function backendSeconds(before: Map<number, number>, after: Map<number, number>): number {
  let seconds = 0;
  for (const [pid, cpu] of after) seconds += cpu - (before.get(pid) ?? cpu);
  return seconds;
}

/** One node's rounds one after another, none of the others sending: each round's wall time and the event loop's CPU per round. */
async function solo(world: LedgerWorld, name: string, server: pg.Client | null): Promise<Record<string, unknown>> {
  const bodies = Array.from({ length: soloRounds }, (_, i) => roundBody(name, 1_000_000_000 + i * callsPerRound));
  const times: number[] = [];
  // One round first, so the backend the rounds run on exists before its CPU is read.
  await world.round(name, roundBody(name, 900_000_000));
  const serverBefore = server === null ? null : await serverCounters(server);
  const statements = server === null ? null : timeStatements();
  const cpuBefore = runSeconds(process.pid);
  for (const body of bodies) {
    const started = performance.now();
    await world.round(name, body);
    times.push(performance.now() - started);
  }
  const cpuMs = ((runSeconds(process.pid) - cpuBefore) * 1000) / soloRounds;
  const round2 = (value: number): number => Math.round(value * 100) / 100;
  const result: Record<string, unknown> = { rounds: soloRounds, ...medianAndTail(times), cpu_ms_per_round: round2(cpuMs) };
  if (server !== null && serverBefore !== null && statements !== null) {
    const perStatement = statements.stop(soloRounds);
    const after = await serverCounters(server);
    result.server_backend_cpu_ms_per_round = round2((backendSeconds(serverBefore.cpu, after.cpu) * 1000) / soloRounds);
    result.wal_kb_per_round = round2(Number(after.wal - serverBefore.wal) / 1024 / soloRounds);
    result.statements = perStatement;
  }
  return result;
}

/** --compare-commit: blocks alternating the route's commit (`unlock`) and a plain synchronous one (`sync`); each block's rounds numbered on. */
async function compareCommit(world: LedgerWorld, blocks: number): Promise<Record<string, unknown>> {
  const sides = { sync: { three: [] as number[], solo: [] as number[] }, unlock: { three: [] as number[], solo: [] as number[] } };
  let call = 2_000_000_000;
  const timed = async (name: string, unlock: boolean): Promise<number> => {
    const body = roundBody(name, call);
    call += callsPerRound;
    const started = performance.now();
    await world.round(name, body, false, unlock);
    return performance.now() - started;
  };
  for (let block = 0; block < blocks; block++) {
    const side = block % 2 === 0 ? 'sync' : 'unlock';
    for (let i = 0; i < 15; i++) {
      const started = performance.now();
      sides[side].three.push(...(await Promise.all(NODES.map((name) => timed(name, side === 'unlock')))));
      await sleep(Math.max(0, ROUND_MS - (performance.now() - started)));
    }
    for (let i = 0; i < 20; i++) sides[side].solo.push(await timed(NODES[0], side === 'unlock'));
  }
  return Object.fromEntries(
    Object.entries(sides).map(([side, { three, solo }]) => [side, { three_nodes: medianAndTail(three), solo: medianAndTail(solo) }]),
  );
}

/**
 * --compare-phase: blocks of three nodes' rounds for 3 s each, alternating `aligned` and `random`, so both see
 * the same load; each block's CDRs numbered on from a range of its own (none settled before).
 */
async function comparePhase(world: LedgerWorld, blocks: number): Promise<Record<string, unknown>> {
  const times: Record<Phase, number[]> = { aligned: [], random: [] };
  for (let block = 0; block < blocks; block++) {
    const side = PHASES[block % 2];
    const until = Date.now() + 3000;
    const first = 3_000_000_000 + block * 10_000_000;
    times[side].push(...(await Promise.all(NODES.map((name) => node(world, name, until, side, first)))).flat());
  }
  return Object.fromEntries(PHASES.map((side) => [side, medianAndTail(times[side])]));
}

/** The centre's CPU (this process) and its server backends' (PostgreSQL on this machine; null on SQLite) over `work`, in ms. */
async function counted<T>(
  server: pg.Client | null,
  work: () => Promise<T>,
): Promise<{ result: T; centreMs: number; serverMs: number | null }> {
  const serverBefore = server === null ? null : await serverCounters(server);
  const cpuBefore = runSeconds(process.pid);
  const result = await work();
  const centreMs = (runSeconds(process.pid) - cpuBefore) * 1000;
  const serverMs =
    server === null || serverBefore === null ? null : backendSeconds(serverBefore.cpu, (await serverCounters(server)).cpu) * 1000;
  return { result, centreMs, serverMs };
}

/** Solo rounds' CDRs in a --compare-round-cdrs block, whatever the size: the same work in each, a few rounds of the largest. */
const SOLO_CDRS_PER_BLOCK = 8000;

/**
 * --compare-round-cdrs: each pass runs every size in turn (the order reversed every other pass, A B C C B A, so
 * on this shared box each sees the same load), each a 3 s block of three nodes (in --phase) sending rounds of
 * that many CDRs as often as they are due at --calls calls/s, then SOLO_CDRS_PER_BLOCK CDRs in solo rounds of
 * it. For each size: the three nodes' latency and the CPU per CDR of the centre and the server over those blocks;
 * the solo rounds' latency and CPU per round; and a straight line through the solo CPU by size: the fixed cost of
 * a round and the cost of a CDR, what a smaller round pays for its lower latency.
 */
async function compareSizes(
  world: LedgerWorld,
  server: pg.Client | null,
  sizes: number[],
  passes: number,
): Promise<Record<string, unknown>> {
  const empty = () => ({ times: [] as number[], rounds: 0, cdrs: 0, centreMs: 0, serverMs: 0 });
  const sides = new Map(sizes.map((size) => [size, { three: empty(), solo: empty() }]));
  let first = 4_000_000_000;
  for (let pass = 0; pass < passes; pass++) {
    for (const size of pass % 2 === 0 ? sizes : [...sizes].reverse()) {
      const side = sides.get(size)!;
      const until = Date.now() + 3000;
      const bodies = NODES.map((name) => blockBodies(name, until, first, size));
      first += 10_000_000;
      const three = await counted(server, async () =>
        (await Promise.all(NODES.map((name, i) => sendRounds(world, name, until, phase, bodies[i], roundMs(size))))).flat(),
      );
      side.three.times.push(...three.result);
      side.three.rounds += three.result.length;
      side.three.cdrs += three.result.length * size;
      side.three.centreMs += three.centreMs;
      side.three.serverMs += three.serverMs ?? 0;
      const soloBodies = Array.from({ length: Math.ceil(SOLO_CDRS_PER_BLOCK / size) }, (_, i) =>
        roundBody(NODES[0], first + i * size, size),
      );
      first += 10_000_000;
      const solo = await counted(server, async () => {
        const times: number[] = [];
        for (const body of soloBodies) {
          const started = performance.now();
          await world.round(NODES[0], body);
          times.push(performance.now() - started);
        }
        return times;
      });
      side.solo.times.push(...solo.result);
      side.solo.rounds += solo.result.length;
      side.solo.cdrs += solo.result.length * size;
      side.solo.centreMs += solo.centreMs;
      side.solo.serverMs += solo.serverMs ?? 0;
    }
  }
  const round2 = (value: number): number => Math.round(value * 100) / 100;
  const bySize = Object.fromEntries(
    [...sides].map(([size, { three, solo }]) => [
      size,
      {
        round_every_ms: round2(roundMs(size)),
        three_nodes: {
          rounds: three.rounds,
          ...medianAndTail(three.times),
          centre_cpu_us_per_cdr: round2((three.centreMs * 1000) / three.cdrs),
          ...(server === null ? {} : { server_cpu_us_per_cdr: round2((three.serverMs * 1000) / three.cdrs) }),
        },
        solo: {
          rounds: solo.rounds,
          ...medianAndTail(solo.times),
          centre_cpu_ms_per_round: round2(solo.centreMs / solo.rounds),
          ...(server === null ? {} : { server_cpu_ms_per_round: round2(solo.serverMs / solo.rounds) }),
        },
      },
    ]),
  );
  // Least squares of the solo CPU a round against its CDRs: intercept = a round's fixed cost, slope = a CDR's.
  const line = (perRound: (solo: ReturnType<typeof empty>) => number) => {
    const points = [...sides].map(([size, { solo }]) => [size, perRound(solo)] as const);
    const meanX = points.reduce((sum, [x]) => sum + x, 0) / points.length;
    const meanY = points.reduce((sum, [, y]) => sum + y, 0) / points.length;
    const slope =
      points.reduce((sum, [x, y]) => sum + (x - meanX) * (y - meanY), 0) / points.reduce((sum, [x]) => sum + (x - meanX) ** 2, 0);
    return { fixed_ms_per_round: round2(meanY - slope * meanX), us_per_cdr: round2(slope * 1000) };
  };
  const fit =
    sizes.length < 2
      ? {}
      : {
          solo_cpu_fit: {
            centre: line((solo) => solo.centreMs / solo.rounds),
            ...(server === null ? {} : { server: line((solo) => solo.serverMs / solo.rounds) }),
          },
        };
  return { phase, passes, by_round_cdrs: bySize, ...fit };
}

async function bench(location: string): Promise<{
  rounds: number;
  p50_ms: number;
  p99_ms: number;
  statements_per_round?: number;
  round_trips_per_round?: number;
  solo: Record<string, unknown>;
  compare_commit?: Record<string, unknown>;
  compare_phase?: Record<string, unknown>;
  compare_round_cdrs?: Record<string, unknown>;
}> {
  const world = await openLedgerWorld(location, NODES, accounts);
  try {
    for (const id of accounts) await world.fund(id, '1000000.00');
    const until = Date.now() + seconds * 1000;
    const statements = location.startsWith('postgres') ? timeStatements() : null;
    const times = (await Promise.all(NODES.map((name) => node(world, name, until, phase)))).flat();
    const timed = statements?.stop(times.length);
    // The balances' read waits for the locks other nodes' rounds hold: its time here against the solo rounds' is the queue.
    const perRound =
      timed === undefined || statements === null
        ? {}
        : {
            round_trips_per_round: Math.round(Object.values(timed).reduce((sum, { per_round }) => sum + per_round, 0) * 100) / 100,
            statements_per_round:
              Math.round(Object.values(timed).reduce((sum, { per_round, statements }) => sum + per_round * statements, 0) * 100) / 100,
            balances_locked: medianAndTail(statements.locksHeld),
            statements: timed,
          };
    return {
      rounds: times.length,
      ...medianAndTail(times),
      ...perRound,
      solo: await solo(world, NODES[0], location.startsWith('postgres') ? admin : null),
      ...(location.startsWith('postgres') && compareBlocks > 0 ? { compare_commit: await compareCommit(world, compareBlocks) } : {}),
      ...(phaseBlocks > 0 ? { compare_phase: await comparePhase(world, phaseBlocks) } : {}),
      ...(comparedSizes.length > 0
        ? { compare_round_cdrs: await compareSizes(world, location.startsWith('postgres') ? admin : null, comparedSizes, sizePasses) }
        : {}),
    };
  } finally {
    await world.close();
  }
}

const schema = `bench_money_${randomBytes(4).toString('hex')}`;
const admin = new pg.Client({ connectionString: SERVER });
await admin.connect();
await admin.query(`CREATE SCHEMA ${schema}`);
try {
  const sqlite = await bench(`sqlite:${join(mkdtempSync(join(tmpdir(), 'money-rounds-bench-')), 'config.db')}`);
  const postgres = await bench(`${SERVER}?options=${encodeURIComponent(`-c search_path=${schema}`)}&application_name=${APPLICATION}`);
  const load = execFileSync('uptime', { encoding: 'utf8' }).trim();
  const result = {
    nodes: NODES.length,
    phase,
    calls_per_round: callsPerRound,
    round_every_ms: ROUND_MS,
    accounts: accounts.length,
    seconds,
    sqlite,
    postgres,
    target_p99_ms: 20,
    load,
  };
  console.log(JSON.stringify(result, null, 2));
  // Kept for `make perf-doc`, as the other benches' results are.
  saveResult('money-rounds', `node dist/bench/money-rounds.js ${process.argv.slice(2).join(' ')}`.trim(), result);
} finally {
  await admin.query(`DROP SCHEMA ${schema} CASCADE`);
  await admin.end();
}
