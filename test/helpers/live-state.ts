import { compileSnapshot } from '../../src/core/snapshot/compile.js';
import { smallTablesOf, type LiveState } from '../../src/core/snapshot/live.js';
import type { CompiledSnapshot } from '../../src/core/snapshot/model.js';
import type { SnapshotTables } from '../../src/core/snapshot/schema.js';

/** `tables` compiled as a snapshot including deltas up to `deltaSeq`: what applied deltas are compared with. */
export function compiledTables(tables: SnapshotTables, deltaSeq = 0): CompiledSnapshot {
  return compileSnapshot({
    format_version: 1,
    version: 1,
    created_at: '2026-01-01T00:00:00.000Z',
    checksum: 'x',
    tables: { ...tables, delta_seq: deltaSeq },
  }).compiled;
}

/** A node's live state serving `tables`: the compiled snapshot and the tables deltas apply to. */
export function liveStateOf(tables: SnapshotTables): LiveState {
  return { compiled: compiledTables(tables), tables: smallTablesOf(tables) };
}
