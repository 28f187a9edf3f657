import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import { DecisionEngine } from '../engine/engine.js';
import type { SidecarMetrics } from '../metrics/metrics.js';
import { snapshotShapeRefusal, type SnapshotRefusal } from '../../core/snapshot/codec.js';
import type { WorkerReply, WorkerRequest } from './compile-worker.js';
import type { Delta } from '../../core/protocol/deltas.js';
import { routeCachesOutlive } from '../../core/lcr/lcr.js';
import { applyDeltas, type ApplyResult } from '../../core/snapshot/live.js';
import { DeltaStore } from '../deltas/store.js';

export type SnapshotSource = 'http' | 'file' | 'store';

/** Why an ingest was refused: the error catalogue's snapshot codes. */
export type SnapshotRefusalCode = SnapshotRefusal | 'snapshot_store' | 'no_snapshot' | 'snapshot_queue_full';

/** Snapshots that may wait behind the one compiling, by default: a push and a retry, not a backlog. */
export const DEFAULT_MAX_QUEUED_SNAPSHOTS = 2;

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

  /** Serves the newest stored snapshot that still verifies; false when there is none. */
  async restore(): Promise<boolean> {
    const result = await this.run({ kind: 'restore', id: 0 }, 'store');
    return result.ok;
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

  async close(): Promise<void> {
    await this.worker?.terminate();
    this.deltaStore.close();
  }

  private run(request: WorkerRequest, source: SnapshotSource): Promise<IngestResult> {
    this.pending++;
    const job = this.queue.then(() => this.execute(request, source)).finally(() => this.pending--);
    this.queue = job.catch(() => undefined);
    return job;
  }

  private refused(source: SnapshotSource, code: SnapshotRefusalCode, reason: string): IngestResult {
    this.metrics.snapshotLoads.inc({ source, result: code.replace(/^snapshot_/, '') });
    this.log.warn({ source, code, reason, serving_version: this.version }, 'snapshot refused');
    return { ok: false, code, reason };
  }

  private async execute(request: WorkerRequest, source: SnapshotSource): Promise<IngestResult> {
    const id = this.nextId++;
    const message: WorkerRequest = request.kind === 'ingest' ? { ...request, id, servingVersion: this.version } : { ...request, id };
    const reply = await this.runInWorker(message);
    if (!reply.ok) {
      this.metrics.snapshotLoads.inc({ source, result: reply.code.replace(/^snapshot_/, '') });
      const level = reply.code === 'snapshot_stale_version' || reply.code === 'no_snapshot' ? 'info' : 'warn';
      this.log[level]({ source, code: reply.code, reason: reply.reason, serving_version: this.version }, 'snapshot refused');
      return { ok: false, code: reply.code, reason: reply.reason };
    }
    const replaced = this.version;
    const swapStarted = performance.now();
    this.current = this.withStoredDeltas(new DecisionEngine(reply.compiled, reply.tables), request.kind === 'ingest' && request.force);
    const swapSeconds = (performance.now() - swapStarted) / 1000;
    this.metrics.deltaSeq.set(this.current.snapshot.deltaSeq);
    for (const listener of this.swapListeners) listener();
    const { version, createdAt, counts } = reply.compiled;
    this.metrics.snapshotLoads.inc({ source, result: 'ok' });
    this.metrics.compileSeconds.observe(reply.compileSeconds);
    this.metrics.swapSeconds.observe(swapSeconds);
    this.metrics.snapshotVersion.set(version);
    this.metrics.snapshotCreated.set(Date.parse(createdAt) / 1000);
    this.log.info(
      {
        source,
        version,
        created_at: createdAt,
        compile_seconds: reply.compileSeconds,
        compile_thread_nice: reply.nice,
        swap_seconds: swapSeconds,
        counts,
      },
      'snapshot in service',
    );
    if (reply.compiled.version < replaced)
      this.log.warn({ version: reply.compiled.version, replaced_version: replaced }, 'snapshot forced in below the version that served');
    return { ok: true, version, compileSeconds: reply.compileSeconds, swapSeconds };
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

  private runInWorker(message: WorkerRequest): Promise<WorkerReply> {
    return new Promise<WorkerReply>((resolve) => {
      const worker = new Worker(new URL('./compile-worker.js', import.meta.url), { workerData: { dbPath: this.dbPath } });
      this.worker = worker;
      let answered = false;
      worker.once('message', (reply: WorkerReply) => {
        answered = true;
        resolve(reply);
        void worker.terminate();
      });
      worker.on('error', (error) => this.log.error({ err: error }, 'compile worker failed'));
      worker.once('exit', (code) => {
        if (this.worker === worker) this.worker = null;
        // A worker that died (out of memory on a huge snapshot) fails its job; the serving snapshot stays.
        if (!answered) resolve({ id: message.id, ok: false, code: 'snapshot_store', reason: `compile worker exited with code ${code}` });
      });
      // Hand large bodies over instead of copying them when the bytes own their whole buffer.
      const bytes = message.kind === 'ingest' ? message.bytes : null;
      const transferable =
        bytes !== null && bytes.byteOffset === 0 && bytes.buffer instanceof ArrayBuffer && bytes.byteLength === bytes.buffer.byteLength;
      worker.postMessage(message, transferable ? [bytes.buffer] : []);
    });
  }
}
