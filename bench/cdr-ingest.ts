/**
 * What ingesting a CDR costs a node, in-process: the duplicate check, rating
 * (sell and cost decks), closing the reservation, the settlement and the
 * journal append, ten CDRs per event-loop turn, each awaited until durable as
 * the endpoint answers. Every call is routed first, in-process, so its CDR
 * names the carrier its route chose. A final pass resends a thousand CDRs:
 * the duplicate answers.
 *
 * `--through handler` sends each CDR as the request body OpenSIPS sends (bytes, the times as ISO text) to the
 * endpoint's own handler, so the body parse, the field checks, the metrics and the answer are counted too;
 * `--through ingest` (the default) calls ingestCdr with a parsed record. `--warm-up N` CDRs go first,
 * outside the measured section (the JIT; default a fifth of the CDRs, at most 10,000). Under callgrind,
 * `--dump-before='node::CPUUsage*'` cuts the run at the measured section's two process.cpuUsage() calls.
 * `ingest_cpu_us` is the whole process's CPU per CDR (the applier thread and V8's helpers included),
 * `ingest_loop_cpu_us` the event loop's thread alone.
 *
 * Every `--settle-every N` CDRs (default 1000: a round every 200 ms at 5,000 CDRs/s) the outbox goes to a
 * centre that settles all of it, as the node's link does it: the round's body written as the link writes
 * it (centre/round-body.ts: the bytes the HTTP client sends), and the reply applied. 0: never (the outbox grows to every CDR).
 *
 *   node dist/bench/cdr-ingest.js [--cdrs 100000] [--size wholesale] [--through ingest|handler] [--warm-up N] [--settle-every N]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { benchArgs } from './bench-args.js';
import pino from 'pino';
import { cpuSeconds } from '../src/devkit/process-cpu.js';
import { ingestCdr } from '../src/sidecar/cdr/ingest.js';
import type { CallRecord } from '../src/sidecar/cdr/rating.js';
import { MoneyJournal } from '../src/sidecar/journal/journal.js';
import { NodeCredit } from '../src/sidecar/credit/node-credit.js';
import { RoundBody } from '../src/sidecar/centre/round-body.js';
import type { IncomingRequest, OutgoingResponse } from '../src/core/http/server.js';
import type { NodeSyncReply } from '../src/core/protocol/node-sync.js';
import { sidecarContext } from '../src/sidecar/http/context.js';
import { moneyRoutes } from '../src/sidecar/http/money-routes.js';
import { SidecarMetrics } from '../src/sidecar/metrics/metrics.js';
import type { SnapshotService } from '../src/sidecar/snapshot/service.js';
import type { DecisionEngine } from '../src/sidecar/engine/engine.js';
import type { Logger } from 'pino';
import { BENCH_CREDIT, firstRoute, loadWorld } from './bench-world.js';
import { reportResult } from './results.js';

async function main(): Promise<void> {
  const { values } = benchArgs({
    options: {
      cdrs: { type: 'string', default: '100000' },
      size: { type: 'string', default: 'wholesale' },
      through: { type: 'string', default: 'ingest' },
      'warm-up': { type: 'string' },
      'settle-every': { type: 'string', default: '1000' },
    },
  });
  const count = Number(values.cdrs);
  if (values.through !== 'ingest' && values.through !== 'handler') throw new Error('--through is ingest or handler');
  const warmUp = values['warm-up'] === undefined ? Math.min(10_000, Math.floor(count / 5)) : Number(values['warm-up']);
  if (!(warmUp >= 0 && warmUp < count)) throw new Error('--warm-up must be at least 0 and less than --cdrs');
  const { engine, traffic } = loadWorld(values.size);
  const started = Date.now() - 600_000; // calls that ended minutes ago, rated by the rates in force then
  const records: CallRecord[] = [];
  for (let i = 0; records.length < count; i++) {
    const [, , trunkId] = traffic.callers[i % traffic.callers.length];
    const dnis = traffic.numbers[i % traffic.numbers.length];
    const decision = firstRoute(engine, trunkId, dnis, started);
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
  const count1 = (status: number): void => void (statuses[status] = (statuses[status] ?? 0) + 1);
  const one =
    values.through === 'handler'
      ? throughHandler(engine, credit, log, records, count1)
      : (k: number) => ingestCdr(engine, credit, records[k], Date.now()).then((answer) => count1(answer.status));
  const settleEvery = Number(values['settle-every']);
  let sinceRound = 0;
  const ingest = async (from: number, to: number): Promise<number> => {
    const begun = performance.now();
    for (let i = from; i < to; i += 10) {
      const turn: Promise<void>[] = [];
      for (let k = i; k < Math.min(i + 10, to); k++) turn.push(one(k));
      await Promise.all(turn);
      sinceRound += turn.length;
      if (settleEvery > 0 && sinceRound >= settleEvery) {
        sinceRound = 0;
        settleRound(credit, settleEvery);
      }
    }
    return ((performance.now() - begun) * 1000) / (to - from);
  };
  try {
    await ingest(0, warmUp); // JIT
    const loopBefore = cpuSeconds(process.pid, true);
    const cpuBefore = process.cpuUsage();
    const wallMicros = await ingest(warmUp, count);
    const cpu = process.cpuUsage(cpuBefore);
    const loopSeconds = cpuSeconds(process.pid, true) - loopBefore;
    const duplicateMicros = await ingest(0, Math.min(1000, count)); // resends: each answered from the journal
    reportResult('cdr-ingest', `node dist/bench/cdr-ingest.js ${process.argv.slice(2).join(' ')}`.trim(), {
      cdrs: count,
      ingest_wall_us: Math.round(wallMicros * 10) / 10,
      // The whole process: the event loop and the applier thread writing money.db.
      ingest_cpu_us: Math.round(((cpu.user + cpu.system) / (count - warmUp)) * 10) / 10,
      // The event loop's thread alone (/proc, in 10 ms ticks): what the endpoint's latency is made of.
      ingest_loop_cpu_us: Math.round(((loopSeconds * 1e6) / (count - warmUp)) * 10) / 10,
      duplicate_wall_us: Math.round(duplicateMicros * 10) / 10,
      statuses,
    });
  } finally {
    await journal.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The round's body as the link writes it (one kept for the run, as the link keeps one). */
