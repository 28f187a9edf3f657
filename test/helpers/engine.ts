import assert from 'node:assert/strict';
import { DecisionEngine } from '../../src/sidecar/engine/engine.js';
import { decodeSnapshot, encodeSnapshot } from '../../src/core/snapshot/codec.js';
import { compileSnapshot } from '../../src/core/snapshot/compile.js';
import type { SnapshotTables } from '../../src/core/snapshot/schema.js';
import { validateSnapshot } from '../../src/core/snapshot/validate.js';

/** Builds an engine the way the sidecar does: encode, decode, verify, validate, compile. */
export function engineFor(tables: SnapshotTables, version = 1): DecisionEngine {
  const decoded = decodeSnapshot(encodeSnapshot(tables, version), 0);
  assert.ok(decoded.ok, decoded.ok ? '' : decoded.reason);
  const valid = validateSnapshot(decoded.snapshot.tables);
  assert.ok(valid.ok, valid.ok ? '' : valid.reason);
  // Through structuredClone, as the compiled snapshot crosses from the worker.
  return new DecisionEngine(structuredClone(compileSnapshot(decoded.snapshot).compiled));
}
