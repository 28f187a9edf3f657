import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import type { Route } from '../../src/core/http/server.js';
import { buildSidecarRoutes } from '../../src/sidecar/app.js';
import { ADMIN_MAX_BODY_BYTES, buildControlPlaneRoutes, type ControlPlaneContext } from '../../sync/app.js';
import { sendFuzz } from '../helpers/fuzz-client.js';
import { describe as describeRequest, fuzzRequests, type FuzzRequest, type FuzzRoute, type FuzzWorld } from '../helpers/fuzz-requests.js';
import { fixtureWorld } from '../helpers/fuzz-samples.js';
import { databaseState, logFilesState, readRouteState } from '../helpers/fuzz-state.js';
import { startMoneyWorld, type MoneyWorld } from '../helpers/money-world.js';
import type { SidecarProcess } from '../helpers/sidecar.js';

/**
 * Issue 17's fuzz suite: seeded, bounded requests at every endpoint of both processes, over real sockets,
 * against a control plane and a sidecar serving the fixture world. Asserts, per request: no 5xx, an answer
 * within 2 s (a hang detector, not a timing target), and a refusal (4xx) wherever the request was built to
 * be refused; at the end, both processes alive and the state as it was.
 *
 * "State as it was" can only be promised for requests that were refused, so every request to a route that
 * may write (any method but GET) carries a defect it must refuse (fuzz-requests.ts), and the state compared
 * is everything either process shows or keeps: the answers of every read route, every row of their SQLite
 * databases, and the size of the sidecar's money log. Clock-driven values (uptime, "now" timestamps) and
 * Prometheus text (it counts these very requests) are left out.
 *
 * FUZZ_SEED picks the requests (a failure names its seed and index, so it reproduces); FUZZ_COUNT is the
 * number per process. The default runs in about half a minute on a shared two-core machine.
 */
const SEED = Number(process.env.FUZZ_SEED ?? 17);
const COUNT = Number(process.env.FUZZ_COUNT ?? 2000);
const ANSWER_WITHIN_MS = 2000;
const PARALLEL = 4;
/** The sidecar's limits, given on its command line so the generator knows where "just over" is. */
const SIDECAR_BODY_BYTES = 64 * 1024;
const SNAPSHOT_BYTES = 8 * 1024 * 1024;

/** The route tables the processes serve, built without their stores: only method, path and limit are read. */
function controlPlaneRoutes(): FuzzRoute[] {
  return plain(buildControlPlaneRoutes({ maxBodyBytes: ADMIN_MAX_BODY_BYTES } as ControlPlaneContext));
}

function sidecarRoutes(): FuzzRoute[] {
  return plain(
    buildSidecarRoutes({ maxBodyBytes: SIDECAR_BODY_BYTES, maxSnapshotBytes: SNAPSHOT_BYTES } as Parameters<typeof buildSidecarRoutes>[0]),
  );
}

function plain(routes: Route[]): FuzzRoute[] {
  return routes.map(({ method, path, maxBodyBytes }) => ({ method, path, maxBodyBytes }));
}

async function stateOf(process: SidecarProcess, routes: readonly FuzzRoute[], world: FuzzWorld): Promise<Record<string, string>> {
  const state = await readRouteState(process.port, routes, world);
  for (const name of readdirSync(process.dataDir).filter((file) => file.endsWith('.db')))
    Object.assign(state, databaseState(join(process.dataDir, name)));
  return Object.assign(state, logFilesState(process.dataDir));
}

/** Sends every request, PARALLEL at a time; returns one line per broken promise. */
async function fuzz(
  target: SidecarProcess,
  requests: readonly FuzzRequest[],
): Promise<{ failures: string[]; accepted: string[]; statuses: Map<string, number> }> {
  const failures: string[] = [];
  const accepted: string[] = [];
  const statuses = new Map<string, number>();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < requests.length) {
      const request = requests[next++];
      const answer = await sendFuzz(target.port, request, ANSWER_WITHIN_MS);
      const key = `${answer.status ?? 'closed'}`;
      statuses.set(key, (statuses.get(key) ?? 0) + 1);
      const what = `${describeRequest(SEED, request)} -> ${JSON.stringify(answer.text.slice(0, 160))}`;
      if (answer.hung) failures.push(`no answer within ${ANSWER_WITHIN_MS} ms: ${what}`);
      else if (answer.status === null) {
        // uWebSockets.js drops a request line with a method it does not know, before our server sees it: no
        // handler runs, nothing changes, and the process answers the next request (the state check reads it).
        if (!request.unknownMethod) failures.push(`connection closed without an answer: ${what}`);
      } else if (answer.status >= 500) failures.push(`${answer.status}: ${what}`);
      else if (request.mustRefuse && (answer.status < 400 || answer.status >= 500)) failures.push(`accepted, expected a refusal: ${what}`);
      if (answer.status !== null && answer.status < 400 && request.method !== 'GET') accepted.push(what);
    }
  };
  await Promise.all(Array.from({ length: PARALLEL }, worker));
  return { failures, accepted, statuses };
}

