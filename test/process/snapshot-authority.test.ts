import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { snapshotPushToken } from '../../src/core/protocol/node-credential.js';
import { routingSnapshotBytes } from '../fixtures/routing.js';
import { startMoneyWorld, type MoneyWorld } from '../helpers/money-world.js';
import { SidecarProcess } from '../helpers/sidecar.js';
import { forEachEngine } from '../helpers/engines.js';

/**
 * Snapshot versions come from the control plane alone. A node handed a version far ahead of the centre's
 * (a PUT straight to its sidecar) refuses the centre's snapshots as stale: the sync must report it failed,
 * not taken, while it serves old rules; `sync?force=1` brings it back, and it stays back across a restart.
 */
forEachEngine('snapshot versions have one authority', (engine) => {
  let world: MoneyWorld;
  let restarted: SidecarProcess | null = null;
  // An INVITE from an address no CIDR admits, by the SIP registration the test adds to trunk 10: registrations
  // travel only in snapshots (block rules would reach the node ahead as live changes: operations.md).
  const call = {
    source_ip: '192.0.2.200',
    call_id: 'authority-1@test',
    ani: '61255501234',
    dnis: '61400123456',
    username: 'authority_reg',
    domain: 'sip.example.test',
  };
  const reasonOf = async (sidecar: SidecarProcess): Promise<string | null> =>
    ((await sidecar.post('/api/opensips/call/auth', call)).body as { reason_code?: string }).reason_code ?? null;
  const sync = async (query = ''): Promise<any> => {
    const response = await world.control.send('POST', `/api/opensips/routing/sync${query}`);
    assert.equal(response.status, 200, JSON.stringify(response.body));
    return response.body;
  };
  const results = (report: {
    sidecar_results: { hostname: string; success: boolean; version: number | null }[];
  }): [string, boolean, number | null][] =>
    report.sidecar_results.map((result: { hostname: string; success: boolean; version: number | null }) => [
      result.hostname,
      result.success,
      result.version,
    ]);

  before(async () => {
    world = await startMoneyWorld({ engine, sidecars: 2 });
    const nodes = (await world.control.get('/api/opensips-nodes')).body.data as { id: number; hostname: string }[];
    for (const node of nodes) {
      const index = Number(node.hostname.replace('node-', '')) - 1;
      const updated = await world.control.send('PUT', `/api/opensips-nodes/${node.id}`, { sidecar_address: world.sidecars[index].url });
      assert.equal(updated.status, 200, JSON.stringify(updated.body));
    }
  });
  after(async () => {
    await Promise.all([world.stop(), restarted?.kill()]);
  });

  it('reports a node ahead of the centre as failed, and force=1 brings it back for good', async () => {
    const first = await sync();
    assert.deepEqual(results(first), [
      ['node-1', true, first.snapshot_version],
      ['node-2', true, first.snapshot_version],
    ]);
    // Ten years of milliseconds ahead of the centre's time-based versions, put straight to node-1 by someone
    // holding its secret (an operator's script): the node takes it, being pushed with its credential.
    const ahead = first.snapshot_version + 10 * 365 * 86_400_000;
    const put = await world.sidecars[0].putSnapshot(routingSnapshotBytes(ahead), {
      authorization: `Bearer ${snapshotPushToken(world.secrets[0])}`,
    });
    assert.equal(put.status, 200, JSON.stringify(put.body));

    const registration = await world.control.send('POST', '/api/sip-registrations', {
      customer_trunk_id: 10,
      username: 'authority_reg',
      domain: 'sip.example.test',
      password_hash: '0123456789abcdef0123456789abcdef',
      hash_algorithm: 'md5',
    });
    assert.equal(registration.status, 201, JSON.stringify(registration.body));
    const refused = await sync();
    assert.deepEqual(results(refused), [
      ['node-1', false, null],
      ['node-2', true, refused.snapshot_version],
    ]);
    assert.match(
      refused.sidecar_results[0].error,
      new RegExp(`serves version ${ahead}, ahead of the control plane's ${refused.snapshot_version}`),
    );
    assert.match(refused.sidecar_results[0].error, /force=1/);
    assert.ok(refused.warnings.some((warning: string) => /node-1.*did not take the snapshot/.test(warning)));
    // Node-1 still serves the snapshot it was handed. (The registration itself reaches both nodes as a live
    // change, whatever snapshot they serve: the check is the version, not the registration.)
    assert.equal(await reasonOf(world.sidecars[1]), null);
    assert.equal((await world.sidecars[0].get('/api/health')).body.snapshot_version, ahead);

    const forced = await sync('?force=1');
    assert.deepEqual(results(forced), [
      ['node-1', true, forced.snapshot_version],
      ['node-2', true, forced.snapshot_version],
    ]);
    assert.equal(await reasonOf(world.sidecars[0]), null);

    // The version it had been handed is gone from its store: a restart serves the centre's.
    await world.sidecars[0].kill();
    restarted = await SidecarProcess.start({ dataDir: world.sidecars[0].dataDir, args: world.sidecarArgs(0) });
    assert.equal((await restarted.get('/api/health')).body.snapshot_version, forced.snapshot_version);
    assert.equal(await reasonOf(restarted), null);
  });

  it('refuses a force that is not 1 or 0', async () => {
    const response = await world.control.send('POST', '/api/opensips/routing/sync?force=yes');
    assert.equal(response.status, 400);
    assert.equal(response.body.reason_code, 'invalid_parameter');
  });
});
