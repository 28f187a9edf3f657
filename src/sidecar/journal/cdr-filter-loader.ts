import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { yieldToEventLoop } from '../threads/background-thread.js';
import { CdrFilter, type GenerationData } from './cdr-filter.js';

/**
 * Loads the CDR filter from money.db in a thread of its own at start-up: an hour of CDRs at 5k/s is
 * 18M rows, half a minute of reading that would otherwise keep the sidecar from answering. The event
 * loop answers meanwhile, reading money.db for every duplicate check, and takes the generations in
 * when they come. Reads the CDRs up to `throughId`; the event loop's own filter holds those after it.
 */
export type FilterLoaderMessage = { type: 'loaded'; generations: GenerationData[]; cdrs: number } | { type: 'failed'; message: string };

const { dbPath, throughId } = workerData as { dbPath: string; throughId: number };
yieldToEventLoop();
try {
  const db = new Database(dbPath, { readonly: true });
  const filter = new CdrFilter();
  let cdrs = 0;
  const rows = db
    .prepare('SELECT sip_call_id, id, created_at FROM cdrs WHERE id <= ? ORDER BY id')
    .raw()
    .iterate(throughId) as IterableIterator<[string, number, number]>;
  for (const [sipCallId, id, createdAt] of rows) {
    filter.add(sipCallId, id, createdAt);
    cdrs++;
  }
  db.close();
  const generations = filter.export();
  parentPort!.postMessage(
    { type: 'loaded', generations, cdrs } satisfies FilterLoaderMessage,
    generations.map((generation) => generation.bits.buffer as ArrayBuffer),
  );
} catch (error) {
  parentPort!.postMessage({
    type: 'failed',
    message: error instanceof Error ? error.message : String(error),
  } satisfies FilterLoaderMessage);
}
