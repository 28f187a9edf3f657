import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { assertErrorResponse } from '../helpers/errors.js';
import { SidecarProcess } from '../helpers/sidecar.js';

/**
 * An OpenSIPS node's addresses are no way for an admin-API caller to write files or send requests where
 * the operator did not allow: the control plane is started with one node files root and one node host
 * (127.0.0.1), and every primitive (an MI "FIFO" that is a regular file, a drop directory outside the
 * root or through a symlink, a drouting database that is a sidecar's money.db or outside the root, a
 * URL to another host) is refused at the admin API, and, planted straight into the store, at the sync
 * with nothing written and nothing sent.
 */
describe('node addresses stay where the operator allowed', () => {
  const base = mkdtempSync(join(tmpdir(), 'node-targets-'));
  const root = join(base, 'nodes');
  const outside = join(base, 'outside');
  mkdirSync(root);
  mkdirSync(outside);
  // What an attacker would aim at: a file outside the root, and a sidecar's own databases inside it.
  const hostsFile = join(outside, 'hosts');
  writeFileSync(hostsFile, '127.0.0.1 localhost\n');
  const plainFile = join(root, 'notes.txt');
  writeFileSync(plainFile, 'not a FIFO, not a database\n');
  symlinkSync(outside, join(root, 'escape'));
  symlinkSync(hostsFile, join(root, 'hosts-link'));
  const fifo = join(root, 'opensips_fifo');
  execFileSync('mkfifo', [fifo]);
  const sidecarData = join(root, 'sidecar-data');
  const moneyDb = join(sidecarData, 'money.db');

  let control: SidecarProcess;
  let sidecar: SidecarProcess;
  // Listeners on a loopback address the control plane was not allowed: they must hear nothing.
  let http: Server;
  let udp: UdpSocket;
  let httpPort = 0;
  let udpPort = 0;
  let received = 0;

  before(async () => {
    http = createServer((request, response) => {
      received++;
      request.resume();
      response.end('{}');
    });
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.2', resolve));
    httpPort = (http.address() as AddressInfo).port;
    udp = createSocket('udp4');
    udp.on('message', () => received++);
    await new Promise<void>((resolve) => udp.bind(0, '127.0.0.2', resolve));
    udpPort = udp.address().port;
    [control, sidecar] = await Promise.all([
      SidecarProcess.startControlPlane({ args: ['--node-files-root', root, '--node-hosts', '127.0.0.1', '--mi-timeout-ms', '500'] }),
      SidecarProcess.start({ dataDir: sidecarData }),
    ]);
  });
  after(async () => {
    http.close();
    udp.close();
    await Promise.all([control.kill(), sidecar.kill()]);
  });

  /** Each a node body with one primitive in it, the field it is in, and what the refusal says. */
  const hostile = (): [string, Record<string, unknown>, RegExp][] => [
    [
      'a regular file outside the root as the MI FIFO',
      { mi_socket_address: hostsFile },
      /mi_socket_address leads to .*outside the node files roots/,
    ],
    ['a symlink in the root to a file outside', { mi_socket_address: join(root, 'hosts-link') }, /mi_socket_address leads to .*outside/],
    ['a regular file in the root as the MI FIFO', { mi_socket_address: plainFile }, /mi_socket_address .* is not a FIFO/],
    ['a drop directory up and out with ..', { sidecar_address: join(root, '..', 'outside', 'drop') }, /sidecar_address leads to .*outside/],
    ['a drop directory through a symlink', { sidecar_address: join(root, 'escape', 'drop') }, /sidecar_address leads to .*outside/],
    ['a drop directory that is a file', { sidecar_address: plainFile }, /sidecar_address .* is not a directory/],
    ["a sidecar's money.db as the drouting database", { drouting_db: moneyDb }, /drouting_db .* one of this system's own databases/],
    ['a drouting database outside the root', { drouting_db: join(outside, 'opensips.sqlite') }, /drouting_db leads to .*outside/],
    ['a drouting database that is not SQLite', { drouting_db: plainFile }, /drouting_db .* is not an SQLite database/],
    [
      'a sidecar URL on another host',
      { sidecar_address: `http://127.0.0.2:${httpPort}` },
      /sidecar_address host 127\.0\.0\.2 is not one of the node hosts/,
    ],
    [
      'a sidecar URL on another host, as an IPv4-mapped literal',
      { sidecar_address: `http://[::ffff:127.0.0.2]:${httpPort}` },
      /sidecar_address host/,
    ],
    ['an MI URL on another host', { mi_socket_address: `http://127.0.0.2:${httpPort}/mi` }, /mi_socket_address host 127\.0\.0\.2/],
    ['an MI datagram to another host', { mi_socket_address: `udp:127.0.0.2:${udpPort}` }, /mi_socket_address host 127\.0\.0\.2/],
  ];

  /** Nothing any refused node could have written or sent. */
  const assertUntouched = (): void => {
    assert.equal(readFileSync(hostsFile, 'utf8'), '127.0.0.1 localhost\n');
    assert.equal(readFileSync(plainFile, 'utf8'), 'not a FIFO, not a database\n');
    assert.equal(existsSync(join(outside, 'drop')), false);
    assert.equal(existsSync(join(outside, 'opensips.sqlite')), false);
    assert.equal(existsSync(join(root, 'planted.sqlite')), false);
    const money = new Database(moneyDb, { readonly: true });
    const tables = money.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'dr_%'").all().length;
    money.close();
    assert.equal(tables, 0, 'no drouting tables written into money.db');
    assert.equal(received, 0, 'no request reached a host the control plane was not allowed');
  };

  it('refuses each primitive at the admin API with the field named, on create and on update', async () => {
    assert.ok(existsSync(moneyDb), 'the sidecar made its money.db');
    const allowed = await control.send('POST', '/api/opensips-nodes', {
      hostname: 'allowed',
      mi_socket_address: fifo,
      sidecar_address: join(root, 'drops', 'allowed'),
      drouting_db: join(root, 'allowed', 'opensips.sqlite'),
    });
    assert.equal(allowed.status, 201, JSON.stringify(allowed.body));
    for (const [what, fields, pattern] of hostile()) {
      const body = { hostname: `node-${what}`, mi_socket_address: 'udp:127.0.0.1:9', ...fields };
      const created = await control.send('POST', '/api/opensips-nodes', body);
      assertErrorResponse(created, 422, pattern);
      assert.equal(created.body.reason_code, 'node_target_not_allowed', what);
      const updated = await control.send('PUT', `/api/opensips-nodes/${allowed.body.id}`, fields);
      assertErrorResponse(updated, 422, pattern);
    }
    assertErrorResponse(
      await control.send('POST', '/api/opensips-nodes', {
        hostname: 'relative',
        mi_socket_address: 'udp:127.0.0.1:9',
        drouting_db: 'x.sqlite',
      }),
      400,
      /drouting_db must be an absolute path/,
    );
    assertErrorResponse(
      await control.send('POST', '/api/opensips-nodes', {
        hostname: 'scheme',
        mi_socket_address: 'udp:127.0.0.1:9',
        sidecar_address: 'file:///etc',
      }),
      400,
      /sidecar_address must be an http/,
    );
    const nodes = (await control.get('/api/opensips-nodes')).body.data as { hostname: string; sidecar_address: string }[];
    assert.deepEqual(
      nodes.map((node) => [node.hostname, node.sidecar_address]),
      [['allowed', join(root, 'drops', 'allowed')]],
      'no refused create or update was stored',
    );
    assertUntouched();
  });

  it('at sync, fails a node whose stored row breaks the rules, writing and sending nothing for it', async () => {
    // Rows from before the rule, or put in the store by other means: straight into config.db.
    const db = new Database(join(control.dataDir, 'config.db'));
    db.pragma('busy_timeout = 5000');
    const now = new Date().toISOString();
    const insert = db.prepare(
      `INSERT INTO opensips_nodes (hostname, mi_socket_address, sidecar_address, drouting_db, status, created_at, updated_at)
       VALUES (?, ?, ?, ?, 'active', ?, ?)`,
    );
    const planted = hostile().map(([what, fields]) => {
      insert.run(
        `planted ${what}`,
        fields.mi_socket_address ?? 'udp:127.0.0.1:9',
        fields.sidecar_address ?? null,
        // A drouting file the node would otherwise get: it must not be created either.
        fields.drouting_db ?? join(root, 'planted.sqlite'),
        now,
        now,
      );
      return `planted ${what}`;
    });
    db.close();

    const sync = await control.send('POST', '/api/opensips/routing/sync');
    assert.equal(sync.status, 200, JSON.stringify(sync.body));
    for (const hostname of planted) {
      const pushed = sync.body.sidecar_results.find((result: { hostname: string }) => result.hostname === hostname);
      const reloaded = sync.body.reload_results.find((result: { hostname: string }) => result.hostname === hostname);
      assert.equal(pushed?.success, false, hostname);
      assert.match(pushed.error, /refused by the node policy, nothing pushed or written/, hostname);
      assert.equal(reloaded?.success, false, hostname);
      assert.match(reloaded.error, /refused by the node policy/, hostname);
    }
    // The allowed node still got its drop and its drouting file.
    assert.ok(existsSync(join(root, 'drops', 'allowed', 'routing.msgpack')));
    assert.ok(existsSync(join(root, 'allowed', 'opensips.sqlite')));
    assertUntouched();
  });
});
