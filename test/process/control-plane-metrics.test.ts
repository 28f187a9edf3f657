import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { MOBILE, trunk10Cdr } from '../helpers/cdrs.js';
import { forEachEngine } from '../helpers/engines.js';
import { parseExposition, type Exposition } from '../helpers/exposition.js';
import { eventually } from '../helpers/money-world.js';
import { partnerUrlOf } from '../helpers/partner.js';
import { startPartnerWorld, type PartnerWorld } from '../helpers/partner-world.js';

/**
 * The control plane's GET /metrics as an operator's Prometheus scrapes it, on a real control plane with a node
 * settling money with it and the partner API on: valid exposition text whose series move with a money round, an
 * admin change, a sync and partner operations; served only to an auth_ips address or with the scrape token,
 * never on the partner listener; and no call id, account code, tenant or secret in it.
 */
const ACCESS_NUMBER = '61299990042';
const TOKEN = 'scrape-token-0123456789abcdef';

/** GET `path` at `url` with `headers`, from `localAddress` (another loopback address is not in auth_ips). */
function get(
  url: string,
  path: string,
  headers: Record<string, string> = {},
  localAddress?: string,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}${path}`, { headers, localAddress }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    req.end();
  });
}

forEachEngine('control plane metrics', (engine) => {
  let partnerWorld: PartnerWorld;
  let url: string;
  const tokenFile = join(mkdtempSync(join(tmpdir(), 'metrics-token-')), 'token');
  writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });

  before(async () => {
    partnerWorld = await startPartnerWorld(ACCESS_NUMBER, 1, engine, ['--metrics-token-file', tokenFile]);
    url = partnerWorld.world.control.url;
  });
  after(() => partnerWorld.world.stop());

  /** A scrape from 127.0.0.1 (seeded into auth_ips), read strictly. */
  const scrape = async (): Promise<{ metrics: Exposition; text: string }> => {
    const answer = await get(url, '/metrics');
    assert.equal(answer.status, 200, answer.text);
    return { metrics: parseExposition(answer.text), text: answer.text };
  };

  it('serves valid exposition text with the store engine, the lead and the process figures', async () => {
    const { metrics } = await scrape();
    assert.equal(metrics.value('control_plane_store_info', { engine }), 1);
    assert.equal(metrics.value('control_plane_sync_leader'), 1);
    assert.equal(metrics.types.get('control_plane_http_request_duration_seconds'), 'histogram');
    assert.ok((metrics.value('nodejs_heap_size_used_bytes') ?? 0) > 0);
    assert.ok((metrics.value('process_resident_memory_bytes') ?? 0) > 0);
    assert.ok(metrics.value('nodejs_eventloop_lag_p99_seconds') !== undefined);
  });

  it('counts a money round: the round, the lease granted, the CDR settled, the node last heard', async () => {
    const { world } = partnerWorld;
    const before = (await scrape()).metrics;
    const credit = await world.control.post('/api/balances/customer/1/balance/credit', { amount: '1.00', description: 'top-up' });
    assert.equal(credit.status, 200);
    const node = world.sidecars[0];
    const admitted = await node.post('/api/opensips/call/admit', { customer_trunk_id: 10, dnis: MOBILE, call_id: 'metrics-call@test' });
    assert.equal(admitted.body.allowed, true, JSON.stringify(admitted.body));
    assert.equal((await node.post('/api/cdrs/ingest', trunk10Cdr('metrics-call@test', 42))).status, 201);
    const grew = (metrics: Exposition, name: string, labels?: Record<string, string>): number =>
      (metrics.value(name, labels) ?? 0) - (before.value(name, labels) ?? 0);
    await eventually(async () => {
      const { metrics } = await scrape();
      assert.ok(grew(metrics, 'control_plane_cdrs_settled_total') >= 1, 'a CDR settled');
      // Counted once answered, after the round's group commit: a moment after the round itself.
      assert.ok(grew(metrics, 'control_plane_http_requests_total', { api: 'node_money', status_class: '2xx' }) >= 2);
    });
    const { metrics, text } = await scrape();
    assert.ok(grew(metrics, 'control_plane_money_rounds_total', { result: 'ok' }) >= 2, 'the lease round and the settling round');
    assert.ok(grew(metrics, 'control_plane_lease_grants_total', { entity_type: 'customer' }) >= 1);
    assert.ok((metrics.value('control_plane_money_round_seconds_count') ?? 0) >= 2);
    const heard = metrics.value('control_plane_node_last_round_timestamp_seconds', { node: 'node-1' });
    assert.ok(heard !== undefined && Math.abs(heard - Date.now() / 1000) < 600, `node-1 last heard at ${heard}`);
    // The node follows the delta log: its lag is there, by its hostname.
    assert.ok(metrics.value('control_plane_node_delta_lag', { node: 'node-1' }) !== undefined);
    // No call id, secret or token in any label.
    for (const secret of ['metrics-call@test', world.secrets[0], TOKEN]) assert.ok(!text.includes(secret), `the scrape shows ${secret}`);
  });

  it('counts an admin change and a sync with each node reached or not', async () => {
    const { world } = partnerWorld;
    const before = (await scrape()).metrics;
    const writes = (metrics: Exposition): number => metrics.value('control_plane_config_writes_total', { table: 'opensips_nodes' }) ?? 0;
    // node-1's sidecar gets the snapshots; a second node's sidecar is nowhere.
    const listed = (await world.control.get('/api/opensips-nodes')).body;
    const nodes = (Array.isArray(listed) ? listed : listed.data) as { id: number; hostname: string }[];
    const node1 = nodes.find((node) => node.hostname === 'node-1')!;
    assert.equal(
      (await world.control.send('PUT', `/api/opensips-nodes/${node1.id}`, { sidecar_address: world.sidecars[0].url })).status,
      200,
    );
    const added = await world.control.post('/api/opensips-nodes', {
      hostname: 'node-gone',
      mi_socket_address: 'http://127.0.0.1:9/mi',
      sidecar_address: 'http://127.0.0.1:9',
      region: 'test',
    });
    assert.equal(added.status, 201, JSON.stringify(added.body));
    assert.equal((await world.control.send('POST', '/api/opensips/routing/sync')).status, 200);
    const { metrics } = await scrape();
    assert.equal(writes(metrics) - writes(before), 2);
    assert.equal(
      (metrics.value('control_plane_syncs_total', { kind: 'sync', result: 'partial' }) ?? 0) -
        (before.value('control_plane_syncs_total', { kind: 'sync', result: 'partial' }) ?? 0),
      1,
    );
    assert.equal(metrics.value('control_plane_node_sidecar_reachable', { node: 'node-1' }), 1);
    assert.equal(metrics.value('control_plane_node_sidecar_reachable', { node: 'node-gone' }), 0);
    assert.equal(metrics.value('control_plane_snapshot_pushes_total', { node: 'node-1', result: 'ok' }), 1);
    assert.equal(metrics.value('control_plane_snapshot_pushes_total', { node: 'node-gone', result: 'failed' }), 1);
    assert.ok((metrics.value('control_plane_snapshot_version') ?? 0) > 0);
    assert.ok((metrics.value('control_plane_http_requests_total', { api: 'admin', status_class: '2xx' }) ?? 0) >= 3);
  });

  it('counts partner operations by operation and outcome, never by tenant or account', async () => {
    const code = await partnerWorld.account(5);
    const refused = await partnerWorld.partner('topup', { account: '000000000000', amount: 5 });
    assert.ok(refused.status >= 400, refused.text);
    const { metrics, text } = await scrape();
    assert.ok((metrics.value('control_plane_partner_operations_total', { operation: 'create_account', outcome: 'ok' }) ?? 0) >= 1);
    assert.ok((metrics.value('control_plane_partner_operations_total', { operation: 'topup', outcome: 'ok' }) ?? 0) >= 1);
    assert.equal(metrics.value('control_plane_partner_operations_total', { operation: 'topup', outcome: refused.body.reason_code }), 1);
    assert.ok((metrics.value('control_plane_http_requests_total', { api: 'partner', status_class: '2xx' }) ?? 0) >= 2);
    for (const identifier of [code, 'acme', 'prepaid_au']) assert.ok(!text.includes(identifier), `the scrape shows ${identifier}`);
  });

  it('refuses a scrape without the scrape token from an address not in auth_ips, and a wrong token from anywhere', async () => {
    const stranger = await get(url, '/metrics', {}, '127.0.0.2');
    assert.equal(stranger.status, 403);
    assert.equal(JSON.parse(stranger.text).reason_code, 'address_not_allowed');
    const withToken = await get(url, '/metrics', { authorization: `Bearer ${TOKEN}` }, '127.0.0.2');
    assert.equal(withToken.status, 200);
    parseExposition(withToken.text);
    for (const authorization of [`Bearer ${TOKEN}x`, 'Bearer nope', `Basic ${TOKEN}`]) {
      const refused = await get(url, '/metrics', { authorization });
      assert.equal(refused.status, 401, authorization);
      assert.equal(JSON.parse(refused.text).reason_code, 'metrics_token_invalid');
    }
  });

  it('serves no metrics on the partner listener', async () => {
    const partnerUrl = partnerUrlOf(partnerWorld.world.control.logs);
    for (const headers of [{}, { authorization: `Bearer ${TOKEN}` }] as Record<string, string>[]) {
      const answer = await get(partnerUrl, '/metrics', headers);
      assert.equal(answer.status, 404);
      assert.ok(!answer.text.includes('control_plane_'));
    }
  });
});
