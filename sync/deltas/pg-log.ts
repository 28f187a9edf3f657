import pg from 'pg';
import type { Delta, LiveTable } from '../../src/core/protocol/deltas.js';
import type { DeltaFeed, RecentDelta } from './feed.js';
import { redactedError } from '../store/database-url.js';
import { keepSessionOpen } from '../store/pg-database.js';
import type { PgChangeLog } from '../store/pg-config-store.js';
import {
  DEFAULT_DELTA_RETENTION,
  deltaLogRows,
  deltaOfRow,
  isLiveStoreTable,
  logReach,
  relatedRowsQuery,
  type DeltaLogRow,
  type DeltaRetention,
} from './log.js';
import { DeltaWaiters } from './waiters.js';

/**
 * The channel a live change's commit is announced on. PostgreSQL delivers a NOTIFY at commit, and only if the
 * transaction commits, to every session that LISTENs: every control plane on the database hears every
 * change, whichever of them wrote it. The payload is `<schema> <seq>`: centres on other schemas of the same
 * database (tests' scratch schemas) ignore it.
 */
export const DELTA_CHANNEL = 'delta_log';

/**
 * The delta log's write side on PostgreSQL (issue 18 on issue 21's store): each live change's delta goes into
 * `delta_log` in the change's own transaction, as DeltaLog does on SQLite. The sequence is the one counter
 * row, moved by an UPDATE whose row lock is held until commit: concurrent writers of live tables, on one
 * control plane or two, take their numbers one after another in commit order, and a rolled-back change gives
 * its number back, so the log stays gap-free.
 */
export class PgDeltaLog implements PgChangeLog {
  constructor(readonly retention: DeltaRetention = DEFAULT_DELTA_RETENTION) {}

  isLive(storeTable: string): boolean {
    return isLiveStoreTable(storeTable);
  }

  async append(client: pg.ClientBase, storeTable: string, id: number, row: Record<string, unknown> | null): Promise<number> {
    const query = relatedRowsQuery(storeTable, id, row);
    const related = query === null ? [] : (await client.query<Record<string, unknown>>(query.sql.replace('?', '$1'), [query.param])).rows;
    let seq = 0;
    for (const { table, op, id: rowId, body } of deltaLogRows(storeTable, id, row, related)) {
      seq = (await client.query<{ last_seq: number }>('UPDATE delta_sequence SET last_seq = last_seq + 1 WHERE id = 1 RETURNING last_seq'))
        .rows[0].last_seq;
      await client.query('INSERT INTO delta_log (seq, committed_at, table_name, op, row_id, row) VALUES ($1, $2, $3, $4, $5, $6)', [
        seq,
        new Date().toISOString(),
        table,
        op,
        rowId,
        body,
      ]);
    }
    // A tenant without products changed nothing the nodes hold: no delta, nothing to announce.
    if (seq === 0) return 0;
    if (seq > this.retention.count) await client.query('DELETE FROM delta_log WHERE seq <= $1', [seq - this.retention.count]);
    await client.query("SELECT pg_notify($1, current_schema() || ' ' || $2)", [DELTA_CHANNEL, String(seq)]);
    return seq;
  }
}

const RECONNECT_MS = 1000;

/**
 * The delta log's read side on PostgreSQL: what the nodes' long poll reads (sync/deltas/routes.ts), with the
 * SQLite DeltaLog's semantics, method for method, but async. A held ask wakes on the commit's NOTIFY, heard
 * on a connection of its own; `heard` is the highest sequence announced, so an ask that starts waiting after
 * its commit was announced returns at once. If that connection drops, it is made again every second, and
 * every held ask reads again once it is back (what committed meanwhile was not heard).
 */
export class PgDeltaFeed implements DeltaFeed {
  private readonly waiters = new DeltaWaiters();
  private listener: pg.Client | null = null;
  private closed = false;
  private schema = '';
  private heard = 0;
  private readonly committedListeners: ((tables: ReadonlySet<LiveTable>) => void)[] = [];
  /** The sequence up to which the committed listeners were told (null until the first listen: no change before it is told). */
  private told: number | null = null;
  /** One read of the changed tables at a time, in order. */
  private telling: Promise<void> = Promise.resolve();

  private constructor(
    private readonly pool: pg.Pool,
    private readonly url: string,
    readonly retention: DeltaRetention,
  ) {}

  static async open(pool: pg.Pool, url: string, retention: DeltaRetention = DEFAULT_DELTA_RETENTION): Promise<PgDeltaFeed> {
    const feed = new PgDeltaFeed(pool, url, retention);
    await feed.listen();
    return feed;
  }

