import type pg from 'pg';
import type { Logger } from 'pino';
import { LOCK_HEARTBEAT_MS, PgSyncLock } from './pg-sync-lock.js';

/**
 * The channel on which a control plane that does not lead asks the leader for a background sync (a rate-deck
 * update activated, a node behind the delta log): `<schema> <reason>`. The leader hears it on its lock
 * connection (PgSyncLock.listen); centres on other schemas of the database ignore it.
 */
export const SYNC_REQUEST_CHANNEL = 'sync_request';

/** Asks whichever control plane leads on this store for a sync. With none leading, the next to lead syncs when it takes the lead. */
export async function askLeaderToSync(pool: pg.Pool, reason: string): Promise<void> {
  await pool.query("SELECT pg_notify($1, current_schema() || ' ' || $2)", [SYNC_REQUEST_CHANNEL, reason]);
}

/**
 * Which of the control planes sharing one PostgreSQL store runs the routing sync and the drouting writes:
 * the one holding the sync lock (pg-sync-lock.ts). Every centre tries to take it at start and, while it does
 * not hold it, again every `retryMs`; the holder keeps it for as long as its lock connection lives. When the
 * holder dies (kill -9 included) the server closes its session and frees the lock, and the next try of
 * another centre takes it: take-over within `retryMs` plus a connect. A holder whose lock connection breaks
 * (the server restarted, a network cut) stops leading at once and tries again like the others: two centres
 * never both believe they lead for longer than it takes the first to hear its connection is gone.
 */
export class PgLeadership {
  private lock: PgSyncLock | null = null;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  private readonly listeners = new Set<(leading: boolean) => void>();

  private constructor(
    private readonly url: string,
    private readonly log: Logger,
    private readonly retryMs: number,
    private readonly onSyncRequest: (reason: string) => void,
    private readonly heartbeatMs: number,
  ) {}

  /**
   * Starts trying at once; resolves after the first try (leading or not). `onSyncRequest`: while leading, told
   * of every sync another centre asks for (askLeaderToSync). `heartbeatMs`: see LOCK_HEARTBEAT_MS.
   */
  static async start(
    url: string,
    log: Logger,
    retryMs = 2000,
    onSyncRequest: (reason: string) => void = () => undefined,
    heartbeatMs = LOCK_HEARTBEAT_MS,
  ): Promise<PgLeadership> {
    const leadership = new PgLeadership(url, log, retryMs, onSyncRequest, heartbeatMs);
    await leadership.attempt();
    return leadership;
  }

  isLeading(): boolean {
    return this.lock !== null;
  }

  /** The term of the lead held (PgSyncLock.term); null while not leading. */
  term(): number | null {
    return this.lock?.term ?? null;
  }

  /** Told of every change: true when this centre takes the lead, false when it loses it. */
  onChange(listener: (leading: boolean) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private async attempt(): Promise<void> {
    this.timer = null;
    if (this.stopped || this.lock !== null) return;
    let lock: PgSyncLock | null = null;
    try {
      lock = await PgSyncLock.tryTake(this.url, () => this.lost(lock!), this.heartbeatMs);
      const schema = lock?.schema;
      await lock?.listen(SYNC_REQUEST_CHANNEL, (payload) => {
        const space = payload.indexOf(' ');
        if (payload.slice(0, space) === schema) this.onSyncRequest(payload.slice(space + 1));
      });
    } catch (error) {
      // Not leading without hearing the others' requests: the lock goes back and is asked for again.
      await lock?.release();
      lock = null;
      this.log.warn({ err: error }, 'the sync lock could not be asked for; trying again');
    }
    // stop() may have come while the lock was asked for: TypeScript keeps `this.stopped` narrowed across the await.
    if (this.isStopped()) {
      await lock?.release();
      return;
    }
    if (lock === null) {
      this.timer = setTimeout(() => void this.attempt(), this.retryMs);
      this.timer.unref();
      return;
    }
    this.lock = lock;
    this.log.info('this control plane runs the routing sync and the drouting writes (it holds the sync lock)');
    this.tell(true);
  }

  private isStopped(): boolean {
    return this.stopped;
  }

  private lost(lock: PgSyncLock): void {
    if (this.lock !== lock) return;
    this.lock = null;
    if (!this.stopped) this.log.warn('the sync lock connection is gone: this control plane no longer leads; trying again');
    this.tell(false);
    if (!this.stopped) void this.attempt();
  }

  private tell(leading: boolean): void {
    for (const listener of this.listeners) listener(leading);
  }

  /** Gives the lead up (the lock goes with the connection) and stops trying. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    const lock = this.lock;
    this.lock = null;
    await lock?.release();
  }
}
