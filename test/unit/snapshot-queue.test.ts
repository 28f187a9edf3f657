import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { pino } from 'pino';
import { SidecarMetrics } from '../../src/sidecar/metrics/metrics.js';
import { SnapshotService, type IngestResult } from '../../src/sidecar/snapshot/service.js';
import { routingSnapshotBytes } from '../fixtures/routing.js';

/**
 * The compile queue with real compile workers: bytes that cannot be a snapshot never reach a worker, and a
 * burst of pushes that might be one waits only up to the bound; the rest are refused at once, so a good push
 * is answered after at most the bound's compiles, never after the whole burst.
 */

const services: SnapshotService[] = [];
after(async () => {
  for (const service of services) await service.close();
});

function service(maxQueued: number): SnapshotService {
  const dir = mkdtempSync(join(tmpdir(), 'snapshot-queue-'));
  const created = new SnapshotService(join(dir, 'sidecar.db'), pino({ level: 'silent' }), new SidecarMetrics(), maxQueued);
  services.push(created);
  return created;
}

/** The promise, and whether it has settled yet (read without awaiting it). */
function watch(promise: Promise<IngestResult>): { promise: Promise<IngestResult>; settled: () => boolean } {
  let settled = false;
  void promise.then(() => (settled = true));
  return { promise, settled: () => settled };
}

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('snapshot compile queue', () => {
  it('refuses 150 bodies that are not msgpack maps without a worker, then compiles a valid push first', async () => {
    const snapshots = service(2);
    const garbage = Array.from({ length: 150 }, (_, i) =>
      watch(snapshots.ingest(new TextEncoder().encode(`<html>garbage ${i}</html>`), 'http')),
    );
    const valid = watch(snapshots.ingest(routingSnapshotBytes(1), 'http'));
    // Refused before any worker could start (one turn of the event loop: no worker has even loaded).
    await nextTurn();
    assert.equal(garbage.filter((entry) => entry.settled()).length, 150);
    assert.equal(valid.settled(), false);
    for (const entry of garbage) {
      const result = await entry.promise;
      assert.equal(result.ok ? 'ok' : result.code, 'snapshot_malformed');
      assert.match(result.ok ? '' : result.reason, /not a map/);
    }
    const taken = await valid.promise;
    assert.ok(taken.ok, JSON.stringify(taken));
    assert.equal(snapshots.version, 1);
  });

  it('lets at most the bound wait behind the compiling push and refuses the rest at once with snapshot_queue_full', async () => {
    const snapshots = service(2);
    // Each is a msgpack map (passes the first-byte check) that the worker then refuses: an empty envelope.
    const burst = Array.from({ length: 10 }, () => watch(snapshots.ingest(Uint8Array.of(0x80), 'http')));
    const validDuringBurst = watch(snapshots.ingest(routingSnapshotBytes(1), 'http'));
    await nextTurn();
    // One compiling and two waiting were taken; the other seven and the valid push were answered at once.
    assert.deepEqual(
      burst.map((entry) => entry.settled()),
      [false, false, false, true, true, true, true, true, true, true],
    );
    assert.equal(validDuringBurst.settled(), true);
    const refusedValid = await validDuringBurst.promise;
    assert.equal(refusedValid.ok ? 'ok' : refusedValid.code, 'snapshot_queue_full');
    const codes = await Promise.all(burst.map(async (entry) => ((await entry.promise) as { code?: string }).code));
    assert.deepEqual(codes, [
      'snapshot_format_version',
      'snapshot_format_version',
      'snapshot_format_version',
      ...Array<string>(7).fill('snapshot_queue_full'),
    ]);
    // The queue drained: the push the burst refused goes through on its retry.
    const retried = await snapshots.ingest(routingSnapshotBytes(1), 'http');
    assert.ok(retried.ok, JSON.stringify(retried));
  });
});