  private async listen(): Promise<void> {
    const client = new pg.Client({ connectionString: this.url, connectionTimeoutMillis: 10_000 });
    client.on('error', () => undefined);
    client.on('notification', (message) => {
      if (message.channel !== DELTA_CHANNEL || message.payload === undefined) return;
      const [schema, seq] = message.payload.split(' ');
      if (schema !== this.schema) return;
      this.heard = Math.max(this.heard, Number(seq));
      this.waiters.wakeAll();
      this.tellCommitted();
    });
    client.on('end', () => {
      if (this.listener === client) this.listener = null;
      if (!this.closed) setTimeout(() => void this.reconnect(), RECONNECT_MS).unref();
    });
    try {
      await client.connect();
      await keepSessionOpen(client);
      this.schema = (await client.query<{ schema: string }>('SELECT current_schema() AS schema')).rows[0].schema;
      await client.query(`LISTEN ${DELTA_CHANNEL}`);
      // Listening from here: what committed before (while the connection was down, say) is read once.
      const { rows } = await client.query<{ last_seq: number }>('SELECT last_seq FROM delta_sequence WHERE id = 1');
      this.heard = Math.max(this.heard, rows[0].last_seq);
      this.told ??= this.heard;
    } catch (error) {
      await client.end().catch(() => undefined);
      throw redactedError(error, this.url);
    }
    this.listener = client;
    this.waiters.wakeAll();
    this.tellCommitted();
  }

  /**
   * As DeltaLog.onCommitted, for changes committed by any control plane on the store: told, in sequence order,
   * of the tables the deltas announced since the last telling changed (what drouting follows). Changes
   * committed while the listening connection was down are told once it is back.
   */
  onCommitted(listener: (tables: ReadonlySet<LiveTable>) => void): void {
    this.committedListeners.push(listener);
  }

  private tellCommitted(): void {
    if (this.committedListeners.length === 0) {
      // Nobody to tell: a listener added later is told of what commits after it, not before.
      this.told = this.heard;
      return;
    }
    this.telling = this.telling
      .then(async () => {
        const from = this.told ?? this.heard;
        const upTo = this.heard;
        if (upTo <= from) return;
        const { rows } = await this.pool.query<{ table_name: LiveTable }>(
          'SELECT DISTINCT table_name FROM delta_log WHERE seq > $1 AND seq <= $2',
          [from, upTo],
        );
        this.told = upTo;
        const tables = new Set(rows.map((row) => row.table_name));
        if (tables.size > 0) for (const listener of this.committedListeners) listener(tables);
      })
      // `told` stays where it was: the next announcement reads the same deltas again.
      .catch(() => undefined);
  }

  private async reconnect(): Promise<void> {
    if (this.closed || this.listener !== null) return;
    // A failed attempt ends its client, whose 'end' schedules the next one.
    await this.listen().catch(() => undefined);
  }

  async lastSeq(): Promise<number> {
    return (await this.pool.query<{ last_seq: number }>('SELECT last_seq FROM delta_sequence WHERE id = 1')).rows[0].last_seq;
  }

  async oldestSeq(): Promise<number | null> {
    return (await this.pool.query<{ seq: number | null }>('SELECT MIN(seq) AS seq FROM delta_log')).rows[0].seq;
  }

  async recent(limit: number): Promise<RecentDelta[]> {
    const { rows } = await this.pool.query(
      'SELECT seq, committed_at, table_name AS "table", op, row_id AS id FROM delta_log ORDER BY seq DESC LIMIT $1',
      [limit],
    );
    return rows as RecentDelta[];
  }

  /** As DeltaLog.read. Commits become visible in sequence order (the counter row's lock), so what is read is never gapped. */
  async read(after: number, limit: number): Promise<Delta[] | null> {
    const { rows: ends } = await this.pool.query<{ last: number; oldest: number | null }>(
      'SELECT (SELECT last_seq FROM delta_sequence WHERE id = 1) AS last, (SELECT MIN(seq) FROM delta_log) AS oldest',
    );
    const reach = logReach(after, ends[0].last, () => ends[0].oldest);
    if (reach !== 'readable') return reach === 'up_to_date' ? [] : null;
    const { rows } = await this.pool.query<DeltaLogRow>(
      'SELECT seq, table_name, op, row_id, row FROM delta_log WHERE seq > $1 ORDER BY seq LIMIT $2',
      [after, limit],
    );
    return rows.map(deltaOfRow);
  }

  /** As DeltaLog.waitPast: a commit past `after` announced (by any control plane), `ms`, or `signal`. */
  waitPast(after: number, ms: number, signal?: AbortSignal): Promise<void> {
    if (this.heard > after || ms <= 0 || signal?.aborted === true) return Promise.resolve();
    return this.waiters.wait(ms, signal);
  }

  async trimByAge(now: number = Date.now()): Promise<number> {
    const result = await this.pool.query('DELETE FROM delta_log WHERE committed_at < $1', [
      new Date(now - this.retention.seconds * 1000).toISOString(),
    ]);
    return result.rowCount ?? 0;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.waiters.wakeAll();
    await this.listener?.end().catch(() => undefined);
  }
}
