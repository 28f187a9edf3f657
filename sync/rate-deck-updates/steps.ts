import { allRows, getRow, runSql, type Steps } from '../ledger/sql-steps.js';
import type { LiveChanges } from '../partner/store.js';
import type { ImportedRate, Row } from '../store/config-store.js';

/**
 * The rate-deck update logic written once for both engines (the ledger's steps: sync/ledger/sql-steps.ts):
 * each function is one transaction's statements; store.ts runs them on SQLite, pg-store.ts on PostgreSQL.
 * A trunk whose status a transaction changes has its customer_trunks delta appended in that transaction, by
 * the engine's delta log (`live`, an engine step).
 *
 * On PostgreSQL (READ COMMITTED) the row-locking steps hold apart what SQLite's one writer serialises:
 * an activation locks its deck (two updates of one deck activated at once would each leave the other
 * active) and the trunks it notifies; a reinstatement locks its trunk (a concurrent activation's new
 * suspension is then seen, not overwritten).
 */
export type UpdateStatus = 'pending' | 'active' | 'superseded';

export interface NewUpdate {
  rate_deck_id: number;
  update_type: string;
  effective_at: string;
  suspend_until_downloaded: boolean;
  created_by: number | null;
}

/** What one activation did, for the log and the sync it triggers. */
export interface Activation {
  id: number;
  rate_deck_id: number;
  notified: number[];
  suspended: number[];
  superseded: number[];
}

export interface Reinstatement {
  reinstated: boolean;
  /** Other updates whose suspension of the trunk still waits for a download: the trunk stays suspended. */
  stillSuspendedBy: number[];
}

export type UpdateRate = Omit<ImportedRate, 'effective_at'>;

/** How an engine writes an update's rates (one statement per row on SQLite, batches on PostgreSQL). */
export type RatesWriter = (deckId: number, updateId: number, rates: readonly UpdateRate[], from: string, now: string) => Steps<void>;

/** The rate columns an update writes, in the order both engines' inserts give them. */
export const UPDATE_RATE_COLUMNS =
  'rate_deck_id, prefix, destination_name, rate_per_minute, rate_type, billing_increment_initial, billing_increment_step, effective_at, created_at, updated_at, rate_deck_update_id';

export function* getUpdate(id: number): Steps<Row | null> {
  return (yield* getRow<Row>('SELECT * FROM rate_deck_updates WHERE id = ?', id)) ?? null;
}

export function* createUpdate(update: NewUpdate, rates: readonly UpdateRate[], now: string, writeRates: RatesWriter): Steps<Row> {
  // In force from the later of effective_at and now: a rate in force before it was written would reprice calls already made.
  const ratesFrom = update.effective_at > now ? update.effective_at : now;
  const created = (yield* getRow<Row>(
    `INSERT INTO rate_deck_updates (rate_deck_id, update_type, status, effective_at, suspend_until_downloaded, created_by, created_at)
     VALUES (?, ?, 'pending', ?, ?, ?, ?) RETURNING *`,
    update.rate_deck_id,
    update.update_type,
    update.effective_at,
    update.suspend_until_downloaded ? 1 : 0,
    update.created_by,
    now,
  ))!;
  if (rates.length > 0) yield* writeRates(update.rate_deck_id, created.id as number, rates, ratesFrom, now);
  return created;
}

export function* listUpdates(status: UpdateStatus | null, limit: number | null, offset: number): Steps<Row[]> {
  const where = status === null ? '' : 'WHERE status = ?';
  // SQLite's "no limit" is -1; PostgreSQL's is NULL.
  return yield* allRows<Row>(
    {
      sql: `SELECT * FROM rate_deck_updates ${where} ORDER BY id LIMIT ? OFFSET ?`,
      postgres: `SELECT * FROM rate_deck_updates ${where} ORDER BY id LIMIT NULLIF(?::bigint, -1) OFFSET ?`,
    },
    ...(status === null ? [] : [status]),
    limit ?? -1,
    offset,
  );
}

export function* notificationsOf(updateId: number): Steps<Row[]> {
  return yield* allRows<Row>(
    'SELECT * FROM rate_deck_customer_notifications WHERE rate_deck_update_id = ? ORDER BY customer_trunk_id',
    updateId,
  );
}

