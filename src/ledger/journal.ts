import Database from 'better-sqlite3';
import { Worker } from 'node:worker_threads';
import { openJournalCommitter, type JournalCommitter } from './journal-commit.js';
import { SCHEMA, SETTLED_THROUGH, type JournalOp, type WriteFailure } from './journal-ops.js';
import type { EntityType } from './protocol.js';

/**
 * The node's money journal (money.db in the data directory): reservations,
 * leases and rated CDRs, so that after a crash the node knows what it
 * admitted, what it holds and what it still owes the centre.
 *
 * Group commit: writes queue up during an event-loop turn and commit as one
 * batch, in one transaction; each caller's promise settles after the
 * commit, so an acknowledgement never precedes its commit. With durability
 * `full` the commits (and their fsyncs) run in a writer thread; checkpoints
 * always run in their own thread, so no commit waits on one. A write that
 * fails does not fail the others.
 *
 * Durability is a setting: `normal` (synchronous=NORMAL in WAL mode) survives
 * a crash of the process; `full` survives power loss too, at ~15x the cost
 * per commit.
 */
export type Durability = 'normal' | 'full';

export interface StoredReservation {
  id: number;
  call_id: string;
  entity_type: EntityType;
  entity_id: number;
  amount_micro: number;
  max_duration: number | null;
  expires_at: number;
  /** The admission answer as sent, replayed for a repeated call id. */
  answer: string;
}

export interface StoredCdr {
  id: number;
  sip_call_id: string;
  /** The request's figures, to tell a resend from a different CDR under the same Call-ID. */
  fingerprint: string;
  /** The IngestResult as answered. */
  result: string;
  settlement: string;
  account_id: number;
  charge_micro: number;
}

export interface StoredLease {
  entity_type: EntityType;
  entity_id: number;
  granted_micro: number;
  headroom_micro: number | null;
}

interface Batch {
  writes: JournalOp[][];
  settle: { resolve: () => void; reject: (error: unknown) => void }[];
}

/** A write that could not be made durable, with SQLite's error code: nothing it stood for may be acknowledged. */
export class JournalWriteError extends Error {
  constructor(
    message: string,
    readonly code: string | undefined,
  ) {
    super(message);
    this.name = 'JournalWriteError';
  }
}

export class MoneyJournal {
  /** For reads (start-up recovery, the duplicate checks); writes go through the committer. */
  private readonly db: Database.Database;
  /** Durability `normal`: commits on the event loop (a WAL append, no fsync, microseconds). */
  private readonly inline: JournalCommitter | null = null;
  /** Durability `full`: commits, and their fsyncs, in the writer thread. */
  private readonly writer: Worker | null = null;
  private readonly checkpointer: Worker;
  private pending: Batch = { writes: [], settle: [] };
  private flushScheduled = false;
  private readonly inFlight = new Map<number, Batch>();
  private nextSeq = 1;
  private broken: Error | null = null;
  private readonly statements: ReturnType<MoneyJournal['prepare']>;

  constructor(path: string, durability: Durability) {
    this.db = new Database(path);
    // Small pages: each commit appends every page it touched to the WAL, and a commit here is a row or two.
    // (Takes effect when the file is created.)
    this.db.pragma('page_size = 1024');
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('busy_timeout = 2000');
    this.db.exec(SCHEMA);
    this.statements = this.prepare();
    // Measured: handing each batch to a thread and back cost more at the tail (thread wake-ups on a busy
    // machine) than a WAL append on the event loop; an fsync per commit is another matter.
    if (durability === 'normal') {
      this.inline = openJournalCommitter(path, durability);
    } else {
      const writer = new Worker(new URL('./journal-writer.js', import.meta.url), { workerData: { path, durability } });
      writer.on('message', (reply: { seq: number; failures: WriteFailure[] }) => this.settle(reply));
      const fail = (error: Error): void => {
        this.broken = error;
        for (const batch of this.inFlight.values()) for (const { reject } of batch.settle) reject(error);
        this.inFlight.clear();
      };
      writer.on('error', (error) => fail(new JournalWriteError(`journal writer failed: ${error.message}`, 'WRITER_FAILED')));
      writer.on('exit', (code) => fail(new JournalWriteError(`journal writer exited (${code})`, 'WRITER_EXITED')));
      this.writer = writer;
    }
    this.checkpointer = new Worker(new URL('./checkpointer.js', import.meta.url), { workerData: { path, intervalMs: 1000 } });
    this.checkpointer.unref();
  }

