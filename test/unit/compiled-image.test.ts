import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { pino } from 'pino';
import { decodeSnapshot, encodeSnapshot } from '../../src/core/snapshot/codec.js';
import { compileSnapshot } from '../../src/core/snapshot/compile.js';
import { smallTablesOf } from '../../src/core/snapshot/live.js';
import { SidecarMetrics } from '../../src/sidecar/metrics/metrics.js';
import {
  compiledImagePath,
  draftCompiledImage,
  readCompiledImage,
  writeCompiledImage,
  type ImageKey,
  type ImageState,
} from '../../src/sidecar/snapshot/compiled-image.js';
import { SnapshotService } from '../../src/sidecar/snapshot/service.js';
import { lcrLookup } from '../../src/sidecar/routing/lcr-lookup.js';
import { generateDataset, SIZES } from '../../src/devkit/dataset.js';
import { routingSnapshotBytes } from '../fixtures/routing.js';

/**
 * The compiled image (issue 18: a restart reads its newest snapshot compiled, not compiles it again): it gives
 * back exactly the state the compile made, and a torn, corrupt, stale or foreign image is never served: the
 * node compiles its stored snapshot instead and answers as that compile does.
 */

function compiledState(bytes: Uint8Array): { state: ImageState; key: ImageKey } {
  const decoded = decodeSnapshot(bytes, 0);
  if (!decoded.ok) throw new Error(decoded.reason);
  const { compiled } = compileSnapshot(decoded.snapshot);
  return {
    state: { compiled, tables: smallTablesOf(decoded.snapshot.tables) },
    key: { version: decoded.snapshot.version, checksum: decoded.snapshot.checksum },
  };
}

const directory = (): string => mkdtempSync(join(tmpdir(), 'compiled-image-'));

