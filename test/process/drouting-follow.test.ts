import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import Database from 'better-sqlite3';
import { FakeOpensipsMi } from '../../src/devkit/fake-opensips-mi.js';
import { eventually, startMoneyWorld, type MoneyWorld } from '../helpers/money-world.js';
import { forEachEngine } from '../helpers/engines.js';

/**
 * drouting follows live changes (issue 18): after one sync wrote a node's drouting tables, a gateway added and
 * a carrier suspended through the admin API reach those tables, reloaded over MI, with no further sync.
 */
forEachEngine('drouting follows live changes', (engine) => {
  const nodeDir = mkdtempSync(join(tmpdir(), 'drouting-follow-'));
  const droutingDb = join(nodeDir, 'opensips-01.sqlite');
  const mi = new FakeOpensipsMi(droutingDb);
  let world: MoneyWorld;

  before(async () => {
    const miAddress = await mi.startHttp();
    world = await startMoneyWorld({
      engine,
      sidecars: 1,
      controlArgs: ['--drouting-follow-seconds', '1', '--node-files-root', nodeDir, '--mi-timeout-ms', '5000'],
    });
    const node = await world.control.send('PUT', '/api/opensips-nodes/1', { mi_socket_address: miAddress, drouting_db: droutingDb });
    assert.equal(node.status, 200, JSON.stringify(node.body));
  });
  after(async () => {
    mi.close();
    await world.stop();
  });

  const read = <Row>(sql: string): Row[] => {
    const db = new Database(droutingDb, { readonly: true });
    try {
      return db.prepare(sql).all() as Row[];
    } finally {
      db.close();
    }
  };
  const gateways = (): string[] => read<{ address: string }>('SELECT address FROM dr_gateways ORDER BY address').map((row) => row.address);
  /** Waits until `check` passes on the node's tables (they change from the control plane's side). */
  const settles = (check: () => void): Promise<void> => eventually(() => Promise.resolve().then(check));
  /** Carrier 22's drouting state: 0 in service, 1 out (a suspended carrier). */
  const carrier22State = (): number | undefined => read<{ state: number }>("SELECT state FROM dr_carriers WHERE attrs = '22'")[0]?.state;

  it('a gateway added and a carrier suspended reach the node drouting tables without a sync', async () => {
    const sync = await world.control.send('POST', '/api/opensips/routing/sync');
    assert.equal(sync.status, 200, JSON.stringify(sync.body));
    assert.equal(sync.body.reload_results[0].success, true, JSON.stringify(sync.body.reload_results));
    const reloadsAfterSync = mi.reloads;
    assert.ok(
      gateways().some((address) => address.startsWith('192.0.2.22')),
      JSON.stringify(gateways()),
    );
    assert.ok(!gateways().some((address) => address.startsWith('192.0.2.122')));

    const added = await world.control.send('POST', '/api/carrier-trunks/22/ips', { ip_address: '192.0.2.122' });
    assert.equal(added.status, 201, JSON.stringify(added.body));
    // The tables are written first, then the node is told to reload them: both are waited for.
    await settles(() => {
      assert.ok(
        gateways().some((address) => address.startsWith('192.0.2.122')),
        JSON.stringify(gateways()),
      );
      assert.ok(mi.reloads > reloadsAfterSync, 'the node was told to reload');
    });

    assert.equal(carrier22State(), 0);
    const reloadsBefore = mi.reloads;
    const suspended = await world.control.send('PUT', '/api/carrier-trunks/22', { status: 'suspended' });
    assert.equal(suspended.status, 200, JSON.stringify(suspended.body));
    await settles(() => {
      assert.equal(carrier22State(), 1);
      assert.ok(mi.reloads > reloadsBefore, 'the node was told to reload');
    });
  });
});