  private prepare() {
    const db = this.db;
    return {
      findCdr: db.prepare('SELECT id, sip_call_id, fingerprint, result, settlement, account_id, charge_micro FROM cdrs WHERE sip_call_id = ?'),
      maxCdrId: db.prepare('SELECT MAX(id) AS id FROM cdrs'),
      readMeta: db.prepare('SELECT value FROM meta WHERE key = ?'),
      writeMeta: db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value'),
    };
  }

  /** Queues ops to commit together in the next batch; resolves once they are durable. */
  write(...ops: JournalOp[]): Promise<void> {
    if (this.broken !== null) return Promise.reject(this.broken);
    return new Promise((resolve, reject) => {
      this.pending.writes.push(ops);
      this.pending.settle.push({ resolve, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /**
   * Commits what is queued. To the writer thread, one batch at a time: the next holds everything that
   * queued meanwhile, so a batch is as big as a commit is slow.
   */
  private flush(): void {
    this.flushScheduled = false;
    if (this.inFlight.size > 0) return;
    const batch = this.pending;
    this.pending = { writes: [], settle: [] };
    if (batch.writes.length === 0) return;
    if (this.inline !== null) {
      this.settleBatch(batch, this.inline.commit(batch.writes));
      return;
    }
    const seq = this.nextSeq++;
    this.inFlight.set(seq, batch);
    this.writer!.postMessage({ seq, writes: batch.writes });
  }

  private settle(reply: { seq: number; failures: WriteFailure[] }): void {
    const batch = this.inFlight.get(reply.seq);
    if (batch === undefined) return;
    this.inFlight.delete(reply.seq);
    this.settleBatch(batch, reply.failures);
    this.flush();
  }

  private settleBatch(batch: Batch, failures: WriteFailure[]): void {
    const failed = new Map(failures.map((failure) => [failure.index, failure]));
    batch.settle.forEach(({ resolve, reject }, index) => {
      const failure = failed.get(index);
      if (failure === undefined) resolve();
      else reject(new JournalWriteError(failure.message, failure.code));
    });
  }

  // Reads: start-up recovery, and the duplicate check of CDR ingest (one indexed row).
  findCdr(sipCallId: string): StoredCdr | null {
    return (this.statements.findCdr.get(sipCallId) as StoredCdr | undefined) ?? null;
  }

  lastCdrId(): number {
    return (this.statements.maxCdrId.get() as { id: number | null }).id ?? 0;
  }

  heldReservations(): StoredReservation[] {
    return this.db.prepare(`SELECT * FROM reservations WHERE state = 'held'`).all() as StoredReservation[];
  }

  /** The newest finished ones, oldest first, so that the newest end up last in an insertion-ordered map. */
  recentlyFinishedReservations(limit: number): StoredReservation[] {
    return this.db
      .prepare(`SELECT * FROM (SELECT * FROM reservations WHERE state != 'held' ORDER BY id DESC LIMIT ?) ORDER BY id`)
      .all(limit) as StoredReservation[];
  }

  lastReservationId(): number {
    return (this.db.prepare('SELECT MAX(id) AS id FROM reservations').get() as { id: number | null }).id ?? 0;
  }

  leases(): StoredLease[] {
    return this.db.prepare('SELECT * FROM leases').all() as StoredLease[];
  }

  unsettledCdrs(): StoredCdr[] {
    return this.db.prepare('SELECT * FROM cdrs WHERE id > ? ORDER BY id').all(this.settledThrough()) as StoredCdr[];
  }

  private settledThrough(): number {
    return (this.statements.readMeta.get(SETTLED_THROUGH) as { value: number } | undefined)?.value ?? 0;
  }

  /** A counter that survives restarts, handed out in blocks so it is written once per block. */
  reserveCounterBlock(key: string, blockSize: number): number {
    const start = ((this.statements.readMeta.get(key) as { value: number } | undefined)?.value ?? 0) + 1;
    this.statements.writeMeta.run(key, start + blockSize - 1);
    return start;
  }

  /** Moves a counter up to at least `value`. */
  raiseCounter(key: string, value: number): void {
    const current = (this.statements.readMeta.get(key) as { value: number } | undefined)?.value ?? 0;
    if (value > current) this.statements.writeMeta.run(key, value);
  }

  /** Waits for every queued write to commit, then stops the writer thread. */
  async close(): Promise<void> {
    this.flush();
    while ((this.inFlight.size > 0 || this.pending.writes.length > 0) && this.broken === null) await new Promise((resolve) => setTimeout(resolve, 5));
    this.checkpointer.postMessage('stop');
    if (this.writer !== null) {
      const writer = this.writer;
      writer.postMessage('stop');
      await new Promise((resolve) => writer.once('exit', resolve));
    }
    this.inline?.close();
    this.db.close();
  }
}
