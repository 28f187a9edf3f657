import pg from 'pg';
import { redactedError } from './database-url.js';
import { keepSessionOpen } from './pg-database.js';

/**
 * The lock that makes one control plane at a time run the routing sync (the snapshot build, the pushes, the
 * drouting writes) against a PostgreSQL store that several share. A session-level advisory lock, held on a
 * connection of its own for as long as the holder runs: when the holder dies, even by kill -9, the server
 * sees its connection close and the lock is free again at once. Keyed by the store's schema (the second
 * half of the key), so centres on different schemas of one database, tests' scratch schemas among them,
 * never hold each other up.
 */
export const SYNC_LOCK_CLASS = 0x5eed_0022;

/**
 * How often the holder asks the server something on the lock's connection, and how long it waits for the answer
 * before taking the connection for dead. A connection cut without a reset (a firewall or NAT dropping an idle
 * flow, a network partition) otherwise went unnoticed by the holder for as long as nothing was sent on it: the
 * server, or its TCP keepalives, ended the session and another centre took the lead, while this one still
 * believed it led (its sync and drouting writes beside the new leader's), and the sync requests the others
 * NOTIFY never reached it. The question also keeps the flow from looking idle to whatever sits between.
 */
export const LOCK_HEARTBEAT_MS = 5000;

export class PgSyncLock {
  private released = false;
  private heartbeat: NodeJS.Timeout | null = null;

  private constructor(
    private readonly client: pg.Client,
    /** The store's schema: what the lock is keyed by, and what notifications for this store name. */
    readonly schema: string,
    /**
     * This holding's number, higher than every holder's before it (sync_lead_terms, taken under the lock): the
     * fence a node's drouting database keeps (sync/drouting/writer.ts SYNC_TERM_ROW), so a holder that lost the
     * lock without knowing it yet (stalled, or its connection cut) is refused there once a later one has written.
     */
    readonly term: number,
  ) {}

  /**
   * The lock when it was free, null when another control plane holds it. `onLost`: its connection ended
   * other than by release() (the server restarted or dropped it): the lock is no longer held.
   */
  static async tryTake(url: string, onLost?: () => void, heartbeatMs = LOCK_HEARTBEAT_MS): Promise<PgSyncLock | null> {
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
    client.on('error', () => undefined);
    try {
      await client.connect();
      // The lock lasts as long as the session: a server's idle timeout must not end it.
      await keepSessionOpen(client);
      const { rows } = await client.query<{ taken: boolean; schema: string }>(
        'SELECT pg_try_advisory_lock($1, hashtext(current_schema())) AS taken, current_schema() AS schema',
        [SYNC_LOCK_CLASS],
      );
      if (rows[0].taken) {
        const taken = await client.query<{ term: number }>(
          'INSERT INTO sync_lead_terms (taken_at) VALUES (to_char(clock_timestamp() AT TIME ZONE \'UTC\', \'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"\')) RETURNING id AS term',
        );
        const lock = new PgSyncLock(client, rows[0].schema, Number(taken.rows[0].term));
        client.on('end', () => {
          lock.stopHeartbeat();
          if (!lock.released) onLost?.();
        });
        lock.beat(heartbeatMs);
        return lock;
      }
    } catch (error) {
      await client.end().catch(() => undefined);
      throw redactedError(error, url);
    }
    await client.end().catch(() => undefined);
    return null;
  }

  /**
   * Hears `channel`'s notifications on the lock's own connection: only while the lock is held, so what is
   * announced there reaches whichever control plane holds it, and no other.
   */
  async listen(channel: string, onPayload: (payload: string) => void): Promise<void> {
    this.client.on('notification', (message) => {
      if (message.channel === channel && message.payload !== undefined) onPayload(message.payload);
    });
    await this.client.query(`LISTEN ${channel}`);
  }

  /**
   * The next heartbeat, `everyMs` from now: `SELECT 1` answered within `everyMs`, or the connection is cut here
   * (its socket destroyed: its 'end' then tells the holder, as a connection the server ended does).
   */
  private beat(everyMs: number): void {
    this.heartbeat = setTimeout(() => {
      const dead = setTimeout(() => this.cut(), everyMs);
      this.client.query('SELECT 1').then(
        () => {
          clearTimeout(dead);
          if (!this.released) this.beat(everyMs);
        },
        () => {
          clearTimeout(dead);
          this.cut();
        },
      );
    }, everyMs);
    this.heartbeat.unref();
  }

  private stopHeartbeat(): void {
    if (this.heartbeat !== null) clearTimeout(this.heartbeat);
    this.heartbeat = null;
  }

  /** The connection taken for dead: closed at once, without the goodbye a dead peer would never answer. */
  private cut(): void {
    this.stopHeartbeat();
    // node-postgres has no public way to drop a connection without waiting on its peer.
    (this.client as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
  }

  /** Closing the connection releases the lock. */
  async release(): Promise<void> {
    this.released = true;
    this.stopHeartbeat();
    await this.client.end().catch(() => undefined);
  }
}
