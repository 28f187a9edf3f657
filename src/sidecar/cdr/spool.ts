import Database from 'better-sqlite3';
import type { Logger } from 'pino';
import { sqliteLimit } from '../../core/sqlite/limit.js';

/**
 * What OpenSIPS could not hand to this sidecar while it was down or not answering: the script's
 * `route[spool]` inserts the CDR or release it could not deliver into a local SQLite table (sqlops and
 * db_sqlite, body base64-encoded), and the sidecar takes the rows when it is back, oldest first, through
 * the same ingest and release as the HTTP endpoints, deleting each once it is taken. A row taken and not
 * yet deleted when the sidecar dies is taken again: the ingest answers a CDR it already has with its first
 * answer (nothing is billed twice) and a release of a finished reservation releases nothing. So each CDR is
 * billed exactly once.
 *
 * A CDR this node cannot rate with what it serves (its trunk not in the snapshot, no rate or exchange rate in force: a
 * gap in the configuration, not in the CDR) is parked: its row stays, the rows behind it are taken all the same,
 * and it is rated again once the serving state has changed since its last attempt (a snapshot, a live delta),
 * at most PARKED_RETRIES a pass, so a gap nobody fills costs nothing each second. It is billed then as any other;
 * one still parked after `--spool-park-days` is dropped with an error, as a refusal is. A CDR whose Call-ID the node
 * already holds another CDR under (different figures: the customer reused the Call-ID, and the later call's CDR came
 * first) is parked too, until that CDR is pruned: dropped, as any other 409, it was a call never billed.
 *
 * The drain runs on the event loop, in small batches and without waiting on locks (busy timeout 0: a row
 * OpenSIPS is writing is taken at the next pass), since the table is empty except after an outage.
 */
export const SPOOL_SCHEMA = `CREATE TABLE IF NOT EXISTS opensips_spool (
  id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, body TEXT NOT NULL, created_at INTEGER NOT NULL)`;

export type SpoolKind = 'cdr' | 'release';

/** Takes one spooled request; rejects with a `SpoolRetry` to keep the row for a later pass. */
export type SpoolHandler = (body: Record<string, unknown>) => Promise<void>;

/** The sidecar cannot take it yet (no snapshot, the journal refusing writes): the row stays. */
export class SpoolRetry extends Error {}

/**
 * The sidecar cannot take it now (`code`: the refusal's): parked until what `until` names changes.
 * - `serving_state`: it cannot be rated with what the node serves (a gap in the configuration);
 * - `call_id_free`: the node holds another CDR under its Call-ID (the customer reused it for a later call whose
 *   CDR came first). The node keeps one CDR a Call-ID, until that one is settled and pruned (an hour); this one
 *   is a call of its own (the centre knows a CDR by Call-ID and start), billed once that Call-ID is free.
 */
export class SpoolPark extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly until: 'serving_state' | 'call_id_free' = 'serving_state',
  ) {
    super(message);
  }
}

/** How parked rows are kept: against which serving state they were last tried, and for how long. */
export interface SpoolParking {
  /** Changes whenever the serving snapshot or its live deltas do (version and delta sequence). */
  servingState: () => string;
  /** Whether the node holds a CDR under this Call-ID (a row parked `call_id_free` is tried once it does not). */
  holdsCdr: (callId: string) => boolean;
  /** A row still parked this many days after OpenSIPS spooled it is dropped. */
  parkDays: number;
}

const BATCH = 100;
/** How long opening the spool waits for a lock OpenSIPS holds (its write of a row takes milliseconds). */
const OPEN_BUSY_MS = 10_000;
const DRAIN_EVERY_MS = 1000;
/** Most parked rows rated again in one pass (after a change): a deck fixed for thousands of them takes a few seconds. */
export const PARKED_RETRIES = 100;

interface Row {
  id: number;
  kind: string;
  body: string;
  /** Unix seconds, OpenSIPS's $Ts. */
  created_at: number;
}

interface Parked {
  createdAt: number;
  callId: string;
  until: SpoolPark['until'];
  /** servingState() when it was last tried; null: try it at the next pass (the sidecar could not then). */
  triedAt: string | null;
}

/** taken: billed (or released); dropped: refused for good, logged. Both are deleted. */
type Outcome =
  | { kind: 'taken' }
  | { kind: 'dropped' }
  | { kind: 'retry' }
  | { kind: 'parked'; code: string; message: string; callId: string; until: SpoolPark['until']; triedAt: string };

export class OpensipsSpool {
  private readonly db: Database.Database;
  private readonly next: Database.Statement<number[], Row>;
  private readonly one: Database.Statement<[number], Row>;
  /** BATCH written into the statement's text (sqliteLimit): a bound LIMIT is compiled again on every run. */
  private readonly batch = sqliteLimit(BATCH);
  private readonly remove: Database.Statement<[number]>;
  private readonly removeAll: (ids: number[]) => void;
  private timer: NodeJS.Timeout | null = null;
  private draining: Promise<number> | null = null;
  /**
   * Every row at or below it is parked or gone: new rows are read past it, so a parked row holds back none
   * behind it. In memory: after a restart every row is tried once again, which parks the parked ones again.
   */
  private cursor = 0;
  /** By spool id, in id order (the cursor only rises). */
  private readonly parked = new Map<number, Parked>();
  /** How many rows parked under each Call-ID: admission refuses a Call-ID whose call's CDR waits here. */
  private readonly parkedCallIds = new Map<string, number>();

