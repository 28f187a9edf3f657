import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import { DecisionEngine } from '../engine/engine.js';
import type { SidecarMetrics } from '../metrics/metrics.js';
import { snapshotShapeRefusal, type SnapshotRefusal } from '../../core/snapshot/codec.js';
import type { ImageReport, WorkerReply, WorkerRequest } from './compile-worker.js';
import { compiledImagePath, readCompiledImage, type ImageKey } from './compiled-image.js';
import { SnapshotStore } from './store.js';
import type { CompiledSnapshot } from '../../core/snapshot/model.js';
import type { SmallTables } from '../../core/snapshot/schema.js';
import type { Delta } from '../../core/protocol/deltas.js';
import { routeCachesOutlive } from '../../core/lcr/lcr.js';
import { applyDeltas, type ApplyResult } from '../../core/snapshot/live.js';
import { DeltaStore } from '../deltas/store.js';

export type SnapshotSource = 'http' | 'file' | 'store';

/** Why an ingest was refused: the error catalogue's snapshot codes. */
export type SnapshotRefusalCode = SnapshotRefusal | 'snapshot_store' | 'no_snapshot' | 'snapshot_queue_full';

/** Snapshots that may wait behind the one compiling, by default: a push and a retry, not a backlog. */
export const DEFAULT_MAX_QUEUED_SNAPSHOTS = 2;
/** How long a stop waits for the running job (its compiled image being written) before ending its worker. */
const CLOSE_WAIT_MS = 2000;

export type IngestResult =
  { ok: true; version: number; compileSeconds: number; swapSeconds: number } | { ok: false; code: SnapshotRefusalCode; reason: string };

/**
 * Owns the serving snapshot. Ingests run one at a time, each in a fresh
 * compile worker that exits afterwards: decoding 2M rows leaves hundreds of MB
 * of garbage in the worker's heap, and ending the worker returns all of it to
 * the system at once (it costs ~40 ms of start-up per snapshot). The swap is
 * one assignment on the main thread, so every request sees a whole snapshot,
 * old or new. A refused or failed snapshot leaves the serving one untouched.
 *
 * Bytes that cannot be a snapshot are refused before a worker is started, and at most `maxQueued` ingests
 * wait behind the compiling one; more are refused at once (snapshot_queue_full) rather than queued, so a
 * burst of bad pushes cannot hold a good one past the control plane's timeout.
 */
export class SnapshotService {
  private current: DecisionEngine | null = null;
  private worker: Worker | null = null;
  private nextId = 1;
  private queue: Promise<unknown> = Promise.resolve();
  /** Jobs accepted and not finished: the one compiling and those waiting behind it. */
  private pending = 0;
  /** The deltas applied on top of the serving snapshot (issue 18), kept for a restart and the next snapshot. */
  private readonly deltaStore: DeltaStore;
  private readonly swapListeners: (() => void)[] = [];

  constructor(
    private readonly dbPath: string,
    private readonly log: Logger,
    private readonly metrics: SidecarMetrics,
    private readonly maxQueued: number = DEFAULT_MAX_QUEUED_SNAPSHOTS,
  ) {
    this.deltaStore = new DeltaStore(dbPath);
  }

  get engine(): DecisionEngine | null {
    return this.current;
  }

  get version(): number {
    return this.current?.snapshot.version ?? 0;
  }

  /** The last delta sequence the serving state includes; null before the first snapshot. */
  get deltaSeq(): number | null {
    return this.current?.snapshot.deltaSeq ?? null;
  }

  /** Called after every snapshot swap (the delta channel then asks from the new state's sequence). */
  onSnapshot(listener: () => void): void {
    this.swapListeners.push(listener);
  }

  /**
   * Live changes into service: applied to the serving state copy-on-write (src/core/snapshot/live.ts), stored,
   * then swapped in with one assignment. On the event loop, synchronously: nothing else runs between the check of
   * the sequence and the swap. A refused batch changes nothing.
   */
  applyDeltas(deltas: readonly Delta[]): ApplyResult {
    const engine = this.current;
    if (engine === null || engine.tables === null) return { ok: false, code: 'gap', reason: 'no snapshot in service to apply deltas to' };
    const started = performance.now();
    const result = applyDeltas({ compiled: engine.snapshot, tables: engine.tables }, deltas);
    if (!result.ok || result.applied === 0) return result;
    const applied = deltas.filter((delta) => delta.seq > engine.snapshot.deltaSeq);
    this.deltaStore.save(applied);
    const cachesOutlive = routeCachesOutlive(applied.map((delta) => delta.table));
    this.current = new DecisionEngine(result.state.compiled, result.state.tables, cachesOutlive ? engine : null);
    this.metrics.deltaSeq.set(result.state.compiled.deltaSeq);
    this.metrics.deltaApplySeconds.observe((performance.now() - started) / 1000);
    this.log.debug({ applied: result.applied, delta_seq: result.state.compiled.deltaSeq }, 'deltas in service');
    return result;
  }

