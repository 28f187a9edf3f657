import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import type { CheckpointMessage } from './checkpoint-thread.js';

/**
 * The centre's WAL checkpoints, off the event loop (issue 19). SQLite's automatic checkpoint runs inside the
 * commit that takes the WAL past 1,000 pages, on the connection that commits: the event loop's. With
 * `synchronous = NORMAL` that commit then fsyncs the WAL and the database file and copies the WAL's pages back,
 * a stall of milliseconds every hundred or so partner writes (a top-up writes ~8 pages), which every request
 * behind it waited out: the partner API's p99. The serving connection turns the automatic checkpoint off and
 * this thread checkpoints instead, on its own connection.
 *
 * What stays on the event loop: after a checkpoint has copied the whole WAL, the next commit starts the WAL
 * over and SQLite syncs its header then (an out-of-order write after a restart could otherwise corrupt the
 * database on power loss): one fsync per checkpoint interval, not two per hundred writes plus the copy.
 */
export const CHECKPOINT_INTERVAL_MS = 1000;

export class WalCheckpointer {
  private readonly worker: Worker;
  private readonly exited: Promise<unknown>;

  constructor(dbPath: string, onFailure: (message: string) => void, intervalMs = CHECKPOINT_INTERVAL_MS) {
    this.worker = new Worker(new URL('./checkpoint-thread.js', import.meta.url), { workerData: { dbPath, intervalMs } });
    this.exited = once(this.worker, 'exit');
    this.worker.on('message', (message: CheckpointMessage) => onFailure(message.message));
    this.worker.on('error', (error) => onFailure(error.message));
    // It never holds the process up: a control plane stopping does not wait for its next pass.
    this.worker.unref();
  }

  /** A last checkpoint, then its connection closed (after the serving connection's last commit). */
  async stop(): Promise<void> {
    // A thread that has already ended (it failed to open the database) ignores the message.
    this.worker.postMessage('stop');
    // Held now: unreferenced, a process with nothing else to do would end before the thread's 'exit' arrives.
    this.worker.ref();
    await this.exited;
  }
}