  constructor(
    readonly path: string,
    private readonly handlers: Record<SpoolKind, SpoolHandler>,
    /** A spooled body longer than this is refused as the HTTP endpoint would refuse it. */
    private readonly maxBodyBytes: number,
    private readonly log: Logger,
    private readonly parking: SpoolParking,
  ) {
    // OpenSIPS writes the file while this sidecar starts (it spools every call that ends meanwhile): opening it
    // waits out a write's lock, as a pass does not need to. Without, a start that met one failed ("database is
    // locked"), and a sidecar could not come back while OpenSIPS was busy spooling.
    this.db = new Database(path, { timeout: OPEN_BUSY_MS });
    this.db.exec(SPOOL_SCHEMA);
    this.db.pragma('busy_timeout = 0');
    this.next = this.db.prepare(`SELECT id, kind, body, created_at FROM opensips_spool WHERE id > ? ORDER BY id ${this.batch.sql}`);
    this.one = this.db.prepare('SELECT id, kind, body, created_at FROM opensips_spool WHERE id = ?');
    this.remove = this.db.prepare('DELETE FROM opensips_spool WHERE id = ?');
    this.removeAll = this.db.transaction((ids: number[]) => {
      for (const id of ids) this.remove.run(id);
    });
  }

  start(): void {
    this.timer = setInterval(() => void this.drain(), DRAIN_EVERY_MS);
    this.timer.unref();
    void this.drain();
  }

  /** Takes what is spooled now; resolves with how many rows it took. One pass at a time. */
  drain(): Promise<number> {
    this.draining ??= this.pass()
      .then((taken) => {
        if (taken > 0) this.log.info({ taken, spool: this.path }, 'took what OpenSIPS spooled while this sidecar did not answer');
        return taken;
      })
      .finally(() => (this.draining = null));
    return this.draining;
  }

  /** CDRs parked in the spool now (the sidecar_spool_parked_cdrs gauge). */
  get parkedCount(): number {
    return this.parked.size;
  }

  /**
   * Whether a CDR of this Call-ID waits here, parked: its call has ended, so a call under it now is another
   * (answered `call_id_reused`, as one whose CDR the node holds). Admitted and billed, its CDR would take the
   * Call-ID first, and the parked one would wait an hour behind it.
   */
  holdsParked(callId: string): boolean {
    return this.parkedCallIds.size !== 0 && this.parkedCallIds.has(callId);
  }

  private park(id: number, parked: Parked): void {
    this.parked.set(id, parked);
    this.parkedCallIds.set(parked.callId, (this.parkedCallIds.get(parked.callId) ?? 0) + 1);
  }

  private unpark(id: number): void {
    const parked = this.parked.get(id);
    if (parked === undefined) return;
    this.parked.delete(id);
    const left = this.parkedCallIds.get(parked.callId)! - 1;
    if (left === 0) this.parkedCallIds.delete(parked.callId);
    else this.parkedCallIds.set(parked.callId, left);
  }

  private async pass(): Promise<number> {
    try {
      return (await this.takeNew()) + (await this.retryParked());
    } catch (error) {
      // Whatever is not yet deleted is taken again at the next pass, which changes nothing.
      if (!busy(error)) this.log.error({ err: error, spool: this.path }, 'cannot read or delete from the OpenSIPS spool');
      return 0;
    }
  }

  /**
   * The rows past the cursor, a batch at a time, its rows taken together (their journal commits share a flush,
   * as concurrent requests' do) and deleted together once all are durable.
   */
  private async takeNew(): Promise<number> {
    let taken = 0;
    for (;;) {
      const rows = this.next.all(this.cursor, ...this.batch.params);
      if (rows.length === 0) return taken;
      const outcomes = await Promise.all(rows.map((row) => this.take(row)));
      const done = rows.filter((_, i) => deleted(outcomes[i]));
      this.removeAll(done.map((row) => row.id));
      taken += done.length;
      // The cursor passes what was taken or parked, up to the first row the sidecar cannot take yet.
      const waiting = outcomes.findIndex((outcome) => outcome.kind === 'retry');
      const through = waiting === -1 ? rows.length : waiting;
      for (let i = 0; i < through; i++) {
        const outcome = outcomes[i];
        if (outcome.kind !== 'parked') continue;
        this.park(rows[i].id, { createdAt: rows[i].created_at, callId: outcome.callId, until: outcome.until, triedAt: outcome.triedAt });
        this.logParked(rows[i].id, outcome);
      }
      if (through > 0) this.cursor = rows[through - 1].id;
      if (waiting !== -1) return taken; // the sidecar cannot take some yet: later
    }
  }

