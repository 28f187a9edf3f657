import Database from 'better-sqlite3';
import { Worker } from 'node:worker_threads';
import type { EntityType } from './protocol.js';

/**
 * The node's money journal (money.db in the data directory): reservations,
 * leases and rated CDRs, so that after a crash the node knows what it
 * admitted, what it holds and what it still owes the centre.
 *
 * Group commit: writes queue up and commit together in one transaction at
 * the end of the event-loop turn; each caller's promise settles after the
 * commit, so an acknowledgement never precedes its commit. A write that
 * fails does not fail the others: the batch is then committed one by one.
 *
 * Durability is a setting: `normal` (synchronous=NORMAL in WAL mode) survives
 * a crash of the process; `full` survives power loss too, at ~15x the cost
 * per commit.
 */
export type Durability = 'normal' | 'full';
const SETTLED_THROUGH = 'cdrs_settled_through';
export type ReservationState = 'held' | 'settled' | 'released' | 'expired';

export interface StoredReservation {
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

interface PendingWrite {
  write: () => void;
  resolve: () => void;
  reject: (error: unknown) => void;
}

export class MoneyJournal {
  private readonly db: Database.Database;
  private pending: PendingWrite[] = [];
  private flushScheduled = false;
  private readonly statements: ReturnType<MoneyJournal['prepare']>;
  private readonly checkpointer: Worker;
  // Built once: better-sqlite3's transaction() wrapper is costly to build per call.
  private readonly commitBatch: (batch: PendingWrite[]) => void;
  private readonly commitOne: (write: () => void) => void;

