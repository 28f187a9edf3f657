import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CreditSettings } from '../src/sidecar/credit/node-credit.js';
import { DecisionEngine } from '../src/sidecar/engine/engine.js';
import { decodeSnapshot, encodeSnapshot } from '../src/core/snapshot/codec.js';
import { compileSnapshot } from '../src/core/snapshot/compile.js';
import { generateDataset, SIZES, type TrafficHints } from '../src/devkit/dataset.js';
import { REPO } from '../src/devkit/paths.js';

/**
 * The in-process benches' world: the dataset `make bench` wrote under
 * bench/data (else generated here), compiled into a decision engine, with
 * the traffic hints (callers, numbers, accounts) that go with it.
 */
const DATA = join(REPO, 'bench', 'data');

export function loadWorld(size: string): { engine: DecisionEngine; traffic: TrafficHints } {
  const snapshotFile = join(DATA, `${size}.msgpack`);
  const trafficFile = join(DATA, `${size}-traffic.json`);
  let bytes: Uint8Array;
  let traffic: TrafficHints;
  if (existsSync(snapshotFile) && existsSync(trafficFile)) {
    bytes = readFileSync(snapshotFile);
    traffic = JSON.parse(readFileSync(trafficFile, 'utf8')) as TrafficHints;
  } else {
    const dataset = generateDataset(SIZES[size]);
    bytes = encodeSnapshot(dataset.tables, 1);
    traffic = dataset.traffic;
  }
  const decoded = decodeSnapshot(bytes, 0);
  if (!decoded.ok) throw new Error(decoded.reason);
  return { engine: new DecisionEngine(compileSnapshot(decoded.snapshot).compiled), traffic };
}

/** The in-process benches' node credit: a lease that never runs out, whole-call reservations, nothing returned while they run. */
export const BENCH_CREDIT: CreditSettings = {
  admissionSeconds: 7200,
  reservationGraceSeconds: 300,
  leaseChunkMicro: 1e9,
  idleReturnMs: 3_600_000,
  offlinePostpaid: 'allow',
  sliceSeconds: null,
};
