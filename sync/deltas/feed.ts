import type { Delta, LiveTable } from '../../src/core/protocol/deltas.js';
import type { DeltaRetention } from './log.js';

/** A delta as the operators' status lists it: what changed and when, without the row. */
export interface RecentDelta {
  seq: number;
  committed_at: string;
  table: LiveTable;
  op: 'upsert' | 'delete';
  id: number;
}

/**
 * What the nodes' long poll reads (routes.ts), on either engine: SQLite's DeltaLog answers at once, the
 * PostgreSQL feed (pg-log.ts) through a query; the routes await both alike.
 */
export interface DeltaFeed {
  readonly retention: DeltaRetention;
  read(after: number, limit: number): Delta[] | null | Promise<Delta[] | null>;
  lastSeq(): number | Promise<number>;
  oldestSeq(): number | null | Promise<number | null>;
  recent(limit: number): RecentDelta[] | Promise<RecentDelta[]>;
  waitPast(after: number, ms: number, signal?: AbortSignal): Promise<void>;
}
