import assert from 'node:assert/strict';
import { mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Packr } from 'msgpackr';
import { BACKGROUND_NICE } from '../../src/sidecar/threads/background-thread.js';
import { routingSnapshotBytes } from '../fixtures/routing.js';
import { SidecarProcess } from '../helpers/sidecar.js';

const packr = new Packr({ moreTypes: true, useRecords: false });

async function waitFor<T>(probe: () => Promise<T>, accept: (value: T) => boolean, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (accept(value) || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('snapshot lifecycle', () => {
  it('refuses bad snapshots with a reason and keeps serving the old one', async () => {
    const sidecar = await SidecarProcess.start();
    try {
      assert.equal((await sidecar.putSnapshot(routingSnapshotBytes(5))).status, 200);

      const stale = await sidecar.putSnapshot(routingSnapshotBytes(5));
      assert.equal(stale.status, 409);
      assert.equal(stale.body.reason_code, 'snapshot_stale_version');
      assert.equal(stale.body.serving_version, 5);

      const tampered = packr.unpack(routingSnapshotBytes(6)) as { payload: Uint8Array };
      tampered.payload[tampered.payload.length - 1] ^= 0xff;
      const checksum = await sidecar.putSnapshot(packr.pack(tampered));
      assert.equal(checksum.status, 422);
      assert.equal(checksum.body.reason_code, 'snapshot_checksum');

      const garbage = await sidecar.putSnapshot(new TextEncoder().encode('not a snapshot at all'));
      assert.equal(garbage.status, 422);
      assert.equal(garbage.body.reason_code, 'snapshot_malformed');

      const dangling = await sidecar.putSnapshot(
        routingSnapshotBytes(7, (description) => {
          description.customer_trunks[0].customer_account_id = 404;
        }),
      );
      assert.equal(dangling.status, 422);
      assert.equal(dangling.body.reason_code, 'snapshot_integrity');
      assert.match(dangling.body.error, /customer_account_id 404 does not exist/);

      const badCidr = await sidecar.putSnapshot(
        routingSnapshotBytes(8, (description) => {
          description.trunk_ip_auth[0].cidr = '203.0.113.0/33';
        }),
      );
      assert.equal(badCidr.status, 422);
      assert.match(badCidr.body.error, /invalid cidr/);

      const badRate = await sidecar.putSnapshot(
        routingSnapshotBytes(9, (description) => {
          description.rate_deck_rates[0].rate_per_minute = '1e-3';
        }),
      );
      assert.equal(badRate.status, 422);
      assert.match(badRate.body.error, /rate_per_minute/);

      const health = await sidecar.get('/api/health');
      assert.equal(health.body.snapshot_version, 5);
      const routed = await sidecar.post('/api/opensips/call/route', { customer_trunk_id: 10, dnis: '61400123456' });
      assert.equal(routed.body.carrier_trunk_id, 21);
    } finally {
      await sidecar.kill();
    }
  });

  it(
    'compiles in a thread at the lowest CPU priority, so a swap does not take the core from the event loop',
    { skip: process.platform !== 'linux' },
    async () => {
      const sidecar = await SidecarProcess.start();
      try {
        assert.equal((await sidecar.putSnapshot(routingSnapshotBytes(7))).status, 200);
        // The answer can overtake the log line on its way through the pipe: wait for the line.
        const line = await sidecar.waitForLog((entry) => entry.includes('"snapshot in service"') && entry.includes('"version":7'));
        assert.equal((JSON.parse(line) as { compile_thread_nice: unknown }).compile_thread_nice, BACKGROUND_NICE);
      } finally {
        await sidecar.kill();
      }
    },
  );

  it('keeps an acknowledged snapshot through kill -9 and serves it after restart with nothing else running', async () => {
    const first = await SidecarProcess.start();
    const put = await first.putSnapshot(
      routingSnapshotBytes(42, (description) => {
        description.carrier_trunks[1].status = 'suspended'; // version 42 routes 61400123456 to carrier 20, not 21
      }),
    );
    assert.equal(put.status, 200);
    await first.kill('SIGKILL');

    const second = await SidecarProcess.start({ dataDir: first.dataDir });
    try {
      const health = await second.get('/api/health');
      assert.equal(health.body.snapshot_version, 42);
      const routed = await second.post('/api/opensips/call/route', { customer_trunk_id: 10, dnis: '61400123456' });
      assert.equal(routed.body.carrier_trunk_id, 20);
    } finally {
      await second.kill();
    }
  });

  it('picks up a snapshot dropped into the watched directory', async () => {
    const watchDir = mkdtempSync(join(tmpdir(), 'sidecar-watch-'));
    const sidecar = await SidecarProcess.start({ args: ['--watch-dir', watchDir] });
    try {
      // As the control plane writes it: a temporary name, then an atomic rename.
      writeFileSync(join(watchDir, 'routing.msgpack.tmp'), routingSnapshotBytes(11));
      renameSync(join(watchDir, 'routing.msgpack.tmp'), join(watchDir, 'routing.msgpack'));
      const health = await waitFor(
        () => sidecar.get('/api/health'),
        (response) => response.body.snapshot_version === 11,
      );
      assert.equal(health.body.snapshot_version, 11, `sidecar logs:\n${sidecar.logs.join('\n')}`);
      // A file with a broken snapshot is refused; the served version stays.
      writeFileSync(join(watchDir, 'broken.msgpack'), 'garbage');
      await sidecar.waitForLog((line) => line.includes('"snapshot refused"') && line.includes('"source":"file"'));
      assert.equal((await sidecar.get('/api/health')).body.snapshot_version, 11);
      assert.ok(sidecar.alive());
    } finally {
      await sidecar.kill();
    }
  });

  it('swaps snapshots under load without a failed request', async () => {
    const sidecar = await SidecarProcess.start();
    try {
      assert.equal((await sidecar.putSnapshot(routingSnapshotBytes(100))).status, 200);
      let stop = false;
      let answered = 0;
      const failures: string[] = [];
      const carriers = new Set<number>();
      const load = async (): Promise<void> => {
        while (!stop) {
          const response = await sidecar.post('/api/opensips/call/route', { customer_trunk_id: 10, dnis: '61400123456' });
          answered++;
          if (response.status !== 200 || response.body.allowed !== true) failures.push(JSON.stringify(response.body));
          else carriers.add(response.body.carrier_trunk_id as number);
        }
      };
      const clients = Array.from({ length: 8 }, load);
      for (let version = 101; version <= 110; version++) {
        const put = await sidecar.putSnapshot(
          routingSnapshotBytes(version, (description) => {
            if (version % 2 === 1) description.carrier_trunks[1].status = 'suspended';
          }),
        );
        assert.equal(put.status, 200);
      }
      stop = true;
      await Promise.all(clients);
      assert.deepEqual(failures, []);
      assert.ok(answered > 50, `only ${answered} requests during the swaps`);
      assert.deepEqual([...carriers].sort(), [20, 21]); // both snapshot generations were served
    } finally {
      await sidecar.kill();
    }
  });
});
