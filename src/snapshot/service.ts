import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import { DecisionEngine } from '../engine.js';
import type { SidecarMetrics } from '../metrics/metrics.js';
import type { WorkerReply, WorkerRequest } from './compile-worker.js';

export type SnapshotSource = 'http' | 'file' | 'store';

export type IngestResult =
  | { ok: true; version: number; compileSeconds: number; swapSeconds: number }
  | { ok: false; code: string; reason: string };

/**
 * Owns the serving snapshot. Ingests run one at a time in the compile worker;
 * the swap is one assignment on the main thread, so every request sees a
 * whole snapshot, old or new. A refused or failed snapshot leaves the serving
 * one untouched.
 */
export class SnapshotService {
  private current: DecisionEngine | null = null;
  private worker: Worker;
  private nextId = 1;
  private readonly pending = new Map<number, (reply: WorkerReply) => void>();
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(
    private readonly dbPath: string,
    private readonly log: Logger,
    private readonly metrics: SidecarMetrics,
  ) {
    this.worker = this.startWorker();
  }

  get engine(): DecisionEngine | null {
    return this.current;
  }

  get version(): number {
    return this.current?.snapshot.version ?? 0;
  }

  /** Serves the newest stored snapshot that still verifies; false when there is none. */
  async restore(): Promise<boolean> {
    const result = await this.run({ kind: 'restore', id: 0 }, 'store');
    return result.ok;
  }

  ingest(bytes: Uint8Array, source: SnapshotSource): Promise<IngestResult> {
    return this.run({ kind: 'ingest', id: 0, bytes, servingVersion: 0 }, source);
  }

  close(): Promise<number> {
    this.closed = true;
    return this.worker.terminate();
  }

  private run(request: WorkerRequest, source: SnapshotSource): Promise<IngestResult> {
    const job = this.queue.then(() => this.execute(request, source));
    this.queue = job.catch(() => undefined);
    return job;
  }

  private async execute(request: WorkerRequest, source: SnapshotSource): Promise<IngestResult> {
    const id = this.nextId++;
    const message: WorkerRequest = request.kind === 'ingest' ? { ...request, id, servingVersion: this.version } : { ...request, id };
    const reply = await new Promise<WorkerReply>((resolve) => {
      this.pending.set(id, resolve);
      // Hand large bodies over instead of copying them when the bytes own their whole buffer.
      const bytes = message.kind === 'ingest' ? message.bytes : null;
      const transferable = bytes !== null && bytes.byteOffset === 0 && bytes.buffer instanceof ArrayBuffer && bytes.byteLength === bytes.buffer.byteLength;
      this.worker.postMessage(message, transferable ? [bytes.buffer] : []);
    });
    if (!reply.ok) {
      this.metrics.snapshotLoads.inc({ source, result: reply.code.toLowerCase() });
      const level = reply.code === 'STALE_VERSION' || reply.code === 'EMPTY' ? 'info' : 'warn';
      this.log[level]({ source, code: reply.code, reason: reply.reason, serving_version: this.version }, 'snapshot refused');
      return { ok: false, code: reply.code, reason: reply.reason };
    }
    const swapStarted = performance.now();
    this.current = new DecisionEngine(reply.compiled);
    const swapSeconds = (performance.now() - swapStarted) / 1000;
    const { version, createdAt, counts } = reply.compiled;
    this.metrics.snapshotLoads.inc({ source, result: 'ok' });
    this.metrics.compileSeconds.observe(reply.compileSeconds);
    this.metrics.swapSeconds.observe(swapSeconds);
    this.metrics.snapshotVersion.set(version);
    this.metrics.snapshotCreated.set(Date.parse(createdAt) / 1000);
    this.log.info({ source, version, created_at: createdAt, compile_seconds: reply.compileSeconds, swap_seconds: swapSeconds, counts }, 'snapshot in service');
    return { ok: true, version, compileSeconds: reply.compileSeconds, swapSeconds };
  }

  private startWorker(): Worker {
    const worker = new Worker(new URL('./compile-worker.js', import.meta.url), { workerData: { dbPath: this.dbPath } });
    worker.on('message', (reply: WorkerReply) => {
      const resolve = this.pending.get(reply.id);
      this.pending.delete(reply.id);
      resolve?.(reply);
    });
    worker.on('error', (error) => {
      this.log.error({ err: error }, 'compile worker failed');
    });
    worker.on('exit', (code) => {
      // A worker that died (out of memory on a huge snapshot) fails its job; the next job gets a new worker.
      for (const [id, resolve] of this.pending) {
        this.pending.delete(id);
        resolve({ id, ok: false, code: 'STORE', reason: `compile worker exited with code ${code}` });
      }
      if (!this.closed) this.worker = this.startWorker();
    });
    return worker;
  }
}
