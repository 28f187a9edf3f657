/**
 * Token buckets by key (a tenant, a client address), in memory: each key may spend `burst` at once and gets
 * `perMinute` back every minute, up to `burst`. Bounded: past `capacity` keys, the one touched least recently
 * goes. A bucket left alone refills to full, which is what a key never seen starts with, so dropping an idle
 * one forgets nothing; dropping a busy one forgives it, which only a caller spraying more keys than the
 * capacity can bring about (and such a caller is no longer held by a per-key limit anyway).
 *
 * One control plane's own counts: two behind one balancer each allow the rate (docs/operations.md says so).
 */
export interface BucketLimits {
  /** Tokens given back per minute (a per-second rate times 60). */
  perMinute: number;
  /** Tokens a full bucket holds. */
  burst: number;
}

/**
 * A token's worth of `units`: a bucket counts in token-minutes-per-millisecond, so that a millisecond of
 * refill is `perMinute` units and every sum stays a whole number (no float drift in a wait).
 */
const UNITS_PER_TOKEN = 60_000;

interface Bucket {
  units: number;
  /** When `units` was last brought up to date (the clock's milliseconds). */
  at: number;
}

export class TokenBuckets {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    readonly limits: BucketLimits,
    readonly capacity: number,
    private readonly clock: () => number = Date.now,
  ) {}

  private get full(): number {
    return this.limits.burst * UNITS_PER_TOKEN;
  }

  get size(): number {
    return this.buckets.size;
  }

  /** Spends one of the key's tokens: 0 when it had one, else the milliseconds until it will have one (nothing spent). */
  take(key: string): number {
    const now = this.clock();
    let bucket = this.buckets.get(key);
    if (bucket === undefined) bucket = { units: this.full, at: now };
    else {
      bucket.units = Math.min(this.full, bucket.units + Math.max(0, now - bucket.at) * this.limits.perMinute);
      bucket.at = now;
      // Map keeps insertion order: moved to the end, the bucket is the one touched most recently.
      this.buckets.delete(key);
    }
    this.buckets.set(key, bucket);
    while (this.buckets.size > this.capacity) this.buckets.delete(this.buckets.keys().next().value!);
    if (bucket.units >= UNITS_PER_TOKEN) {
      bucket.units -= UNITS_PER_TOKEN;
      return 0;
    }
    return Math.ceil((UNITS_PER_TOKEN - bucket.units) / this.limits.perMinute);
  }

  /** A token taken for something that turned out not to count (a token that verified) is given back. */
  giveBack(key: string): void {
    const bucket = this.buckets.get(key);
    if (bucket !== undefined) bucket.units = Math.min(this.full, bucket.units + UNITS_PER_TOKEN);
  }
}
