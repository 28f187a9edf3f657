import { isLiveTable, type Delta } from '../snapshot/delta.js';

export type { Delta, LiveTable } from '../snapshot/delta.js';
export { LIVE_TABLES, isLiveTable } from '../snapshot/delta.js';

/**
 * Live changes, centre -> node (issue 18). Every admin change to a live table (src/core/snapshot/delta.ts) is written to the centre's
 * delta log in the transaction that makes it, under one global sequence: 1, 2, 3… with no gap, the order the
 * changes committed in. A snapshot records the sequence it includes (`SnapshotTables.delta_seq`); a node
 * applies, in order, the deltas after it. The node asks for them with
 * `GET /api/nodes/deltas?node=<hostname>&after=<seq>&wait_ms=<ms>` (its Bearer secret, as on money rounds):
 * the centre answers at once with what it has past `after`, or holds the request until a delta commits.
 *
 * A delta carries the whole row as the snapshot has it (booleans as booleans), or only the id of a deleted
 * one, so applying it never needs anything the node does not hold.
 */

/** The answer to a node's ask. */
export interface DeltaBatch {
  /** In sequence order, each exactly one past the one before, the first exactly one past `after`. */
  deltas: Delta[];
  /** The newest sequence committed at the centre when it answered. */
  last_seq: number;
  /**
   * The deltas the node needs are no longer in the log (trimmed), or the node is ahead of the log (the
   * centre's store was replaced): it must take a snapshot. The centre starts a sync that sends one.
   */
  snapshot_required: boolean;
}

/**
 * A batch as the wire carries it, checked: a malformed one is refused whole, never half applied. Field values
 * inside rows are checked by the snapshot validation the apply runs (src/core/snapshot/live.ts).
 */
export function parseDeltaBatch(value: unknown): DeltaBatch | null {
  if (typeof value !== 'object' || value === null) return null;
  const { deltas, last_seq: lastSeq, snapshot_required: snapshotRequired } = value as Record<string, unknown>;
  if (!Array.isArray(deltas) || !isSeq(lastSeq) || typeof snapshotRequired !== 'boolean') return null;
  for (const delta of deltas as unknown[]) {
    if (typeof delta !== 'object' || delta === null) return null;
    const { seq, table, op, id, row } = delta as Record<string, unknown>;
    if (!isSeq(seq) || typeof table !== 'string' || !isLiveTable(table)) return null;
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 1) return null;
    if (op === 'delete' ? row !== null : op !== 'upsert' || typeof row !== 'object' || row === null || Array.isArray(row)) return null;
    if (op === 'upsert' && (row as Record<string, unknown>).id !== id) return null;
  }
  return { deltas: deltas as Delta[], last_seq: lastSeq, snapshot_required: snapshotRequired };
}

function isSeq(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}
