/**
 * The partner API at a fixed request rate (issue 19's target: 500 req/s, p99 < 5 ms for reads and < 10 ms
 * for writes on the embedded store): a real control plane with its partner listener, a JWKS file and one
 * cached ID token (as a partner's app holds one), accounts made and topped up through the API, then an
 * open-loop stream of each operation in turn (get_balance, call_history, topup, setup_call; every write with
 * its own Idempotency-Key). Latency is taken from each request's scheduled send time, so a stall counts
 * against every request it delayed.
 *
 * Each stream also reports the control plane's CPU per request (process CPU time / requests), the figure
 * that a change moves on a loaded box where the latencies are mostly other processes' noise. The same driver
 * drives the uWS floor (bench/floor-server.ts: parse the body, answer a fixed one) at the same rate in the same
 * run, with topup's requests: the tail this box and this driver give a server that does nothing, beside which
 * the partner API's is read.
 *
 * Two drivers. `node` (the default, so `make bench` needs nothing else): fetch from this process. `wrk2`: Gil
 * Tene's wrk2 (github.com/giltene/wrk2, built outside the repository), a C load generator at a constant rate
 * whose latency is corrected for coordinated omission; this bench signs the token and writes the bodies up
 * front, bench/partner-ops.lua only sends them (a counter per wrk2 thread makes each Idempotency-Key). Node's
 * own client costs this 2-core box more than the server it measures, and its p99 alone (the floor's, ~9 ms
 * quiet) is above the read target. wrk2 spends its first 10 s calibrating and drops them from its histogram:
 * a wrk2 stream runs `--seconds` + 11 s, and its CPU per request is over the whole run.
 *
 *   node dist/bench/partner-ops.js [--rate 500] [--seconds 10] [--accounts 50] [--operations get_balance,topup]
 *     [--driver wrk2 --wrk2 /path/to/wrk [--connections 16] [--threads 1]] [--control-flags='--cpu-prof ...']
 */
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { benchArgs } from './bench-args.js';
import { CONTROL_MAIN, REPO } from '../src/devkit/paths.js';
import { startCpuMeter, type CpuPerRequest } from '../src/devkit/process-cpu.js';
import { makePartnerKey, partnerControlArgs, partnerToken, partnerUrlOf } from '../src/devkit/partner-tokens.js';
import { startService } from '../src/devkit/service-process.js';
import { DEFAULT_TENANT_RATE } from '../sync/partner/limits.js';
import { percentile, send } from './live-world.js';
import { reportResult } from './results.js';

const HERE = fileURLToPath(new URL('.', import.meta.url));
const WRK2_SCRIPT = join(REPO, 'bench', 'partner-ops.lua');
/** wrk2's calibration (10 s plus 5 ms a connection), which its histogram leaves out. */
const WRK2_CALIBRATION_SECONDS = 11;

const OPERATIONS = ['get_balance', 'call_history', 'topup', 'setup_call'] as const;
type Operation = (typeof OPERATIONS)[number];
const WRITES: ReadonlySet<string> = new Set(['topup', 'setup_call']);
const ACCESS_NUMBER = '61290000000';

/** One stream's row, in the units of the performance page's scenario tables (µs). */
interface StreamRow extends CpuPerRequest {
  scenario: string;
  requests: number;
  /** Requests answered per second over the stream. */
  achievedRate: number;
  errors: number;
  /** The errors by HTTP status, or by the client's error (a refused or reset connection) when no answer came. */
  error_kinds: Record<string, number>;
  p50: number;
  p99: number;
  p999: number;
  max: number;
  p99_ratio?: number;
  p50_vs_floor_us?: number;
  /** The 1-minute load average as the stream ended: how busy the box was around it. */
  load_1m: number;
}

interface Target {
  /** The operation's URL. */
  url: string;
  pid: number;
}

interface Driver {
  name: string;
  stream(scenario: string, target: Target, write: boolean, bodies: string[]): Promise<StreamRow>;
}

const round1 = (value: number): number => Math.round(value * 10) / 10;
const load1m = (): number => round1(loadavg()[0]);