  /**
   * Serves the newest stored snapshot that still verifies; false when there is none. From its compiled image
   * when that is whole and of the newest stored snapshot (compiled-image.ts), else compiled in the worker,
   * which writes the image for the next start.
   */
  async restore(): Promise<boolean> {
    if (this.restoreFromImage()) return true;
    const result = await this.run({ kind: 'restore', id: 0 }, 'store');
    return result.ok;
  }

  /**
   * The compiled image read on the event loop, synchronously: at start-up, before the sidecar listens, nothing
   * else waits, and reading it here spares a worker's start and the copy of the state out of it.
   */
  private restoreFromImage(): boolean {
    const started = performance.now();
    const store = new SnapshotStore(this.dbPath);
    let key: ImageKey | null;
    try {
      key = store.newest();
    } finally {
      store.close();
    }
    if (key === null) return false;
    const image = readCompiledImage(compiledImagePath(this.dbPath), key);
    if (!image.ok) {
      this.log.info({ version: key.version, reason: image.reason }, 'compiled image not used: compiling the stored snapshot');
      return false;
    }
    this.serve(image.state.compiled, image.state.tables, 'store', {
      forced: false,
      compileSeconds: null,
      imageBytes: image.bytes,
      started,
    });
    return true;
  }

  /**
   * A snapshot newer than the serving one goes into service. `force` (only the control plane's
   * `PUT /api/snapshot?force=1`): any version does, and stored snapshots above it are dropped, so a node
   * that was handed a version ahead of the centre's (by a PUT straight to it) takes the centre's again,
   * restarts included. The centre's versions are the only authority.
   */
  ingest(bytes: Uint8Array, source: SnapshotSource, options: { force?: boolean } = {}): Promise<IngestResult> {
    const shape = snapshotShapeRefusal(bytes);
    if (shape !== null) return Promise.resolve(this.refused(source, 'snapshot_malformed', shape));
    // One compiles; up to maxQueued wait behind it.
    if (this.pending > this.maxQueued)
      return Promise.resolve(
        this.refused(source, 'snapshot_queue_full', `${this.pending - 1} snapshots already wait behind the one compiling`),
      );
    return this.run({ kind: 'ingest', id: 0, bytes, servingVersion: 0, force: options.force === true }, source);
  }

  /** Resolves once no ingest or restore runs: the last one's compiled image is written (or failed to be). */
  async idle(): Promise<void> {
    await this.queue;
  }

  /**
   * Waits a moment for a worker writing a compiled image (a stop right after a push still leaves the next start
   * its image), then ends whatever worker runs.
   */
  async close(): Promise<void> {
    await Promise.race([this.queue, new Promise((resolve) => setTimeout(resolve, CLOSE_WAIT_MS).unref())]);
    await this.worker?.terminate();
    this.deltaStore.close();
  }

  /**
   * The caller has its answer once the snapshot serves; the next job starts once this one's worker is done
   * (it writes the compiled image after answering), so one worker runs at a time.
   */
  private run(request: WorkerRequest, source: SnapshotSource): Promise<IngestResult> {
    this.pending++;
    const job = this.queue.then(() => this.execute(request, source));
    this.queue = job
      .then(
        ({ finished }) => finished,
        () => undefined,
      )
      .finally(() => this.pending--);
    return job.then(({ result }) => result);
  }

  private refused(source: SnapshotSource, code: SnapshotRefusalCode, reason: string): IngestResult {
    this.metrics.snapshotLoads.inc({ source, result: code.replace(/^snapshot_/, '') });
    this.log.warn({ source, code, reason, serving_version: this.version }, 'snapshot refused');
    return { ok: false, code, reason };
  }

  private async execute(request: WorkerRequest, source: SnapshotSource): Promise<{ result: IngestResult; finished: Promise<void> }> {
    const id = this.nextId++;
    const message: WorkerRequest = request.kind === 'ingest' ? { ...request, id, servingVersion: this.version } : { ...request, id };
    const { reply, finished } = this.runInWorker(message);
    const answer = await reply;
    if (!answer.ok) {
      this.metrics.snapshotLoads.inc({ source, result: answer.code.replace(/^snapshot_/, '') });
      const level = answer.code === 'snapshot_stale_version' || answer.code === 'no_snapshot' ? 'info' : 'warn';
      this.log[level]({ source, code: answer.code, reason: answer.reason, serving_version: this.version }, 'snapshot refused');
      return { result: { ok: false, code: answer.code, reason: answer.reason }, finished };
    }
    const forced = request.kind === 'ingest' && request.force;
    const result = this.serve(answer.compiled, answer.tables, source, { forced, compileSeconds: answer.compileSeconds, nice: answer.nice });
    return { result, finished };
  }

