import { mkdirSync } from 'node:fs';
import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { watch } from 'chokidar';
import type { Logger } from 'pino';
import type { SnapshotService } from './service.js';

/**
 * Picks up snapshots dropped into a directory (the control plane writes
 * `<name>.msgpack.tmp` and renames it, so a file is whole when it appears).
 * chokidar reports new files at once; a rescan every few seconds catches an
 * event the kernel dropped under load, so a node never sits on a stale
 * snapshot. A file is read again only when its size or mtime changed, and
 * older or equal versions are refused by version like any other snapshot.
 */
export interface SnapshotDirectoryWatcher {
  close(): Promise<void>;
}

const RESCAN_MS = 2000;

export function watchSnapshotDirectory(directory: string, snapshots: SnapshotService, log: Logger): SnapshotDirectoryWatcher {
  mkdirSync(directory, { recursive: true });
  const seen = new Map<string, string>(); // path -> "size:mtime" already handed to the service
  const ingest = async (path: string): Promise<void> => {
    try {
      const info = await stat(path);
      const signature = `${info.size}:${info.mtimeMs}`;
      if (seen.get(path) === signature) return;
      seen.set(path, signature);
      const result = await snapshots.ingest(await readFile(path), 'file');
      if (result.ok) log.info({ path, version: result.version }, 'snapshot file taken into service');
    } catch (error) {
      log.warn({ path, err: error }, 'cannot read snapshot file');
    }
  };
  const watcher = watch(directory, {
    depth: 0,
    ignored: (path, stats) => stats?.isFile() === true && !path.endsWith('.msgpack'),
    // Writers that do not rename: wait until the size settles.
    awaitWriteFinish: { stabilityThreshold: 200, pollInterval: 50 },
  });
  watcher.on('add', (path) => void ingest(path));
  watcher.on('change', (path) => void ingest(path));
  const rescan = setInterval(() => {
    readdir(directory)
      .then((names) => {
        for (const name of names) if (name.endsWith('.msgpack')) void ingest(join(directory, name));
      })
      .catch((error: unknown) => log.warn({ directory, err: error }, 'cannot list the snapshot directory'));
  }, RESCAN_MS);
  rescan.unref();
  return {
    close: async () => {
      clearInterval(rescan);
      await watcher.close();
    },
  };
}