  constructor(path: string, durability: Durability) {
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma(`synchronous = ${durability === 'full' ? 'FULL' : 'NORMAL'}`);
    // Checkpoints (and their fsync) run in a worker, not inside a commit on the event loop.
    this.db.pragma('wal_autocheckpoint = 0');
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS reservations (
        call_id TEXT PRIMARY KEY, entity_type TEXT NOT NULL, entity_id INTEGER NOT NULL, amount_micro INTEGER NOT NULL,
        max_duration INTEGER, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, state TEXT NOT NULL,
        finished_at INTEGER, answer TEXT NOT NULL);
      CREATE INDEX IF NOT EXISTS reservations_held ON reservations(state) WHERE state = 'held';
      CREATE TABLE IF NOT EXISTS leases (
        entity_type TEXT NOT NULL, entity_id INTEGER NOT NULL, granted_micro INTEGER NOT NULL, headroom_micro INTEGER,
        PRIMARY KEY (entity_type, entity_id));
      CREATE TABLE IF NOT EXISTS cdrs (
        id INTEGER PRIMARY KEY, sip_call_id TEXT NOT NULL UNIQUE, fingerprint TEXT NOT NULL, result TEXT NOT NULL,
        settlement TEXT NOT NULL, account_id INTEGER NOT NULL, charge_micro INTEGER NOT NULL, created_at INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
    `);
    this.statements = this.prepare();
    this.commitBatch = this.db.transaction((batch: PendingWrite[]) => {
      for (const entry of batch) entry.write();
    });
    this.commitOne = this.db.transaction((write: () => void) => write());
    this.checkpointer = new Worker(new URL('./checkpointer.js', import.meta.url), { workerData: { path, intervalMs: 1000 } });
    this.checkpointer.unref();
  }

  private prepare() {
    const db = this.db;
    return {
      insertReservation: db.prepare(
        `INSERT INTO reservations (call_id, entity_type, entity_id, amount_micro, max_duration, created_at, expires_at, state, answer)
         VALUES (?, ?, ?, ?, ?, ?, ?, 'held', ?)`,
      ),
      finishReservation: db.prepare(`UPDATE reservations SET state = ?, finished_at = ? WHERE call_id = ? AND state = 'held'`),
      upsertLease: db.prepare(
        `INSERT INTO leases (entity_type, entity_id, granted_micro, headroom_micro) VALUES (?, ?, ?, ?)
         ON CONFLICT (entity_type, entity_id) DO UPDATE SET granted_micro = excluded.granted_micro, headroom_micro = excluded.headroom_micro`,
      ),
      insertCdr: db.prepare(
        `INSERT INTO cdrs (id, sip_call_id, fingerprint, result, settlement, account_id, charge_micro, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      findCdr: db.prepare('SELECT id, sip_call_id, fingerprint, result, settlement, account_id, charge_micro FROM cdrs WHERE sip_call_id = ?'),
      maxCdrId: db.prepare('SELECT MAX(id) AS id FROM cdrs'),
      readMeta: db.prepare('SELECT value FROM meta WHERE key = ?'),
      writeMeta: db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value'),
    };
  }

  /** Queues a write for the next group commit; resolves once it is committed. */
  write(write: () => void): Promise<void> {
    return new Promise((resolve, reject) => {
      this.pending.push({ write, resolve, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.flushScheduled = false;
    const batch = this.pending;
    this.pending = [];
    try {
      this.commitBatch(batch);
    } catch {
      // One write failed (a duplicate key, say) and took the batch's transaction with it: commit each alone,
      // so only the failing one is refused.
      for (const entry of batch) {
        try {
          this.commitOne(entry.write);
          entry.resolve();
        } catch (error) {
          entry.reject(error);
        }
      }
      return;
    }
    for (const entry of batch) entry.resolve();
  }

  // Statements for use inside write().
  insertReservation(r: { callId: string; entity: { type: EntityType; id: number }; amountMicro: number; maxDurationSeconds: number | null; expiresAt: number; answer: string }, createdAt: number): void {
    this.statements.insertReservation.run(r.callId, r.entity.type, r.entity.id, r.amountMicro, r.maxDurationSeconds, createdAt, r.expiresAt, r.answer);
  }

  finishReservation(callId: string, state: Exclude<ReservationState, 'held'>, at: number): void {
    this.statements.finishReservation.run(state, at, callId);
  }

  saveLease(lease: StoredLease): void {
    this.statements.upsertLease.run(lease.entity_type, lease.entity_id, lease.granted_micro, lease.headroom_micro);
  }

  insertCdr(cdr: StoredCdr, createdAt: number): void {
    this.statements.insertCdr.run(cdr.id, cdr.sip_call_id, cdr.fingerprint, cdr.result, cdr.settlement, cdr.account_id, cdr.charge_micro, createdAt);
  }

  /**
   * Every CDR up to this id is settled at the centre. Rounds take the outbox in id order, so a mark
   * (one row) replaces an update per CDR: a round settles up to a thousand.
   */
  markSettledThrough(id: number): void {
    this.statements.writeMeta.run(SETTLED_THROUGH, id);
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

  /** Oldest first, so that the newest end up last in an insertion-ordered map. */
  recentlyFinishedReservations(limit: number): StoredReservation[] {
    return this.db
      .prepare(`SELECT * FROM (SELECT * FROM reservations WHERE state != 'held' ORDER BY finished_at DESC LIMIT ?) ORDER BY finished_at`)
      .all(limit) as StoredReservation[];
  }

  findReservation(callId: string): StoredReservation | null {
    return (this.db.prepare('SELECT * FROM reservations WHERE call_id = ?').get(callId) as StoredReservation | undefined) ?? null;
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

  /** Drops finished reservations and settled CDRs older than `before` (epoch ms). */
  prune(before: number): { reservations: number; cdrs: number } {
    const reservations = this.db.prepare(`DELETE FROM reservations WHERE state != 'held' AND finished_at < ?`).run(before).changes;
    const cdrs = this.db.prepare('DELETE FROM cdrs WHERE id <= ? AND created_at < ?').run(this.settledThrough(), before).changes;
    return { reservations, cdrs };
  }

  close(): void {
    if (this.pending.length > 0) this.flush();
    this.checkpointer.postMessage('stop');
    this.db.pragma('wal_checkpoint(TRUNCATE)');
    this.db.close();
  }
}
