import Database from 'better-sqlite3';
import { SETTLED_THROUGH, migrateSchema, type JournalOp } from './ops.js';
import { answerOf } from './held-reservation.js';
import { writeRatedOp } from './rated-cdr.js';
import { JsonBytes } from '../../core/json/json-bytes.js';
import { finishedInPass, type FinishedInPass } from './finished-in-pass.js';
import type { AppliedOp } from './rated-row.js';

/**
 * money.db's writing side: applies the log's ops (journal-log.ts), together
 * with how far into the log they go, in one transaction, so each op is
 * applied exactly once whatever stops the process. Used by start-up recovery
 * and by the applier thread, never on the event loop's request path.
 *
 * Durable commits (synchronous=FULL): a segment is deleted once the position
 * past it is committed, so that commit must survive power loss.
 */
export interface LogPosition {
  segment: number;
  offset: number;
}

/** An op SQLite refused on a constraint (a defect upstream, never a full disk): skipped, and reported. */
export interface SkippedOp {
  op: JournalOp['op'];
  code: string | undefined;
  message: string;
}

function isConstraintError(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' && code.startsWith('SQLITE_CONSTRAINT');
}

const SEGMENT_KEY = 'log_segment';
const OFFSET_KEY = 'log_offset';

export class JournalStore {
  private readonly db: Database.Database;
  private readonly statements: ReturnType<JournalStore['prepare']>;
  /**
   * A rated CDR given as the op (not as a row read from a record: rated-row.ts) has its \`rated\` column written
   * here, as the log's op (writeRatedOp), then copied by the bind.
   */
  private readonly ratedBytes = new JsonBytes(4096);
  /** With `skipped`, an op refused on a constraint is noted there instead of failing the transaction. */
  private readonly applyInTransaction: (ops: AppliedOp[], position: LogPosition, skipped: SkippedOp[] | null) => void;

  constructor(path: string) {
    this.db = new Database(path);
    this.db.pragma('page_size = 1024'); // takes effect when the file is created
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.pragma('busy_timeout = 5000');
    migrateSchema(this.db);
    this.statements = this.prepare();
    this.applyInTransaction = this.db.transaction((ops: AppliedOp[], position: LogPosition, skipped: SkippedOp[] | null) => {
      // Op by op when some are skipped: a reservation refused on a constraint leaves its finish to apply alone, as it always did.
      const finished = skipped === null ? finishedInPass(ops) : null;
      for (const op of ops) {
        try {
          this.apply(op, finished);
        } catch (error) {
          if (skipped === null || !isConstraintError(error)) throw error;
          skipped.push({
            op: op.op === 'ratedRow' ? 'rated' : op.op,
            code: (error as { code: string }).code,
            message: error instanceof Error ? error.message : String(error),
          });
        }
      }
      this.writePosition(position);
    });
  }