/** fetch from this process, open loop: each request is sent at its slot, answered or not. */
function nodeDriver(authorization: string, rate: number, seconds: number): Driver {
  let keys = 0;
  const call = async (url: string, write: boolean, body: string): Promise<number> => {
    const headers: Record<string, string> = { 'content-type': 'application/json', authorization };
    if (write) headers['idempotency-key'] = `bench-${process.pid}-${++keys}`;
    const response = await fetch(url, { method: 'POST', headers, body });
    await response.arrayBuffer();
    return response.status;
  };
  const run = async (scenario: string, target: Target, write: boolean, bodies: string[]): Promise<StreamRow> => {
    const total = rate * seconds;
    const meter = startCpuMeter(target.pid);
    const latencies: number[] = [];
    const errorKinds: Record<string, number> = {};
    let errors = 0;
    const failed = (kind: string): void => {
      errors++;
      errorKinds[kind] = (errorKinds[kind] ?? 0) + 1;
    };
    const pending: Promise<void>[] = [];
    const start = performance.now() + 50;
    for (let i = 0; i < total; i++) {
      const slot = start + (i * 1000) / rate;
      const wait = slot - performance.now();
      if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
      pending.push(
        call(target.url, write, bodies[i % bodies.length]).then(
          (status) => {
            if (status === 200) latencies.push(performance.now() - slot);
            else failed(String(status));
          },
          (error: unknown) =>
            failed(error instanceof Error ? String((error.cause as { code?: string } | undefined)?.code ?? error.message) : 'error'),
        ),
      );
    }
    await Promise.all(pending);
    const elapsedMs = performance.now() - start;
    const sorted = latencies.sort((a, b) => a - b);
    const micros = (p: number): number => Math.round(percentile(sorted, p) * 1000);
    return {
      scenario,
      requests: total,
      achievedRate: Math.round(((total - errors) * 1000) / elapsedMs),
      errors,
      error_kinds: errorKinds,
      p50: micros(50),
      p99: micros(99),
      p999: micros(99.9),
      max: Math.round(sorted[sorted.length - 1] * 1000),
      ...meter(total),
      load_1m: load1m(),
    };
  };
  return {
    name: 'node',
    // The first stream on a target warms the JIT and opens the connections; it is not reported.
    stream: async (scenario, target, write, bodies) => {
      await run(scenario, target, write, bodies);
      return run(scenario, target, write, bodies);
    },
  };
}

interface Wrk2Summary {
  requests: number;
  duration_us: number;
  p50_us: number;
  p99_us: number;
  p999_us: number;
  max_us: number;
  errors: Record<'connect' | 'read' | 'write' | 'status' | 'timeout', number>;
}

/** wrk2 at a constant rate, its calibration as the warm-up; the requests' file is read by bench/partner-ops.lua. */
function wrk2Driver(
  wrk: string,
  authorization: string,
  options: { rate: number; seconds: number; connections: number; threads: number; dir: string },
): Driver {
  let runs = 0;
  return {
    name: 'wrk2',
    stream: async (scenario, target, write, bodies) => {
      const requestsFile = join(options.dir, `wrk2-${++runs}.txt`);
      const path = new URL(target.url).pathname;
      writeFileSync(requestsFile, [path, authorization, write ? 'write' : 'read', `bench-${process.pid}-${runs}`, ...bodies].join('\n'));
      const meter = startCpuMeter(target.pid);
      const { stdout } = await promisify(execFile)(
        wrk,
        [
          ...['-t', String(options.threads), '-c', String(options.connections)],
          ...['-d', `${options.seconds + WRK2_CALIBRATION_SECONDS}s`, '-R', String(options.rate), '--latency'],
          ...['-s', WRK2_SCRIPT, target.url, '--', requestsFile],
        ],
        { maxBuffer: 16 * 1024 * 1024 },
      );
      const line = stdout.split('\n').find((candidate) => candidate.startsWith('{"wrk2"'));
      if (line === undefined) throw new Error(`wrk2 printed no summary:\n${stdout}`);
      const summary = (JSON.parse(line) as { wrk2: Wrk2Summary }).wrk2;
      const errorKinds = Object.fromEntries(Object.entries(summary.errors).filter(([, count]) => count > 0));
      return {
        scenario,
        requests: summary.requests,
        achievedRate: Math.round((summary.requests * 1e6) / summary.duration_us),
        errors: Object.values(summary.errors).reduce((sum, count) => sum + count, 0),
        error_kinds: errorKinds,
        p50: summary.p50_us,
        p99: summary.p99_us,
        p999: summary.p999_us,
        max: summary.max_us,
        ...meter(summary.requests),
        load_1m: load1m(),
      };
    },
  };
}

