/**
 * Per-trunk call-rate counters kept in the sidecar's memory (what the
 * contract keeps in KeyDB; each OpenSIPS node has its own sidecar, so these
 * are per node).
 *
 * - per-minute: a fixed 60-second window that starts at the first call and
 *   resets 60 s later (the contract's INCR + TTL, not a sliding window). A call
 *   refused for exceeding the limit is not counted.
 * - CPS: attempts seen by call/auth (customer) and call/route (carrier) in the
 *   current wall-clock second; a carrier the script skipped (call/reroute without a failure) is given back.
 *
 * Only trunks the serving snapshot knows are counted: trunk_id comes from the request, and a map keyed by any
 * id a client sends grows without bound (100k made-up ids once cost 23 MB and a 649 ms listing).
 */
export type TrunkType = 'customer' | 'carrier';

const WINDOW_MS = 60_000;

interface Window {
  startedAt: number;
  count: number;
}

interface SecondCounter {
  second: number;
  count: number;
}

export class CallCounters {
  private readonly perMinute = new Map<number, Window>();
  private readonly cps = { customer: new Map<number, SecondCounter>(), carrier: new Map<number, SecondCounter>() };

  /** `isKnownTrunk`: whether the serving snapshot has a customer or carrier trunk with this id. */
  constructor(private readonly isKnownTrunk: (trunkId: number) => boolean) {}

  /**
   * Counts the call if the trunk is under its limit; `current` is the count after the decision. A trunk the
   * snapshot does not know is not counted (nor stored): it is answered as an empty window would be, without the
   * call, so `current` stays 0.
   */
  checkPerMinute(trunkId: number, limit: number, now: number): { allowed: boolean; current: number; limit: number } {
    if (!this.isKnownTrunk(trunkId)) return { allowed: limit > 0, current: 0, limit };
    let window = this.perMinute.get(trunkId);
    if (window === undefined || now - window.startedAt >= WINDOW_MS) {
      window = { startedAt: now, count: 0 };
      this.perMinute.set(trunkId, window);
    }
    if (window.count >= limit) return { allowed: false, current: window.count, limit };
    window.count++;
    return { allowed: true, current: window.count, limit };
  }

  perMinuteCurrent(trunkId: number, now: number): number {
    const window = this.perMinute.get(trunkId);
    return window === undefined || now - window.startedAt >= WINDOW_MS ? 0 : window.count;
  }

  perMinuteTrunks(now: number): number[] {
    const trunks: number[] = [];
    for (const [trunkId, window] of this.perMinute) {
      if (now - window.startedAt < WINDOW_MS) trunks.push(trunkId);
      else this.perMinute.delete(trunkId); // expired windows go, as KeyDB keys would
    }
    return trunks.sort((a, b) => a - b);
  }

  recordAttempt(type: TrunkType, trunkId: number, now: number): void {
    const second = Math.floor(now / 1000);
    const counters = this.cps[type];
    const counter = counters.get(trunkId);
    if (counter === undefined) counters.set(trunkId, { second, count: 1 });
    else if (counter.second === second) counter.count++;
    else {
      counter.second = second;
      counter.count = 1;
    }
  }

  /**
   * An attempt counted by recordAttempt that did not happen: a carrier call/route handed out and the script then
   * skipped at its limits, without sending it anything. Counted in a second already over, it is gone already.
   */
  giveBackAttempt(type: TrunkType, trunkId: number, now: number): void {
    const counter = this.cps[type].get(trunkId);
    if (counter !== undefined && counter.second === Math.floor(now / 1000) && counter.count > 0) counter.count--;
  }

  cpsCurrent(type: TrunkType, trunkId: number, now: number): number {
    const counter = this.cps[type].get(trunkId);
    return counter !== undefined && counter.second === Math.floor(now / 1000) ? counter.count : 0;
  }

  cpsTrunks(type: TrunkType): number[] {
    return [...this.cps[type].keys()].sort((a, b) => a - b);
  }
}