  private prepare() {
    const db = this.db;
    return {
      insertReservation: db.prepare(
        `INSERT INTO reservations (id, call_id, entity_type, entity_id, amount_micro, max_duration, created_at, expires_at, state, finished_at, answer, slice, customer_trunk_id)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      extendReservation: db.prepare(`UPDATE reservations SET amount_micro = ?, expires_at = ?, slice = ? WHERE id = ? AND state = 'held'`),
      finishReservation: db.prepare(`UPDATE reservations SET state = ?, finished_at = ? WHERE id = ? AND state = 'held'`),
      upsertLease: db.prepare(
        `INSERT INTO leases (entity_type, entity_id, granted_micro, headroom_micro) VALUES (?, ?, ?, ?)
         ON CONFLICT (entity_type, entity_id) DO UPDATE SET granted_micro = excluded.granted_micro, headroom_micro = excluded.headroom_micro`,
      ),
      insertCdr: db.prepare(
        `INSERT INTO cdrs (id, sip_call_id, fingerprint, result, settlement, account_id, charge_micro, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      insertRatedCdr: db.prepare(
        `INSERT INTO cdrs (id, sip_call_id, fingerprint, result, settlement, account_id, charge_micro, created_at, rated)
         VALUES (?, ?, '', '', '', ?, ?, ?, ?)`,
      ),
      writeMeta: db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value'),
      readMeta: db.prepare('SELECT value FROM meta WHERE key = ?'),
      pruneReservations: db.prepare(`DELETE FROM reservations WHERE state != 'held' AND finished_at < ?`),
      pruneCdrs: db.prepare('DELETE FROM cdrs WHERE id <= ? AND created_at < ?'),
    };
  }

  /** Where the applied part of the log ends. */
  position(): LogPosition {
    return { segment: this.meta(SEGMENT_KEY), offset: this.meta(OFFSET_KEY) };
  }

  /**
   * Applies the ops and moves the position, in one transaction. An op refused on a constraint is
   * skipped (the rest still apply) and returned; any other failure (a full disk, I/O) applies
   * nothing and throws, to be tried again.
   */
  applyOps(ops: AppliedOp[], position: LogPosition): SkippedOp[] {
    try {
      this.applyInTransaction(ops, position, null);
      return [];
    } catch (error) {
      if (!isConstraintError(error)) throw error;
      const skipped: SkippedOp[] = [];
      this.applyInTransaction(ops, position, skipped);
      return skipped;
    }
  }

  close(): void {
    this.db.close();
  }

  private meta(key: string): number {
    return (this.statements.readMeta.get(key) as { value: number } | undefined)?.value ?? 0;
  }

  private writePosition(position: LogPosition): void {
    this.statements.writeMeta.run(SEGMENT_KEY, position.segment);
    this.statements.writeMeta.run(OFFSET_KEY, position.offset);
  }

  private apply(op: AppliedOp, finished: FinishedInPass | null): void {
    const s = this.statements;
    switch (op.op) {
      case 'held':
      case 'reserve': {
        // Finished later in this pass: the row goes in as it will be at the commit (finished-in-pass.ts).
        const finish = finished?.finishOf.get(op);
        s.insertReservation.run(
          op.id,
          op.callId,
          op.entityType,
          op.entityId,
          op.amountMicro,
          op.maxDuration,
          op.createdAt,
          op.expiresAt,
          finish === undefined ? 'held' : finish.state,
          finish === undefined ? null : finish.at,
          // A held reservation's answer column is made from its figures, here on the applier's thread; an old
          // log's reserve op carries the text.
          op.op === 'held' ? answerOf(op) : op.answer,
          op.slice,
          op.trunkId ?? null,
        );
        return;
      }
      case 'extend':
        s.extendReservation.run(op.amountMicro, op.expiresAt, op.slice, op.id);
        return;
      case 'finish':
        if (finished?.folded.has(op) === true) return;
        s.finishReservation.run(op.state, op.at, op.id);
        return;
      case 'lease':
        s.upsertLease.run(op.entityType, op.entityId, op.grantedMicro, op.headroomMicro);
        return;
      case 'cdr':
        s.insertCdr.run(op.id, op.sipCallId, op.fingerprint, op.result, op.settlement, op.accountId, op.chargeMicro, op.createdAt);
        return;
      // From a record: the op's bytes as the log holds them are the column (rated-row.ts).
      case 'ratedRow':
        s.insertRatedCdr.run(op.id, op.sipCallId, op.accountId, op.chargeMicro, op.createdAt, op.bytes);
        return;
      case 'rated': {
        // The figures, not the texts (ops.ts, the cdrs table): a restart's outbox and a resend's answer make
        // those from them (storedCdrOfRow), which is rare; making and binding the three texts here, for every
        // CDR, and writing their ~1.2 KB through money.db's pages was most of what a CDR cost this thread.
        const out = this.ratedBytes;
        out.reset();
        writeRatedOp(out, op);
        s.insertRatedCdr.run(op.id, op.sipCallId, op.accountId, op.chargeMicro, op.createdAt, out.bytes.subarray(0, out.length));
        return;
      }
      case 'settledThrough':
        s.writeMeta.run(SETTLED_THROUGH, op.id);
        return;
      case 'prune':
        s.pruneReservations.run(op.reservationsBefore);
        s.pruneCdrs.run(this.meta(SETTLED_THROUGH), op.cdrsBefore);
        return;
      case 'counter':
        s.writeMeta.run(op.key, op.value);
        return;
    }
  }
}