const roundBody = new RoundBody();

/** A money round with a centre that settles every CDR in it (centre/link.ts's body, without the network). */
function settleRound(credit: NodeCredit, maxSettlements: number): void {
  const round = credit.takeRound(maxSettlements);
  const head = { node: 'bench', seq: 1, leases: round.asks.map((entry) => entry.ask) };
  if (roundBody.write(head, round.settlements).length === 0) throw new Error('empty round');
  const reply: NodeSyncReply = { settled: round.settlements.map((entry) => entry.sipCallId), unbilled: [], leases: [] };
  credit.applyReply(round, reply, Date.now());
}

/**
 * The endpoint's handler as the server calls it, with each CDR's body as OpenSIPS sends it: JSON bytes, the
 * times as ISO text. The bodies are encoded before the run, as uWS hands them over already read.
 */
function throughHandler(
  engine: DecisionEngine,
  credit: NodeCredit,
  log: Logger,
  records: readonly CallRecord[],
  count: (status: number) => void,
): (k: number) => Promise<void> {
  const context = sidecarContext({
    snapshots: { engine } as SnapshotService,
    credit,
    metrics: new SidecarMetrics(),
    counters: undefined as never, // the money routes count no calls
    digestReplays: undefined as never, // nor check credentials
    log,
    maxBodyBytes: 65_536,
    maxSnapshotBytes: 0,
    startedAt: Date.now(),
  });
  const handler = moneyRoutes(context).find((route) => route.path === '/api/cdrs/ingest')!.handler;
  const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());
  const encoder = new TextEncoder();
  const requests: IncomingRequest[] = records.map((record) => ({
    method: 'POST',
    path: '/api/cdrs/ingest',
    params: {},
    remoteAddress: '',
    query: '',
    contentType: 'application/json',
    body: encoder.encode(
      JSON.stringify({
        sip_call_id: record.sip_call_id,
        customer_trunk_id: record.customer_trunk_id,
        carrier_trunk_id: record.carrier_trunk_id,
        carrier_gateway_id: record.carrier_gateway_id,
        ani: record.ani,
        dnis: record.dnis,
        start_time: iso(record.startMs),
        answer_time: iso(record.answerMs),
        end_time: iso(record.endMs),
        duration_seconds: record.duration_seconds,
        sip_response_code: record.sip_response_code,
      }),
    ),
  }));
  return async (k) => {
    const response: OutgoingResponse = await handler(requests[k]);
    count(response.status);
  };
}

main().catch((error: unknown) => {
  process.stderr.write(`cdr-ingest bench failed: ${String(error)}\n`);
  process.exit(1);
});
