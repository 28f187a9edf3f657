/**
 * Request bodies held in memory, process-wide. A body costs memory only as its
 * bytes arrive (GrowingBody), never by what its Content-Length declares, and all
 * bodies being read share one budget: past it the server answers 503
 * server_busy rather than letting many slow or large uploads exhaust memory.
 */

/** Default process-wide budget for bodies being read: 256 MiB. */
export const DEFAULT_BODY_BUDGET_BYTES = 256 * 1024 * 1024;

/** First buffer for a body that does not arrive in one chunk; it doubles from here. */
const INITIAL_BYTES = 64 * 1024;

export class BodyBudget {
  private held = 0;

  constructor(readonly limitBytes: number) {}

  /** Bytes of body buffers held right now (for the metrics page and tests). */
  get heldBytes(): number {
    return this.held;
  }

  /**
   * Takes `bytes` more for a body that already holds `ownBytes`. Refused past the budget, except for a body
   * that is the only one held: a snapshot larger than the budget (up to its route's own limit) still loads on
   * an otherwise idle server, so the worst case is the budget plus one route-limited body.
   */
  take(bytes: number, ownBytes: number): boolean {
    if (this.held + bytes > this.limitBytes && this.held > ownBytes) return false;
    this.held += bytes;
    return true;
  }

  give(bytes: number): void {
    this.held -= bytes;
  }
}

export type AppendOutcome = 'ok' | 'too_large' | 'busy';

/**
 * One request's body, copied out of uWS memory chunk by chunk into a buffer that doubles as needed, up to
 * `limitBytes` (the route's limit) and to the declared length when there is one, so a body of known length
 * ends in a buffer of exactly its size (which the snapshot path transfers to its worker without a copy).
 */
export class GrowingBody {
  private buffer: Buffer | null = null;
  /** Bytes taken from the budget; kept apart from the buffer, whose memory a handler may transfer (detach). */
  private capacity = 0;
  private length = 0;
  private released = false;

  constructor(
    private readonly budget: BodyBudget,
    private readonly limitBytes: number,
    /** The declared Content-Length, or 0 when none (chunked). */
    private readonly declaredBytes: number,
  ) {}

  get receivedBytes(): number {
    return this.length;
  }

  append(chunk: Uint8Array): AppendOutcome {
    if (this.released) return 'busy';
    if (chunk.byteLength === 0) return 'ok'; // uWS ends some bodies with an empty last chunk
    const needed = this.length + chunk.byteLength;
    if (needed > this.limitBytes || (this.declaredBytes > 0 && needed > this.declaredBytes)) return 'too_large';
    const capacity = this.capacity;
    if (needed > capacity) {
      let next = Math.max(needed, Math.min(this.limitBytes, Math.max(INITIAL_BYTES, capacity * 2)));
      if (this.declaredBytes > 0) next = Math.min(next, this.declaredBytes);
      if (!this.budget.take(next - capacity, capacity)) return 'busy';
      let grown: Buffer;
      try {
        grown = Buffer.allocUnsafeSlow(next);
      } catch {
        // RangeError: Array buffer allocation failed. The process must outlive one request it cannot hold.
        this.budget.give(next - capacity);
        return 'busy';
      }
      if (this.buffer !== null) this.buffer.copy(grown, 0, 0, this.length);
      this.buffer = grown;
      this.capacity = next;
    }
    this.buffer!.set(chunk, this.length);
    this.length = needed;
    return 'ok';
  }

  /** The body so far; owns its whole ArrayBuffer when the declared length was reached. */
  bytes(): Uint8Array {
    return this.buffer === null ? new Uint8Array(0) : this.buffer.subarray(0, this.length);
  }

  /** Gives the buffer's bytes back to the budget (once): the request was answered or aborted. */
  release(): void {
    if (this.released) return;
    this.released = true;
    this.budget.give(this.capacity);
    this.capacity = 0;
    this.buffer = null;
  }
}
