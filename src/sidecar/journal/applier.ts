import { existsSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { yieldToEventLoop } from '../threads/background-thread.js';
import { segmentPath, unpackPosition } from './log.js';
import { applySegment, SegmentBuffer } from './replay.js';
import { JournalStore, type SkippedOp } from './store.js';

/**
 * The applier thread: carries the money log into money.db behind the event
 * loop, a pass every `intervalMs` (each pass one transaction per segment it
 * reads), and deletes the segments it has applied. SQLite's
 * commits, fsyncs and checkpoints all happen here, where no request waits on
 * them, at the lowest CPU priority (background-thread.ts). Tells the event
 * loop how far CDRs are applied (until then the journal answers duplicate
 * checks from memory).
 */
export type ApplierMessage =
  | { type: 'applied'; lastCdrId: number; skipped: SkippedOp[]; lostBytes: number; segment: number }
  | { type: 'failed'; message: string; code: string | undefined };

/** `durable`: with durability `full`, how far the writer thread has synced the log; null: every whole record counts. */
const { dbPath, dir, intervalMs, durable } = workerData as {
  dbPath: string;
  dir: string;
  intervalMs: number;
  durable: BigInt64Array | null;
};
yieldToEventLoop();
const store = new JournalStore(dbPath);
let position = store.position();
const buffer = new SegmentBuffer();
const post = (message: ApplierMessage): void => parentPort!.postMessage(message);

function pass(): void {
  for (;;) {
    // Read before the files: what is synced now is on disk when they are read. The writer syncs each append
    // before it starts the next segment, so a segment with a later one is durable whole.
    const synced = durable === null ? null : unpackPosition(Atomics.load(durable, 0));
    if (synced !== null && synced.segment < position.segment) return;
    // Whether a later segment exists is asked before reading: if it does, the read sees this one whole.
    const final = existsSync(segmentPath(dir, position.segment + 1));
    const limit = synced === null || final || synced.segment > position.segment ? Number.POSITIVE_INFINITY : synced.offset;
    const result = applySegment(store, dir, position, final, limit, buffer);
    position = result.position;
    if (result.lastCdrId > 0 || result.skipped.length > 0 || result.lostBytes > 0) {
      post({ type: 'applied', lastCdrId: result.lastCdrId, skipped: result.skipped, lostBytes: result.lostBytes, segment: result.segment });
    }
    if (!final) return;
  }
}

let lastFailure = '';
const timer = setInterval(() => {
  try {
    pass();
    lastFailure = '';
  } catch (error) {
    // A full disk or an I/O error: nothing of the pass was applied; the next tries again. Reported once per kind.
    const message = error instanceof Error ? error.message : String(error);
    if (message !== lastFailure) post({ type: 'failed', message, code: (error as { code?: string }).code });
    lastFailure = message;
  }
}, intervalMs);

// The only message: 'drain'. The event loop has stopped writing: apply what is left, then exit (it waits for that).
parentPort!.once('message', () => {
  clearInterval(timer);
  try {
    pass();
  } finally {
    store.close();
    parentPort!.close();
  }
});
