import type Database from 'better-sqlite3';
import { runSql, SqliteSteps, type Steps } from '../ledger/sql-steps.js';
import { sqliteLiveChanges, type LiveChanges } from '../partner/store.js';
import type { ChangeLog, Row } from '../store/config-store.js';
import * as steps from './steps.js';
import {
  UPDATE_RATE_COLUMNS,
  type Activation,
  type NewUpdate,
  type RatesWriter,
  type Reinstatement,
  type UpdateRate,
  type UpdateStatus,
} from './steps.js';

export type { Activation, NewUpdate, Reinstatement, UpdateStatus } from './steps.js';

/**
 * Rate-deck updates in the control plane's database: the update records, the rates each brings, and the
 * notification of every customer trunk on the deck. Each method is one transaction; activation is guarded
 * by its status (`UPDATE … WHERE status = 'pending'`), so however often the scheduler runs, in however many
 * processes over the same database (SQLite's file, or one PostgreSQL: pg-store.ts), an update is activated,
 * and its trunks notified and suspended, once. The logic is steps.ts, on either engine.
 */
export const UPDATES_TABLE = 'rate_deck_updates';
export const NOTIFICATIONS_TABLE = 'rate_deck_customer_notifications';

export interface RateDeckUpdateStore {
  /**
   * Records a pending update and writes the rates it brings into its deck, in force from the later of its
   * effective_at and `now`.
   */
  create(update: NewUpdate, rates: readonly UpdateRate[], now: string): Promise<Row>;
  get(id: number): Promise<Row | null>;
  list(status: UpdateStatus | null, limit: number | null, offset: number): Promise<Row[]>;
  notifications(updateId: number): Promise<Row[]>;
  ratesOf(updateId: number): Promise<number>;
  /**
   * Deletes a pending update and the rates it brought. 'not_pending' when it is active or superseded (the
   * audit trail), or was activated meanwhile; 'not_found' when there is no such update.
   */
  removePending(id: number): Promise<'removed' | 'not_pending' | 'not_found'>;
  /** When the next pending update is due; null when none is pending. */
  nextDue(): Promise<string | null>;
  /** Activates every pending update due by `now`, oldest effective_at first, each in its own transaction. */
  activateDue(now: string): Promise<Activation[]>;
  /** Records trunk `trunkId`'s download of update `updateId` (the first one counts); null when the trunk was not notified of it. */
  recordDownload(updateId: number, trunkId: number, now: string): Promise<Row | null>;
  /** After a download: the suspensions it answers lifted, the trunk made active when none other waits (steps.reinstate). */
  reinstate(notification: Row, now: string): Promise<Reinstatement>;
}

/**
 * The store over steps.ts: an engine says how it runs one transaction of steps (`write`) and a plain read,
 * how it writes an update's rates, and where a trunk's delta goes (`live`: its delta log, or none).
 */
export abstract class StepsRateDeckUpdateStore implements RateDeckUpdateStore {
  protected abstract write<T>(work: Steps<T>): Promise<T>;
  protected abstract read<T>(work: Steps<T>): Promise<T>;
  protected abstract readonly writeRates: RatesWriter;
  protected abstract readonly live: LiveChanges | null;
  /** After a transaction that wrote rate rows (SQLite's rate cache is told; PostgreSQL's trigger counts them). */
  protected ratesChanged(): void {}

  async create(update: NewUpdate, rates: readonly UpdateRate[], now: string): Promise<Row> {
    const created = await this.write(steps.createUpdate(update, rates, now, this.writeRates));
    if (rates.length > 0) this.ratesChanged();
    return created;
  }

  get(id: number): Promise<Row | null> {
    return this.read(steps.getUpdate(id));
  }

  list(status: UpdateStatus | null, limit: number | null, offset: number): Promise<Row[]> {
    return this.read(steps.listUpdates(status, limit, offset));
  }

  notifications(updateId: number): Promise<Row[]> {
    return this.read(steps.notificationsOf(updateId));
  }

  ratesOf(updateId: number): Promise<number> {
    return this.read(steps.ratesOf(updateId));
  }

  async removePending(id: number): Promise<'removed' | 'not_pending' | 'not_found'> {
    const outcome = await this.write(steps.removePending(id));
    if (outcome === 'removed') this.ratesChanged();
    return outcome;
  }

  nextDue(): Promise<string | null> {
    return this.read(steps.nextDue());
  }

  async activateDue(now: string): Promise<Activation[]> {
    const done: Activation[] = [];
    for (const id of await this.read(steps.dueIds(now))) {
      const activation = await this.write(steps.activate(id, now, this.live));
      this.live?.committed(); // nodes waiting for deltas read again
      if (activation !== null) done.push(activation);
    }
    return done;
  }

  recordDownload(updateId: number, trunkId: number, now: string): Promise<Row | null> {
    return this.write(steps.recordDownload(updateId, trunkId, now));
  }

  async reinstate(notification: Row, now: string): Promise<Reinstatement> {
    const reinstatement = await this.write(steps.reinstate(notification, now, this.live));
    this.live?.committed(); // nodes waiting for deltas read again
    return reinstatement;
  }
}

/** SQLite: each method's steps run synchronously inside one `immediate` transaction on the shared connection. */
export class SqliteRateDeckUpdateStore extends StepsRateDeckUpdateStore {
  private readonly steps: SqliteSteps;
  protected readonly live: LiveChanges | null;

  constructor(
    private readonly db: Database.Database,
    /** Told when this store wrote rate rows: the configuration store caches the rate columns it reads. */
    private readonly ratesWritten: () => void = () => undefined,
    /** The delta log: a trunk this store suspends or reinstates reaches the nodes as a live change too. */
    changes: ChangeLog | null = null,
  ) {
    super();
    this.steps = new SqliteSteps(db);
    this.live = changes === null ? null : sqliteLiveChanges(changes);
  }

  /** One row per statement: SQLite's statements are prepared once and cost no round trip. */
  protected readonly writeRates: RatesWriter = function* (deckId, updateId, rates, from, now) {
    for (const rate of rates)
      yield* runSql(
        `INSERT INTO rate_deck_rates (${UPDATE_RATE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        deckId,
        rate.prefix,
        rate.destination_name,
        rate.rate_per_minute,
        rate.rate_type,
        rate.billing_increment_initial,
        rate.billing_increment_step,
        from,
        now,
        now,
        updateId,
      );
  };

  protected override ratesChanged(): void {
    this.ratesWritten();
  }

  protected write<T>(work: Steps<T>): Promise<T> {
    return Promise.resolve(this.db.transaction(() => this.steps.run(work)).immediate());
  }

  protected read<T>(work: Steps<T>): Promise<T> {
    return Promise.resolve(this.steps.run(work));
  }
}
