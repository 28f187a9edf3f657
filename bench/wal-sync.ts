/**
 * The group commit's fdatasync of the centre's WAL, two ways, in turn on the same database: the file opened
 * and closed for each sync (before 2026-12-06), and the descriptor kept open (sync/store/wal-file.ts). One
 * committed row before each sync, as a write does. Reports this process's CPU per sync (all threads: the
 * syncs run on libuv's pool; and the event loop's thread alone, the insert included) and the wall time per
 * sync; on a loaded box the CPU is the figure to compare.
 *
 *   node dist/bench/wal-sync.js [--syncs 2000] [--rounds 3]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { benchArgs } from './bench-args.js';
import { cpuSeconds } from '../src/devkit/process-cpu.js';
import { openDatabase, walPathOf } from '../sync/store/database.js';
import { WalFile } from '../sync/store/wal-file.js';

async function openedEachTime(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.datasync();
  } finally {
    await handle.close();
  }
}

async function main(): Promise<void> {
  const { values } = benchArgs({ options: { syncs: { type: 'string', default: '2000' }, rounds: { type: 'string', default: '3' } } });
  const syncs = Number(values.syncs);
  const dir = mkdtempSync(join(tmpdir(), 'wal-sync-'));
  try {
    const path = join(dir, 'centre.db');
    const db = openDatabase(path);
    db.exec('CREATE TABLE t (x)');
    const insert = db.prepare('INSERT INTO t VALUES (?)');
    const walPath = walPathOf(path)!;
    const kept = new WalFile(walPath);
    const ways: Record<string, () => Promise<void>> = {
      opened_each_time: () => openedEachTime(walPath),
      kept_open: () => kept.dataSync(),
    };
    const results: Record<string, { cpu_us_per_sync: number; loop_us_per_sync: number; wall_us_per_sync: number }[]> = {};
    for (let round = 0; round < Number(values.rounds); round++) {
      for (const [name, sync] of Object.entries(ways)) {
        const cpuBefore = cpuSeconds(process.pid);
        const loopBefore = cpuSeconds(process.pid, true);
        const wallBefore = performance.now();
        for (let i = 0; i < syncs; i++) {
          insert.run(i);
          await sync();
        }
        (results[name] ??= []).push({
          cpu_us_per_sync: Math.round(((cpuSeconds(process.pid) - cpuBefore) * 1e6) / syncs),
          loop_us_per_sync: Math.round(((cpuSeconds(process.pid, true) - loopBefore) * 1e6) / syncs),
          wall_us_per_sync: Math.round(((performance.now() - wallBefore) * 1000) / syncs),
        });
      }
    }
    await kept.close();
    db.close();
    process.stdout.write(`${JSON.stringify({ syncs, results, load_average_1m: Math.round(loadavg()[0] * 10) / 10 })}\n`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`wal-sync bench failed: ${String(error)}\n`);
  process.exit(1);
});