  /** Drops those parked too long; rates again at most PARKED_RETRIES of those the serving state changed under. */
  private async retryParked(): Promise<number> {
    if (this.parked.size === 0) return 0;
    const oldest = Math.floor(Date.now() / 1000) - this.parking.parkDays * 86_400;
    const state = this.parking.servingState();
    const due: number[] = [];
    const expired: number[] = [];
    for (const [id, parked] of this.parked) {
      if (parked.createdAt < oldest) expired.push(id);
      else if (
        due.length < PARKED_RETRIES &&
        (parked.until === 'serving_state' ? parked.triedAt !== state : !this.parking.holdsCdr(parked.callId))
      )
        due.push(id);
    }
    if (expired.length > 0) this.dropExpired(expired);
    const rows: Row[] = [];
    for (const id of due) {
      const row = this.one.get(id);
      // Gone: deleted by hand.
      if (row === undefined) this.unpark(id);
      else rows.push(row);
    }
    const outcomes = await Promise.all(rows.map((row) => this.take(row)));
    const done = rows.filter((_, i) => deleted(outcomes[i]));
    // Tried again at the next pass unless parked again: a taken row the delete below misses is then deleted.
    rows.forEach((row, i) => {
      const outcome = outcomes[i];
      const parked = this.parked.get(row.id)!;
      parked.triedAt = outcome.kind === 'parked' ? outcome.triedAt : null;
      // Rated now, it may meet another CDR under its Call-ID (or, that one pruned, a gap again): it waits for that.
      if (outcome.kind === 'parked' && outcome.until !== parked.until) {
        parked.until = outcome.until;
        this.logParked(row.id, outcome);
      }
    });
    this.removeAll(done.map((row) => row.id));
    rows.forEach((row, i) => {
      if (outcomes[i].kind === 'taken')
        this.log.info({ sip_call_id: this.parked.get(row.id)!.callId, spool_id: row.id }, 'parked CDR billed');
      if (deleted(outcomes[i])) this.unpark(row.id);
    });
    return done.length;
  }

  private logParked(id: number, outcome: Extract<Outcome, { kind: 'parked' }>): void {
    this.log.warn(
      { reason: outcome.code, sip_call_id: outcome.callId, spool_id: id, message: outcome.message },
      outcome.until === 'serving_state'
        ? 'spooled CDR parked: it cannot be rated until a snapshot or live change fills the gap'
        : 'spooled CDR parked: another CDR holds its Call-ID on this node until that one is settled and pruned',
    );
  }

  private dropExpired(ids: number[]): void {
    for (const id of ids) {
      const row = this.one.get(id);
      const body = row === undefined ? null : Buffer.from(row.body, 'base64').toString('utf8').slice(0, 4096);
      // Logged whole, as a refused request is, for a replay by hand once the configuration is fixed.
      this.log.error(
        { sip_call_id: this.parked.get(id)!.callId, spool_id: id, park_days: this.parking.parkDays, body },
        'parked CDR dropped: still unrateable after --spool-park-days',
      );
    }
    this.removeAll(ids);
    for (const id of ids) this.unpark(id);
  }

  private async take(row: Row): Promise<Outcome> {
    const handler = row.kind === 'cdr' || row.kind === 'release' ? this.handlers[row.kind] : undefined;
    const text = Buffer.from(row.body, 'base64').toString('utf8');
    let body: unknown;
    // Before the attempt: a change while it runs is seen as one after it, and tried again.
    const triedAt = this.parking.servingState();
    try {
      if (handler === undefined) throw new Error(`unknown kind ${JSON.stringify(row.kind)}`);
      if (Buffer.byteLength(text) > this.maxBodyBytes) throw new Error(`body longer than ${this.maxBodyBytes} bytes`);
      body = JSON.parse(text);
      if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new Error('body is not a JSON object');
      await handler(body as Record<string, unknown>);
      this.log.debug({ kind: row.kind, spool_id: row.id }, 'spooled request taken');
      return TAKEN;
    } catch (error) {
      if (error instanceof SpoolRetry) return RETRY;
      if (error instanceof SpoolPark) {
        const callId = String((body as { sip_call_id?: unknown }).sip_call_id);
        return { kind: 'parked', code: error.code, message: error.message, callId, until: error.until, triedAt };
      }
      // It would be refused again: logged whole for an operator, and dropped from the spool.
      this.log.error({ err: error, kind: row.kind, spool_id: row.id, body: text.slice(0, 4096) }, 'spooled request refused');
      return DROPPED;
    }
  }

  close(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.db.close();
  }
}

/** Taken or refused for good: the row goes. */
function deleted(outcome: Outcome): boolean {
  return outcome.kind === 'taken' || outcome.kind === 'dropped';
}

const TAKEN: Outcome = { kind: 'taken' };
const DROPPED: Outcome = { kind: 'dropped' };
const RETRY: Outcome = { kind: 'retry' };

function busy(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  return code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED';
}
