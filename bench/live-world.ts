/**
 * The world the live-change benches share: a control plane seeded with a generated dataset and three
 * registered nodes, three sidecars following its delta log (the embedded long poll), and one full sync
 * as the base every node starts from (it records the delta sequence it includes).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { issueNodeSecret } from '../sync/store/node-credentials.js';
import { openCentreStores } from '../sync/stores.js';
import { seedStore } from '../sync/admin/seed.js';
import { generateDataset, SIZES, type Dataset } from '../src/devkit/dataset.js';
import { CONTROL_MAIN, SIDECAR_MAIN } from '../src/devkit/paths.js';
import { startService, type ServiceProcess } from '../src/devkit/service-process.js';

export type Answer = Record<string, unknown>;

export async function send(url: string, method: string, body?: unknown): Promise<Answer> {
  const response = await fetch(url, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${url}: ${response.status} ${text}`);
  return text === '' ? {} : (JSON.parse(text) as Answer);
}

export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

/** Median and 99th percentile of a list of milliseconds, to a tenth, as the live benches report them. */
export function medianAndTail(ms: number[]): { p50_ms: number; p99_ms: number } {
  return { p50_ms: Math.round(percentile(ms, 50) * 10) / 10, p99_ms: Math.round(percentile(ms, 99) * 10) / 10 };
}

export interface LiveWorld {
  dataset: Dataset;
  /** Where the control plane's and each node's data directories are (node-1, node-2, …). */
  dir: string;
  /** The control plane's base URL. */
  base: string;
  control: ServiceProcess;
  sidecars: ServiceProcess[];
  /**
   * Starts node `index`'s sidecar again (after a kill) on its data directory, as it was started. `newPort`: on a
   * port of its own, made the node's sidecar address at the centre: the old port stays taken for a minute when the
   * killed sidecar had connections open (their TIME_WAIT is the server's side, and uWebSockets.js cannot bind past it).
   */
  restart: (index: number, options?: { newPort?: boolean }) => Promise<ServiceProcess>;
  /** The centre's last committed delta, and a sidecar's applied one. */
  lastSeq: () => Promise<number>;
  appliedSeq: (sidecar: ServiceProcess) => Promise<number>;
  stop: () => void;
}

/**
 * `sidecarArgs`: more options for every sidecar (the money bench keeps idle leases: --lease-idle-seconds);
 * `controlArgs`: for the control plane (the partner bench turns its API on).
 */
export async function startLiveWorld(
  size: string,
  sidecarCount = 3,
  sidecarArgs: string[] = [],
  controlArgs: string[] = [],
): Promise<LiveWorld> {
  const dir = mkdtempSync(join(tmpdir(), 'live-bench-'));
  const stores = openCentreStores(join(dir, 'control', 'config.db'));
  const dataset = generateDataset(SIZES[size]);
  await seedStore(stores.config, dataset.tables);
  const now = new Date().toISOString();
  const nodes: { name: string; id: number; secretFile: string }[] = [];
  for (let n = 1; n <= sidecarCount; n++) {
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
  await stores.close();
  const control = await startService(
    CONTROL_MAIN,
    ['--port', '0', '--data-dir', join(dir, 'control'), ...controlArgs],
    'control plane listening',
  );
  const base = `http://127.0.0.1:${control.port}`;
  const startSidecar = async (index: number, port: number): Promise<ServiceProcess> => {
    const node = nodes[index];
    const args = ['--port', String(port), '--data-dir', join(dir, node.name), '--node-name', node.name];
    return startService(
      SIDECAR_MAIN,
      [...args, '--control-url', base, '--centre-secret-file', node.secretFile, ...sidecarArgs],
      'sidecar listening',
      // A wholesale compile at start-up (no compiled image) on a loaded machine can take past a minute.
      { timeoutMs: 300_000 },
    );
  };
  const sidecars: ServiceProcess[] = [];
  try {
    for (const [index, node] of nodes.entries()) {
      const sidecar = await startSidecar(index, 0);
      sidecars.push(sidecar);
      await send(`${base}/api/opensips-nodes/${node.id}`, 'PUT', { sidecar_address: `http://127.0.0.1:${sidecar.port}` });
    }
    const sync = (await send(`${base}/api/opensips/routing/sync`, 'POST')) as unknown as {
      snapshot_version: number;
      sidecar_results: { success: boolean }[];
    };
    // On a loaded machine a wholesale compile can outlast the centre's push timeout: the sidecar still serves
    // the snapshot once compiled, and is waited for (a few minutes at most) rather than the run given up.
    const deadline = Date.now() + 300_000;
    for (const sidecar of sidecars) {
      const health = `http://127.0.0.1:${sidecar.port}/api/health`;
      while ((await send(health, 'GET')).snapshot_version !== sync.snapshot_version) {
        if (Date.now() > deadline) throw new Error(`the base sync failed: ${JSON.stringify(sync)}`);
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    }
  } catch (error) {
    // A world that failed to start is stopped: with the wholesale world each process holds a gigabyte or more,
    // and a failed run left four of them behind.
    for (const service of [...sidecars, control]) service.child.kill('SIGTERM');
    throw error;
  }
  return {
    dataset,
    dir,
    base,
    control,
    sidecars,
    // The same port unless asked: the centre knows the node's sidecar by its address.
    restart: async (index, options = {}) => {
      const sidecar = await startSidecar(index, options.newPort === true ? 0 : sidecars[index].port);
      if (options.newPort === true)
        await send(`${base}/api/opensips-nodes/${nodes[index].id}`, 'PUT', { sidecar_address: `http://127.0.0.1:${sidecar.port}` });
      return (sidecars[index] = sidecar);
    },
    lastSeq: async () => (await send(`${base}/api/opensips/deltas`, 'GET')).last_seq as number,
    appliedSeq: async (sidecar) => (await send(`http://127.0.0.1:${sidecar.port}/api/health`, 'GET')).delta_seq as number,
    stop: () => {
      for (const service of [...sidecars, control]) service.child.kill('SIGTERM');
    },
  };
}
