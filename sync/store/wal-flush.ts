import { WalFile } from './wal-file.js';

/**
 * Group commit for the centre's SQLite database. The database runs `synchronous = NORMAL` in WAL mode: a
 * commit writes its frames to the WAL without an fsync, which survives `kill -9` (the pages are in the
 * kernel) but not a power cut. Before a write is acknowledged, its caller waits for `flushed()`: an
 * fdatasync of the WAL on libuv's pool, shared by every caller that committed before it started. Under load
 * one fdatasync covers many writes, and none of them blocks the event loop (a FULL commit did, ~3.5 ms each).
 *
 * A caller arriving while a sync is under way waits for the next one: the running sync may have started
 * before its commit reached the WAL. A failed fdatasync is final (after one, the kernel may have dropped the
 * dirty pages and a later sync "succeeds" without them): every waiter is refused and `onFailure` is told, so
 * the process can stop rather than acknowledge writes it cannot keep.
 */
export class WalFlusher {
  private running: Promise<void> | null = null;
  private queued: Promise<void> | null = null;
  private failed: Error | null = null;
  private readonly file: WalFile | null;
  private readonly syncFile: (path: string) => Promise<void>;
  /** fdatasyncs done (for tests and metrics). */
  syncs = 0;
  /** How long the syncs took, and how long callers waited for theirs (a write's share of its latency). */
  readonly timing = { syncMs: 0, waits: 0, waitMs: 0 };

  constructor(
    private readonly walPath: string | null,
    private readonly onFailure: (error: Error) => void = () => {},
    syncFile?: (path: string) => Promise<void>,
  ) {
    this.file = syncFile === undefined && walPath !== null ? new WalFile(walPath) : null;
    this.syncFile = syncFile ?? (() => this.file!.dataSync());
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

  /** Closes the kept WAL descriptor (after the database is closed). */
  close(): Promise<void> {
    return this.file?.close() ?? Promise.resolve();
  }

  private flush(): Promise<void> {
    if (this.walPath === null) return Promise.resolve();
    if (this.failed !== null) return Promise.reject(this.failed);
    if (this.running === null) return this.start();
    this.queued ??= this.running.then(
      () => this.startQueued(),
      () => this.startQueued(),
    );
    return this.queued;
  }

  private startQueued(): Promise<void> {
    this.queued = null;
    return this.failed === null ? this.start() : Promise.reject(this.failed);
  }

  private start(): Promise<void> {
    const started = performance.now();
    const run = this.syncFile(this.walPath!).then(
      () => {
        this.syncs += 1;
        this.timing.syncMs += performance.now() - started;
      },
      (error: unknown) => {
        this.failed = error instanceof Error ? error : new Error(String(error));
        this.onFailure(this.failed);
        throw this.failed;
      },
    );
    this.running = run.finally(() => {
      this.running = null;
    });
    // The waiters see the sync's outcome; `running` (which also settles) only orders the next one.
    this.running.catch(() => {});
    return run;
  }
}
