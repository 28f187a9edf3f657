import Database from 'better-sqlite3';
import { SCHEMA, SETTLED_THROUGH, type JournalOp, type WriteFailure } from './journal-ops.js';

/**
 * The money journal's writing connection: applies batches of writes, each
 * batch in one transaction. A batch whose transaction fails is committed
 * write by write, so only the failing write is refused. Used on the event
 * loop (durability `normal`: a commit is a write to the WAL, no fsync) or in
 * the writer thread (durability `full`: a commit waits for its fsync).
 * Checkpoints run elsewhere (checkpointer.ts), never inside a commit.
 */
export interface JournalCommitter {
  commit(writes: JournalOp[][]): WriteFailure[];
  close(): void;
}

export function openJournalCommitter(path: string, durability: 'normal' | 'full'): JournalCommitter {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma(`synchronous = ${durability === 'full' ? 'FULL' : 'NORMAL'}`);
  db.pragma('busy_timeout = 5000');
  db.pragma('wal_autocheckpoint = 0');
  db.exec(SCHEMA);

  const insertReservation = db.prepare(
    `INSERT INTO reservations (id, call_id, entity_type, entity_id, amount_micro, max_duration, created_at, expires_at, state, answer)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'held', ?)`,
  );
  const finishReservation = db.prepare(`UPDATE reservations SET state = ?, finished_at = ? WHERE id = ? AND state = 'held'`);
  const upsertLease = db.prepare(
    `INSERT INTO leases (entity_type, entity_id, granted_micro, headroom_micro) VALUES (?, ?, ?, ?)
     ON CONFLICT (entity_type, entity_id) DO UPDATE SET granted_micro = excluded.granted_micro, headroom_micro = excluded.headroom_micro`,
  );
  const insertCdr = db.prepare(`INSERT INTO cdrs (id, sip_call_id, fingerprint, result, settlement, account_id, charge_micro, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`);
  const writeMeta = db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value');
  const readMeta = db.prepare('SELECT value FROM meta WHERE key = ?');
  const pruneReservations = db.prepare(`DELETE FROM reservations WHERE state != 'held' AND finished_at < ?`);
  const pruneCdrs = db.prepare('DELETE FROM cdrs WHERE id <= ? AND created_at < ?');

  const apply = (op: JournalOp): void => {
    switch (op.op) {
      case 'reserve':
        insertReservation.run(op.id, op.callId, op.entityType, op.entityId, op.amountMicro, op.maxDuration, op.createdAt, op.expiresAt, op.answer);
        return;
      case 'finish':
        finishReservation.run(op.state, op.at, op.id);
        return;
      case 'lease':
        upsertLease.run(op.entityType, op.entityId, op.grantedMicro, op.headroomMicro);
        return;
      case 'cdr':
        insertCdr.run(op.id, op.sipCallId, op.fingerprint, op.result, op.settlement, op.accountId, op.chargeMicro, op.createdAt);
        return;
      case 'settledThrough':
        writeMeta.run(SETTLED_THROUGH, op.id);
        return;
      case 'prune': {
        pruneReservations.run(op.reservationsBefore);
        const settled = (readMeta.get(SETTLED_THROUGH) as { value: number } | undefined)?.value ?? 0;
        pruneCdrs.run(settled, op.cdrsBefore);
        return;
      }
    }
  };
  const commitAll = db.transaction((writes: JournalOp[][]) => {
    for (const write of writes) for (const op of write) apply(op);
  });
  const commitOne = db.transaction((write: JournalOp[]) => {
    for (const op of write) apply(op);
  });

  return {
    commit(writes) {
      const failures: WriteFailure[] = [];
      try {
        commitAll(writes);
      } catch {
        writes.forEach((write, index) => {
          try {
            commitOne(write);
          } catch (error) {
            failures.push({ index, code: (error as { code?: string }).code, message: error instanceof Error ? error.message : String(error) });
          }
        });
      }
      return failures;
    },
    close() {
      db.close();
    },
  };
}
