import Database from 'better-sqlite3';
import { parentPort, workerData } from 'node:worker_threads';

/**
 * The checkpointer thread (checkpointer.ts): its own connection to the centre's database, copying the WAL
 * back into the database file every `intervalMs` with a PASSIVE checkpoint (it never waits for, nor blocks,
 * the event loop's writes and reads). Its connection keeps `synchronous = NORMAL`, so a checkpoint syncs the
 * WAL before it writes the database file and the file after, as SQLite's own automatic checkpoint did, here
 * where no request waits on those fsyncs.
 */
export type CheckpointMessage = { type: 'failed'; message: string };

const { dbPath, intervalMs } = workerData as { dbPath: string; intervalMs: number };
const db = new Database(dbPath, { fileMustExist: true });
db.pragma('synchronous = NORMAL');
// This connection only checkpoints; a write of its own would never start one anyway.
db.pragma('wal_autocheckpoint = 0');

let failed = false;
const checkpoint = (): void => {
  try {
    db.pragma('wal_checkpoint(PASSIVE)');
    failed = false;
  } catch (error) {
    // Told once per run of failures (the WAL grows meanwhile; nothing committed is at risk): the next pass tries again.
    if (!failed) parentPort!.postMessage({ type: 'failed', message: (error as Error).message } satisfies CheckpointMessage);
    failed = true;
  }
};
const timer = setInterval(checkpoint, intervalMs);

parentPort!.once('message', () => {
  clearInterval(timer);
  checkpoint();
  db.close();
  parentPort!.close();
});
