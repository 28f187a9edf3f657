/**
 * What ingesting a CDR costs a node, in-process: the duplicate check, rating
 * (sell and cost decks), closing the reservation, the settlement and the
 * journal append, ten CDRs per event-loop turn, each awaited until durable as
 * the endpoint answers. Every call is routed first, in-process, so its CDR
 * names the carrier its route chose. A final pass resends a thousand CDRs:
 * the duplicate answers.
 *
 *   node dist/bench/cdr-ingest.js [--cdrs 100000] [--size wholesale]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { ingestCdr } from '../src/sidecar/cdr/ingest.js';
import type { CallRecord } from '../src/sidecar/cdr/rating.js';
import { MoneyJournal } from '../src/sidecar/journal/journal.js';
import { NodeCredit } from '../src/sidecar/credit/node-credit.js';
import { routeCall } from '../src/sidecar/routing/route.js';
import { BENCH_CREDIT, loadWorld } from './bench-world.js';
import { reportResult } from './results.js';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { cdrs: { type: 'string', default: '100000' }, size: { type: 'string', default: 'wholesale' } },
  });
  const count = Number(values.cdrs);
  const { engine, traffic } = loadWorld(values.size);
  const started = Date.now() - 600_000; // calls that ended minutes ago, rated by the rates in force then
  const records: CallRecord[] = [];
  for (let i = 0; records.length < count; i++) {
    const [, , trunkId] = traffic.callers[i % traffic.callers.length];
    const dnis = traffic.numbers[i % traffic.numbers.length];
    const { decision } = routeCall(
      engine,
      {
        customer_trunk_id: trunkId,
        dnis,
        ani: null,
        attempt: 1,
        previous_carrier_trunk_id: null,
        previous_gateway_id: null,
        previous_failure_code: null,
        tried_carrier_trunk_ids: [],
        tried_gateway_ids: [],
      },
      started,
    );
    if (!decision.allowed) continue;
    const duration = (i * 37) % 300;
    records.push({
      sip_call_id: `cdr-${i}@bench`,
      customer_trunk_id: trunkId,
      carrier_trunk_id: decision.carrier_trunk_id,
      carrier_gateway_id: decision.carrier_gateway_id,
      ani: '61255500100',
      dnis,
      startMs: started,
      answerMs: duration === 0 ? null : started + 2000,
      endMs: started + 2000 + duration * 1000,
      duration_seconds: duration,
      sip_response_code: duration === 0 ? 487 : 200,
    });
  }

  const dir = mkdtempSync(join(tmpdir(), 'cdr-ingest-'));
  const log = pino({ level: 'silent' });
  const journal = new MoneyJournal(join(dir, 'money.db'), 'normal', log);
  const credit = new NodeCredit(journal, BENCH_CREDIT, log);
  const statuses: Partial<Record<number, number>> = {};
  const ingest = async (from: number, to: number): Promise<number> => {
    const begun = performance.now();
    for (let i = from; i < to; i += 10) {
      const turn: Promise<void>[] = [];
      for (let k = i; k < Math.min(i + 10, to); k++) {
        turn.push(
          ingestCdr(engine, credit, records[k], Date.now()).then(
            (answer) => void (statuses[answer.status] = (statuses[answer.status] ?? 0) + 1),
          ),
        );
      }
      await Promise.all(turn);
    }
    return ((performance.now() - begun) * 1000) / (to - from);
  };
  try {
    const warmUp = Math.min(10_000, Math.floor(count / 5));
    await ingest(0, warmUp); // JIT
    const cpuBefore = process.cpuUsage();
    const wallMicros = await ingest(warmUp, count);
    const cpu = process.cpuUsage(cpuBefore);
    const duplicateMicros = await ingest(0, Math.min(1000, count)); // resends: each answered from the journal
    reportResult('cdr-ingest', `node dist/bench/cdr-ingest.js ${process.argv.slice(2).join(' ')}`.trim(), {
      cdrs: count,
      ingest_wall_us: Math.round(wallMicros * 10) / 10,
      // The whole process: the event loop and the applier thread writing money.db.
      ingest_cpu_us: Math.round(((cpu.user + cpu.system) / (count - warmUp)) * 10) / 10,
      duplicate_wall_us: Math.round(duplicateMicros * 10) / 10,
      statuses,
    });
  } finally {
    await journal.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`cdr-ingest bench failed: ${String(error)}\n`);
  process.exit(1);
});
