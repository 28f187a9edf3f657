import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { seedStore } from '../../sync/admin/seed.js';
import type { ConfigStore } from '../../sync/store/config-store.js';
import { parseStoreLocation } from '../../sync/store/store-location.js';
import { openConfigStore, type ConfigStoreHandle } from '../../sync/stores.js';
import { routingTables } from '../fixtures/routing.js';
import { scratchSchema } from './postgres.js';

/** A configuration store holding the fixture world (test/fixtures/routing.ts), on either engine. */
export interface SeededStore {
  /** The --store value it was opened with: a second handle on the same data opens it again. */
  location: string;
  handle: ConfigStoreHandle;
  store: ConfigStore;
  /** Closes the handle and drops the PostgreSQL scratch schema (a SQLite file stays in the temporary directory). */
  close(): Promise<void>;
}

/** `label` names the temporary directory or the scratch schema, so a leftover says which test made it. */
export async function openSeededStore(engine: 'sqlite' | 'postgres', label: string): Promise<SeededStore> {
  const scratch = engine === 'postgres' ? await scratchSchema(label) : null;
  const location = scratch?.url ?? `sqlite:${join(mkdtempSync(join(tmpdir(), `${label}-`)), 'config.db')}`;
  const handle = await openConfigStore(parseStoreLocation(location));
  await seedStore(handle.config, routingTables());
  return {
    location,
    handle,
    store: handle.config,
    close: async () => {
      await handle.close();
      await scratch?.drop();
    },
  };
}