  /**
   * Swaps a snapshot into service (with the node's stored deltas past it): compiled in the worker
   * (`compileSeconds`), or read from its compiled image (`imageBytes`, the read started at `started`).
   */
  private serve(
    compiled: CompiledSnapshot,
    tables: SmallTables,
    source: SnapshotSource,
    how:
      | { forced: boolean; compileSeconds: number; nice: number | null }
      | { forced: false; compileSeconds: null; imageBytes: number; started: number },
  ): IngestResult {
    const replaced = this.version;
    const swapStarted = performance.now();
    this.current = this.withStoredDeltas(new DecisionEngine(compiled, tables), how.forced);
    const swapSeconds = (performance.now() - swapStarted) / 1000;
    this.metrics.deltaSeq.set(this.current.snapshot.deltaSeq);
    for (const listener of this.swapListeners) listener();
    const { version, createdAt, counts } = compiled;
    this.metrics.snapshotLoads.inc({ source, result: 'ok' });
    if (how.compileSeconds !== null) this.metrics.compileSeconds.observe(how.compileSeconds);
    this.metrics.swapSeconds.observe(swapSeconds);
    this.metrics.snapshotVersion.set(version);
    this.metrics.snapshotCreated.set(Date.parse(createdAt) / 1000);
    const loaded =
      how.compileSeconds !== null
        ? { compile_seconds: how.compileSeconds, compile_thread_nice: how.nice }
        : { compiled_image_bytes: how.imageBytes, image_read_seconds: (swapStarted - how.started) / 1000 };
    this.log.info({ source, version, created_at: createdAt, ...loaded, swap_seconds: swapSeconds, counts }, 'snapshot in service');
    if (compiled.version < replaced)
      this.log.warn({ version: compiled.version, replaced_version: replaced }, 'snapshot forced in below the version that served');
    return { ok: true, version, compileSeconds: how.compileSeconds ?? 0, swapSeconds };
  }

  /**
   * A snapshot coming into service, with the deltas this node holds past the snapshot's own sequence applied
   * first (a restart; a snapshot built before deltas the node already serves): a request never sees the node
   * go back. Deltas it includes are dropped. Stored deltas that do not follow on (a gap) are dropped too: the
   * centre sends them again. A forced snapshot drops them all: the node takes the centre's state as it is.
   */
  private withStoredDeltas(engine: DecisionEngine, forced: boolean): DecisionEngine {
    const base = engine.snapshot.deltaSeq;
    if (forced) {
      this.deltaStore.dropAll();
      return engine;
    }
    const stored = this.deltaStore.after(base);
    this.deltaStore.dropUpTo(base);
    if (stored.length === 0) return engine;
    const result = applyDeltas({ compiled: engine.snapshot, tables: engine.tables! }, stored);
    if (!result.ok) {
      this.log.warn(
        { delta_seq: base, stored: stored.length, reason: result.reason },
        'stored deltas not applied: the centre sends them again',
      );
      this.deltaStore.dropAll();
      return engine;
    }
    this.log.info({ snapshot_delta_seq: base, delta_seq: result.state.compiled.deltaSeq }, 'stored deltas applied to the snapshot');
    return new DecisionEngine(result.state.compiled, result.state.tables);
  }

  /**
   * `reply`: the worker's answer; `finished`: once it has exited (after writing the compiled image of what it
   * compiled, or at once after a refusal). Never rejects.
   */
  private runInWorker(message: WorkerRequest): { reply: Promise<WorkerReply>; finished: Promise<void> } {
    const worker = new Worker(new URL('./compile-worker.js', import.meta.url), { workerData: { dbPath: this.dbPath } });
    this.worker = worker;
    let answer: (reply: WorkerReply) => void = () => undefined;
    const reply = new Promise<WorkerReply>((resolve) => (answer = resolve));
    let answered = false;
    worker.on('message', (received: WorkerReply | ImageReport) => {
      if ('image' in received) {
        if (received.written) this.log.info({ seconds: received.seconds }, 'compiled image written');
        else this.log.warn({ reason: received.reason }, 'compiled image not written: the next start compiles the stored snapshot');
        void worker.terminate();
        return;
      }
      answered = true;
      answer(received);
      // A refusal leaves nothing to write; a worker that compiled ends once it has written the image.
      if (!received.ok) void worker.terminate();
    });
    worker.on('error', (error) => this.log.error({ err: error }, 'compile worker failed'));
    const finished = new Promise<void>((resolve) =>
      worker.once('exit', (code) => {
        if (this.worker === worker) this.worker = null;
        // A worker that died (out of memory on a huge snapshot) fails its job; the serving snapshot stays.
        if (!answered) answer({ id: message.id, ok: false, code: 'snapshot_store', reason: `compile worker exited with code ${code}` });
        resolve();
      }),
    );
    // Hand large bodies over instead of copying them when the bytes own their whole buffer.
    const bytes = message.kind === 'ingest' ? message.bytes : null;
    const transferable =
      bytes !== null && bytes.byteOffset === 0 && bytes.buffer instanceof ArrayBuffer && bytes.byteLength === bytes.buffer.byteLength;
    worker.postMessage(message, transferable ? [bytes.buffer] : []);
    return { reply, finished };
  }
}
