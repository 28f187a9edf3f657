/**
 * Live changes under load (issue 18's targets): route p99 on a sidecar at a steady request rate, without
 * changes, with a stream of changes (block rules created and deleted through the admin API, each a delta
 * every sidecar applies), and without again, in one run, so the ratio compares like with like; then how
 * long a sidecar killed during changes takes from its restart to serving the centre's latest version.
 *
 *   node dist/bench/live-load.js [--size small|demo|wholesale] [--route-rate 5000] [--seconds 10] [--change-rate 50]
 *
 * The load driver (bench/load.ts) runs as its own process and holds about a core; on a 2-core machine with
 * a control plane and three sidecars beside it, figures are an upper bound, and only the ratio is the target.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchArgs } from './bench-args.js';
import type { LoadResult } from './load.js';
import { send, startLiveWorld } from './live-world.js';

const HERE = dirname(fileURLToPath(import.meta.url));

function runLoad(port: number, rate: number, seconds: number, connections: number, requestsFile: string): Promise<LoadResult> {
  const args = ['--port', String(port), '--rate', String(rate), '--seconds', String(seconds), '--connections', String(connections)];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(HERE, 'load.js'), ...args, '--requests', requestsFile], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.on('exit', (code) =>
      code === 0 ? resolve(JSON.parse(out) as LoadResult) : reject(new Error(`load driver exited with ${code}`)),
    );
  });
}

async function main(): Promise<void> {
  const { values } = benchArgs({
    options: {
      size: { type: 'string', default: 'small' },
      'route-rate': { type: 'string', default: '5000' },
      seconds: { type: 'string', default: '10' },
      'change-rate': { type: 'string', default: '50' },
      connections: { type: 'string', default: '32' },
    },
  });
  const rate = Number(values['route-rate']);
  const seconds = Number(values.seconds);
  const changeRate = Number(values['change-rate']);
  const world = await startLiveWorld(values.size);
  const { dataset, base, sidecars } = world;

  const requests = dataset.traffic.numbers.slice(0, 5000).map((number, i) => {
    const [, , trunkId] = dataset.traffic.callers[i % dataset.traffic.callers.length];
    const body = { customer_trunk_id: trunkId, ani: '61255500100', dnis: number, attempt: 1, tried_carrier_trunk_ids: [] };
    return ['/api/opensips/call/route', JSON.stringify(body)];
  });
  const requestsFile = join(mkdtempSync(join(tmpdir(), 'live-load-')), 'route-requests.json');
  writeFileSync(requestsFile, JSON.stringify(requests));
  const route = (): Promise<LoadResult> => runLoad(sidecars[0].port, rate, seconds, Number(values.connections), requestsFile);

  // Changes that touch no routed number: a block rule on a number outside the traffic, created then deleted.
  let made = 0;
  let failed = 0;
  const ruleIds: number[] = [];
  const change = async (): Promise<void> => {
    try {
      if (ruleIds.length > 0 && made % 2 === 1) await send(`${base}/api/block-rules/${ruleIds.shift()}`, 'DELETE');
      else {
        const dnis = `6129${String(made).padStart(7, '0')}`;
        const rule = await send(`${base}/api/block-rules`, 'POST', {
          scope: 'global',
          block_type: 'dnis',
          pattern: dnis,
          match_type: 'exact',
        });
        ruleIds.push(rule.id as number);
      }
      made++;
    } catch {
      failed++;
    }
  };
  const allCaughtUp = async (): Promise<void> => {
    const last = await world.lastSeq();
    for (const sidecar of sidecars)
      while ((await world.appliedSeq(sidecar)) < last) await new Promise((resolve) => setTimeout(resolve, 20));
  };

  await route(); // warm-up: the JIT and the route cache, not measured
  const quiet = await route();
  const stream = setInterval(() => void change(), 1000 / changeRate);
  const busy = await route();
  clearInterval(stream);
  await allCaughtUp();
  const quietAgain = await route();

  // A sidecar killed during changes, started again: from its start to serving the centre's latest version.
  const killed = sidecars[2].child;
  const gone = killed.exitCode !== null || killed.signalCode !== null ? Promise.resolve() : once(killed, 'exit');
  killed.kill('SIGKILL');
  for (let i = 0; i < 20; i++) await change();
  // Its port is free only once the process is gone: with the wholesale world in memory that takes a moment.
  await gone;
  const last = await world.lastSeq();
  const started = performance.now();
  const restarted = await world.restart(2);
  const listeningMs = performance.now() - started;
  while ((await world.appliedSeq(restarted)) < last) await new Promise((resolve) => setTimeout(resolve, 10));
  const latestMs = performance.now() - started;

  const phase = (result: LoadResult) => ({
    answered: result.answered,
    errors: result.errors,
    achieved_rate: Math.round(result.achievedRate),
    p50_us: Math.round(result.p50),
    p99_us: Math.round(result.p99),
  });
  const quietP99 = (quiet.p99 + quietAgain.p99) / 2;
  const report = {
    size: values.size,
    route_rate: rate,
    seconds,
    change_rate: changeRate,
    changes_made: made,
    changes_failed: failed,
    without_changes: phase(quiet),
    with_changes: phase(busy),
    without_changes_again: phase(quietAgain),
    p99_ratio_with_changes: Math.round((busy.p99 / quietP99) * 100) / 100,
    restart: { listening_ms: Math.round(listeningMs), latest_version_ms: Math.round(latestMs), version: last },
  };
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  world.stop();
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
