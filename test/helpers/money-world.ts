import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SnapshotDescription } from '../../src/core/snapshot/schema.js';
import { openConfigStore } from '../../sync/stores.js';
import { parseStoreLocation } from '../../sync/store/store-location.js';
import { issueNodeSecret } from '../../sync/store/node-credentials.js';
import { seedStore } from '../../sync/admin/seed.js';
import { routingSnapshotBytes, routingTables } from '../fixtures/routing.js';
import { engineStore, type Engine } from './engines.js';
import { SidecarProcess } from './sidecar.js';

/**
 * The money path with real processes: a control plane whose store holds the
 * fixture world and N registered nodes, and N sidecars (node-1..node-N) that
 * serve the same world and settle with the control plane. On a PostgreSQL
 * store, several control planes may share it, every node given all of them.
 */
export interface MoneyWorld {
  /** The first control plane (the only one unless `centres` asked for more). */
  control: SidecarProcess;
  /** Every control plane, in the order the nodes' --control-url lists them. */
  centres: SidecarProcess[];
  sidecars: SidecarProcess[];
  snapshotFile: string;
  /** The centres' --store: the first centre's SQLite file, or the PostgreSQL URL (store-rows.ts reads either). */
  store: string;
  /** Each node's secret with the centre (node-1 first): what its sidecar sends as a Bearer on money rounds. */
  secrets: string[];
  /** Where node-(index+1)'s sidecar reads its secret from (--centre-secret-file). */
  secretFile(index: number): string;
  sidecarArgs(index: number): string[];
  /** Kills every process, and drops the PostgreSQL database the world made for `engine`. */
  stop(): Promise<void>;
}

export async function startMoneyWorld(options: {
  sidecars: number;
  change?: (description: SnapshotDescription) => void;
  sidecarArgs?: string[];
  /** Arguments for one node only (its own OpenSIPS MI, say). */
  nodeArgs?: (index: number) => string[];
  controlArgs?: string[];
  /** The nodes' --control-url, given the control planes' URLs, comma-separated (a list with a dead one, say); that list by default. */
  controlUrl?: (control: string) => string;
  /** The centres' --store: a postgres:// URL the caller made (a scratch schema); else chosen by `engine`. */
  store?: string;
  /** Without `store`: `postgres` makes the world a database of its own (dropped by `stop`); a SQLite file of the first centre's by default. */
  engine?: Engine;
  /** How many control planes serve the store (more than one needs a PostgreSQL `store`); 1 by default. */
  centres?: number;
}): Promise<MoneyWorld> {
  const root = mkdtempSync(join(tmpdir(), 'money-world-'));
  const centreDirs = Array.from({ length: options.centres ?? 1 }, (_, index) =>
    join(root, index === 0 ? 'control' : `control-${index + 1}`),
  );
  for (const dir of centreDirs) mkdirSync(dir);
  const scratch = options.store === undefined ? await engineStore(options.engine ?? 'sqlite', 'world') : null;
  const storeArg = options.store ?? scratch?.url ?? join(centreDirs[0], 'config.db');
  try {
    return await startOn(storeArg, root, centreDirs, options, async () => await scratch?.drop());
  } catch (error) {
    await scratch?.drop();
    throw error;
  }
}

async function startOn(
  storeArg: string,
  root: string,
  centreDirs: string[],
  options: Parameters<typeof startMoneyWorld>[0],
  dropStore: () => Promise<void>,
): Promise<MoneyWorld> {
  const handle = await openConfigStore(parseStoreLocation(storeArg));
  const store = handle.config;
  await seedStore(store, routingTables(options.change));
  const now = new Date().toISOString();
  const secrets: string[] = [];
  for (let i = 1; i <= options.sidecars; i++) {
    const node = await store.insert('opensips_nodes', {
      hostname: `node-${i}`,
      mi_socket_address: 'http://127.0.0.1:9/mi',
      region: 'test',
      status: 'active',
      created_at: now,
      updated_at: now,
    });
    // Each node its own credential, as the admin API issues one when a node is created.
    const { secret } = await issueNodeSecret(store, node.id as number, false);
    secrets.push(secret);
    writeFileSync(join(root, `node-${i}.secret`), `${secret}\n`, { mode: 0o600 });
  }
  await handle.close();
  const snapshotFile = join(root, 'routing.msgpack');
  writeFileSync(snapshotFile, routingSnapshotBytes(1, options.change));
  // One after another: the first to start takes the sync lead (on a shared store), as the tests expect.
  const centres: SidecarProcess[] = [];
  const sidecars: SidecarProcess[] = [];
  // A world that fails part-way stops what it started, so its database can be dropped.
  const stop = async (): Promise<void> => {
    await Promise.all([...centres, ...sidecars].map((service) => service.kill()));
    await dropStore();
  };
  try {
    for (const dataDir of centreDirs)
      centres.push(await SidecarProcess.startControlPlane({ dataDir, args: ['--store', storeArg, ...(options.controlArgs ?? [])] }));
  } catch (error) {
    await Promise.all(centres.map((centre) => centre.kill()));
    throw error;
  }
  const [control] = centres;
  const controlUrls = centres.map((centre) => centre.url).join(',');
  const sidecarArgs = (index: number): string[] => [
    '--node-name',
    `node-${index + 1}`,
    '--control-url',
    options.controlUrl?.(controlUrls) ?? controlUrls,
    '--snapshot',
    snapshotFile,
    '--centre-secret-file',
    join(root, `node-${index + 1}.secret`),
    ...(options.sidecarArgs ?? []),
    ...(options.nodeArgs?.(index) ?? []),
  ];
  const started = await Promise.allSettled(
    Array.from({ length: options.sidecars }, (_, index) =>
      SidecarProcess.start({ dataDir: join(root, `sidecar-${index + 1}`), args: sidecarArgs(index) }),
    ),
  );
  for (const result of started) if (result.status === 'fulfilled') sidecars.push(result.value);
  const failed = started.find((result) => result.status === 'rejected');
  if (failed !== undefined) {
    await Promise.all([...centres, ...sidecars].map((service) => service.kill()));
    throw failed.reason;
  }
  return {
    control,
    centres,
    sidecars,
    snapshotFile,
    store: storeArg,
    secrets,
    secretFile: (index: number) => join(root, `node-${index + 1}.secret`),
    sidecarArgs,
    stop,
  };
}

/** Polls until `check` passes (the outbox settles asynchronously); throws its last failure after `ms`. */
export async function eventually(check: () => Promise<void>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      await check();
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}