export function* ratesOf(updateId: number): Steps<number> {
  return (yield* getRow<{ n: number }>('SELECT COUNT(*) AS n FROM rate_deck_rates WHERE rate_deck_update_id = ?', updateId))!.n;
}

export function* removePending(id: number): Steps<'removed' | 'not_pending' | 'not_found'> {
  const row = yield* getRow<Row>(
    { sql: 'SELECT status FROM rate_deck_updates WHERE id = ?', postgres: 'SELECT status FROM rate_deck_updates WHERE id = ? FOR UPDATE' },
    id,
  );
  if (row === undefined) return 'not_found';
  if (row.status !== 'pending') return 'not_pending';
  yield* runSql('DELETE FROM rate_deck_rates WHERE rate_deck_update_id = ?', id);
  yield* runSql("DELETE FROM rate_deck_updates WHERE id = ? AND status = 'pending'", id);
  return 'removed';
}

export function* nextDue(): Steps<string | null> {
  return (yield* getRow<{ due: string | null }>("SELECT MIN(effective_at) AS due FROM rate_deck_updates WHERE status = 'pending'"))!.due;
}

export function* dueIds(now: string): Steps<number[]> {
  const rows = yield* allRows<{ id: number }>(
    "SELECT id FROM rate_deck_updates WHERE status = 'pending' AND effective_at <= ? ORDER BY effective_at, id",
    now,
  );
  return rows.map((row) => row.id);
}

/** One update made active, its deck's previous active update superseded, its trunks notified (and suspended). Null if it was not pending. */
export function* activate(id: number, now: string, live: LiveChanges | null): Steps<Activation | null> {
  const pending = yield* getUpdate(id);
  if (pending === null) return null;
  const deckId = pending.rate_deck_id as number;
  // NO KEY: rows that reference the deck (an update created meanwhile, its rates) are not held up by it.
  yield* getRow({ sql: '', onlyOn: 'postgres', postgres: 'SELECT id FROM rate_decks WHERE id = ? FOR NO KEY UPDATE' }, deckId);
  // The guard: a second scheduler (or this one after a restart) finds nothing left to do.
  const claimed = yield* runSql(
    "UPDATE rate_deck_updates SET status = 'active', activated_at = ? WHERE id = ? AND status = 'pending'",
    now,
    id,
  );
  if (claimed === 0) return null;
  const superseded = (yield* allRows<{ id: number }>(
    "SELECT id FROM rate_deck_updates WHERE rate_deck_id = ? AND status = 'active' AND id <> ? ORDER BY id",
    deckId,
    id,
  )).map((row) => row.id);
  yield* runSql(
    "UPDATE rate_deck_updates SET status = 'superseded', superseded_at = ? WHERE rate_deck_id = ? AND status = 'active' AND id <> ?",
    now,
    deckId,
    id,
  );
  // Every customer trunk the deck is assigned to now; a closed trunk (deleted) is not told anything.
  const trunksSql = `SELECT t.id, t.status FROM customer_trunk_rate_decks a JOIN customer_trunks t ON t.id = a.customer_trunk_id
     WHERE a.rate_deck_id = ? AND a.is_active = 1 AND t.status <> 'closed' ORDER BY t.id`;
  const trunks = yield* allRows<{ id: number; status: string }>(
    { sql: trunksSql, postgres: `${trunksSql} FOR NO KEY UPDATE OF t` },
    deckId,
  );
  const suspended: number[] = [];
  for (const trunk of trunks) {
    // An active trunk is suspended for this reason; one already suspended for an earlier update's download
    // now waits for this one's too. One the operator suspended stays the operator's to reinstate: a
    // download does not lift the operator's suspension.
    let suspends = false;
    if (pending.suspend_until_downloaded === 1) {
      const suspendedNow =
        (yield* runSql(
          "UPDATE customer_trunks SET status = 'suspended', updated_at = ? WHERE id = ? AND status = 'active'",
          now,
          trunk.id,
        )) > 0;
      if (suspendedNow) yield* trunkChanged(live, trunk.id);
      suspends = suspendedNow || (trunk.status === 'suspended' && (yield* waitsForDownload(trunk.id)).length > 0);
    }
    if (suspends) suspended.push(trunk.id);
    yield* runSql(
      'INSERT INTO rate_deck_customer_notifications (rate_deck_update_id, customer_trunk_id, notified_at, suspended_at) VALUES (?, ?, ?, ?)',
      id,
      trunk.id,
      now,
      suspends ? now : null,
    );
  }
  return { id, rate_deck_id: deckId, notified: trunks.map((trunk) => trunk.id), suspended, superseded };
}

