/**
 * A big table a node keeps beside its compiled snapshot (trunk_ip_auth: 100k rows in the wholesale world), held
 * as rows in id order cut into chunks, so that a live change copies one chunk and the short list of chunks
 * instead of the whole table (issue 18: a delta must cost the event loop well under a millisecond). Each write
 * returns a new value and leaves the old one as it was: a request holding the state before a delta keeps
 * reading it whole (copy-on-write).
 *
 * Each chunk also keeps its rows sorted by a group (for trunk_ip_auth, the customer trunk a row belongs to), so
 * "every row of trunk T" is one binary search per chunk rather than a scan of the table: what suspending or
 * reactivating a trunk needs.
 *
 * Plain data (arrays and typed arrays, no class): the compile worker builds it and posts it to the main thread.
 */
import { idPosition } from './rows.js';

export interface RowChunks<Row extends { id: number }> {
  /** Non-empty chunks, in id order: every row of chunk k has a lower id than any row of chunk k + 1. */
  readonly chunks: readonly RowChunk<Row>[];
  readonly length: number;
}

export interface RowChunk<Row> {
  /** In id order. */
  readonly rows: readonly Row[];
  /** `group * GROUP_SPAN + position` of each grouped row, ascending: the rows of a group are one run. */
  readonly byGroup: Float64Array;
}

/**
 * Which group a row belongs to (a non-negative integer below 2^40), or -1 for none. The same function must be
 * passed for every write to one RowChunks: the groups are worked out when a chunk is written.
 */
export type GroupOf<Row> = (row: Row) => number;

/** Chunks are cut at this many rows and split past twice as many: one write copies at most 2 × this. */
export const CHUNK_ROWS = 512;
/** Above any position in a chunk (2 × CHUNK_ROWS), so a group and a position share one exact double. */
const GROUP_SPAN = 2048;

/** `rows` (in id order) as chunks. */
export function rowChunksOf<Row extends { id: number }>(rows: readonly Row[], groupOf: GroupOf<Row>): RowChunks<Row> {
  const chunks: RowChunk<Row>[] = [];
  for (let start = 0; start < rows.length; start += CHUNK_ROWS) chunks.push(chunkOf(rows.slice(start, start + CHUNK_ROWS), groupOf));
  return { chunks, length: rows.length };
}

/** The row with `id`, if any. */
export function findRow<Row extends { id: number }>(table: RowChunks<Row>, id: number): Row | undefined {
  const k = chunkFor(table, id);
  if (k === table.chunks.length) return undefined;
  const chunk = table.chunks[k];
  const at = idPosition(chunk.rows, id);
  return chunk.rows[at]?.id === id ? chunk.rows[at] : undefined;
}

/** The table with `row` put in place of the row with its id, or added where its id sorts. */
export function withRow<Row extends { id: number }>(table: RowChunks<Row>, row: Row, groupOf: GroupOf<Row>): RowChunks<Row> {
  if (table.chunks.length === 0) return { chunks: [chunkOf([row], groupOf)], length: 1 };
  const k = Math.min(chunkFor(table, row.id), table.chunks.length - 1);
  const rows = table.chunks[k].rows.slice();
  const at = idPosition(rows, row.id);
  const replaces = rows[at]?.id === row.id;
  if (replaces) rows[at] = row;
  else rows.splice(at, 0, row);
  const chunks = table.chunks.slice();
  // A chunk grown to twice the size is cut in two, so no write ever copies more than 2 × CHUNK_ROWS rows.
  if (rows.length > 2 * CHUNK_ROWS)
    chunks.splice(k, 1, chunkOf(rows.slice(0, CHUNK_ROWS), groupOf), chunkOf(rows.slice(CHUNK_ROWS), groupOf));
  else chunks[k] = chunkOf(rows, groupOf);
  return { chunks, length: table.length + (replaces ? 0 : 1) };
}

/** The table without the row with `id` (the same table when it holds none). */
export function withoutRow<Row extends { id: number }>(table: RowChunks<Row>, id: number, groupOf: GroupOf<Row>): RowChunks<Row> {
  const k = chunkFor(table, id);
  if (k === table.chunks.length) return table;
  const chunk = table.chunks[k];
  const at = idPosition(chunk.rows, id);
  if (chunk.rows[at]?.id !== id) return table;
  const rows = chunk.rows.slice();
  rows.splice(at, 1);
  const chunks = table.chunks.slice();
  if (rows.length === 0) chunks.splice(k, 1);
  else chunks[k] = chunkOf(rows, groupOf);
  return { chunks, length: table.length - 1 };
}

/** Every row of `group`, in id order. */
export function rowsInGroup<Row extends { id: number }>(table: RowChunks<Row>, group: number): Row[] {
  const found: Row[] = [];
  const first = group * GROUP_SPAN;
  for (const chunk of table.chunks) {
    const keys = chunk.byGroup;
    let low = 0;
    let high = keys.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (keys[middle] < first) low = middle + 1;
      else high = middle;
    }
    for (let i = low; i < keys.length && keys[i] < first + GROUP_SPAN; i++) found.push(chunk.rows[keys[i] - first]);
  }
  return found;
}

/** Every row, in id order, as one array: for the rare whole-table work (a full check, a fresh build). */
export function allRows<Row extends { id: number }>(table: RowChunks<Row>): Row[] {
  const rows: Row[] = [];
  for (const chunk of table.chunks) for (const row of chunk.rows) rows.push(row);
  return rows;
}

function chunkOf<Row>(rows: Row[], groupOf: GroupOf<Row>): RowChunk<Row> {
  const keys: number[] = [];
  for (let position = 0; position < rows.length; position++) {
    const group = groupOf(rows[position]);
    if (group >= 0) keys.push(group * GROUP_SPAN + position);
  }
  // A typed array sorts numerically with no comparator; group first, then position, so a group's rows stay in id order.
  return { rows, byGroup: Float64Array.from(keys).sort() };
}

/** The chunk that holds `id` or where it would go: the first whose last id is not below it (past the end: none). */
function chunkFor<Row extends { id: number }>(table: RowChunks<Row>, id: number): number {
  const { chunks } = table;
  let low = 0;
  let high = chunks.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    const rows = chunks[middle].rows;
    if (rows[rows.length - 1].id < id) low = middle + 1;
    else high = middle;
  }
  return low;
}
