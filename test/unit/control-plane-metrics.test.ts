import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { Counter, Gauge, Histogram } from '../../src/core/metrics/exposition.js';
import { ControlPlaneMetrics } from '../../sync/metrics/control-plane-metrics.js';
import { adminApiOf } from '../../sync/metrics/scrape-route.js';
import { parseExposition } from '../helpers/exposition.js';

/** The control plane's metrics as rendered: every one declared, label values escaped, HTTP series bounded. */
describe('control plane metrics', () => {
  const metrics = new ControlPlaneMetrics('sqlite');
  after(() => metrics.process.stop());

  it('renders every counter, gauge and histogram it declares, as valid exposition text', async () => {
    const declared = Object.values(metrics).filter(
      (value): value is Counter | Gauge | Histogram => value instanceof Counter || value instanceof Gauge || value instanceof Histogram,
    );
    assert.ok(declared.length > 25, `found ${declared.length} metrics`);
    const parsed = parseExposition(await metrics.render());
    assert.deepEqual(
      declared.filter((metric) => !parsed.types.has(metric.name)).map((metric) => metric.name),
      [],
    );
  });

  it('escapes a node hostname in label values, and reads back as it was', async () => {
    const hostname = 'edge "1"\\syd\nb';
    const result = { node_id: 1, hostname, success: false, version: null, attempts: 1, duration_ms: 1, error: 'refused' };
    metrics.syncFinished('sync', 0.5, { snapshot_version: 7, sidecar_results: [result], reload_results: [] });
    const text = await metrics.render();
    assert.ok(text.includes('control_plane_node_sidecar_reachable{node="edge \\"1\\"\\\\syd\\nb"} 0'), text);
    const parsed = parseExposition(text);
    assert.equal(parsed.value('control_plane_node_sidecar_reachable', { node: hostname }), 0);
    assert.equal(parsed.value('control_plane_snapshot_pushes_total', { node: hostname, result: 'failed' }), 1);
    assert.equal(parsed.value('control_plane_syncs_total', { kind: 'sync', result: 'partial' }), 1);
  });

  it("drops a deleted node's series at the next scrape, and keeps the others'", async () => {
    const fresh = new ControlPlaneMetrics('sqlite');
    try {
      let registered = ['edge-1', 'edge-2'];
      fresh.followNodes(() => Promise.resolve(registered));
      const result = (hostname: string) => ({ node_id: 1, hostname, success: true, version: 3, attempts: 1, duration_ms: 1, error: null });
      const reload = (hostname: string) => ({ node_id: 1, hostname, success: true, skipped: false, duration_ms: 1, error: null });
      fresh.syncFinished('sync', 0.1, {
        snapshot_version: 3,
        sidecar_results: [result('edge-1'), result('edge-2')],
        reload_results: [reload('edge-1'), reload('edge-2')],
      });
      for (const node of registered) fresh.moneyRound('ok', 0.01, node);
      const nodesIn = (text: string, name: string) =>
        parseExposition(text)
          .series(name)
          .map((series) => series.labels.node)
          .sort();
      const perNode = [
        'control_plane_snapshot_pushes_total',
        'control_plane_node_sidecar_reachable',
        'control_plane_drouting_reloads_total',
        'control_plane_node_drouting_loaded',
        'control_plane_node_last_round_timestamp_seconds',
      ];
      let text = await fresh.render();
      for (const name of perNode) assert.deepEqual(nodesIn(text, name), ['edge-1', 'edge-2'], name);

      registered = ['edge-1'];
      text = await fresh.render();
      for (const name of perNode) assert.deepEqual(nodesIn(text, name), ['edge-1'], name);
      assert.equal(parseExposition(text).value('control_plane_snapshot_pushes_total', { node: 'edge-1', result: 'ok' }), 1);
      // The kept node still counts through the handles made before.
      fresh.moneyRound('ok', 0.01, 'edge-1');
      fresh.partnerOperation('topup', 'ok');
      fresh.partnerOperation('topup', 'ok');
      fresh.partnerOperation('topup', 'insufficient_funds');
      const parsed = parseExposition(await fresh.render());
      assert.equal(parsed.value('control_plane_partner_operations_total', { operation: 'topup', outcome: 'ok' }), 2);
      assert.equal(parsed.value('control_plane_partner_operations_total', { operation: 'topup', outcome: 'insufficient_funds' }), 1);
    } finally {
      fresh.process.stop();
    }
  });

  it('keeps the HTTP series to the API groups, whatever paths are asked', async () => {
    const observe = metrics.observer(adminApiOf);
    for (let i = 0; i < 100; i++) observe('unmatched', 404, 0.001);
    for (const route of ['/api/customer-accounts', '/api/customer-accounts/{id}', '/api/auth/ips']) observe(route, 200, 0.002);
    observe('/api/ledger/node-sync', 200, 0.003);
    observe('/api/nodes/deltas', 200, 8);
    observe('/api/console/network', 500, 0.004);
    observe('/console/{file}', 200, 0.001);
    observe('/api/auth/login', 401, 0.001);
    const parsed = parseExposition(await metrics.render());
    const groups = new Set(parsed.series('control_plane_http_requests_total').map((series) => series.labels.api));
    assert.deepEqual([...groups].sort(), ['admin', 'console', 'node_deltas', 'node_money', 'portal']);
    assert.equal(parsed.value('control_plane_http_requests_total', { api: 'admin', status_class: '4xx' }), 100);
    assert.equal(parsed.value('control_plane_http_requests_total', { api: 'admin', status_class: '2xx' }), 3);
    assert.equal(parsed.value('control_plane_http_requests_total', { api: 'console', status_class: '5xx' }), 1);
    assert.equal(parsed.value('control_plane_http_request_duration_seconds_count', { api: 'node_deltas' }), 1);
  });
});
