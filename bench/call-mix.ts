/**
 * What a call costs a node's event loop, in-process: the per-call mix `make bench` sends through HTTP (each call
 * a call/decide — auth, admit, route —, one call in ten a call/reroute after a 503, and the CDR of the call three
 * hundred calls earlier), handed to the endpoints' own handlers as the bodies OpenSIPS sends. uWS is left out:
 * what is counted is the sidecar's own work per call, which callgrind counts the same from run to run on a
 * shared machine where time does not. Ten calls per event-loop turn, each awaited until durable as the
 * endpoints answer. `--warm-up N` calls go first, outside the measured section (the JIT); under callgrind,
 * `--dump-before='node::CPUUsage*'` cuts the run at the measured section's two process.cpuUsage() calls.
 *
 * `--no-cdrs` ends each call with a call/release instead of its CDR: the decisions (call/decide and call/reroute)
 * with the calls still ending (so ports and credit come back as in the mix), without the CDR ingest, which has
 * its own bench (cdr-ingest.ts).
 *
 *   node dist/bench/call-mix.js [--calls 20000] [--size demo] [--warm-up N] [--no-cdrs]
 */
import { benchArgs } from './bench-args.js';
import type { IncomingRequest, OutgoingResponse, Route } from '../src/core/http/server.js';
import { callRoutes } from '../src/sidecar/http/call-routes.js';
import { moneyRoutes } from '../src/sidecar/http/money-routes.js';
import { jsonPost } from '../src/devkit/requests.js';
import { benchHandlers, firstRoute, loadWorld, openBenchCredit, rerouteAfter503 } from './bench-world.js';
import { reportResult } from './results.js';

/** A call's CDR comes this many calls after its INVITE, as in make bench's mix (the call has ended by then). */
const CDR_LAG = 300;

async function main(): Promise<void> {
  const { values } = benchArgs({
    options: {
      calls: { type: 'string', default: '20000' },
      size: { type: 'string', default: 'demo' },
      'warm-up': { type: 'string' },
      'no-cdrs': { type: 'boolean', default: false },
    },
  });
  const calls = Number(values.calls);
  const warmUp = values['warm-up'] === undefined ? Math.min(10_000, Math.floor(calls / 5)) : Number(values['warm-up']);
  if (!(warmUp > CDR_LAG && warmUp < calls)) throw new Error(`--warm-up must be more than ${CDR_LAG} and less than --calls`);
  const { engine, traffic } = loadWorld(values.size);

  const { credit, log, close } = openBenchCredit('call-mix', traffic);
  const handlerOf = benchHandlers(engine, credit, log, [callRoutes, moneyRoutes]);
  const decide = handlerOf('/api/opensips/call/decide');
  const reroute = handlerOf('/api/opensips/call/reroute');
  const ingest = handlerOf('/api/cdrs/ingest');
  const release = handlerOf('/api/opensips/call/release');

  // The bodies, encoded before the run as uWS hands them over already read. Each call's route is asked once
  // beforehand, so its CDR and its reroute name the carrier and gateway its route chose.
  const started = Date.now() - 600_000;
  // What goes out at call i: its own requests, after the CDR of the call CDR_LAG earlier.
  const perCall: IncomingRequest[][] = Array.from({ length: calls }, () => []);
  for (let i = 0; i < calls; i++) {
    const [ip, techPrefix, trunkId] = traffic.callers[i % traffic.callers.length];
    const dnis = traffic.numbers[i % traffic.numbers.length];
    const requests = perCall[i];
    requests.push(
      jsonPost('/api/opensips/call/decide', {
        source_ip: ip,
        call_id: `mix-${i}@bench`,
        ani: '61255500100',
        dnis: techPrefix + dnis,
        ruri: `sip:${techPrefix}${dnis}@sip.example.net`,
        from: '<sip:61255500100@example.net>',
        to: `<sip:${dnis}@example.net>`,
      }),
    );
    const decision = firstRoute(engine, trunkId, dnis, started);
    if (decision.allowed && i % 10 === 0)
      requests.push(
        jsonPost('/api/opensips/call/reroute', rerouteAfter503(trunkId, dnis, decision.carrier_trunk_id, decision.carrier_gateway_id)),
      );
    const duration = (i * 37) % 300;
    if (decision.allowed && i + CDR_LAG < calls && values['no-cdrs'])
      perCall[i + CDR_LAG].push(jsonPost('/api/opensips/call/release', { call_id: `mix-${i}@bench` }));
    else if (decision.allowed && i + CDR_LAG < calls)
      perCall[i + CDR_LAG].push(
        jsonPost('/api/cdrs/ingest', {
          sip_call_id: `mix-${i}@bench`,
          customer_trunk_id: trunkId,
          carrier_trunk_id: decision.carrier_trunk_id,
          carrier_gateway_id: decision.carrier_gateway_id,
          ani: '61255500100',
          dnis,
          start_time: new Date(started).toISOString(),
          answer_time: duration === 0 ? null : new Date(started + 2000).toISOString(),
          end_time: new Date(started + 2000 + duration * 1000).toISOString(),
          duration_seconds: duration,
          sip_response_code: duration === 0 ? 487 : 200,
        }),
      );
  }
  const handlers: Record<string, Route['handler']> = {
    '/api/opensips/call/decide': decide,
    '/api/opensips/call/reroute': reroute,
    '/api/cdrs/ingest': ingest,
    '/api/opensips/call/release': release,
  };
  const statuses: Record<string, number> = {};
  let requestCount = 0;
  const send = async (one: IncomingRequest): Promise<void> => {
    const response: OutgoingResponse = await handlers[one.path](one);
    // A decide answered 200 may still refuse the call: told apart, so a run that measures refusals shows it.
    const refused = typeof response.body === 'string' && response.body.startsWith('{"allowed":false');
    const key = `${one.path} ${response.status}${refused ? ' refused' : ''}`;
    statuses[key] = (statuses[key] ?? 0) + 1;
    requestCount++;
  };
  // A call's requests go in order (the CDR of an earlier call rides with it), ten calls per turn.
  const run = async (from: number, to: number): Promise<number> => {
    const first = requestCount;
    for (let i = from; i < to; i += 10) {
      const turn: Promise<void>[] = [];
      for (let k = i; k < Math.min(i + 10, to); k++)
        turn.push(
          (async () => {
            for (const one of perCall[k]) await send(one);
          })(),
        );
      await Promise.all(turn);
    }
    return requestCount - first;
  };
  try {
    await run(0, warmUp); // JIT
    const cpuBefore = process.cpuUsage();
    const measuredRequests = await run(warmUp, calls);
    const cpu = process.cpuUsage(cpuBefore);
    const measuredCalls = calls - warmUp;
    reportResult('call-mix', `node dist/bench/call-mix.js ${process.argv.slice(2).join(' ')}`.trim(), {
      calls,
      measured_calls: measuredCalls,
      requests_per_call: Math.round((measuredRequests / measuredCalls) * 100) / 100,
      // The whole process: the event loop and the applier thread writing money.db.
      cpu_us_per_call: Math.round(((cpu.user + cpu.system) / measuredCalls) * 10) / 10,
      statuses,
    });
  } finally {
    await close();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`call-mix bench failed: ${String(error)}\n`);
  process.exit(1);
});