/** Inside the transaction that changed trunk `id`'s status: its delta, the row as it now is. */
function* trunkChanged(live: LiveChanges | null, id: number): Steps<void> {
  if (live === null) return;
  yield* live.append('customer_trunks', id, (yield* getRow<Row>('SELECT * FROM customer_trunks WHERE id = ?', id))!);
}

/** The updates whose suspension of the trunk still waits for its download. */
function* waitsForDownload(trunkId: number): Steps<number[]> {
  const rows = yield* allRows<{ id: number }>(
    `SELECT rate_deck_update_id AS id FROM rate_deck_customer_notifications
     WHERE customer_trunk_id = ? AND suspended_at IS NOT NULL AND reinstated_at IS NULL ORDER BY rate_deck_update_id`,
    trunkId,
  );
  return rows.map((row) => row.id);
}

/** Records trunk `trunkId`'s download of update `updateId` (the first one counts); null when the trunk was not notified of it. */
export function* recordDownload(updateId: number, trunkId: number, now: string): Steps<Row | null> {
  const find = 'SELECT * FROM rate_deck_customer_notifications WHERE rate_deck_update_id = ? AND customer_trunk_id = ?';
  const notification = yield* getRow<Row>(find, updateId, trunkId);
  if (notification === undefined) return null;
  yield* runSql(
    'UPDATE rate_deck_customer_notifications SET downloaded_at = COALESCE(downloaded_at, ?) WHERE id = ?',
    now,
    notification.id,
  );
  return (yield* getRow<Row>(find, updateId, trunkId))!;
}

/**
 * After a download: the suspensions it answers are lifted (this update's, and those of the same deck's
 * earlier updates: the trunk now holds a newer deck than they asked for), and the trunk is made active
 * unless a suspension it does not answer (a newer update's, another deck's) still waits for a download.
 */
export function* reinstate(notification: Row, now: string, live: LiveChanges | null): Steps<Reinstatement> {
  const unchanged: Reinstatement = { reinstated: false, stillSuspendedBy: [] };
  if (notification.suspended_at === null || notification.reinstated_at !== null) return unchanged;
  const trunkId = notification.customer_trunk_id as number;
  yield* getRow({ sql: '', onlyOn: 'postgres', postgres: 'SELECT id FROM customer_trunks WHERE id = ? FOR NO KEY UPDATE' }, trunkId);
  const update = (yield* getUpdate(notification.rate_deck_update_id as number))!;
  const lifted = yield* runSql(
    `UPDATE rate_deck_customer_notifications SET reinstated_at = ?
     WHERE customer_trunk_id = ? AND suspended_at IS NOT NULL AND reinstated_at IS NULL AND rate_deck_update_id IN (
       SELECT id FROM rate_deck_updates WHERE rate_deck_id = ? AND (effective_at < ? OR (effective_at = ? AND id <= ?)))`,
    now,
    trunkId,
    update.rate_deck_id,
    update.effective_at,
    update.effective_at,
    update.id,
  );
  if (lifted === 0) return unchanged;
  const others = yield* waitsForDownload(trunkId);
  if (others.length > 0) return { reinstated: false, stillSuspendedBy: others };
  const reinstated =
    (yield* runSql("UPDATE customer_trunks SET status = 'active', updated_at = ? WHERE id = ? AND status = 'suspended'", now, trunkId)) > 0;
  if (reinstated) yield* trunkChanged(live, trunkId);
  return { reinstated, stillSuspendedBy: [] };
}
