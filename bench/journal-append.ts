/**
 * What one acknowledged journal write costs the event loop: writes awaited one at a time (one per turn, as
 * admissions arrive at a moderate rate), wall time and the main thread's own CPU per write. The applier
 * thread's work is not counted: it is what the log keeps off the event loop.
 *
 *   node dist/bench/journal-append.js [--writes 10000] [--durability normal|full]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { benchArgs } from './bench-args.js';
import pino from 'pino';
import { cpuSeconds } from '../src/devkit/process-cpu.js';
import { MoneyJournal } from '../src/sidecar/journal/journal.js';
import type { JournalOp } from '../src/sidecar/journal/ops.js';
import { reportResult } from './results.js';

/** This process's event-loop thread's CPU so far, in seconds. */
const mainThreadCpuSeconds = (): number => cpuSeconds(process.pid, true);

const reserve = (id: number): JournalOp => ({
  op: 'reserve',
  id,
  callId: `bench-${id}@journal`,
  entityType: 'customer',
  entityId: 1,
  amountMicro: 1000,
  maxDuration: 7200,
  createdAt: Date.now(),
  expiresAt: Date.now() + 7_500_000,
  answer: '{"allowed":true,"headroom":"123.4567","reject_code":null,"reject_reason":null,"max_duration_seconds":7200}',
  slice: null,
});

async function main(): Promise<void> {
  const { values } = benchArgs({
    options: { writes: { type: 'string', default: '10000' }, durability: { type: 'string', default: 'normal' } },
  });
  const writes = Number(values.writes);
  const durability = values.durability === 'full' ? 'full' : 'normal';
  const dir = mkdtempSync(join(tmpdir(), 'journal-bench-'));
  const journal = new MoneyJournal(join(dir, 'money.db'), durability, pino({ level: 'silent' }));
  try {
    for (let id = 1; id <= 2000; id++) await journal.write(reserve(id)); // JIT warm-up
    const cpuBefore = mainThreadCpuSeconds();
    const started = performance.now();
    for (let id = 2001; id <= 2000 + writes; id++) await journal.write(reserve(id));
    const wallMicros = ((performance.now() - started) * 1000) / writes;
    const loopMicros = ((mainThreadCpuSeconds() - cpuBefore) * 1e6) / writes;
    reportResult(`journal-append-${durability}`, `node dist/bench/journal-append.js ${process.argv.slice(2).join(' ')}`.trim(), {
      durability,
      writes,
      wall_us_per_write: Math.round(wallMicros),
      event_loop_cpu_us_per_write: Math.round(loopMicros),
    });
  } finally {
    await journal.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

void main();
