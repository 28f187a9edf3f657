/**
 * One copy of drouting rows from a node database already written to another
 * (copyDrouting: ATTACH and INSERT ... SELECT inside SQLite), in a thread of
 * its own so that the copies for several nodes run side by side.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { copyDrouting } from './writer.js';

const { from, to, term } = workerData as { from: string; to: string; term: number | null };
try {
  copyDrouting(from, to, term);
  parentPort!.postMessage({ ok: true });
} catch (error) {
  parentPort!.postMessage({ ok: false, error: error instanceof Error ? error.message : String(error) });
}