function report(context: TestContext, requests: readonly FuzzRequest[], statuses: Map<string, number>): void {
  const counts = [...statuses].sort().map(([status, count]) => `${status}: ${count}`);
  context.diagnostic(`FUZZ_SEED=${SEED}, ${requests.length} requests; answers ${counts.join(', ')}`);
}

async function fuzzProcess(
  context: TestContext,
  world: MoneyWorld,
  fixture: FuzzWorld,
  target: SidecarProcess,
  routes: readonly FuzzRoute[],
): Promise<void> {
  const requests = fuzzRequests(SEED, COUNT, routes, fixture, 'refused');
  const before = await stateOf(target, routes, fixture);
  const { failures, accepted, statuses } = await fuzz(target, requests);
  report(context, requests, statuses);
  assert.deepEqual(failures.slice(0, 20), [], `${failures.length} of ${requests.length} requests broke a promise`);
  for (const process of [world.control, ...world.sidecars]) assert.ok(process.alive(), 'a process died during the fuzz run');
  const afterwards = await stateOf(target, routes, fixture);
  const changed = Object.keys({ ...before, ...afterwards }).filter((key) => before[key] !== afterwards[key]);
  assert.deepEqual(
    changed.map((key) => ({ key, before: before[key], after: afterwards[key] })),
    [],
    `state changed; requests answered without a refusal, other than reads:\n${accepted.slice(0, 10).join('\n')}`,
  );
}

describe('fuzz: every endpoint of both processes', { concurrency: false }, () => {
  let world: MoneyWorld;
  let fixture: FuzzWorld;

  before(async () => {
    fixture = fixtureWorld(mkdtempSync(join(tmpdir(), 'fuzz-node-files-')));
    world = await startMoneyWorld({
      sidecars: 1,
      sidecarArgs: ['--max-body-bytes', String(SIDECAR_BODY_BYTES), '--max-snapshot-bytes', String(SNAPSHOT_BYTES)],
    });
  });

  after(async () => {
    await world.stop();
  });

  test('the route tables are what the generator fuzzes (both processes, every route)', () => {
    const control = controlPlaneRoutes();
    const sidecar = sidecarRoutes();
    assert.ok(control.length > 40 && sidecar.length > 15, `control plane ${control.length}, sidecar ${sidecar.length} routes`);
    // Each route gets requests: COUNT is spread round-robin, so it must at least cover every route.
    assert.ok(COUNT >= Math.max(control.length, sidecar.length), `FUZZ_COUNT ${COUNT} is smaller than a route table`);
  });

  test('control plane: no 5xx, no hang, no crash, refused writes change nothing', async (t) => {
    await fuzzProcess(t, world, fixture, world.control, controlPlaneRoutes());
  });

  test('sidecar: no 5xx, no hang, no crash, refused writes change nothing', async (t) => {
    await fuzzProcess(t, world, fixture, world.sidecars[0], sidecarRoutes());
  });

  // Last, as it changes the world: odd-but-valid requests get past validation into the decisions, the
  // money path and the store, and some are accepted; what they may change is not asserted, only that
  // nothing answers 5xx, hangs or dies.
  test('both processes, requests that may be accepted: no 5xx, no hang, no crash', async (t) => {
    for (const [target, routes] of [
      [world.control, controlPlaneRoutes()],
      [world.sidecars[0], sidecarRoutes()],
    ] as const) {
      const requests = fuzzRequests(SEED, Math.ceil(COUNT / 2), routes, fixture, 'open');
      const before = await stateOf(target, routes, fixture);
      const { failures, statuses } = await fuzz(target, requests);
      report(t, requests, statuses);
      assert.deepEqual(failures.slice(0, 20), [], `${failures.length} of ${requests.length} requests broke a promise`);
      // The state compared in the refused phases is not blind: a record created here shows in it.
      if (statuses.has('201')) assert.notDeepEqual(await stateOf(target, routes, fixture), before);
    }
    for (const process of [world.control, ...world.sidecars]) {
      assert.ok(process.alive(), 'a process died during the fuzz run');
      assert.equal((await process.get('/api/health')).status, 200);
    }
  });
});
