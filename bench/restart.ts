/**
 * A restarted sidecar (issue 18: serves the latest version within 2 s of start), without the rest of the
 * live-load run: a control plane and one sidecar following its delta log, one full sync, then, `--runs` times,
 * the sidecar killed (SIGKILL) during a stream of changes, more changes while it is down, and started again.
 * Each restart reports, from its spawn: when it listened, when it served the centre's latest delta sequence,
 * and the start-up steps the sidecar logs with 'sidecar listening' (ms since its process started).
 *
 *   node dist/bench/restart.js [--size small|demo|wholesale] [--runs 3] [--changes 20]
 *
 * Each run restarts twice, alternately: once as the sidecar left its data directory, once with the compiled
 * image of its stored snapshot taken away (the compile a first start after an upgrade does), so that the two
 * compare under the same machine load.
 */
import { once } from 'node:events';
import { rmSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { benchArgs } from './bench-args.js';
import { compiledImagePath } from '../src/sidecar/snapshot/compiled-image.js';
import { send, startLiveWorld } from './live-world.js';

interface Restart {
  listening_ms: number;
  latest_version_ms: number;
  /** The sidecar's own start-up steps, ms since its process started ('sidecar listening'). */
  startup_ms: Record<string, number>;
}

async function main(): Promise<void> {
  const { values } = benchArgs({
    options: {
      size: { type: 'string', default: 'small' },
      runs: { type: 'string', default: '3' },
      changes: { type: 'string', default: '20' },
    },
  });
  const runs = Number(values.runs);
  const changes = Number(values.changes);
  const world = await startLiveWorld(values.size, 1);
  const dataDir = join(world.dir, 'node-1');

  let made = 0;
  const ruleIds: number[] = [];
  // Changes that touch no routed number: a global block rule created, the oldest deleted, in turn.
  const change = async (): Promise<void> => {
    if (ruleIds.length > 0 && made % 2 === 1) await send(`${world.base}/api/block-rules/${ruleIds.shift()}`, 'DELETE');
    else {
      const pattern = `6129${String(made).padStart(7, '0')}`;
      const rule = await send(`${world.base}/api/block-rules`, 'POST', {
        scope: 'global',
        block_type: 'dnis',
        pattern,
        match_type: 'exact',
      });
      ruleIds.push(rule.id as number);
    }
    made++;
  };

  const restart = async (withImage: boolean): Promise<Restart> => {
    // Changes the sidecar applies and stores, then a kill in the middle of them, then changes it misses.
    // The image of what the last start compiled is written after it serves, by a thread at nice 19: a start
    // measured with its image waits for it (on a loaded machine a kill soon after the start beat it).
    if (withImage) await world.sidecars[0].waitForLine((line) => line.includes('"compiled image written"'), 300_000);
    for (let i = 0; i < changes; i++) await change();
    const killed = world.sidecars[0].child;
    const gone = once(killed, 'exit');
    const during = change();
    killed.kill('SIGKILL');
    await during;
    await gone;
    for (let i = 0; i < changes; i++) await change();
    if (!withImage) rmSync(compiledImagePath(join(dataDir, 'sidecar.db')), { force: true });
    const last = await world.lastSeq();
    const started = performance.now();
    // A port of its own: the one it had stays taken while the connections it held are in TIME_WAIT.
    const sidecar = await world.restart(0, { newPort: true });
    const listeningMs = performance.now() - started;
    while ((await world.appliedSeq(sidecar)) < last) await new Promise((resolve) => setTimeout(resolve, 5));
    const latestMs = performance.now() - started;
    const line = await sidecar.waitForLine((text) => text.includes('"sidecar listening"'));
    const { startup_ms: startup } = JSON.parse(line) as { startup_ms: Record<string, number> };
    return { listening_ms: Math.round(listeningMs), latest_version_ms: Math.round(latestMs), startup_ms: startup };
  };

  const results: { with_image: Restart; compiled: Restart; load: number[] }[] = [];
  try {
    for (let run = 0; run < runs; run++) {
      const compiled = await restart(false);
      const withImage = await restart(true);
      results.push({ with_image: withImage, compiled, load: loadavg().map((value) => Math.round(value * 100) / 100) });
    }
  } finally {
    world.stop();
  }
  const median = (pick: (run: (typeof results)[number]) => number): number => {
    const sorted = results.map(pick).sort((a, b) => a - b);
    return sorted[Math.floor(sorted.length / 2)];
  };
  const report = {
    size: values.size,
    runs,
    changes_per_step: changes,
    median_latest_version_ms: {
      with_image: median((r) => r.with_image.latest_version_ms),
      compiled: median((r) => r.compiled.latest_version_ms),
    },
    median_listening_ms: { with_image: median((r) => r.with_image.listening_ms), compiled: median((r) => r.compiled.listening_ms) },
    results,
  };
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
