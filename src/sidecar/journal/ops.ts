import type { EntityType } from '../../core/protocol/node-sync.js';
import type { HeldReservation } from './held-reservation.js';
import type { RatedCdr } from './rated-cdr.js';

/**
 * What the money journal records, as plain data: the log carries them
 * (journal-log.ts) and the applier writes them into money.db
 * (journal-store.ts). One write is a list of ops made durable together.
 */
export type JournalOp =
  /** A reservation (held-reservation.ts); since 2026-12-07 the only op a node writes for one. */
  | HeldReservation
  /** A reservation as logs written before 2026-12-07 hold it, with its answer text: still read and applied. */
  | {
      op: 'reserve';
      id: number;
      callId: string;
      entityType: EntityType;
      entityId: number;
      amountMicro: number;
      maxDuration: number | null;
      createdAt: number;
      expiresAt: number;
      answer: string;
      /** A sliced call's SliceTerms as JSON; null: the whole call is reserved. */
      slice: string | null;
      /** The customer trunk whose port the call holds; null (or absent, in logs from before ports): none. */
      trunkId?: number | null;
    }
  /** A sliced call bought its next slice (or is being ended: the terms say so). */
  | { op: 'extend'; id: number; amountMicro: number; expiresAt: number; slice: string }
  /** `ended`: OpenSIPS no longer has the call's dialog, and no CDR came. */
  | { op: 'finish'; id: number; state: 'settled' | 'released' | 'expired' | 'ended'; at: number }
  | { op: 'lease'; entityType: EntityType; entityId: number; grantedMicro: number; headroomMicro: number | null }
  /** A rated CDR (rated-cdr.ts); since 2026-12-07 the only op a node writes for one. */
  | RatedCdr
  /** A rated CDR as logs written before 2026-12-07 hold it, with its texts: still read and applied. */
  | {
      op: 'cdr';
      id: number;
      sipCallId: string;
      fingerprint: string;
      result: string;
      settlement: string;
      accountId: number;
      chargeMicro: number;
      createdAt: number;
    }
  /** Every CDR up to `id` is settled at the centre (rounds take the outbox in id order). */
  | { op: 'settledThrough'; id: number }
  /** Drops reservations finished before `reservationsBefore` and settled CDRs created before `cdrsBefore`. */
  | { op: 'prune'; reservationsBefore: number; cdrsBefore: number }
  /** A counter's new high mark (the last number of the block handed out). */
  | { op: 'counter'; key: string; value: number };

export const SETTLED_THROUGH = 'cdrs_settled_through';

export const SCHEMA = `
  -- Keyed by an id the node hands out in order, not by Call-ID: a commit then appends to the last pages
  -- of the table and of the live-reservation index instead of touching a page anywhere in a Call-ID index.
  -- A repeated Call-ID is answered from memory (live and recently finished reservations).
  CREATE TABLE IF NOT EXISTS reservations (
    id INTEGER PRIMARY KEY, call_id TEXT NOT NULL, entity_type TEXT NOT NULL, entity_id INTEGER NOT NULL, amount_micro INTEGER NOT NULL,
    max_duration INTEGER, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, state TEXT NOT NULL,
    finished_at INTEGER, answer TEXT NOT NULL, slice TEXT, customer_trunk_id INTEGER);
  CREATE INDEX IF NOT EXISTS reservations_held ON reservations(id) WHERE state = 'held';
  -- The prune's: without them each prune read every row kept (millions on a busy node).
  CREATE INDEX IF NOT EXISTS reservations_finished ON reservations(finished_at) WHERE state != 'held';
  CREATE TABLE IF NOT EXISTS leases (
    entity_type TEXT NOT NULL, entity_id INTEGER NOT NULL, granted_micro INTEGER NOT NULL, headroom_micro INTEGER,
    PRIMARY KEY (entity_type, entity_id));
  -- A CDR the node rated itself keeps its figures in \`rated\` (the log's \`rated\` op, UTF-8 JSON, ~330 bytes) and
  -- leaves fingerprint, result and settlement empty: the texts (~1.2 KB) are made from the figures when read
  -- (a resend, a restart's outbox), which is rare, instead of by the applier for every CDR. Rows from logs
  -- written before (the \`cdr\` op) keep their texts and no \`rated\`.
  CREATE TABLE IF NOT EXISTS cdrs (
    id INTEGER PRIMARY KEY, sip_call_id TEXT NOT NULL UNIQUE, fingerprint TEXT NOT NULL, result TEXT NOT NULL,
    settlement TEXT NOT NULL, account_id INTEGER NOT NULL, charge_micro INTEGER NOT NULL, created_at INTEGER NOT NULL,
    rated BLOB);
  CREATE INDEX IF NOT EXISTS cdrs_created ON cdrs(created_at);
  CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
`;

/** money.db files made before a column existed get it (CREATE TABLE IF NOT EXISTS leaves an old table as it was). */
export function migrateSchema(db: { exec(sql: string): unknown; prepare(sql: string): { all(): unknown[] } }): void {
  db.exec(SCHEMA);
  const columns = (db.prepare('PRAGMA table_info(reservations)').all() as { name: string }[]).map((column) => column.name);
  if (!columns.includes('slice')) db.exec('ALTER TABLE reservations ADD COLUMN slice TEXT');
  // Live calls per trunk are counted from held reservations at start-up; rows from before hold no port.
  if (!columns.includes('customer_trunk_id')) db.exec('ALTER TABLE reservations ADD COLUMN customer_trunk_id INTEGER');
  const cdrColumns = (db.prepare('PRAGMA table_info(cdrs)').all() as { name: string }[]).map((column) => column.name);
  if (!cdrColumns.includes('rated')) db.exec('ALTER TABLE cdrs ADD COLUMN rated BLOB');
}
