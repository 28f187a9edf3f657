/**
 * Live changes (issue 18): admin 2xx -> the decision changed on all 3 sidecars, per kind of change, p50/p99.
 * A control plane and 3 sidecars following its delta log (the embedded long poll); after one full sync (the
 * base), each change is one admin call, and the clock runs from its 2xx until every sidecar answers call/auth
 * the new way (each polled in a loop; the figure is the slowest of the three).
 *
 *   node dist/bench/live-deltas.js [--size small|demo|wholesale] [--changes 50]
 *
 * Needs an idle machine for figures worth quoting; a busy one gives an upper bound.
 */
import { parseArgs } from 'node:util';
import type { ServiceProcess } from '../src/devkit/service-process.js';
import { medianAndTail, send, startLiveWorld, type Answer } from './live-world.js';

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { size: { type: 'string', default: 'small' }, changes: { type: 'string', default: '50' } } });
  const changes = Number(values.changes);
  const { dataset, base, sidecars, stop } = await startLiveWorld(values.size);

  const [sourceIp, techPrefix, trunkId] = dataset.traffic.callers[0];
  const auth = (sidecar: ServiceProcess, dnis: string): Promise<Answer> =>
    send(`http://127.0.0.1:${sidecar.port}/api/opensips/call/auth`, 'POST', {
      source_ip: sourceIp,
      call_id: 'bench@live',
      ani: '61255501000',
      dnis: `${techPrefix}${dnis}`,
    });
  /** Milliseconds from `change`'s 2xx until `changed` holds on every sidecar. */
  const measure = async (change: () => Promise<unknown>, changed: (answer: Answer) => boolean, dnis: string): Promise<number> => {
    await change();
    const started = performance.now();
    await Promise.all(
      sidecars.map(async (sidecar) => {
        while (!changed(await auth(sidecar, dnis)));
      }),
    );
    return performance.now() - started;
  };

  const figures: Record<string, number[]> = { block_rule_created: [], customer_trunk_updated: [] };
  const number = dataset.traffic.numbers[0];
  for (let i = 0; i < changes; i++) {
    const dnis = `6129${String(i).padStart(7, '0')}`;
    figures.block_rule_created.push(
      await measure(
        () => send(`${base}/api/block-rules`, 'POST', { scope: 'global', block_type: 'dnis', pattern: dnis, match_type: 'exact' }),
        (answer) => answer.reason_code === 'dnis_blocked',
        dnis,
      ),
    );
    const cps = 100 + i;
    figures.customer_trunk_updated.push(
      await measure(
        () => send(`${base}/api/customer-trunks/${trunkId}`, 'PUT', { cps_limit: cps }),
        (answer) => answer.cps_limit === cps,
        number,
      ),
    );
  }
  const summary = Object.fromEntries(
    Object.entries(figures).map(([kind, ms]) => [
      kind,
      {
        changes: ms.length,
        max_at: ms.indexOf(Math.max(...ms)),
        ...medianAndTail(ms),
      },
    ]),
  );
  process.stdout.write(`${JSON.stringify({ size: values.size, sidecars: 3, summary }, null, 2)}\n`);
  stop();
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
