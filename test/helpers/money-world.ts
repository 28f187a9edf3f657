import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SnapshotDescription } from '../../src/core/snapshot/schema.js';
import { openCentreStores } from '../../sync/stores.js';
import { issueNodeSecret } from '../../sync/store/node-credentials.js';
import { seedStore } from '../../sync/admin/seed.js';
import { routingSnapshotBytes, routingTables } from '../fixtures/routing.js';
import { SidecarProcess } from './sidecar.js';

/**
 * The money path with real processes: a control plane whose store holds the
 * fixture world and N registered nodes, and N sidecars (node-1..node-N) that
 * serve the same world and settle with the control plane.
 */
export interface MoneyWorld {
  control: SidecarProcess;
  sidecars: SidecarProcess[];
  snapshotFile: string;
  /** Each node's secret with the centre (node-1 first): what its sidecar sends as a Bearer on money rounds. */
  secrets: string[];
  /** Where node-(index+1)'s sidecar reads its secret from (--centre-secret-file). */
  secretFile(index: number): string;
  sidecarArgs(index: number): string[];
  stop(): Promise<void>;
}

export async function startMoneyWorld(options: {
  sidecars: number;
  change?: (description: SnapshotDescription) => void;
  sidecarArgs?: string[];
  /** Arguments for one node only (its own OpenSIPS MI, say). */
  nodeArgs?: (index: number) => string[];
  controlArgs?: string[];
  /** The nodes' --control-url, given the control plane's URL (a list with other centres, say); the URL itself by default. */
  controlUrl?: (control: string) => string;
}): Promise<MoneyWorld> {
  const root = mkdtempSync(join(tmpdir(), 'money-world-'));
  const controlDir = join(root, 'control');
  mkdirSync(controlDir);
  const stores = openCentreStores(join(controlDir, 'config.db'));
  const store = stores.config;
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
  stores.close();
  const snapshotFile = join(root, 'routing.msgpack');
  writeFileSync(snapshotFile, routingSnapshotBytes(1, options.change));
  const control = await SidecarProcess.startControlPlane({ dataDir: controlDir, args: options.controlArgs });
  const sidecarArgs = (index: number): string[] => [
    '--node-name',
    `node-${index + 1}`,
    '--control-url',
    options.controlUrl?.(control.url) ?? control.url,
    '--snapshot',
    snapshotFile,
    '--centre-secret-file',
    join(root, `node-${index + 1}.secret`),
    ...(options.sidecarArgs ?? []),
    ...(options.nodeArgs?.(index) ?? []),
  ];
  const sidecars = await Promise.all(
    Array.from({ length: options.sidecars }, (_, index) =>
      SidecarProcess.start({ dataDir: join(root, `sidecar-${index + 1}`), args: sidecarArgs(index) }),
    ),
  );
  return {
    control,
    sidecars,
    snapshotFile,
    secrets,
    secretFile: (index: number) => join(root, `node-${index + 1}.secret`),
    sidecarArgs,
    stop: async () => {
      await Promise.all([control.kill(), ...sidecars.map((sidecar) => sidecar.kill())]);
    },
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
