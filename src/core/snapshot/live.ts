import { isLiveTable, type Delta, type LiveTable } from './delta.js';
import { recompileLive } from './compile.js';
import type { CompiledSnapshot } from './model.js';
import type { SmallTables, SnapshotTables } from './schema.js';
import { validateSnapshot } from './validate.js';

/**
 * Applying live changes (deltas, src/core/protocol/deltas.ts) to what a node serves, without recompiling the
 * world: the changed tables are copied with the change (copy-on-write: the old arrays are left as they were),
 * checked as a snapshot's tables are, and only the indexes they feed are rebuilt (recompileLive). The result
 * is a new state; the caller swaps it in with one assignment, so a request sees the state before the batch
 * or after it, never a mix. Pure: no clock, no I/O.
 */
export interface LiveState {
  compiled: CompiledSnapshot;
  /** Every table but the rates, as of `compiled.deltaSeq`: what the next delta applies to. */
  tables: SmallTables;
}

export type ApplyResult =
  | { ok: true; state: LiveState; applied: number }
  /** `gap`: the batch does not continue the state's sequence (the caller asks again from its own). */
  | { ok: false; code: 'gap' | 'invalid'; reason: string };

/**
 * Applies `deltas` in order. Deltas at or below the state's sequence are skipped (already applied: a replay
 * after a snapshot, a batch asked twice); the first one past it must be exactly the next, and each after
 * exactly one more, or nothing is applied. A batch whose result fails the snapshot checks (a row of a shape
 * the node refuses, a reference to something it does not hold) is refused whole.
 */
export function applyDeltas(state: LiveState, deltas: readonly Delta[]): ApplyResult {
  let seq = state.compiled.deltaSeq;
  const pending = deltas.filter((delta) => delta.seq > seq);
  if (pending.length === 0) return { ok: true, state, applied: 0 };
  const copies = new Map<LiveTable, { id: number }[]>();
  for (const delta of pending) {
    if (delta.seq !== seq + 1) return { ok: false, code: 'gap', reason: `delta ${delta.seq} does not follow ${seq}` };
    if (!isLiveTable(delta.table))
      return { ok: false, code: 'invalid', reason: `delta ${delta.seq}: ${String(delta.table)} is not a live table` };
    let rows = copies.get(delta.table);
    if (rows === undefined) {
      rows = [...(state.tables[delta.table] as { id: number }[])];
      copies.set(delta.table, rows);
    }
    applyRow(rows, delta);
    seq = delta.seq;
  }
  const tables: SmallTables = { ...state.tables, ...(Object.fromEntries(copies) as Partial<SmallTables>) };
  // The rate rows are not looked at (rates: false): a placeholder stands in for them.
  const valid = validateSnapshot(
    { ...tables, rate_deck_rates: undefined as unknown as SnapshotTables['rate_deck_rates'] },
    { rates: false },
  );
  if (!valid.ok) return { ok: false, code: 'invalid', reason: `deltas up to ${seq} refused: ${valid.reason}` };
  const compiled = recompileLive(state.compiled, tables, new Set(copies.keys()), seq);
  return { ok: true, state: { compiled, tables }, applied: pending.length };
}

/**
 * Upserts or deletes one row. A new row goes where its id sorts among rows in id order (the order a
 * snapshot's rows come in, so a compile from these tables agrees with one from the centre's next snapshot).
 */
function applyRow(rows: { id: number }[], delta: Delta): void {
  const at = rows.findIndex((row) => row.id === delta.id);
  if (delta.op === 'delete') {
    if (at >= 0) rows.splice(at, 1);
    return;
  }
  const row = delta.row as unknown as { id: number };
  if (at >= 0) {
    rows[at] = row;
    return;
  }
  let low = 0;
  let high = rows.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (rows[middle].id < delta.id) low = middle + 1;
    else high = middle;
  }
  rows.splice(low, 0, row);
}

/** The tables a node keeps beside its compiled snapshot: the snapshot's, without the rate rows. */
export function smallTablesOf(tables: SnapshotTables): SmallTables {
  const small: Partial<SnapshotTables> = { ...tables };
  delete small.rate_deck_rates;
  return small as SmallTables;
}
