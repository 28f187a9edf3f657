/**
 * The group commit (sync/store/wal-flush.ts) at a steady rate of commits, open loop: each commit made at its
 * slot on a real WAL database (one row of ~20 KB, about the pages a partner top-up writes), then acknowledged once
 * `flushed()` resolves; the acknowledgement's latency from the commit, with one and with two fdatasyncs at
 * once, alternated within the run. No HTTP and little CPU: what it shows is the disk's syncs and how the
 * queue waits them out (issue 19's write tail), so run it several times: the disk is shared.
 *
 *   node dist/bench/group-commit.js [--rate 500] [--seconds 10] [--rounds 2] [--at-once 1,2]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { benchArgs } from './bench-args.js';
import { openDatabase, walPathOf } from '../sync/store/database.js';
import { WalFlusher } from '../sync/store/wal-flush.js';
import { percentile } from './live-world.js';

/** Bytes a commit writes: a top-up's WAL frames were ~5.7 pages (performance log, "partner writes"). */
const COMMIT_BYTES = 20_000;

async function main(): Promise<void> {
  const { values } = benchArgs({
    options: {
      rate: { type: 'string', default: '500' },
      seconds: { type: 'string', default: '10' },
      rounds: { type: 'string', default: '2' },
      'at-once': { type: 'string', default: '1,2' },
    },
  });
  const rate = Number(values.rate);
  const total = rate * Number(values.seconds);
  const dir = mkdtempSync(join(tmpdir(), 'group-commit-'));
  const rows: Record<string, unknown>[] = [];
  try {
    const path = join(dir, 'centre.db');
    const db = openDatabase(path);
    // The serving connection's own setting (sync/store/checkpointer.ts): no checkpoint inside a commit.
    db.pragma('wal_autocheckpoint = 0');
    db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, x BLOB)');
    const write = db.prepare('INSERT OR REPLACE INTO t (id, x) VALUES (?, ?)');
    const blob = Buffer.alloc(COMMIT_BYTES, 7);
    for (let round = 0; round < Number(values.rounds); round++)
      for (const atOnce of values['at-once'].split(',').map(Number)) {
        const flusher = new WalFlusher(walPathOf(path), undefined, undefined, atOnce);
        // The WAL back to its start between runs, as the checkpointer keeps it.
        db.pragma('wal_checkpoint(TRUNCATE)');
        const latencies: number[] = [];
        const acknowledged: Promise<void>[] = [];
        const start = performance.now() + 20;
        for (let i = 0; i < total; i++) {
          const slot = start + (i * 1000) / rate;
          const wait = slot - performance.now();
          if (wait > 0.5) await new Promise((resolve) => setTimeout(resolve, wait));
          write.run(i % 200, blob);
          const committed = performance.now();
          acknowledged.push(flusher.flushed().then(() => void latencies.push(performance.now() - committed)));
        }
        await Promise.all(acknowledged);
        await flusher.close();
        const sorted = latencies.sort((a, b) => a - b);
        const ms = (p: number): number => Math.round(percentile(sorted, p) * 100) / 100;
        rows.push({
          round,
          syncs_at_once: atOnce,
          commits: total,
          syncs: flusher.syncs,
          sync_ms_mean: Math.round((flusher.timing.syncMs / flusher.syncs) * 100) / 100,
          ack_p50_ms: ms(50),
          ack_p90_ms: ms(90),
          ack_p99_ms: ms(99),
          ack_p999_ms: ms(99.9),
          ack_max_ms: Math.round(sorted[sorted.length - 1] * 100) / 100,
        });
      }
    db.close();
    process.stdout.write(`${JSON.stringify({ rate, rows, load_average_1m: Math.round(loadavg()[0] * 10) / 10 })}\n`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`group-commit bench failed: ${String(error)}\n`);
  process.exit(1);
});
