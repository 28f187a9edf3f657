import { parentPort, workerData } from 'node:worker_threads';
import type { JournalOp } from './journal-ops.js';
import { openJournalCommitter } from './journal-commit.js';

/**
 * The money journal's writer thread (durability `full`): commits each batch
 * the event loop sends and answers once it is on disk, so the event loop
 * never waits on an fsync.
 */
const { path, durability } = workerData as { path: string; durability: 'normal' | 'full' };
const committer = openJournalCommitter(path, durability);

parentPort!.on('message', (message: { seq: number; writes: JournalOp[][] } | 'stop') => {
  if (message === 'stop') {
    committer.close();
    parentPort!.close();
    return;
  }
  parentPort!.postMessage({ seq: message.seq, failures: committer.commit(message.writes) });
});
