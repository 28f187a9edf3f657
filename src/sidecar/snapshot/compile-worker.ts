/**
 * Compile worker: decoding, verifying, compiling and persisting a snapshot
 * take seconds of CPU for wholesale-sized data; here they run beside the
 * event loop that answers OpenSIPS. The compiled indexes go back to the main
 * thread with their buffers transferred, not copied. After answering, it
 * writes their compiled image (compiled-image.ts) for the next start, then
 * says so (ImageReport) and is ended.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { threadNice, yieldToEventLoop } from '../threads/background-thread.js';
import { decodeSnapshot, type SnapshotRefusal } from '../../core/snapshot/codec.js';
import { type CompiledSnapshot } from '../../core/snapshot/model.js';
import { compileSnapshot } from '../../core/snapshot/compile.js';
import { smallTablesOf } from '../../core/snapshot/live.js';
import type { SmallTables } from '../../core/snapshot/schema.js';
import { SnapshotStore } from './store.js';
import { validateSnapshot } from '../../core/snapshot/validate.js';
import { compiledImagePath, draftCompiledImage, writeCompiledImage, type ImageDraft } from './compiled-image.js';

/** `force`: take the snapshot whatever version serves, and forget stored ones above it (the centre's recovery). */
export type WorkerRequest =
  { kind: 'ingest'; id: number; bytes: Uint8Array; servingVersion: number; force: boolean } | { kind: 'restore'; id: number };

export type WorkerReply =
  /** nice: the compiling thread's priority, as the kernel had it (null: not Linux). */
  /** tables: every table but the rates, for the main thread to apply deltas to (src/core/snapshot/live.ts). */
  | { id: number; ok: true; compiled: CompiledSnapshot; tables: SmallTables; compileSeconds: number; nice: number | null }
  /** no_snapshot: a restore found none that verifies. */
  | { id: number; ok: false; code: SnapshotRefusal | 'no_snapshot' | 'snapshot_store'; reason: string };

/** After a reply that is ok: whether the compiled image was written, and why not. */
export type ImageReport = { id: number; image: true; written: boolean; seconds: number; reason?: string };

type Refusal = { ok: false; code: SnapshotRefusal | 'snapshot_store'; reason: string };
/** image: the compiled image's draft (taken before the state's buffers are transferred away); a string: why none. */
type Prepared =
  { ok: true; compiled: CompiledSnapshot; tables: SmallTables; transfer: ArrayBuffer[]; image: ImageDraft | string } | Refusal;

yieldToEventLoop();
const nice = threadNice();
const { dbPath } = workerData as { dbPath: string };
const store = new SnapshotStore(dbPath);

function prepare(bytes: Uint8Array, servingVersion: number, persist: boolean, force = false): Prepared {
  const decoded = decodeSnapshot(bytes, force ? 0 : servingVersion);
  if (!decoded.ok) return decoded;
  const valid = validateSnapshot(decoded.snapshot.tables);
  if (!valid.ok) return { ok: false, code: 'snapshot_integrity', reason: valid.reason };
  let result: ReturnType<typeof compileSnapshot>;
  try {
    result = compileSnapshot(decoded.snapshot);
  } catch (error) {
    // validateSnapshot should make this unreachable; a compile bug must still only refuse the snapshot.
    return { ok: false, code: 'snapshot_integrity', reason: `compile failed: ${(error as Error).message}` };
  }
  const { compiled, transfer } = result;
  if (persist) {
    try {
      store.save(decoded.snapshot.version, decoded.snapshot.created_at, decoded.snapshot.checksum, bytes, force);
    } catch (error) {
      return { ok: false, code: 'snapshot_store', reason: `cannot persist snapshot: ${(error as Error).message}` };
    }
  }
  const tables = smallTablesOf(decoded.snapshot.tables);
  let image: ImageDraft | string;
  try {
    image = draftCompiledImage({ compiled, tables }, { version: decoded.snapshot.version, checksum: decoded.snapshot.checksum });
  } catch (error) {
    // Only the next start's shortcut is lost: it compiles the stored snapshot, as without an image.
    image = `cannot draft it: ${(error as Error).message}`;
  }
  return { ok: true, compiled, tables, transfer, image };
}

function reply(id: number, started: number, prepared: Prepared): void {
  if (!prepared.ok) {
    parentPort!.postMessage({ id, ok: false, code: prepared.code, reason: prepared.reason } satisfies WorkerReply);
    return;
  }
  const message: WorkerReply = {
    id,
    ok: true,
    compiled: prepared.compiled,
    tables: prepared.tables,
    compileSeconds: (performance.now() - started) / 1000,
    nice,
  };
  parentPort!.postMessage(message, prepared.transfer);
  void persistImage(id, prepared.image);
}

/** The compiled image written where the next start reads it, after the answer: the swap does not wait for the disk. */
async function persistImage(id: number, image: ImageDraft | string): Promise<void> {
  const started = performance.now();
  let report: ImageReport;
  if (typeof image === 'string') report = { id, image: true, written: false, seconds: 0, reason: image };
  else
    try {
      await writeCompiledImage(compiledImagePath(dbPath), image);
      report = { id, image: true, written: true, seconds: (performance.now() - started) / 1000 };
    } catch (error) {
      report = { id, image: true, written: false, seconds: (performance.now() - started) / 1000, reason: (error as Error).message };
    }
  parentPort!.postMessage(report);
}

parentPort!.on('message', (request: WorkerRequest) => {
  const started = performance.now();
  if (request.kind === 'ingest') {
    reply(request.id, started, prepare(request.bytes, request.servingVersion, true, request.force));
    return;
  }
  let last: Refusal = { ok: false, code: 'snapshot_store', reason: 'no stored snapshot' };
  for (const stored of store.newestFirst()) {
    const prepared = prepare(stored.bytes, 0, false);
    if (prepared.ok) {
      reply(request.id, started, prepared);
      return;
    }
    last = prepared;
  }
  parentPort!.postMessage({ id: request.id, ok: false, code: 'no_snapshot', reason: last.reason } satisfies WorkerReply);
});
