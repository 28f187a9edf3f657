import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type AddressInfo } from 'node:net';
import { after, before, it } from 'node:test';
import Database from 'better-sqlite3';
import { FakeOpensipsMi } from '../../src/devkit/fake-opensips-mi.js';
import { forEachEngine, startCentre, type Centre } from '../helpers/engines.js';
import { assertErrorResponse } from '../helpers/errors.js';
import { SidecarProcess } from '../helpers/sidecar.js';

/** The control plane and sidecars as real processes: configure through the admin API, sync, route; on each engine of the centre's store. */

const assertError = assertErrorResponse;

forEachEngine('control plane', (engine) => {
  let centre: Centre;
  let control: SidecarProcess;
  let sidecarA: SidecarProcess;
  let sidecarB: SidecarProcess;
  const watchDir = mkdtempSync(join(tmpdir(), 'control-watch-'));
  let sidecarC: SidecarProcess;
  const ids: Record<string, number> = {};
  // Each node's OpenSIPS: an MI endpoint on a different transport, and its drouting database.
  const nodeDir = mkdtempSync(join(tmpdir(), 'control-nodes-'));
  const droutingDb = (node: number): string => join(nodeDir, `opensips-0${node}.sqlite`);
  const mi = [1, 2, 3].map((node) => new FakeOpensipsMi(droutingDb(node)));
  const miAddresses: string[] = [];

  before(async () => {
    [centre, sidecarA, sidecarB] = await Promise.all([
      // The nodes' FIFO, drouting databases and drop directory are in these two: the node files roots.
      // drouting follows live changes only at syncs here: the test counts each node's reloads.
      startCentre(engine, 'control_plane', {
        args: ['--mi-timeout-ms', '1500', '--node-files-root', `${nodeDir},${watchDir}`, '--drouting-follow-seconds', '0'],
      }),
      SidecarProcess.start(),
      SidecarProcess.start(),
    ]);
    control = centre.control;
    sidecarC = await SidecarProcess.start({ args: ['--watch-dir', watchDir] });
    miAddresses.push(await mi[0].startHttp(), await mi[1].startUdp(), mi[2].startFifo(join(nodeDir, 'opensips_fifo')));
  });
  after(async () => {
    for (const fake of mi) fake.close();
    await Promise.all([centre.stop(), sidecarA.kill(), sidecarB.kill(), sidecarC.kill()]);
  });

  const created = async (path: string, body: unknown): Promise<any> => {
    const response = await control.send('POST', path, body);
    assert.equal(response.status, 201, `${path}: ${JSON.stringify(response.body)}`);
    return response.body;
  };

  it('answers health without IP auth and seeds 127.0.0.1', async () => {
    assert.deepEqual((await control.get('/api/health')).body, { status: 'ok', valkey: 'disabled' });
    const ips = await control.get('/api/auth/ips');
    assert.equal(ips.status, 200);
    assert.deepEqual(
      ips.body.map((row: { ip_address: string }) => row.ip_address),
      ['127.0.0.1'],
    );
  });

  it('creates records with the contract defaults and normalised values', async () => {
    const account = await created('/api/customer-accounts', {
      name: 'Acme Telecom',
      currency: 'AUD',
      billing_mode: 'prepaid',
      username: 'acme',
      password: 'acme-pass-1',
    });
    ids.account = account.id;
    assert.equal(account.status, 'active');
    assert.equal(account.auto_cutoff_enabled, false);
    const trunk = await created('/api/customer-trunks', {
      customer_account_id: account.id,
      name: 'Acme Primary',
      currency: 'AUD',
      tech_prefix: '9999',
    });
    ids.trunk = trunk.id;
    assert.deepEqual(
      [
        trunk.cps_limit,
        trunk.port_limit,
        trunk.per_minute_rate_limit,
        trunk.billing_mode,
        trunk.decimal_precision,
        trunk.rounding_direction,
        trunk.sip_trusted,
      ],
      [10, 30, 300, 'postpaid', 4, 'standard', false],
    );
    const ipAuth = await created('/api/trunk-ip-auth', { trunk_type: 'customer', trunk_id: trunk.id, cidr: '203.0.113.77/24' });
    assert.equal(ipAuth.cidr, '203.0.113.0/24');
    await created('/api/trunk-ip-auth', { trunk_type: 'customer', trunk_id: trunk.id, cidr: '2001:DB8:10::1/48' });
    const registration = await created('/api/sip-registrations', {
      customer_trunk_id: trunk.id,
      username: 'acme_trunk_01',
      domain: 'sip.crazytel.com.au',
      password_hash: createHash('md5').update('acme_trunk_01:sip.crazytel.com.au:s3cret').digest('hex').toUpperCase(),
      hash_algorithm: 'md5',
    });
    assert.equal(registration.hash_algorithm, 'md5');
    const sell = await created('/api/rate-decks', { name: 'Sell A', deck_type: 'customer', currency: 'AUD' });
    const cost = await created('/api/rate-decks', { name: 'Cost USD', deck_type: 'carrier', currency: 'USD' });
    ids.sell = sell.id;
    await created(`/api/rate-decks/${sell.id}/rates`, {
      prefix: '614',
      destination_name: 'Australia Mobile',
      rate_per_minute: '0.0250',
      effective_at: '2025-01-01T00:00:00Z',
    });
    const rate = await created(`/api/rate-decks/${cost.id}/rates`, {
      prefix: '61',
      destination_name: 'Australia',
      rate_per_minute: '0.0100',
      effective_at: '2025-01-01T00:00:00Z',
    });
    assert.equal(rate.rate_type, 'per_minute');
    const carrier = await created('/api/carrier-trunks', { name: 'Carrier B - US', currency: 'USD', multi_ip_mode: 'failover' });
    ids.carrier = carrier.id;
    assert.deepEqual([carrier.cps_limit, carrier.port_limit, carrier.per_minute_rate_limit], [10, 100, 600]);
    const gateway = await created(`/api/carrier-trunks/${carrier.id}/ips`, { ip_address: '2001:DB8::50', port: 5080 });
    ids.gateway = gateway.id;
    await created(`/api/carrier-trunks/${carrier.id}/failover-rules`, { sip_code: 486, action: 'return_to_customer' });
    assert.equal((await control.send('PUT', `/api/customer-trunks/${trunk.id}/rate-deck`, { rate_deck_id: sell.id })).status, 200);
    assert.equal((await control.send('PUT', `/api/carrier-trunks/${carrier.id}/rate-deck`, { rate_deck_id: cost.id })).status, 200);
    await created(`/api/rate-decks/${sell.id}/allowlist`, { carrier_trunk_id: carrier.id });
    await created('/api/exchange-rates', {
      from_currency: 'USD',
      to_currency: 'AUD',
      rate: '1.500000',
      effective_at: '2025-01-01T00:00:00Z',
    });
    await created('/api/lcr-config', { rate_deck_id: null, block_if_cost_exceeds_sell: true, acceptable_loss_pct: '5.00' });
    await created('/api/block-rules', { scope: 'global', block_type: 'dnis', pattern: '1900', match_type: 'prefix' });
    await created('/api/opensips-nodes', {
      hostname: 'opensips-01',
      mi_socket_address: miAddresses[0],
      sidecar_address: sidecarA.url,
      drouting_db: droutingDb(1),
    });
    await created('/api/opensips-nodes', {
      hostname: 'opensips-02',
      mi_socket_address: miAddresses[1],
      sidecar_address: sidecarB.url,
      drouting_db: droutingDb(2),
    });
    await created('/api/opensips-nodes', {
      hostname: 'opensips-03',
      mi_socket_address: miAddresses[2],
      sidecar_address: watchDir,
      drouting_db: droutingDb(3),
    });
    await created('/api/opensips-nodes', {
      hostname: 'opensips-04',
      mi_socket_address: 'udp:127.0.0.1:8890',
      sidecar_address: 'http://127.0.0.1:1',
      status: 'suspended',
    });
  });

  it('pages lists as {data, meta} where the contract does, and filters', async () => {
    const trunks = await control.get(`/api/customer-trunks?customer_account_id=${ids.account}&page=1&page_size=10`);
    assert.equal(trunks.status, 200);
    assert.deepEqual(trunks.body.meta, { page: 1, page_size: 10, total: 1 });
    assert.equal(trunks.body.data[0].name, 'Acme Primary');
    const ipAuth = await control.get(`/api/trunk-ip-auth?trunk_type=customer&trunk_id=${ids.trunk}`);
    assert.ok(Array.isArray(ipAuth.body));
    assert.equal(ipAuth.body.length, 2);
    const account = (await control.get(`/api/customer-accounts/${ids.account}`)).body;
    assert.deepEqual(
      [account.name, account.settings.billing_mode, account.trunks.map((trunk: { id: number }) => trunk.id)],
      ['Acme Telecom', 'prepaid', [ids.trunk]],
    );
    const carrier = (await control.get(`/api/carrier-trunks/${ids.carrier}`)).body;
    assert.deepEqual(
      [carrier.trunk.id, carrier.ips.map((ip: { ip_address: string; port: number }) => `${ip.ip_address}:${ip.port}`)],
      [ids.carrier, ['2001:db8::50:5080']],
    );
    const current = await control.get('/api/exchange-rates/current?from_currency=USD&to_currency=AUD');
    assert.equal(current.body.rate, '1.500000');
    assertError(await control.get('/api/customer-trunks?colour=red'), 400, /unknown query parameter/);
  });

  it('syncs: builds the snapshot and every active node serves it; suspended nodes are skipped', async () => {
    const sync = await control.send('POST', '/api/opensips/routing/sync');
    assert.equal(sync.status, 200, JSON.stringify(sync.body));
    const report = sync.body;
    assert.equal(typeof report.snapshot_version, 'number');
    assert.deepEqual(
      report.sidecar_results.map((result: { hostname: string; success: boolean }) => [result.hostname, result.success]),
      [
        ['opensips-01', true],
        ['opensips-02', true],
        ['opensips-03', true],
      ],
    );
    assert.equal(report.sidecar_results[0].version, report.snapshot_version);
    assert.ok(report.warnings.some((warning: string) => /opensips-04.*skipped: suspended/.test(warning)));
    // drouting: written to each node's database and reloaded over http, udp and the FIFO, confirmed by counts.
    assert.deepEqual(
      report.reload_results.map((result: { hostname: string; success: boolean; skipped: boolean; error: string | null }) => [
        result.hostname,
        result.success,
        result.skipped,
        result.error,
      ]),
      [
        ['opensips-01', true, false, null],
        ['opensips-02', true, false, null],
        ['opensips-03', true, false, null],
      ],
    );
    assert.deepEqual([report.gateways, report.carriers, report.rules, report.groups], [1, 1, 1, 1]);
    assert.deepEqual(
      mi.map((fake) => [fake.reloads, fake.loadedRules, fake.addressReloads]),
      [
        [1, 1, 1],
        [1, 1, 1],
        [1, 1, 1],
      ],
    );
    const db = new Database(droutingDb(1), { readonly: true });
    assert.deepEqual(db.prepare('SELECT groupid, prefix, gwlist FROM dr_rules').all(), [
      { groupid: String(ids.sell), prefix: '614', gwlist: `#cr${ids.carrier}` },
    ]);
    db.close();
    for (const sidecar of [sidecarA, sidecarB]) {
      const routed = await sidecar.post('/api/opensips/call/route', { customer_trunk_id: ids.trunk, dnis: '61400123456' });
      assert.equal(routed.body.destination_uri, 'sip:61400123456@[2001:db8::50]:5080');
      const auth = await sidecar.post('/api/opensips/call/auth', { source_ip: '203.0.113.9', dnis: '999961400123456', ani: '61255501234' });
      assert.equal(auth.body.customer_trunk_id, ids.trunk);
      assert.equal(auth.body.dnis, '61400123456');
    }
    // The watched-directory node takes the file drop.
    const deadline = Date.now() + 10_000;
    while ((await sidecarC.get('/api/health')).body.snapshot_version !== report.snapshot_version && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal((await sidecarC.get('/api/health')).body.snapshot_version, report.snapshot_version);
    // Nothing changed: the next sync does not rewrite or reload.
    const again = (await control.send('POST', '/api/opensips/routing/sync')).body;
    assert.deepEqual(
      again.reload_results.map((result: { skipped: boolean }) => result.skipped),
      [true, true, true],
    );
    assert.deepEqual(
      mi.map((fake) => fake.reloads),
      [1, 1, 1],
    );
  });

  it('a change reaches the nodes on the next sync', async () => {
    assert.equal((await control.send('PUT', `/api/carrier-trunks/${ids.carrier}/ips/${ids.gateway}`, { status: 'disabled' })).status, 200);
    const sync = await control.send('POST', '/api/opensips/routing/sync');
    assert.ok(sync.body.warnings.some((warning: string) => /has no active gateway/.test(warning)));
    const routed = await sidecarA.post('/api/opensips/call/route', { customer_trunk_id: ids.trunk, dnis: '61400123456' });
    assert.deepEqual([routed.body.allowed, routed.body.reject_code], [false, 404]);
    assert.equal((await control.send('PUT', `/api/carrier-trunks/${ids.carrier}/ips/${ids.gateway}`, { status: 'active' })).status, 200);
  });

  it('reports a node whose reload fails or hangs, and still reloads the others', async () => {
    mi[1].failReload = true;
    mi[2].delayMs = 3000; // beyond the control plane's 1.5 s MI timeout
    try {
      assert.equal(
        (await control.send('POST', '/api/block-rules', { scope: 'global', block_type: 'ani', pattern: '1234567', match_type: 'exact' }))
          .status,
        201,
      );
      assert.equal((await control.send('PUT', `/api/carrier-trunks/${ids.carrier}`, { name: 'Carrier B - US (renamed)' })).status, 200);
      const report = (await control.send('POST', '/api/opensips/routing/sync')).body;
      const results = report.reload_results.map((result: { hostname: string; success: boolean; error: string | null }) => [
        result.hostname,
        result.success,
        result.error,
      ]);
      assert.deepEqual(results[0], ['opensips-01', true, null]);
      assert.match(results[1][2], /MI error 500: Failed to reload/);
      assert.match(results[2][2], /no answer within 1500 ms/);
      assert.ok(report.warnings.some((warning: string) => /opensips-02.*drouting reload failed/.test(warning)));
    } finally {
      mi[1].failReload = false;
      mi[2].delayMs = 0;
    }
  });

  it('reports a dead node per node without holding up the others', async () => {
    // A port that was just free: nothing listens there, so the connection is refused.
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const closedPort = (probe.address() as AddressInfo).port;
    await new Promise((resolve) => probe.close(resolve));
    const dead = await created('/api/opensips-nodes', {
      hostname: 'opensips-dead',
      mi_socket_address: 'udp:127.0.0.1:9',
      sidecar_address: `http://127.0.0.1:${closedPort}`,
    });
    const sync = await control.send('POST', '/api/opensips/routing/sync');
    const results = new Map(sync.body.sidecar_results.map((result: { hostname: string }) => [result.hostname, result]));
    assert.equal((results.get('opensips-01') as { success: boolean }).success, true);
    const failed = results.get('opensips-dead') as { success: boolean; error: string; attempts: number };
    assert.equal(failed.success, false);
    assert.match(failed.error, /ECONNREFUSED/);
    assert.equal(failed.attempts, 3);
    assert.equal((await control.send('DELETE', `/api/opensips-nodes/${dead.id}`)).status, 204);
  });

  it('validates bodies and names the field, changing nothing', async () => {
    const before = (await control.get('/api/customer-trunks')).body.meta.total;
    assertError(await control.send('POST', '/api/customer-trunks', { name: 'x', currency: 'AUD' }), 400, /customer_account_id is required/);
    assertError(
      await control.send('POST', '/api/customer-trunks', { customer_account_id: 999, name: 'x', currency: 'AUD' }),
      422,
      /customer_account_id 999 does not exist/,
    );
    assertError(
      await control.send('POST', '/api/customer-trunks', { customer_account_id: ids.account, name: 'x', currency: 'EUR' }),
      400,
      /currency must be one of AUD, USD/,
    );
    assertError(
      await control.send('POST', '/api/customer-trunks', {
        customer_account_id: ids.account,
        name: 'x',
        currency: 'AUD',
        tech_prefix: '99a',
      }),
      400,
      /tech_prefix must be digits/,
    );
    assertError(
      await control.send('POST', '/api/customer-trunks', {
        customer_account_id: ids.account,
        name: 'x',
        currency: 'AUD',
        decimal_precision: 7,
      }),
      400,
      /decimal_precision/,
    );
    assertError(await control.send('POST', '/api/customer-trunks', '{"name":'), 400, /not valid JSON/);
    assert.equal((await control.get('/api/customer-trunks')).body.meta.total, before);
    assertError(
      await control.send('POST', '/api/trunk-ip-auth', { trunk_type: 'customer', trunk_id: ids.trunk, cidr: '203.0.113.0/33' }),
      400,
      /cidr/,
    );
    assertError(
      await control.send('POST', '/api/trunk-ip-auth', { trunk_type: 'carrier', trunk_id: ids.trunk + 1000, cidr: '10.0.0.0/8' }),
      422,
      /trunk_id/,
    );
    assertError(
      await control.send('POST', `/api/rate-decks/${ids.sell}/rates`, { prefix: '61 4', destination_name: 'x', rate_per_minute: '0.1' }),
      400,
      /prefix must be digits/,
    );
    assertError(
      await control.send('POST', `/api/rate-decks/${ids.sell}/rates`, { prefix: '614', destination_name: 'x', rate_per_minute: '1e-3' }),
      400,
      /rate_per_minute/,
    );
    assertError(
      await control.send('POST', `/api/rate-decks/${ids.sell}/rates`, { prefix: '614', destination_name: 'x', rate_per_minute: 0.025 }),
      400,
      /rate_per_minute must be a string/,
    );
    assertError(
      await control.send('POST', `/api/rate-decks/${ids.sell}/rates`, {
        prefix: '614',
        destination_name: 'dup',
        rate_per_minute: '0.03',
        effective_at: '2025-01-01T00:00:00Z',
      }),
      409,
    );
    const referenced = await control.send('DELETE', `/api/rate-decks/${ids.sell}`);
    assertError(referenced, 409, /other records still refer to this one/);
    assert.equal(referenced.body.reason_code, 'still_referenced');
    assertError(
      await control.send('POST', '/api/block-rules', { scope: 'customer_trunk', block_type: 'ani', pattern: '1', match_type: 'exact' }),
      400,
      /scope_id is required/,
    );
    assertError(
      await control.send('PUT', `/api/customer-trunks/${ids.trunk}/rate-deck`, { rate_deck_id: ids.sell + 1 }),
      422,
      /carrier deck/,
    );
    assertError(
      await control.send('POST', '/api/exchange-rates', { from_currency: 'USD', to_currency: 'USD', rate: '1' }),
      400,
      /must differ/,
    );
  });

  it('answers 404 for unknown ids and 400 for ids that are not ids', async () => {
    assertError(await control.get('/api/customer-trunks/99999'), 404, /customer trunk 99999 not found/);
    assertError(await control.get('/api/customer-trunks/abc'), 400, /id must be a positive integer/);
    assertError(await control.send('DELETE', `/api/carrier-trunks/${ids.carrier}/ips/99999`), 404);
    assertError(await control.get('/api/rate-decks/99999/rates'), 404, /rate deck 99999 not found/);
  });

  it('soft-deletes trunks (status closed) and hard-deletes IP auth', async () => {
    const extra = await created('/api/customer-trunks', { customer_account_id: ids.account, name: 'Temp', currency: 'AUD' });
    assert.equal((await control.send('DELETE', `/api/customer-trunks/${extra.id}`)).status, 204);
    assert.equal((await control.get(`/api/customer-trunks/${extra.id}`)).body.status, 'closed');
    const record = await created('/api/trunk-ip-auth', { trunk_type: 'customer', trunk_id: extra.id, cidr: '192.0.2.1' });
    assert.equal((await control.send('DELETE', `/api/trunk-ip-auth/${record.id}`)).status, 204);
    assert.equal((await control.get(`/api/trunk-ip-auth/${record.id}`)).status, 404);
  });

  // The ledger takes an account's currency from its row: a new one would relabel its balance, not convert it.
  it('keeps the currency of an account or carrier trunk that has a balance', async () => {
    const account = await created('/api/customer-accounts', {
      name: 'Yen Trading',
      billing_mode: 'prepaid',
      currency: 'AUD',
      username: 'yen',
      password: 'yen-pass-1',
    });

    // Created in the wrong currency and not used yet: it may be put right.
    assert.equal((await control.send('PUT', `/api/customer-accounts/${account.id}`, { currency: 'USD' })).status, 200);
    const credit = await control.send('POST', `/api/balances/customer/${account.id}/balance/credit`, { amount: '100.00' });
    assert.equal(credit.status, 200, JSON.stringify(credit.body));
    assertError(
      await control.send('PUT', `/api/customer-accounts/${account.id}`, { currency: 'AUD' }),
      409,
      /has a balance in USD: its currency cannot change/,
    );
    assert.equal((await control.send('PUT', `/api/customer-accounts/${account.id}`, { name: 'Yen Trading Pty' })).status, 200);
    const balance = (await control.get(`/api/balances/customer/${account.id}/balance`)).body;
    assert.deepEqual([balance.balance, balance.currency], ['100.00', 'USD']);
    const carrier = await created('/api/carrier-trunks', { name: 'Carrier JPY', currency: 'AUD' });
    assert.equal((await control.send('POST', `/api/balances/carrier/${carrier.id}/balance/credit`, { amount: '5.00' })).status, 200);
    assertError(await control.send('PUT', `/api/carrier-trunks/${carrier.id}`, { currency: 'USD' }), 409, /carrier trunk .* cannot change/);
  });

  it('refuses every route but health to an address not in auth_ips', async () => {
    assert.equal((await control.send('POST', '/api/auth/ips', { ip_address: '127.0.0.1', is_active: false })).status, 201);
    assertError(await control.get('/api/customer-trunks'), 403, /not authorised/);
    assert.equal((await control.get('/api/health')).status, 200);
  });
});
