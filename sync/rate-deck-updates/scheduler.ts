import type { Logger } from 'pino';
import type { Activation, RateDeckUpdateStore } from './store.js';

/**
 * The rate-deck scheduler: one timer for the next pending update's effective_at, re-armed whenever an update
 * is created or deleted and when the control plane starts (which also activates at once what fell due while
 * it was down). What an activation suspends must reach the sidecars to bite, so each activation asks for a
 * routing sync by itself rather than waiting for an operator's.
 */

/** setTimeout's longest delay (about 24.8 days); a later update is re-checked then. */
const LONGEST_WAIT_MS = 2_147_483_647;

export class RateDeckScheduler {
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(
    private readonly store: RateDeckUpdateStore,
    private readonly log: Logger,
    /** A routing sync, asked for after activations (and reinstatements): its outcome is logged, not awaited. */
    private readonly requestSync: (reason: string) => void,
    private readonly clock: () => number = Date.now,
  ) {}

  /** Activates what is already due, then waits for the next. */
  start(): Promise<void> {
    this.stopped = false;
    return this.rearm();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  /** Activates every update due now (also called before a delete, so a due update is not deleted as pending). */
  async activateDue(): Promise<Activation[]> {
    const activations = await this.store.activateDue(new Date(this.clock()).toISOString());
    for (const activation of activations)
      this.log.info(
        {
          rate_deck_update_id: activation.id,
          rate_deck_id: activation.rate_deck_id,
          notified_trunks: activation.notified,
          suspended_trunks: activation.suspended,
          superseded_updates: activation.superseded,
        },
        'rate deck update activated',
      );
    if (activations.length > 0) this.requestSync(`rate deck update ${activations.map((activation) => activation.id).join(', ')} activated`);
    return activations;
  }

  /** Sets the timer for the earliest pending update (after activating any already due). Never rejects. */
  async rearm(): Promise<void> {
    if (this.stopped) return;
    let due: string | null;
    try {
      await this.activateDue();
      due = await this.store.nextDue();
    } catch (error) {
      // The database refused (busy, full disk, unreachable): the updates stay pending, and are tried again shortly.
      this.log.error({ err: error }, 'rate deck updates could not be activated; retrying');
      this.arm(1_000);
      return;
    }
    if (due === null) {
      this.arm(null);
      return;
    }
    this.arm(Math.min(Math.max(Date.parse(due) - this.clock(), 0), LONGEST_WAIT_MS));
  }

  /** One timer at most, however many re-arms overlapped (each awaits the database); null: none. */
  private arm(delayMs: number | null): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    if (delayMs === null || this.stopped) return;
    this.timer = setTimeout(() => void this.rearm(), delayMs);
    // The server keeps the process alive; a pending update alone must not.
    this.timer.unref();
  }
}
