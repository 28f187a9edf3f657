import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { MiError, miCall, parseMiAddress, type MiAddress } from '../../src/core/mi/client.js';
import { FakeOpensipsMi } from '../../src/devkit/fake-opensips-mi.js';

describe('MI client', () => {
  const fake = new FakeOpensipsMi(null);
  after(() => fake.close());

  it('parses the address forms a node registry holds', () => {
    assert.deepEqual(parseMiAddress('http://127.0.0.1:8888/mi'), { kind: 'http', url: 'http://127.0.0.1:8888/mi' });
    assert.deepEqual(parseMiAddress('udp:10.0.0.5:8080'), { kind: 'udp', host: '10.0.0.5', port: 8080 });
    assert.deepEqual(parseMiAddress('udp:[::1]:8080'), { kind: 'udp', host: '::1', port: 8080 });
    assert.deepEqual(parseMiAddress('/run/opensips/opensips_fifo'), { kind: 'fifo', path: '/run/opensips/opensips_fifo' });
    assert.equal(parseMiAddress('opensips_fifo'), null);
    assert.equal(parseMiAddress('tcp:1.2.3.4:80'), null);
  });

  for (const transport of ['http', 'udp', 'fifo'] as const) {
    it(`reloads and reads status over ${transport}`, async () => {
      const text =
        transport === 'http'
          ? await fake.startHttp()
          : transport === 'udp'
            ? await fake.startUdp()
            : fake.startFifo(join(mkdtempSync(join(tmpdir(), 'mi-')), 'opensips_fifo'));
      const address = parseMiAddress(text) as MiAddress;
      const before = fake.reloads;
      assert.equal(await miCall(address, 'dr_reload'), 'OK');
      assert.equal(fake.reloads, before + 1);
      const status = (await miCall(address, 'dr_reload_status')) as { Date: string };
      assert.match(status.Date, /GMT$/);
      await assert.rejects(
        miCall(address, 'no_such_command'),
        (error: unknown) => error instanceof MiError && error.code === 'RPC' && /-32601/.test(error.message),
      );
      assert.deepEqual(fake.calls.at(-1), { method: 'no_such_command', params: undefined });
    });
  }

  it('times out on a node that does not answer, on every transport', async () => {
    fake.delayMs = 1000;
    try {
      for (const text of [await fake.startHttp(), await fake.startUdp()]) {
        await assert.rejects(
          miCall(parseMiAddress(text)!, 'dr_reload', null, 200),
          (error: unknown) => error instanceof MiError && error.code === 'TIMEOUT',
        );
      }
    } finally {
      fake.delayMs = 0;
    }
  });

  it('says so when nothing reads the FIFO or listens on the port', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'mi-')), 'missing_fifo');
    await assert.rejects(
      miCall({ kind: 'fifo', path }, 'dr_reload', null, 500),
      (error: unknown) => error instanceof MiError && error.code === 'TRANSPORT',
    );
    await assert.rejects(
      miCall({ kind: 'http', url: 'http://127.0.0.1:1/mi' }, 'dr_reload', null, 500),
      (error: unknown) => error instanceof MiError && error.code === 'TRANSPORT',
    );
  });
});
