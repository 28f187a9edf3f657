/**
 * The benchmark: generates a dataset, measures in-process decision time, then
 * drives the real sidecar and the uWS floor the same way in the same run and
 * reports each result beside the floor's. Results print as a table and are
 * written as JSON under bench/results/ so runs can be compared.
 *
 *   node dist/bench/run.js --profile short   (make bench: about two minutes)
 *   node dist/bench/run.js --profile full    (make bench-full)
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import type { LoadResult } from './load.js';
import type { TrafficHints } from './dataset.js';
import { startService, type ServiceProcess } from './service-process.js';

const HERE = fileURLToPath(new URL('.', import.meta.url));
const ROOT = join(HERE, '..', '..');
const DATA = join(ROOT, 'bench', 'data');
const RESULTS = join(ROOT, 'bench', 'results');

interface Profile {
  size: string;
  seconds: number;
  rates: number[];
  connections: number;
}

interface Row extends Partial<LoadResult> {
  scenario: string;
  cpuMicrosPerRequest?: number;
  p50_vs_floor_us?: number;
  p99_ratio?: number;
  throughput_ratio?: number;
  [detail: string]: unknown;
}

const PROFILES: Record<string, Profile> = {
  short: { size: 'wholesale', seconds: 5, rates: [10_000], connections: 32 },
  full: { size: 'wholesale', seconds: 15, rates: [2_000, 5_000, 10_000, 20_000], connections: 64 },
};

function run(command: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [command, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`${command} exited with ${code}`))));
  });
}

function startServer(script: string, args: string[], readyMessage: string): Promise<ServiceProcess> {
  return startService(join(HERE, script), args, readyMessage);
}

/** utime + stime of a process, in seconds. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function rssMB(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match === null ? NaN : Math.round(Number(match[1]) / 1024);
}

async function load(port: number, rate: number, seconds: number, connections: number, requestsFile: string): Promise<LoadResult> {
  return JSON.parse(await run(join(HERE, 'load.js'), ['--port', String(port), '--rate', String(rate), '--seconds', String(seconds), '--connections', String(connections), '--requests', requestsFile])) as LoadResult;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { profile: { type: 'string', default: 'short' } } });
  const profile = PROFILES[values.profile] as Profile | undefined;
  if (profile === undefined) throw new Error(`unknown profile ${values.profile}`);
  mkdirSync(DATA, { recursive: true });
  mkdirSync(RESULTS, { recursive: true });
  const snapshotFile = join(DATA, `${profile.size}.msgpack`);
  const snapshotNext = join(DATA, `${profile.size}-next.msgpack`);
  const trafficFile = join(DATA, `${profile.size}-traffic.json`);
  process.stderr.write(`generating ${profile.size} dataset...\n`);
  await run(join(HERE, 'dataset.js'), ['--size', profile.size, '--out', snapshotFile, '--version', '1', '--traffic', trafficFile]);
  await run(join(HERE, 'dataset.js'), ['--size', profile.size, '--out', snapshotNext, '--version', '2', '--seed', '43']);

  process.stderr.write('in-process decision time...\n');
  const micro = JSON.parse(await run(join(HERE, 'micro.js'), ['--size', profile.size])) as Record<string, number>;

  const traffic = JSON.parse(readFileSync(trafficFile, 'utf8')) as TrafficHints;
  const routeRequests = traffic.numbers.slice(0, 5000).map((number, i) => {
    const [, , trunkId] = traffic.callers[i % traffic.callers.length];
    return ['/api/opensips/call/route', JSON.stringify({ customer_trunk_id: trunkId, ani: '61255500100', dnis: number, attempt: 1, tried_carrier_trunk_ids: [] })];
  });
  const authRequests = traffic.numbers.slice(0, 5000).map((number, i) => {
    const [ip, techPrefix] = traffic.callers[i % traffic.callers.length];
    return ['/api/opensips/call/auth', JSON.stringify({ source_ip: ip, call_id: `bench-${i}@opensips`, ani: '61255500100', dnis: techPrefix + number, ruri: `sip:${techPrefix}${number}@sip.example.net`, from: '<sip:61255500100@example.net>', to: `<sip:${number}@example.net>` })];
  });
  const routeFile = join(DATA, 'route-requests.json');
  const authFile = join(DATA, 'auth-requests.json');
  writeFileSync(routeFile, JSON.stringify(routeRequests));
  writeFileSync(authFile, JSON.stringify(authRequests));

  const dataDir = join(DATA, `sidecar-${Date.now()}`);
  process.stderr.write('starting sidecar and floor...\n');
  // The sidecar logs no per-request lines, so info level costs nothing under load.
  const sidecar = await startServer(join('..', 'src', 'main.js'), ['--port', '0', '--data-dir', dataDir, '--snapshot', snapshotFile], 'sidecar listening');
  const floor = await startServer('floor-server.js', ['--port', '0', '--body-bytes', '330'], 'floor listening');
  const sidecarRssAfterLoad = rssMB(sidecar.child.pid!);

  const rows: Row[] = [];
  const measure = async (label: string, port: number, pid: number, rate: number, file: string): Promise<LoadResult & { cpuMicrosPerRequest: number }> => {
    const cpuBefore = cpuSeconds(pid);
    const result = await load(port, rate, profile.seconds, profile.connections, file);
    const cpuMicrosPerRequest = Math.round(((cpuSeconds(pid) - cpuBefore) * 1e6) / Math.max(1, result.answered));
    process.stderr.write(`${label}: ${JSON.stringify(result)}\n`);
    return { ...result, cpuMicrosPerRequest };
  };
  // Warm both servers (JIT) before measuring.
  await load(sidecar.port, 0, 2, profile.connections, routeFile);
  await load(floor.port, 0, 2, profile.connections, routeFile);

  for (const rate of profile.rates) {
    const floorResult = await measure(`floor ${rate}/s`, floor.port, floor.child.pid!, rate, routeFile);
    const routeResult = await measure(`route ${rate}/s`, sidecar.port, sidecar.child.pid!, rate, routeFile);
    const authResult = await measure(`auth ${rate}/s`, sidecar.port, sidecar.child.pid!, rate, authFile);
    for (const [name, result] of [['floor', floorResult], ['route', routeResult], ['auth', authResult]] as const) {
      rows.push({
        scenario: `${name} @ ${rate}/s`,
        ...result,
        p50_vs_floor_us: name === 'floor' ? 0 : result.p50 - floorResult.p50,
        p99_ratio: name === 'floor' ? 1 : Math.round((result.p99 / floorResult.p99) * 100) / 100,
      });
    }
  }
  const floorClosed = await measure('floor closed loop', floor.port, floor.child.pid!, 0, routeFile);
  const routeClosed = await measure('route closed loop', sidecar.port, sidecar.child.pid!, 0, routeFile);
  rows.push({ scenario: 'floor closed loop', ...floorClosed, throughput_ratio: 1 });
  rows.push({ scenario: 'route closed loop', ...routeClosed, throughput_ratio: Math.round((routeClosed.achievedRate / floorClosed.achievedRate) * 100) / 100 });

  // Snapshot swap under load: a new version arrives while route traffic runs.
  const swapLoad = load(sidecar.port, 5_000, profile.seconds + 4, profile.connections, routeFile);
  await new Promise((resolve) => setTimeout(resolve, 1500));
  const swapStarted = performance.now();
  const put = await fetch(`http://127.0.0.1:${sidecar.port}/api/snapshot`, { method: 'PUT', body: readFileSync(snapshotNext) });
  const swapBody = (await put.json()) as Record<string, unknown>;
  const swapWallSeconds = (performance.now() - swapStarted) / 1000;
  const swapResult = await swapLoad;
  rows.push({ scenario: 'route @ 5000/s during snapshot swap', ...swapResult, put_status: put.status, ...swapBody, put_wall_seconds: Math.round(swapWallSeconds * 100) / 100 });
  const sidecarRss = rssMB(sidecar.child.pid!);

  sidecar.child.kill();
  floor.child.kill();

  const report = { profile: values.profile, at: new Date().toISOString(), node: process.version, micro, sidecarRssMB: sidecarRss, sidecarRssBeforeLoadMB: sidecarRssAfterLoad, rows };
  const file = join(RESULTS, `bench-${report.at.replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify(report, null, 2));

  const lines = [
    `in-process (${micro.size}: ${micro.rateRows} rate rows, ${micro.cidrs} CIDRs): compile ${micro.compileSeconds} s (decode ${micro.decodeSeconds} s, validate ${micro.validateSeconds} s), ` +
      `auth median ${micro.authMedianMicros} µs, route median ${micro.routeMedianMicros} µs, RSS ${micro.rssMB} MB`,
    `sidecar RSS: ${sidecarRssAfterLoad} MB after start, ${sidecarRss} MB after load and swap`,
    '',
    `${'scenario'.padEnd(40)} ${'rate/s'.padStart(8)} ${'p50 µs'.padStart(8)} ${'p99 µs'.padStart(8)} ${'p99.9'.padStart(8)} ${'max'.padStart(8)} ${'errors'.padStart(7)} ${'cpu µs'.padStart(7)}  vs floor`,
  ];
  for (const row of rows) {
    const versus =
      row.p99_ratio !== undefined ? `p50 +${row.p50_vs_floor_us ?? 0} µs, p99 ×${row.p99_ratio}` : row.throughput_ratio !== undefined ? `throughput ×${row.throughput_ratio}` : '';
    const cell = (value: number | undefined, width: number): string => (value === undefined ? '' : String(value)).padStart(width);
    lines.push(
      `${row.scenario.padEnd(40)} ${cell(row.achievedRate, 8)} ${cell(row.p50, 8)} ${cell(row.p99, 8)} ${cell(row.p999, 8)} ${cell(row.max, 8)} ${cell(row.errors, 7)} ${cell(row.cpuMicrosPerRequest, 7)}  ${versus}`,
    );
  }
  lines.push('', `results: ${file}`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`bench failed: ${String(error)}\n`);
  process.exit(1);
});
