import type Database from 'better-sqlite3';
import type { ChangeLog, ImportedRate, Row } from '../store/config-store.js';

/**
 * Rate-deck updates in the control plane's database: the update records, the rates each brings, and the
 * notification of every customer trunk on the deck. Each method is one transaction; activation is guarded
 * by its status (`UPDATE … WHERE status = 'pending'`), so however often the scheduler runs, in however many
 * processes over the same database, an update is activated, and its trunks notified and suspended, once.
 */
export const UPDATES_TABLE = 'rate_deck_updates';
export const NOTIFICATIONS_TABLE = 'rate_deck_customer_notifications';

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

export class RateDeckUpdateStore {
  constructor(
    private readonly db: Database.Database,
    /** Told when this store wrote rate rows: the configuration store caches the rate columns it reads. */
    private readonly ratesWritten: () => void = () => undefined,
    /** The delta log: a trunk this store suspends or reinstates reaches the nodes as a live change too. */
    private readonly changes: ChangeLog | null = null,
  ) {}

  /** Inside the transaction that changed trunk `id`'s status: its delta, the row as it now is. */
  private trunkChanged(id: number): void {
    if (this.changes === null) return;
    this.changes.append('customer_trunks', id, this.db.prepare('SELECT * FROM customer_trunks WHERE id = ?').get(id) as Row);
  }

