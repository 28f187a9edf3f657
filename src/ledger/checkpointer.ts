import Database from 'better-sqlite3';
import { parentPort, workerData } from 'node:worker_threads';

/**
 * WAL checkpoints for the money journal, apart from its writer. A checkpoint
 * copies the WAL into the database file and fsyncs both: milliseconds that,
 * run by SQLite's automatic checkpoint inside a commit, held up every
 * admission waiting on that commit (3.3 ms every few hundred commits here).
 * A third connection checkpoints in the background instead (PASSIVE: it
 * never waits for, nor blocks, the writer).
 */
const { path, intervalMs } = workerData as { path: string; intervalMs: number };
const db = new Database(path);
db.pragma('busy_timeout = 0');
const timer = setInterval(() => {
  try {
    db.pragma('wal_checkpoint(PASSIVE)');
  } catch {
    // busy: the next tick tries again
  }
}, intervalMs);
parentPort?.on('message', (message) => {
  if (message !== 'stop') return;
  clearInterval(timer);
  db.close();
  parentPort?.close();
});
