import assert from 'node:assert/strict';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { assertErrorResponse } from '../helpers/errors.js';
import { eventually } from '../helpers/money-world.js';
import { SidecarProcess } from '../helpers/sidecar.js';

/**
 * Where the registrations' HA1s rest, only their owner reads them: the control plane's config.db (made
 * so even when an older version left it world-readable), a sidecar's sidecar.db, a snapshot dropped into
 * a node's directory. And the admin API hands password_hash out only when a read asks for it by name.
 */
const mode = (path: string): string => (statSync(path).mode & 0o777).toString(8);

describe('secrets at rest and in answers', () => {
  const base = mkdtempSync(join(tmpdir(), 'node-secrets-'));
  const controlDir = join(base, 'control');
  const root = join(base, 'nodes');
  const dropDir = join(root, 'drop');
  let control: SidecarProcess;
  let sidecar: SidecarProcess;
  let registrationId = 0;

  before(async () => {
    mkdirSync(controlDir);
    // As an older version left it: world-readable.
    closeSync(openSync(join(controlDir, 'config.db'), 'w', 0o644));
    assert.equal(mode(join(controlDir, 'config.db')), '644');
    [control, sidecar] = await Promise.all([
      SidecarProcess.startControlPlane({ dataDir: controlDir, args: ['--node-files-root', root] }),
      SidecarProcess.start(),
    ]);
  });
  after(() => Promise.all([control.kill(), sidecar.kill()]));

  const created = async (path: string, body: unknown): Promise<any> => {
    const response = await control.send('POST', path, body);
    assert.equal(response.status, 201, `${path}: ${JSON.stringify(response.body)}`);
    return response.body;
  };

  it('keeps password_hash out of every answer unless ?include=password_hash asks for it', async () => {
    const account = await created('/api/customer-accounts', { name: 'Acme', currency: 'AUD', username: 'acme', password: 'acme-pass-1' });
    const trunk = await created('/api/customer-trunks', { customer_account_id: account.id, name: 'Acme 1', currency: 'AUD' });
    const hash = 'a'.repeat(32);
    const registration = await created('/api/sip-registrations', {
      customer_trunk_id: trunk.id,
      username: 'acme',
      domain: 'sip.example.net',
      password_hash: hash,
      hash_algorithm: 'MD5',
    });
    registrationId = registration.id;
    assert.equal('password_hash' in registration, false, 'the create answer');
    const list = (await control.get('/api/sip-registrations')).body as Record<string, unknown>[];
    assert.deepEqual(
      list.map((row) => [row.username, 'password_hash' in row]),
      [['acme', false]],
    );
    assert.equal('password_hash' in (await control.get(`/api/sip-registrations/${registrationId}`)).body, false);
    const updated = await control.send('PUT', `/api/sip-registrations/${registrationId}`, { status: 'active' });
    assert.equal('password_hash' in updated.body, false, 'the update answer');
    assert.equal(
      ((await control.get('/api/sip-registrations?include=password_hash')).body as { password_hash: string }[])[0].password_hash,
      hash,
    );
    assert.equal((await control.get(`/api/sip-registrations/${registrationId}?include=password_hash`)).body.password_hash, hash);
    assertErrorResponse(await control.get('/api/sip-registrations?include=domain'), 400, /include takes password_hash/);
  });

  it('writes config.db, sidecar.db and snapshot drops owner-only (0600)', async () => {
    await created('/api/opensips-nodes', { hostname: 'http-node', mi_socket_address: 'udp:127.0.0.1:9', sidecar_address: sidecar.url });
    await created('/api/opensips-nodes', { hostname: 'drop-node', mi_socket_address: 'udp:127.0.0.1:9', sidecar_address: dropDir });
    const sync = (await control.send('POST', '/api/opensips/routing/sync')).body;
    assert.deepEqual(
      sync.sidecar_results.map((result: { hostname: string; success: boolean }) => [result.hostname, result.success]),
      [
        ['http-node', true],
        ['drop-node', true],
      ],
    );
    await eventually(async () => assert.equal((await sidecar.get('/api/health')).body.snapshot_version, sync.snapshot_version));
    for (const path of [join(controlDir, 'config.db'), join(controlDir, 'config.db-wal'), join(dropDir, 'routing.msgpack')])
      assert.equal(mode(path), '600', path);
    for (const name of ['sidecar.db', 'sidecar.db-wal'].filter((file) => existsSync(join(sidecar.dataDir, file))))
      assert.equal(mode(join(sidecar.dataDir, name)), '600', name);
    assert.ok(existsSync(join(sidecar.dataDir, 'sidecar.db')));
  });
});