  /**
   * Records a pending update and writes the rates it brings into its deck, in force from the later of its
   * effective_at and `now`: a rate in force before it was written would reprice calls already made.
   */
  create(update: NewUpdate, rates: readonly Omit<ImportedRate, 'effective_at'>[], now: string): Row {
    const ratesFrom = update.effective_at > now ? update.effective_at : now;
    const id = this.db.transaction(() => {
      const info = this.db
        .prepare(
          `INSERT INTO rate_deck_updates (rate_deck_id, update_type, status, effective_at, suspend_until_downloaded, created_by, created_at)
           VALUES (?, ?, 'pending', ?, ?, ?, ?)`,
        )
        .run(update.rate_deck_id, update.update_type, update.effective_at, update.suspend_until_downloaded ? 1 : 0, update.created_by, now);
      const insert = this.db.prepare(
        `INSERT INTO rate_deck_rates (rate_deck_id, prefix, destination_name, rate_per_minute, rate_type, billing_increment_initial,
          billing_increment_step, effective_at, created_at, updated_at, rate_deck_update_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      );
      for (const rate of rates)
        insert.run(
          update.rate_deck_id,
          rate.prefix,
          rate.destination_name,
          rate.rate_per_minute,
          rate.rate_type,
          rate.billing_increment_initial,
          rate.billing_increment_step,
          ratesFrom,
          now,
          now,
          info.lastInsertRowid,
        );
      return Number(info.lastInsertRowid);
    })();
    if (rates.length > 0) this.ratesWritten();
    return this.get(id)!;
  }

  get(id: number): Row | null {
    return (this.db.prepare('SELECT * FROM rate_deck_updates WHERE id = ?').get(id) as Row | undefined) ?? null;
  }

  list(status: UpdateStatus | null, limit: number | null, offset: number): Row[] {
    const where = status === null ? '' : 'WHERE status = ?';
    return this.db
      .prepare(`SELECT * FROM rate_deck_updates ${where} ORDER BY id LIMIT ? OFFSET ?`)
      .all(...(status === null ? [] : [status]), limit ?? -1, offset) as Row[];
  }

  notifications(updateId: number): Row[] {
    return this.db
      .prepare('SELECT * FROM rate_deck_customer_notifications WHERE rate_deck_update_id = ? ORDER BY customer_trunk_id')
      .all(updateId) as Row[];
  }

  ratesOf(updateId: number): number {
    return (this.db.prepare('SELECT COUNT(*) AS n FROM rate_deck_rates WHERE rate_deck_update_id = ?').get(updateId) as { n: number }).n;
  }

  /**
   * Deletes a pending update and the rates it brought. 'not_pending' when it is active or superseded (the
   * audit trail), or was activated meanwhile; 'not_found' when there is no such update.
   */
  removePending(id: number): 'removed' | 'not_pending' | 'not_found' {
    const outcome = this.db.transaction(() => {
      const row = this.get(id);
      if (row === null) return 'not_found';
      if (row.status !== 'pending') return 'not_pending';
      this.db.prepare('DELETE FROM rate_deck_rates WHERE rate_deck_update_id = ?').run(id);
      this.db.prepare("DELETE FROM rate_deck_updates WHERE id = ? AND status = 'pending'").run(id);
      return 'removed';
    })();
    if (outcome === 'removed') this.ratesWritten();
    return outcome;
  }

  /** When the next pending update is due; null when none is pending. */
  nextDue(): string | null {
    const row = this.db.prepare("SELECT MIN(effective_at) AS due FROM rate_deck_updates WHERE status = 'pending'").get() as {
      due: string | null;
    };
    return row.due;
  }

  /** Activates every pending update due by `now`, oldest effective_at first, each in its own transaction. */
  activateDue(now: string): Activation[] {
    const due = this.db
      .prepare("SELECT id FROM rate_deck_updates WHERE status = 'pending' AND effective_at <= ? ORDER BY effective_at, id")
      .all(now) as { id: number }[];
    const done: Activation[] = [];
    for (const { id } of due) {
      const activation = this.activate(id, now);
      if (activation !== null) done.push(activation);
    }
    return done;
  }

  /** One update made active, its deck's previous active update superseded, its trunks notified (and suspended). Null if it was not pending. */
  private activate(id: number, now: string): Activation | null {
    const activation = this.db.transaction((): Activation | null => {
      // The guard: a second scheduler (or this one after a restart) finds nothing left to do.
      const claimed = this.db
        .prepare("UPDATE rate_deck_updates SET status = 'active', activated_at = ? WHERE id = ? AND status = 'pending'")
        .run(now, id);
      if (claimed.changes === 0) return null;
      const update = this.get(id)!;
      const deckId = update.rate_deck_id as number;
      const superseded = (
        this.db.prepare("SELECT id FROM rate_deck_updates WHERE rate_deck_id = ? AND status = 'active' AND id <> ?").all(deckId, id) as {
          id: number;
        }[]
      ).map((row) => row.id);
      this.db
        .prepare(
          "UPDATE rate_deck_updates SET status = 'superseded', superseded_at = ? WHERE rate_deck_id = ? AND status = 'active' AND id <> ?",
        )
        .run(now, deckId, id);
      // Every customer trunk the deck is assigned to now; a closed trunk (deleted) is not told anything.
      const trunks = this.db
        .prepare(
          `SELECT t.id, t.status FROM customer_trunk_rate_decks a JOIN customer_trunks t ON t.id = a.customer_trunk_id
           WHERE a.rate_deck_id = ? AND a.is_active = 1 AND t.status <> 'closed' ORDER BY t.id`,
        )
        .all(deckId) as { id: number; status: string }[];
      const notify = this.db.prepare(
        'INSERT INTO rate_deck_customer_notifications (rate_deck_update_id, customer_trunk_id, notified_at, suspended_at) VALUES (?, ?, ?, ?)',
      );
      const suspend = this.db.prepare("UPDATE customer_trunks SET status = 'suspended', updated_at = ? WHERE id = ? AND status = 'active'");
      const waiting = this.db.prepare(
        `SELECT 1 FROM rate_deck_customer_notifications
         WHERE customer_trunk_id = ? AND suspended_at IS NOT NULL AND reinstated_at IS NULL LIMIT 1`,
      );
      const suspended: number[] = [];
      for (const trunk of trunks) {
        // An active trunk is suspended for this reason; one already suspended for an earlier update's download
        // now waits for this one's too. One the operator suspended stays the operator's to reinstate: a
        // download does not lift the operator's suspension.
        const suspends =
          update.suspend_until_downloaded === 1 &&
          (this.suspended(suspend.run(now, trunk.id).changes > 0, trunk.id) ||
            (trunk.status === 'suspended' && waiting.get(trunk.id) !== undefined));
        if (suspends) suspended.push(trunk.id);
        notify.run(id, trunk.id, now, suspends ? now : null);
      }
      return { id, rate_deck_id: deckId, notified: trunks.map((trunk) => trunk.id), suspended, superseded };
    })();
    this.changes?.committed(); // nodes waiting for deltas read again
    return activation;
  }

  /** Records trunk `trunkId`'s download of update `updateId` (the first one counts); null when the trunk was not notified of it. */
  recordDownload(updateId: number, trunkId: number, now: string): Row | null {
    const find = this.db.prepare('SELECT * FROM rate_deck_customer_notifications WHERE rate_deck_update_id = ? AND customer_trunk_id = ?');
    const notification = find.get(updateId, trunkId) as Row | undefined;
    if (notification === undefined) return null;
    this.db
      .prepare('UPDATE rate_deck_customer_notifications SET downloaded_at = COALESCE(downloaded_at, ?) WHERE id = ?')
      .run(now, notification.id);
    return find.get(updateId, trunkId) as Row;
  }

  /**
   * After a download: the suspensions it answers are lifted (this update's, and those of the same deck's
   * earlier updates: the trunk now holds a newer deck than they asked for), and the trunk is made active
   * unless a suspension it does not answer (a newer update's, another deck's) still waits for a download.
   */
  reinstate(notification: Row, now: string): Reinstatement {
    if (notification.suspended_at === null || notification.reinstated_at !== null) return { reinstated: false, stillSuspendedBy: [] };
    const trunkId = notification.customer_trunk_id as number;
    const update = this.get(notification.rate_deck_update_id as number)!;
    const reinstatement = this.db.transaction((): Reinstatement => {
      const lifted = this.db
        .prepare(
          `UPDATE rate_deck_customer_notifications SET reinstated_at = ?
           WHERE customer_trunk_id = ? AND suspended_at IS NOT NULL AND reinstated_at IS NULL AND rate_deck_update_id IN (
             SELECT id FROM rate_deck_updates WHERE rate_deck_id = ? AND (effective_at < ? OR (effective_at = ? AND id <= ?)))`,
        )
        .run(now, trunkId, update.rate_deck_id, update.effective_at, update.effective_at, update.id);
      if (lifted.changes === 0) return { reinstated: false, stillSuspendedBy: [] };
      const others = (
        this.db
          .prepare(
            `SELECT rate_deck_update_id AS id FROM rate_deck_customer_notifications
             WHERE customer_trunk_id = ? AND suspended_at IS NOT NULL AND reinstated_at IS NULL ORDER BY rate_deck_update_id`,
          )
          .all(trunkId) as { id: number }[]
      ).map((row) => row.id);
      if (others.length > 0) return { reinstated: false, stillSuspendedBy: others };
      const info = this.db
        .prepare("UPDATE customer_trunks SET status = 'active', updated_at = ? WHERE id = ? AND status = 'suspended'")
        .run(now, trunkId);
      if (info.changes > 0) this.trunkChanged(trunkId);
      return { reinstated: info.changes > 0, stillSuspendedBy: [] };
    })();
    this.changes?.committed(); // nodes waiting for deltas read again
    return reinstatement;
  }

  /** `changed`: the trunk was suspended just now (its delta is logged); passed through. */
  private suspended(changed: boolean, trunkId: number): boolean {
    if (changed) this.trunkChanged(trunkId);
    return changed;
  }
}
