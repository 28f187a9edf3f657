import type { SyncReport } from './sync-job.js';

/**
 * The syncs the control plane ran since it started, newest first, for the console's Sync page: when each
 * started and finished, how long it took, and its report (per-node results and warnings) or why it failed.
 * Bounded: only the last SYNC_HISTORY_SIZE are kept (in memory, lost on restart like the last run's report).
 */
export const SYNC_HISTORY_SIZE = 50;

export interface SyncRecord {
  started_at: string;
  finished_at: string;
  duration_ms: number;
  forced: boolean;
  /** The report, when the sync got that far (it may still have failed on some nodes: see its results). */
  report: SyncReport | null;
  /** Why the sync stopped before it reported (a row the sidecars would refuse, a store error). */
  error: string | null;
}

/** The sync running now, and the phase it is in: what the Sync page shows as its progress. */
export interface RunningSync {
  started_at: string;
  forced: boolean;
  phase: string;
}

export class SyncHistory {
  private readonly records: SyncRecord[] = [];
  private current: RunningSync | null = null;
  private startedMs = 0;

  started(forced: boolean): void {
    this.current = { started_at: new Date().toISOString(), forced, phase: 'reading the configuration' };
    this.startedMs = performance.now();
  }

  phase(name: string): void {
    if (this.current !== null) this.current.phase = name;
  }

  finished(outcome: { report: SyncReport } | { error: string }): SyncRecord | null {
    const current = this.current;
    if (current === null) return null;
    this.current = null;
    const record: SyncRecord = {
      started_at: current.started_at,
      finished_at: new Date().toISOString(),
      duration_ms: Math.round(performance.now() - this.startedMs),
      forced: current.forced,
      report: 'report' in outcome ? outcome.report : null,
      error: 'error' in outcome ? outcome.error : null,
    };
    this.records.unshift(record);
    if (this.records.length > SYNC_HISTORY_SIZE) this.records.length = SYNC_HISTORY_SIZE;
    return record;
  }

  running(): RunningSync | null {
    return this.current === null ? null : { ...this.current };
  }

  /** Newest first, at most `limit`. */
  list(limit: number): SyncRecord[] {
    return this.records.slice(0, limit);
  }
}
