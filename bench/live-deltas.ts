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
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { issueNodeSecret } from '../sync/store/node-credentials.js';
import { openCentreStores } from '../sync/stores.js';
import { seedStore } from '../sync/admin/seed.js';
import { generateDataset, SIZES } from '../src/devkit/dataset.js';
import { CONTROL_MAIN, SIDECAR_MAIN } from '../src/devkit/paths.js';
import { startService, type ServiceProcess } from '../src/devkit/service-process.js';

type Answer = Record<string, unknown>;

async function send(url: string, method: string, body?: unknown): Promise<Answer> {
  const response = await fetch(url, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${url}: ${response.status} ${text}`);
  return text === '' ? {} : (JSON.parse(text) as Answer);
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { size: { type: 'string', default: 'small' }, changes: { type: 'string', default: '50' } } });
  const changes = Number(values.changes);
  const dir = mkdtempSync(join(tmpdir(), 'live-deltas-bench-'));
  const stores = openCentreStores(join(dir, 'control', 'config.db'));
  const dataset = generateDataset(SIZES[values.size]);
  await seedStore(stores.config, dataset.tables);
  const now = new Date().toISOString();
  const nodes: { name: string; id: number; secretFile: string }[] = [];
  for (let n = 1; n <= 3; n++) {
    const node = await stores.config.insert('opensips_nodes', {
      hostname: `node-${n}`,
      mi_socket_address: 'http://127.0.0.1:9/mi',
      status: 'active',
      created_at: now,
      updated_at: now,
    });
    const { secret } = await issueNodeSecret(stores.config, node.id as number, false);
    const secretFile = join(dir, `node-${n}.secret`);
    writeFileSync(secretFile, `${secret}\n`, { mode: 0o600 });
    nodes.push({ name: `node-${n}`, id: node.id as number, secretFile });
  }
  stores.close();
  const control = await startService(CONTROL_MAIN, ['--port', '0', '--data-dir', join(dir, 'control')], 'control plane listening');
  const base = `http://127.0.0.1:${control.port}`;
  const sidecars: ServiceProcess[] = [];
  for (const node of nodes) {
    const sidecar = await startService(
      SIDECAR_MAIN,
      [
        '--port',
        '0',
        '--data-dir',
        join(dir, node.name),
        '--node-name',
        node.name,
        '--control-url',
        base,
        '--centre-secret-file',
        node.secretFile,
      ],
      'sidecar listening',
    );
    sidecars.push(sidecar);
    await send(`${base}/api/opensips-nodes/${node.id}`, 'PUT', { sidecar_address: `http://127.0.0.1:${sidecar.port}` });
  }
  // The base every node starts from: one full snapshot, which records the delta sequence it includes.
  const sync = (await send(`${base}/api/opensips/routing/sync`, 'POST')) as unknown as { sidecar_results: { success: boolean }[] };
  if (!sync.sidecar_results.every((result) => result.success)) throw new Error(`the base sync failed: ${JSON.stringify(sync)}`);

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
        p50_ms: Math.round(percentile(ms, 50) * 10) / 10,
        p99_ms: Math.round(percentile(ms, 99) * 10) / 10,
      },
    ]),
  );
  process.stdout.write(`${JSON.stringify({ size: values.size, sidecars: 3, summary }, null, 2)}\n`);
  for (const service of [...sidecars, control]) service.child.kill('SIGTERM');
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
