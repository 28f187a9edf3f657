import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino, { type Logger } from 'pino';
import { NodeCredit, type CreditSettings } from '../src/sidecar/credit/node-credit.js';
import { MoneyJournal } from '../src/sidecar/journal/journal.js';
import { firstAttemptRequest, routeCall, type RouteDecision } from '../src/sidecar/routing/route.js';
import { DecisionEngine } from '../src/sidecar/engine/engine.js';
import { decodeSnapshot, encodeSnapshot } from '../src/core/snapshot/codec.js';
import { compileSnapshot } from '../src/core/snapshot/compile.js';
import { generateDataset, SIZES, type TrafficHints } from '../src/devkit/dataset.js';
import { REPO } from '../src/devkit/paths.js';
import type { Route } from '../src/core/http/server.js';
import { sidecarContext, type SidecarContext } from '../src/sidecar/http/context.js';
import { CallCounters } from '../src/sidecar/limits/call-counters.js';
import { DigestReplayGuard } from '../src/sidecar/auth/digest-replay.js';
import { SidecarMetrics } from '../src/sidecar/metrics/metrics.js';
import type { SnapshotService } from '../src/sidecar/snapshot/service.js';

/**
 * The in-process benches' world: the dataset `make bench` wrote under
 * bench/data (else generated here), compiled into a decision engine, with
 * the traffic hints (callers, numbers, accounts) that go with it.
 */
const DATA = join(REPO, 'bench', 'data');

export function loadWorld(size: string): { engine: DecisionEngine; traffic: TrafficHints } {
  const snapshotFile = join(DATA, `${size}.msgpack`);
  const trafficFile = join(DATA, `${size}-traffic.json`);
  let bytes: Uint8Array;
  let traffic: TrafficHints;
  if (existsSync(snapshotFile) && existsSync(trafficFile)) {
    bytes = readFileSync(snapshotFile);
    traffic = JSON.parse(readFileSync(trafficFile, 'utf8')) as TrafficHints;
  } else {
    const dataset = generateDataset(SIZES[size]);
    bytes = encodeSnapshot(dataset.tables, 1);
    traffic = dataset.traffic;
  }
  const decoded = decodeSnapshot(bytes, 0);
  if (!decoded.ok) throw new Error(decoded.reason);
  return { engine: new DecisionEngine(compileSnapshot(decoded.snapshot).compiled), traffic };
}

/** The in-process benches' node credit: a lease that never runs out, whole-call reservations, nothing returned while they run. */
export const BENCH_CREDIT: CreditSettings = {
  admissionSeconds: 7200,
  reservationGraceSeconds: 300,
  leaseChunkMicro: 1e9,
  idleReturnMs: 3_600_000,
  offlinePostpaid: 'allow',
  sliceSeconds: null,
};

/** The route a call's first INVITE gets (call/route's first attempt, nothing tried): the carrier its CDR names. */
export function firstRoute(engine: DecisionEngine, trunkId: number, dnis: string, now: number, ani: string | null = null): RouteDecision {
  return routeCall(engine, firstAttemptRequest(trunkId, dnis, ani), now).decision;
}

/** The call/reroute the OpenSIPS script sends when a call's first carrier (its gateway) answered 503. */
export function rerouteAfter503(trunkId: number, dnis: string, carrier: number, gateway: number): Record<string, unknown> {
  return {
    customer_trunk_id: trunkId,
    ani: '61255500100',
    dnis,
    attempt: 2,
    tried_carrier_trunk_ids: [carrier],
    tried_gateway_ids: [gateway],
    previous_carrier_trunk_id: carrier,
    previous_gateway_id: gateway,
    previous_failure_code: 503,
    failure_code: 503,
  };
}

/**
 * A node's credit over a money journal in a scratch directory, every account of the world holding a lease that
 * never runs out (no admission waits for a round with a centre). `close` ends the journal and removes the directory.
 */
export function openBenchCredit(name: string, traffic: TrafficHints): { credit: NodeCredit; log: Logger; close: () => Promise<void> } {
  const dir = mkdtempSync(join(tmpdir(), `${name}-`));
  const log = pino({ level: 'silent' });
  const journal = new MoneyJournal(join(dir, 'money.db'), 'normal', log);
  const credit = new NodeCredit(journal, BENCH_CREDIT, log);
  credit.applyReply(
    credit.takeRound(0),
    {
      settled: [],
      unbilled: [],
      leases: traffic.accounts.map((account) => ({ entity_type: 'customer', entity_id: account.id, granted: '999999999', headroom: '0' })),
      lease_valid_seconds: 86_400,
    },
    Date.now(),
  );
  return {
    credit,
    log,
    close: async () => {
      await journal.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * The sidecar's endpoint handlers over a bench world's engine and credit, called in-process without uWS (the
 * benches that count the sidecar's own work per request): `routeSets` picks which of the sidecar's route lists
 * to take, and the answer finds a path's handler among them; `metrics` is theirs to count in (a bench reads it).
 */
export function benchHandlers(
  engine: DecisionEngine,
  credit: NodeCredit,
  log: Logger,
  routeSets: readonly ((context: SidecarContext) => Route[])[],
  metrics = new SidecarMetrics(),
): (path: string) => Route['handler'] {
  const context = sidecarContext({
    snapshots: { engine } as SnapshotService,
    credit,
    metrics,
    counters: new CallCounters((trunkId) => engine.knowsTrunk(trunkId)),
    digestReplays: new DigestReplayGuard(),
    log,
    maxBodyBytes: 65_536,
    maxSnapshotBytes: 0,
    startedAt: Date.now(),
  });
  const routes = routeSets.flatMap((routesOf) => routesOf(context));
  return (path) => {
    const route = routes.find((candidate) => candidate.path === path);
    if (route === undefined) throw new Error(`no handler for ${path}`);
    return route.handler;
  };
}
