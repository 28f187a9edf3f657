import type { Logger } from 'pino';
import type { Delta, MoneySignals } from '../../core/protocol/deltas.js';
import type { ApplyResult } from '../../core/snapshot/live.js';
import type { DeltaChannel } from './channel.js';

/**
 * Follows the centre's delta log (issue 18): asks for what follows the serving state's sequence, applies it in
 * order, asks again. It never skips: a batch that does not follow on is dropped and asked for again from the
 * node's own sequence, as is one that arrives after a snapshot swap moved that sequence. Every ask names the
 * node's applied sequence, which is how the centre learns its lag. When the centre says the node is behind
 * its log, the centre sends a snapshot (its sync); the follower keeps asking until one has brought it back.
 */
/** What serves the node's state (the SnapshotService): its sequence, the apply, and word of every snapshot swap. */
export interface LiveStateHolder {
  readonly deltaSeq: number | null;
  applyDeltas(deltas: readonly Delta[]): ApplyResult;
  onSnapshot(listener: () => void): void;
}

const RETRY_MS = 1000;
const NO_SNAPSHOT_MS = 500;
/** A failing channel is logged at most this often (a centre down for an hour is one line a minute). */
const LOG_EVERY_MS = 60_000;

export class DeltaFollower {
  private stopped = false;
  private asking: AbortController | null = null;
  private lastFailureLog = 0;
  private done: Promise<void> | null = null;
  /** A batch was refused as invalid: the centre is asked for a snapshot until one comes. */
  private wantSnapshot = false;
  /** Wakes a follower that waits for the node's first snapshot. */
  private snapshotCame: (() => void) | null = null;

  constructor(
    private readonly channel: DeltaChannel,
    private readonly snapshots: LiveStateHolder,
    private readonly log: Logger,
    /** Where the money signals a batch carries go (NodeCredit.moneySignals); whatever becomes of its deltas. */
    private readonly onMoney: ((signals: MoneySignals) => void) | null = null,
  ) {
    // A snapshot moved the sequence: the ask held open names the old one, so it is dropped and made again.
    snapshots.onSnapshot(() => {
      this.wantSnapshot = false;
      this.asking?.abort();
      this.snapshotCame?.();
    });
  }

  start(): void {
    this.done = this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.asking?.abort();
    await this.done;
    this.channel.close();
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      const after = this.snapshots.deltaSeq;
      if (after === null) {
        // Nothing to apply deltas to before the first snapshot: asked again the moment one is in service.
        await new Promise<void>((resolve) => {
          this.snapshotCame = resolve;
          setTimeout(resolve, NO_SNAPSHOT_MS).unref();
        });
        this.snapshotCame = null;
        continue;
      }
      const asking = new AbortController();
      this.asking = asking;
      try {
        const batch = await this.channel.next(after, asking.signal, this.wantSnapshot);
        if (this.isStopped()) return;
        if (batch.money !== undefined) this.onMoney?.(batch.money);
        if (batch.snapshot_required) {
          this.failed(`the control plane's delta log no longer reaches sequence ${after}: waiting for its snapshot`, null);
          await pause(RETRY_MS);
          continue;
        }
        if (this.snapshots.deltaSeq !== after || batch.deltas.length === 0) continue;
        const result = this.snapshots.applyDeltas(batch.deltas);
        if (!result.ok) {
          this.failed(`deltas after ${after} not applied (${result.code}): ${result.reason}`, null);
          if (result.code === 'invalid') {
            this.wantSnapshot = true;
            await pause(RETRY_MS);
          }
        }
      } catch (error) {
        if (asking.signal.aborted || this.isStopped()) continue;
        this.failed('the delta channel to the control plane failed', error);
        await pause(RETRY_MS);
      } finally {
        if (this.asking === asking) this.asking = null;
      }
    }
  }

  /** Read again after an await (stop() may have run meanwhile). */
  private isStopped(): boolean {
    return this.stopped;
  }

  private failed(message: string, error: unknown): void {
    const now = Date.now();
    if (now - this.lastFailureLog < LOG_EVERY_MS) return;
    this.lastFailureLog = now;
    this.log.warn({ err: error ?? undefined, delta_seq: this.snapshots.deltaSeq }, message);
  }
}

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
