import Database from 'better-sqlite3';
import { parentPort, workerData } from 'node:worker_threads';

/**
 * WAL checkpoints for the money journal, off the event loop. A checkpoint
 * copies the WAL into the database file and fsyncs it: tens of milliseconds
 * that, run by SQLite's automatic checkpoint inside a commit, would stall
 * every request behind it. Here a second connection checkpoints in the
 * background (PASSIVE: never waits for, nor blocks, the writer).
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