async function main(): Promise<void> {
  const { values } = benchArgs({
    options: {
      rate: { type: 'string', default: '500' },
      seconds: { type: 'string', default: '10' },
      accounts: { type: 'string', default: '50' },
      operations: { type: 'string', default: OPERATIONS.join(',') },
      driver: { type: 'string', default: 'node' },
      wrk2: { type: 'string' },
      connections: { type: 'string', default: '16' },
      threads: { type: 'string', default: '1' },
      // Node/V8 flags for the control plane, space-separated (e.g. --cpu-prof --cpu-prof-dir=/tmp/prof).
      'control-flags': { type: 'string', default: '' },
    },
  });
  const rate = Number(values.rate);
  const seconds = Number(values.seconds);
  const operations = values.operations.split(',') as Operation[];
  for (const operation of operations)
    if (!OPERATIONS.includes(operation)) throw new Error(`no operation ${operation}: ${OPERATIONS.join(', ')}`);
  if (values.driver !== 'node' && values.driver !== 'wrk2') throw new Error('--driver is node or wrk2');
  if (values.driver === 'wrk2' && values.wrk2 === undefined) throw new Error('--driver wrk2 needs --wrk2 <path to the wrk binary>');
  const dir = mkdtempSync(join(tmpdir(), 'partner-ops-'));
  const key = await makePartnerKey('bench');
  const jwks = join(dir, 'jwks.json');
  writeFileSync(jwks, JSON.stringify({ keys: [key.jwk] }));
  const control = await startService(
    CONTROL_MAIN,
    [
      ...['--port', '0', '--data-dir', join(dir, 'control'), ...partnerControlArgs(jwks)],
      // The tenant's rate limit twice the bench's rate, two seconds of it at once (the defaults at the default
      // 500 req/s): a bench at a higher --rate measures the API, not its limit.
      ...['--partner-tenant-rate', String(Math.max(2 * rate, DEFAULT_TENANT_RATE.perSecond))],
      ...['--partner-tenant-burst', String(Math.max(4 * rate, DEFAULT_TENANT_RATE.burst))],
    ],
    // Logged after the partner listener's own line (partnerUrlOf reads that one).
    'control plane listening',
    { execArgv: values['control-flags'].split(' ').filter((flag) => flag !== '') },
  );
  try {
    const base = `http://127.0.0.1:${control.port}`;
    const tenant = await send(`${base}/api/partner-tenants`, 'POST', { tenant_id: 'bench', name: 'Bench' });
    await send(`${base}/api/partner-products`, 'POST', {
      partner_tenant_id: tenant.id,
      product_id: 'bench_au',
      currency: 'AUD',
      requires_pin: false,
      access_numbers: ACCESS_NUMBER,
    });
    const partnerUrl = partnerUrlOf(control.logs);
    const authorization = `Bearer ${await partnerToken(key, { tenant: 'bench' })}`;
    const setUp = async (operation: string, idempotencyKey: string, body: Record<string, unknown>): Promise<Record<string, unknown>> => {
      const response = await fetch(`${partnerUrl}/${operation}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization, 'idempotency-key': idempotencyKey },
        body: JSON.stringify(body),
      });
      const answer = (await response.json()) as Record<string, unknown>;
      if (response.status !== 200 && response.status !== 201) throw new Error(`${operation} in the set-up: ${JSON.stringify(answer)}`);
      return answer;
    };
    const accounts: string[] = [];
    for (let i = 0; i < Number(values.accounts); i++) {
      const created = await setUp('create_account', `bench-create-${i}`, { product_id: 'bench_au' });
      accounts.push(created.account_code_12 as string);
      await setUp('topup', `bench-first-topup-${i}`, { account: created.account_code_12, amount: 100 });
    }

    // One body per account, sent in turn; setup_call's caller is the account's own, so each ends the one before it.
    const bodiesOf = (operation: Operation): string[] =>
      accounts.map((account, i) =>
        JSON.stringify(
          operation === 'topup'
            ? { account, amount: 0.01 }
            : operation === 'setup_call'
              ? {
                  a_number: `+614${String(i).padStart(8, '0')}`,
                  b_number: '+61412345678',
                  access_number: `+${ACCESS_NUMBER}`,
                  account_number: account,
                  ttl: 600,
                }
              : { account },
        ),
      );
    const driver =
      values.driver === 'wrk2'
        ? wrk2Driver(values.wrk2!, authorization, {
            rate,
            seconds,
            connections: Number(values.connections),
            threads: Number(values.threads),
            dir,
          })
        : nodeDriver(authorization, rate, seconds);

    const floorServer = await startService(join(HERE, 'floor-server.js'), ['--port', '0', '--body-bytes', '200'], 'floor listening');
    let floor: StreamRow;
    try {
      floor = await driver.stream(
        'floor (topup requests)',
        { url: `http://127.0.0.1:${floorServer.port}/topup`, pid: floorServer.child.pid! },
        true,
        bodiesOf('topup'),
      );
    } finally {
      floorServer.child.kill('SIGTERM');
    }
    const rows: StreamRow[] = [floor];
    for (const operation of operations) {
      const row = await driver.stream(
        operation,
        { url: `${partnerUrl}/${operation}`, pid: control.child.pid! },
        WRITES.has(operation),
        bodiesOf(operation),
      );
      rows.push({ ...row, p50_vs_floor_us: row.p50 - floor.p50, p99_ratio: round1(row.p99 / floor.p99) });
    }
    // How much of a write's latency is its wait for the group commit's fdatasync: the control plane logs the
    // flush's figures as it stops (they include the 2 × accounts writes of the set-up).
    control.child.kill('SIGTERM');
    const stopping = JSON.parse(await control.waitForLine((line) => line.includes('"msg":"stopping"'))) as { group_commit: unknown };
    reportResult('partner-ops', `node dist/bench/partner-ops.js ${process.argv.slice(2).join(' ')}`.trim(), {
      driver: driver.name,
      rate,
      seconds,
      accounts: accounts.length,
      rows,
      group_commit: stopping.group_commit,
      load_average_1m: load1m(),
    });
  } finally {
    // Once: a second SIGTERM while it stops would kill it before it writes a --cpu-prof profile.
    if (!control.child.killed) control.child.kill('SIGTERM');
    if (control.child.exitCode === null && control.child.signalCode === null) await once(control.child, 'exit');
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`partner-ops bench failed: ${String(error)}\n`);
  process.exit(1);
});
