import { describe } from 'node:test';
import { postgresUnreachable, scratchDatabase } from './postgres.js';
import { SidecarProcess } from './sidecar.js';

/**
 * The centre's two store engines, for the process tests that run their cases on each (issue 21: the suite runs
 * on SQLite and, where PostgreSQL answers, on PostgreSQL too). One way for every such file: `forEachEngine`
 * declares the file's suites once per engine, and a world on PostgreSQL gets a database of its own, dropped
 * when the world stops, so test files running at once never share a store.
 */
export type Engine = 'sqlite' | 'postgres';

const unreachable = await postgresUnreachable();

/**
 * `body` once per engine, each in a `describe` named for it; the PostgreSQL one is shown skipped, with the
 * reason, when the server does not answer (never as passed). `only` limits a suite to one engine: a case whose
 * engine copy would test nothing the other does not (it never touches the centre's store) runs once.
 */
export function forEachEngine(title: string, body: (engine: Engine) => void, options: { timeout?: number; only?: Engine } = {}): void {
  for (const engine of ['sqlite', 'postgres'] as const) {
    if (options.only !== undefined && options.only !== engine) continue;
    describe(
      `${title} (centre on ${engine})`,
      { timeout: options.timeout, skip: engine === 'postgres' ? (unreachable ?? false) : false },
      () => body(engine),
    );
  }
}

/** The centre's --store for a world on `engine`: none for SQLite (the data dir's config.db), a scratch database's URL for PostgreSQL. */
export interface EngineStore {
  /** The --store value, or undefined for the default SQLite file. */
  url: string | undefined;
  drop(): Promise<void>;
}

export async function engineStore(engine: Engine, label: string): Promise<EngineStore> {
  if (engine === 'sqlite') return { url: undefined, drop: () => Promise.resolve() };
  const scratch = await scratchDatabase(label);
  return { url: scratch.url, drop: () => scratch.drop() };
}

/** A control plane alone on `engine`'s store; `stop` kills it and drops its database. */
export interface Centre {
  control: SidecarProcess;
  /** Where its store is: the SQLite file, or the PostgreSQL URL (test/helpers/store-rows.ts reads either). */
  store: string;
  stop(): Promise<void>;
}

export async function startCentre(engine: Engine, label: string, options: { dataDir?: string; args?: string[] } = {}): Promise<Centre> {
  const store = await engineStore(engine, label);
  try {
    const control = await SidecarProcess.startControlPlane({
      dataDir: options.dataDir,
      args: [...(store.url === undefined ? [] : ['--store', store.url]), ...(options.args ?? [])],
    });
    return {
      control,
      store: store.url ?? `${control.dataDir}/config.db`,
      stop: async () => {
        await control.kill();
        await store.drop();
      },
    };
  } catch (error) {
    await store.drop();
    throw error;
  }
}
