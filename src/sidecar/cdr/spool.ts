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

const BATCH = 100;
const DRAIN_EVERY_MS = 1000;

interface Row {
  id: number;
  kind: string;
  body: string;
}

export class OpensipsSpool {
  private readonly db: Database.Database;
  private readonly next: Database.Statement<number[], Row>;
  /** BATCH written into the statement's text (sqliteLimit): a bound LIMIT is compiled again on every run. */
  private readonly batch = sqliteLimit(BATCH);
  private readonly remove: Database.Statement<[number]>;
  private readonly removeAll: (ids: number[]) => void;
  private timer: NodeJS.Timeout | null = null;
  private draining: Promise<number> | null = null;

  constructor(
    readonly path: string,
    private readonly handlers: Record<SpoolKind, SpoolHandler>,
    /** A spooled body longer than this is refused as the HTTP endpoint would refuse it. */
    private readonly maxBodyBytes: number,
    private readonly log: Logger,
  ) {
    this.db = new Database(path, { timeout: 0 });
    this.db.exec(SPOOL_SCHEMA);
    this.next = this.db.prepare(`SELECT id, kind, body FROM opensips_spool ORDER BY id ${this.batch.sql}`);
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

  /**
   * A batch at a time, its rows taken together (their journal commits share a flush, as concurrent requests'
   * do) and deleted together once all are durable.
   */
  private async pass(): Promise<number> {
    let taken = 0;
    for (;;) {
      let rows: Row[];
      try {
        rows = this.next.all(...this.batch.params);
      } catch (error) {
        if (!busy(error)) this.log.error({ err: error, spool: this.path }, 'cannot read the OpenSIPS spool');
        return taken;
      }
      if (rows.length === 0) return taken;
      const outcomes = await Promise.all(rows.map((row) => this.take(row)));
      const done = rows.filter((_, i) => outcomes[i]);
      try {
        this.removeAll(done.map((row) => row.id));
      } catch (error) {
        // Taken but still there: taken again at the next pass, which changes nothing.
        if (!busy(error)) this.log.error({ err: error, spool: this.path }, 'cannot delete from the OpenSIPS spool');
        return taken;
      }
      taken += done.length;
      if (done.length < rows.length) return taken; // the sidecar cannot take some yet: later
    }
  }

  /** False: keep the row and stop this pass. */
  private async take(row: Row): Promise<boolean> {
    const handler = row.kind === 'cdr' || row.kind === 'release' ? this.handlers[row.kind] : undefined;
    const text = Buffer.from(row.body, 'base64').toString('utf8');
    let body: unknown;
    try {
      if (handler === undefined) throw new Error(`unknown kind ${JSON.stringify(row.kind)}`);
      if (Buffer.byteLength(text) > this.maxBodyBytes) throw new Error(`body longer than ${this.maxBodyBytes} bytes`);
      body = JSON.parse(text);
      if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new Error('body is not a JSON object');
      await handler(body as Record<string, unknown>);
      this.log.debug({ kind: row.kind, spool_id: row.id }, 'spooled request taken');
      return true;
    } catch (error) {
      if (error instanceof SpoolRetry) return false;
      // It would be refused again: logged whole for an operator, and dropped from the spool.
      this.log.error({ err: error, kind: row.kind, spool_id: row.id, body: text.slice(0, 4096) }, 'spooled request refused');
      return true;
    }
  }

  close(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.db.close();
  }
}

function busy(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  return code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED';
}
