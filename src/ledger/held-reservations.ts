/**
 * Live reservations by Call-ID, and by when they expire: every few seconds
 * the node releases those whose call must have ended without a CDR, and
 * scanning them all (1.8M at 10k calls/s of three-minute calls) would stall
 * the event loop for tens of milliseconds each time. They sit in
 * ten-second windows of their expiry instead, so expiry visits only the
 * windows that are due.
 */
const WINDOW_MS = 10_000;

export interface Expiring {
  callId: string;
  expiresAt: number;
}

export class HeldReservations<T extends Expiring> {
  private readonly byCallId = new Map<string, T>();
  private readonly windows = new Map<number, Set<T>>();
  /** No window before this one holds anything. */
  private firstWindow = Number.POSITIVE_INFINITY;

  get size(): number {
    return this.byCallId.size;
  }

  get(callId: string): T | undefined {
    return this.byCallId.get(callId);
  }

  add(reservation: T): void {
    this.byCallId.set(reservation.callId, reservation);
    const window = Math.floor(reservation.expiresAt / WINDOW_MS);
    let members = this.windows.get(window);
    if (members === undefined) {
      members = new Set();
      this.windows.set(window, members);
    }
    members.add(reservation);
    if (window < this.firstWindow) this.firstWindow = window;
  }

  /** Takes out this very reservation; false when it is not the one held under its Call-ID. */
  remove(reservation: T): boolean {
    if (this.byCallId.get(reservation.callId) !== reservation) return false;
    this.byCallId.delete(reservation.callId);
    const window = Math.floor(reservation.expiresAt / WINDOW_MS);
    const members = this.windows.get(window);
    members?.delete(reservation);
    if (members?.size === 0) this.windows.delete(window);
    return true;
  }

  /** The reservations whose expiry is at or before `now`, oldest window first (they stay held until removed). */
  due(now: number): T[] {
    const last = Math.floor(now / WINDOW_MS);
    if (this.firstWindow > last) return [];
    // Usually a window or two; after a long gap (or a restart with old reservations) the windows that exist.
    const windows =
      last - this.firstWindow <= this.windows.size
        ? Array.from({ length: last - this.firstWindow + 1 }, (_, i) => this.firstWindow + i)
        : [...this.windows.keys()].filter((window) => window <= last).sort((a, b) => a - b);
    const due: T[] = [];
    for (const window of windows) {
      const members = this.windows.get(window);
      if (members === undefined) continue;
      for (const reservation of members) if (reservation.expiresAt <= now) due.push(reservation);
    }
    // Windows before the current one are emptied by the caller's removals; the current one may keep some.
    this.firstWindow = last;
    if (this.windows.size === 0) this.firstWindow = Number.POSITIVE_INFINITY;
    return due;
  }
}