describe('compiled image', () => {
  // The demo world: 100k rate rows, 2,000 CIDRs in chunks, block rules, registrations, every kind of index.
  const world = encodeSnapshot(generateDataset(SIZES.demo).tables, 5, '2026-12-01T00:00:00.000Z');

  it('reads back the very state the compile made: every index, every table live changes apply to', async () => {
    const { state, key } = compiledState(world);
    const path = join(directory(), 'sidecar.db.compiled');
    await writeCompiledImage(path, draftCompiledImage(state, key));
    const read = readCompiledImage(path, key);
    assert.ok(read.ok, read.ok ? '' : read.reason);
    assert.deepStrictEqual(read.state, compiledState(world).state);
  });

  it('refuses an image that is torn, corrupt, of another snapshot or missing, saying why', async () => {
    const { state, key } = compiledState(routingSnapshotBytes(3));
    const dir = directory();
    const path = join(dir, 'sidecar.db.compiled');
    await writeCompiledImage(path, draftCompiledImage(state, key));
    const whole = readFileSync(path);
    const reasonFor = (bytes: Uint8Array, asked: ImageKey = key): string => {
      writeFileSync(path, bytes);
      const read = readCompiledImage(path, asked);
      if (read.ok) assert.fail('an image that must be refused was read');
      return read.reason;
    };
    assert.match(reasonFor(whole.subarray(0, whole.length - 1000)), /torn/);
    // One bit flipped in the middle of the typed arrays: the header still reads, the digest does not match.
    const flipped = Buffer.from(whole);
    flipped[Math.floor(flipped.length * 0.6)] ^= 0x10;
    assert.match(reasonFor(flipped), /checksum does not match/);
    assert.match(reasonFor(whole, { version: 4, checksum: key.checksum }), /snapshot version 3, the newest stored is version 4/);
    assert.match(reasonFor(whole, { version: 3, checksum: 'f'.repeat(64) }), /snapshot version 3/);
    assert.match(reasonFor(Buffer.from('not an image at all, just some bytes on the disk')), /not a compiled image/);
    // An image another build wrote: the header names its compiler (the digest is checked after).
    const header = whole.toString('latin1');
    const foreign = Buffer.from(header.replace(/"build":"[0-9a-f]{64}"/, `"build":"${'0'.repeat(64)}"`), 'latin1');
    assert.match(reasonFor(foreign), /another build/);
    assert.match(reasonFor(Buffer.alloc(0)), /not a compiled image/);
    assert.deepStrictEqual(readCompiledImage(join(dir, 'none'), key), { ok: false, reason: 'no compiled image' });
  });

  describe('a restarted node', () => {
    const services: SnapshotService[] = [];
    after(async () => {
      for (const service of services) await service.close();
    });
    const start = (dbPath: string): { service: SnapshotService; lines: string[] } => {
      const lines: string[] = [];
      const log = pino({ level: 'info' }, { write: (line: string) => lines.push(line) });
      const service = new SnapshotService(dbPath, log, new SidecarMetrics());
      services.push(service);
      return { service, lines };
    };
    /** The carriers, rates and reasons the node gives for numbers the fixture routes, and ones it does not. */
    const now = Date.now();
    const answers = (service: SnapshotService): unknown[] => {
      const engine = service.engine!;
      const trunk = engine.customerTrunkIndex(10);
      return ['61400123456', '61299998888', '6421234567', '15550001111'].map((dnis) =>
        lcrLookup(engine, trunk, { customer_trunk_id: 10, dnis, ani: '61255501000' }, now),
      );
    };

    it('serves the image of its newest stored snapshot, with the same answers as a compile of it', async () => {
      const dbPath = join(directory(), 'sidecar.db');
      const first = start(dbPath);
      assert.ok((await first.service.ingest(routingSnapshotBytes(8), 'http')).ok);
      await first.service.idle();
      assert.ok(existsSync(compiledImagePath(dbPath)));
      const compiledAnswers = answers(first.service);
      // Answers worth comparing: the fixture rates and routes the first number.
      assert.notEqual((compiledAnswers[0] as { customer_rate: string | null }).customer_rate, null);

      const second = start(dbPath);
      assert.equal(await second.service.restore(), true);
      assert.ok(second.lines.some((line) => line.includes('"snapshot in service"') && line.includes('compiled_image_bytes')));
      assert.equal(second.service.version, 8);
      assert.deepStrictEqual(answers(second.service), compiledAnswers);
    });

    it('compiles its stored snapshot when the image is corrupt, answers right, and writes a good image again', async () => {
      const dbPath = join(directory(), 'sidecar.db');
      const first = start(dbPath);
      assert.ok((await first.service.ingest(routingSnapshotBytes(9), 'http')).ok);
      await first.service.idle();
      const expected = answers(first.service);
      const image = readFileSync(compiledImagePath(dbPath));
      image[image.length - 100] ^= 0xff;
      writeFileSync(compiledImagePath(dbPath), image);

      const second = start(dbPath);
      assert.equal(await second.service.restore(), true);
      assert.ok(second.lines.some((line) => line.includes('compiled image not used') && line.includes('checksum does not match')));
      assert.ok(second.lines.some((line) => line.includes('"snapshot in service"') && line.includes('compile_seconds')));
      assert.deepStrictEqual(answers(second.service), expected);
      await second.service.idle();
      const key = { version: 9, checksum: decodeSnapshotChecksum(routingSnapshotBytes(9)) };
      assert.ok(readCompiledImage(compiledImagePath(dbPath), key).ok);
    });

    it('never serves the image of an older snapshot: a newer stored one is compiled', async () => {
      const dbPath = join(directory(), 'sidecar.db');
      const first = start(dbPath);
      assert.ok((await first.service.ingest(routingSnapshotBytes(10), 'http')).ok);
      await first.service.idle();
      const older = `${dbPath}.older`;
      copyFileSync(compiledImagePath(dbPath), older);
      // Version 11 suspends carrier 21: 61400123456 goes to carrier 20 instead.
      const newer = routingSnapshotBytes(11, (description) => {
        description.carrier_trunks[1].status = 'suspended';
      });
      assert.ok((await first.service.ingest(newer, 'http')).ok);
      await first.service.idle();
      const expected = answers(first.service);
      // A crash between storing version 11 and writing its image leaves version 10's image in place.
      copyFileSync(older, compiledImagePath(dbPath));

      const second = start(dbPath);
      assert.equal(await second.service.restore(), true);
      assert.equal(second.service.version, 11);
      assert.ok(second.lines.some((line) => line.includes('compiled image not used') && line.includes('snapshot version 10')));
      assert.deepStrictEqual(answers(second.service), expected);
    });
  });
});

function decodeSnapshotChecksum(bytes: Uint8Array): string {
  const decoded = decodeSnapshot(bytes, 0);
  if (!decoded.ok) throw new Error(decoded.reason);
  return decoded.snapshot.checksum;
}
