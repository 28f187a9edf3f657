import { isLiveTable, type Delta } from '../snapshot/delta.js';
import type { EntityType } from './node-sync.js';

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
  /**
   * Money signals for this node (issue 18, "money rides the same channel"), absent when there are none: the
   * centre wakes a node's held ask for them as it wakes it for a delta. The node answers each with a money
   * round at once (docs/money-path.md, "The money channel").
   */
  money?: MoneySignals;
}

/** What the centre wants a node to do about its credit now, by entity. */
export interface MoneySignals {
  /** Hand back the unused lease of these entities now: a call or a debit elsewhere needs it. */
  recall: MoneyEntity[];
  /** Ask again for these entities: their headroom changed (a top-up, a debit, lease handed back by another node). */
  refresh: MoneyEntity[];
}

export interface MoneyEntity {
  entity_type: EntityType;
  entity_id: number;
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
  const money = parseMoneySignals((value as Record<string, unknown>).money);
  if (money === null) return null;
  return { deltas: deltas as Delta[], last_seq: lastSeq, snapshot_required: snapshotRequired, ...(money === undefined ? {} : { money }) };
}

/** undefined: none sent; null: malformed (the whole batch is refused). */
function parseMoneySignals(value: unknown): MoneySignals | undefined | null {
  if (value === undefined) return undefined;
  if (typeof value !== 'object' || value === null) return null;
  const { recall, refresh } = value as Record<string, unknown>;
  const entities = (list: unknown): MoneyEntity[] | null => {
    if (!Array.isArray(list) || list.length > MAX_MONEY_ENTITIES) return null;
    for (const item of list as unknown[]) {
      if (typeof item !== 'object' || item === null) return null;
      const { entity_type: type, entity_id: id } = item as Record<string, unknown>;
      if (type !== 'customer' && type !== 'carrier' && type !== 'retail') return null;
      if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 1) return null;
    }
    return list as MoneyEntity[];
  };
  const recalled = entities(recall);
  const refreshed = entities(refresh);
  if (recalled === null || refreshed === null) return null;
  return { recall: recalled, refresh: refreshed };
}

/** More than any centre sends at once (it sends a node's pending signals, one per entity). */
const MAX_MONEY_ENTITIES = 100_000;

function isSeq(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}
