import { mkdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { watch, type FSWatcher } from 'chokidar';
import type { Logger } from 'pino';
import type { SnapshotService } from './service.js';

/**
 * Picks up snapshots dropped into a directory (the control plane writes
 * `<name>.msgpack.tmp` and renames it, so a file is whole when it appears).
 * Older or equal versions are refused by version like any other snapshot.
 */
export function watchSnapshotDirectory(directory: string, snapshots: SnapshotService, log: Logger): FSWatcher {
  mkdirSync(directory, { recursive: true });
  const watcher = watch(directory, {
    depth: 0,
    ignored: (path, stats) => stats?.isFile() === true && !path.endsWith('.msgpack'),
    // Writers that do not rename: wait until the size settles.
    awaitWriteFinish: { stabilityThreshold: 200, pollInterval: 50 },
  });
  const ingest = async (path: string): Promise<void> => {
    try {
      const result = await snapshots.ingest(await readFile(path), 'file');
      if (result.ok) log.info({ path, version: result.version }, 'snapshot file taken into service');
    } catch (error) {
      log.warn({ path, err: error }, 'cannot read snapshot file');
    }
  };
  watcher.on('add', (path) => void ingest(path));
  watcher.on('change', (path) => void ingest(path));
  return watcher;
}
