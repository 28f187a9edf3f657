import { Worker } from 'node:worker_threads';
import type { SnapshotTables } from '../../src/core/snapshot/schema.js';
import type { DroutingCounts, DroutingReply, DroutingRequest } from './build-worker.js';
import type { DroutingDatabase } from './node-database.js';

export type { DroutingCounts } from './build-worker.js';

export interface BuiltDrouting {
  checksum: string;
  counts: DroutingCounts;
  /** The worker that holds the rows: a result from an earlier worker cannot be written any more. */
  generation: number;
}

/** Copies one node database's drouting tables into another, in a thread of its own (copy-worker.ts). */
function copyInThread(from: string, to: string, term: number | null): Promise<void> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./copy-worker.js', import.meta.url), { workerData: { from, to, term } });
    worker.once('message', (reply: { ok: boolean; error?: string }) => (reply.ok ? resolve() : reject(new Error(reply.error))));
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`drouting copy exited (${code})`)));
  });
}

/**
 * The control plane's side of the drouting worker (build-worker.ts): builds
 * and writes run there, answers come back as promises. A worker that dies
 * (out of memory on a huge build, say) fails what it was doing; the next call
 * starts a new one, under a new generation, since the rows died with it.
 */
export class DroutingBuilder {
  private worker: Worker | null = null;
  private workerGeneration = 0;
  private nextId = 1;
  /** The node database the last build's rows went into first: the others copy from it. */
  private firstWritten: { checksum: string; path: string; done: Promise<boolean> } | null = null;
  private readonly waiting = new Map<number, { resolve: (reply: DroutingReply) => void; reject: (error: Error) => void }>();

  get generation(): number {
    return this.workerGeneration;
  }

  /** Builds the rows for these tables (copied to the worker) as in force at `now`. */
  async build(tables: SnapshotTables, now: number): Promise<BuiltDrouting> {
    const generation = this.start();
    const reply = await this.ask({ kind: 'build', id: 0, tables, now });
    if (!reply.ok) throw new Error(reply.error);
    if (!('checksum' in reply)) throw new Error('the drouting worker answered a build with something else');
    return { checksum: reply.checksum, counts: reply.counts, generation };
  }

  /**
   * Writes the rows of the build with this checksum into a node database. The first SQLite node
   * is written row by row (1.2 s for 312k rules); the others copy its tables inside SQLite (0.45 s),
   * each in a thread of its own, side by side. A MySQL/PostgreSQL node is always written by the worker
   * (sql-writer.ts): another server's tables cannot be copied from a local file. `term`: this control plane's
   * sync lead term, checked against the node database's fence (writer.ts SYNC_TERM_ROW); null: no fence.
   */
  async write(checksum: string, target: DroutingDatabase, term: number | null = null): Promise<void> {
    if (target.kind !== 'sqlite') {
      const reply = await this.ask({ kind: 'write', id: 0, checksum, target, term });
      if (!reply.ok) throw new Error(reply.error);
      return;
    }
    const path = target.path;
    const first = this.firstWritten?.checksum === checksum ? this.firstWritten : null;
    if (first !== null && first.path !== path && (await first.done)) {
      try {
        await copyInThread(first.path, path, term);
        return;
      } catch {
        // the first node's file is gone or changed: write the rows again
      }
    }
    const done = this.ask({ kind: 'write', id: 0, checksum, target, term }).then((reply) => {
      if (!reply.ok) throw new Error(reply.error);
    });
    if (first === null)
      this.firstWritten = {
        checksum,
        path,
        done: done.then(
          () => true,
          () => false,
        ),
      };
    await done;
  }

  async close(): Promise<void> {
    const worker = this.worker;
    this.worker = null;
    await worker?.terminate();
  }

  private start(): number {
    if (this.worker !== null) return this.workerGeneration;
    const worker = new Worker(new URL('./build-worker.js', import.meta.url));
    worker.unref(); // a control plane on its way out does not wait for it
    worker.on('message', (reply: DroutingReply) => {
      const waiter = this.waiting.get(reply.id);
      this.waiting.delete(reply.id);
      waiter?.resolve(reply);
    });
    const fail = (reason: string): void => {
      if (this.worker !== worker) return;
      this.worker = null;
      for (const { reject } of this.waiting.values()) reject(new Error(reason));
      this.waiting.clear();
    };
    worker.on('error', (error) => fail(`drouting worker failed: ${error.message}`));
    worker.on('exit', (code) => fail(`drouting worker exited (${code})`));
    this.worker = worker;
    return ++this.workerGeneration;
  }

  private ask(request: DroutingRequest): Promise<DroutingReply> {
    const worker = this.worker;
    if (worker === null) return Promise.reject(new Error('the drouting worker is not running (its rows are lost): build again'));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      worker.postMessage({ ...request, id });
    });
  }
}
