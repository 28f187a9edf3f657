/**
 * The drouting worker: compiles the snapshot, derives the drouting rows from
 * it and writes them into nodes' databases, beside the control plane's event
 * loop. On that loop the build and the writes took seconds of CPU, and
 * everything else stood still meanwhile: the snapshot uploads to sidecars,
 * MI calls and the admin API.
 *
 * It keeps the rows of its last build, so a node can be written later
 * (a node added, a failed write retried) without building them again.
 * Further nodes copy the first node's tables instead (builder.ts).
 */
import { parentPort } from 'node:worker_threads';
import { compileSnapshot } from '../../src/core/snapshot/compile.js';
import { SNAPSHOT_FORMAT_VERSION, type SnapshotTables } from '../../src/core/snapshot/schema.js';
import { buildDroutingData, type DroutingData } from './rules.js';
import type { DroutingDatabase } from './node-database.js';
import { writeDroutingSql } from './sql-writer.js';
import { droutingChecksum, writeDrouting } from './writer.js';

export type DroutingRequest =
  | { kind: 'build'; id: number; tables: SnapshotTables; now: number }
  /** `term`: the writing control plane's sync lead term, the node database's fence (writer.ts SYNC_TERM_ROW); null: none. */
  | { kind: 'write'; id: number; checksum: string; target: DroutingDatabase; term: number | null };

export interface DroutingCounts {
  gateways: number;
  carriers: number;
  rules: number;
  groups: number;
}

export type DroutingReply =
  | { id: number; ok: true; checksum: string; counts: DroutingCounts }
  | { id: number; ok: true; written: true }
  | { id: number; ok: false; error: string };

let last: { checksum: string; data: DroutingData } | null = null;

async function build(tables: SnapshotTables, now: number): Promise<{ checksum: string; counts: DroutingCounts }> {
  // The event loop validates the same tables meanwhile and drops this build if they fail. The version fields do not matter to drouting.
  const { compiled } = compileSnapshot({
    format_version: SNAPSHOT_FORMAT_VERSION,
    version: 1,
    created_at: new Date(now).toISOString(),
    checksum: '',
    tables,
  });
  const data = await buildDroutingData(compiled, now, tables.trunk_ip_auth);
  const checksum = droutingChecksum(data);
  const counts = {
    gateways: data.gateways.length,
    carriers: data.carriers.length,
    rules: data.rules.length,
    groups: new Set(data.rules.map((rule) => rule.groupid)).size,
  };
  last = { checksum, data };
  return { checksum, counts };
}

async function write(checksum: string, target: DroutingDatabase, term: number | null): Promise<void> {
  if (last === null || last.checksum !== checksum) throw new Error('the drouting rows to write are not the last ones built');
  if (target.kind === 'sqlite') writeDrouting(target.path, last.data, term);
  else await writeDroutingSql(target, last.data, { term });
}

async function answer(request: DroutingRequest): Promise<DroutingReply> {
  try {
    if (request.kind === 'build') return { id: request.id, ok: true, ...(await build(request.tables, request.now)) };
    await write(request.checksum, request.target, request.term);
    return { id: request.id, ok: true, written: true };
  } catch (error) {
    return { id: request.id, ok: false, error: error instanceof Error ? error.message : String(error) };
  }
}

// One request at a time, in the order sent: a write never sees a build half done.
let queue: Promise<unknown> = Promise.resolve();
parentPort!.on('message', (request: DroutingRequest) => {
  queue = queue.then(() => answer(request).then((reply) => parentPort!.postMessage(reply)));
});
