/**
 * Brute force against portal logins, held back: failures are counted per username and per source address
 * over a sliding window, and past the limit a login is answered 429 without its password being checked, until
 * the oldest failure leaves the window. A login is counted as failed while its password is checked, so that
 * logins sent at once are held back as those sent one after another. A success clears the username's
 * failures (not the address's, but for its own: one address trying many usernames is what the address
 * limit is for).
 *
 * In memory, for the one control plane there is today: a restart forgets the counts, and two control planes
 * would each count their own (a shared store is the production-databases issue's; docs/operations.md says so).
 */
export interface ThrottleLimits {
  perUsername: number;
  perAddress: number;
  windowMs: number;
}

export const DEFAULT_LIMITS: ThrottleLimits = { perUsername: 5, perAddress: 20, windowMs: 15 * 60 * 1000 };

/** Keys kept at most: a flood of distinct usernames must not grow the map without bound. */
const MAX_KEYS = 100_000;

export class LoginThrottle {
  private readonly failures = new Map<string, number[]>();

  constructor(
    private readonly limits: ThrottleLimits = DEFAULT_LIMITS,
    private readonly clock: () => number = Date.now,
  ) {}

  /** Seconds to wait before this login may be tried; 0 when it may be tried now. */
  retryAfterSeconds(username: string, address: string): number {
    const now = this.clock();
    const wait = Math.max(
      this.waitFor(`user:${username}`, this.limits.perUsername, now),
      this.waitFor(`addr:${address}`, this.limits.perAddress, now),
    );
    return wait === 0 ? 0 : Math.max(1, Math.ceil(wait / 1000));
  }

  failed(username: string, address: string): void {
    const now = this.clock();
    for (const key of [`user:${username}`, `addr:${address}`]) {
      const times = this.recent(key, now);
      times.push(now);
      this.failures.delete(key); // re-inserted last: the map's order is then oldest activity first
      this.failures.set(key, times);
    }
    while (this.failures.size > MAX_KEYS) this.failures.delete(this.failures.keys().next().value as string);
  }

  /**
   * A login that was counted as failed while its password was checked (auth-routes.ts) succeeded: the
   * username's failures are cleared, and the address's count loses that one login.
   */
  succeeded(username: string, address: string): void {
    this.failures.delete(`user:${username}`);
    this.failures.get(`addr:${address}`)?.pop();
  }

  private recent(key: string, now: number): number[] {
    return (this.failures.get(key) ?? []).filter((time) => time > now - this.limits.windowMs);
  }

  private waitFor(key: string, limit: number, now: number): number {
    const times = this.recent(key, now);
    if (times.length < limit) return 0;
    // The window holds `limit` or more failures: wait until enough of the oldest leave it.
    return times[times.length - limit] + this.limits.windowMs - now;
  }
}
