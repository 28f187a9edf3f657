import { WalFile } from './wal-file.js';

/**
 * fdatasyncs of the WAL that may run at once. Two: a commit made while one runs starts its own at once instead
 * of waiting for the running one to end and then for a whole sync more, so a slow sync (this disk's run 5-50 ms
 * now and then) is waited out once, not once and a half. Commits of 6 pages at 500/s (performance log,
 * 2026-12-07 12:21 and 12:43): with the disk quiet, acknowledgement p99 4.2-10.1 ms one at a time against 2.4-4.7
 * ms two at once; with it busy, p50 2.2-4.0 against 0.6-1.7 ms (p99 no better). The price is more syncs (up to
 * one a commit) and their CPU on the pool. Not more: they share libuv's four-thread pool with the process's other
 * file work and the PIN hashes, and a third at once did no better.
 */
export const SYNCS_AT_ONCE = 2;

/**
 * Group commit for the centre's SQLite database. The database runs `synchronous = NORMAL` in WAL mode: a
 * commit writes its frames to the WAL without an fsync, which survives `kill -9` (the pages are in the
 * kernel) but not a power cut. Before a write is acknowledged, its caller waits for `flushed()`: an
 * fdatasync of the WAL on libuv's pool, called after its commit, shared by every caller that committed before
 * that call. Under load one fdatasync covers many writes, and none of them blocks the event loop (a FULL
 * commit did, ~3.5 ms each).
 *
 * A sync already running may have been called before a caller's commit reached the WAL, so it never answers
 * that caller: the caller starts one of its own at once while fewer than `syncsAtOnce` run, else waits, with
 * every caller after it, for one sync called as soon as one of the running ones ends.
 *
 * Each sync at once has its own descriptor of the WAL (an open file description apiece): Linux reports a
 * failed writeback once to each open file description, so a sync on one descriptor cannot take the error
 * another's caller should have had and leave it to "succeed". A failed fdatasync is final (after one, the
 * kernel may have dropped the dirty pages and a later sync "succeeds" without them): every waiter is refused,
 * also those of a sync that ends fine after the failure, and `onFailure` is told, so the process can stop
 * rather than acknowledge writes it cannot keep.
 */
export class WalFlusher {
  /** The sync slots free now: one kept descriptor each (`files`). */
  private readonly free: number[];
  /** The sync called for every caller that found no slot free, and its starter, called when a slot frees. */
  private queued: Promise<void> | null = null;
  private startQueued: (() => void) | null = null;
  private failed: Error | null = null;
  private readonly files: WalFile[];
  private readonly syncFile: (path: string, slot: number) => Promise<void>;
  /** fdatasyncs done (for tests and metrics). */
  syncs = 0;
  /** How long the syncs took, and how long callers waited for theirs (a write's share of its latency). */
  readonly timing = { syncMs: 0, waits: 0, waitMs: 0 };

  constructor(
    private readonly walPath: string | null,
    private readonly onFailure: (error: Error) => void = () => {},
    syncFile?: (path: string, slot: number) => Promise<void>,
    syncsAtOnce = SYNCS_AT_ONCE,
  ) {
    this.free = Array.from({ length: syncsAtOnce }, (_, slot) => syncsAtOnce - 1 - slot);
    this.files = syncFile === undefined && walPath !== null ? this.free.map(() => new WalFile(walPath)) : [];
    this.syncFile = syncFile ?? ((_path, slot) => this.files[slot].dataSync());
  }

  /** Resolves once every commit made before this call is on disk; its wait is added to `timing`. */
  async flushed(): Promise<void> {
    const start = performance.now();
    try {
      await this.flush();
    } finally {
      this.timing.waits += 1;
      this.timing.waitMs += performance.now() - start;
    }
  }

  /** Closes the kept WAL descriptors (after the database is closed). */
  async close(): Promise<void> {
    await Promise.all(this.files.map((file) => file.close()));
  }

  private flush(): Promise<void> {
    if (this.walPath === null) return Promise.resolve();
    if (this.failed !== null) return Promise.reject(this.failed);
    if (this.free.length > 0) return this.start();
    this.queued ??= new Promise<void>((resolve, reject) => {
      this.startQueued = () => {
        this.queued = null;
        this.startQueued = null;
        this.start().then(resolve, reject);
      };
    });
    return this.queued;
  }

  private start(): Promise<void> {
    if (this.failed !== null) return Promise.reject(this.failed);
    const slot = this.free.pop()!;
    const started = performance.now();
    return this.syncFile(this.walPath!, slot).then(
      () => {
        this.syncs += 1;
        this.timing.syncMs += performance.now() - started;
        this.slotFreed(slot);
        if (this.failed !== null) throw this.failed;
      },
      (error: unknown) => {
        if (this.failed === null) {
          this.failed = error instanceof Error ? error : new Error(String(error));
          this.onFailure(this.failed);
        }
        this.slotFreed(slot);
        throw this.failed;
      },
    );
  }

  /** The slot is free again: the queued callers' sync is called on it (or, after a failure, refused). */
  private slotFreed(slot: number): void {
    this.free.push(slot);
    this.startQueued?.();
  }
}
