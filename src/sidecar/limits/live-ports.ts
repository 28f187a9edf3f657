/**
 * Live calls per customer trunk: the contract's `ports:<trunk_id>` counter (KeyDB, incremented by OpenSIPS
 * at dialog creation), kept here from the node's own admissions.
 *
 * A port is taken when a call's reservation is held and given back when that reservation ends, whichever
 * way it ends: a CDR, call/release, a route refused after admission, expiry of a call that never reported
 * (its longest duration plus the grace period), a dialog OpenSIPS no longer has, or a journal write that was
 * refused. So a port lives exactly as long as its reservation, which the money journal already keeps across
 * restarts: a restarted node counts its ports again from the reservations it recovers, and a call that never
 * sends a CDR cannot hold a port past its reservation's expiry.
 *
 * One integer per trunk with live calls, in a Map: a take or a give-back is a lookup and a store, nothing
 * allocated per call once the trunk has an entry. A trunk's entry goes when its last call ends, so the map
 * holds only trunks with live calls (never more than the node's live reservations).
 */
export class LivePorts {
  private readonly live = new Map<number, number>();

  /** Live calls on the trunk. */
  current(trunkId: number): number {
    return this.live.get(trunkId) ?? 0;
  }

  /**
   * Whether the trunk has no port left for another call. `limit` 0 or less: no limit (as OpenSIPS's script
   * reads a zero limit; the admin API never stores one, a snapshot made elsewhere might).
   */
  full(trunkId: number, limit: number): boolean {
    return limit > 0 && this.current(trunkId) >= limit;
  }

  take(trunkId: number): void {
    this.live.set(trunkId, this.current(trunkId) + 1);
  }

  /** Gives back a port taken with take(); a trunk without live calls keeps no entry. */
  giveBack(trunkId: number): void {
    const left = this.current(trunkId) - 1;
    if (left > 0) this.live.set(trunkId, left);
    else this.live.delete(trunkId);
  }

  /** Trunks with live calls, in id order (GET /api/metrics/cps without trunk_id). */
  trunks(): number[] {
    return [...this.live.keys()].sort((a, b) => a - b);
  }
}
