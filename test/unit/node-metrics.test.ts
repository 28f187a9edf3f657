import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SidecarMetrics } from '../../src/sidecar/metrics/metrics.js';
import { LIVE_BIN_MS, MetricsSampler } from '../../sync/console/metrics-sampler.js';
import { growth, p99Between, parseNodeMetrics, type NodeSample } from '../../sync/console/node-metrics.js';
import type { NodePolicy } from '../../sync/nodes/policy.js';
import type { ConfigStore } from '../../sync/store/config-store.js';

/** What the centre reads from a sidecar's own exposition (rendered here by the sidecar's own code). */
describe('console: reading a sidecar’s metrics', () => {
  const traffic = (metrics: SidecarMetrics, requests: number, slowSeconds: number): void => {
    for (let i = 0; i < requests; i++) metrics.observeRequest('/api/opensips/call/route', 200, i === 0 ? slowSeconds : 0.00004);
    metrics.observeRequest('/api/health', 200, 2); // not an OpenSIPS decision: neither counted nor in the p99
  };

  it('counts OpenSIPS requests, calls by outcome, routes by carrier and failovers by SIP code', () => {
    const metrics = new SidecarMetrics();
    traffic(metrics, 3, 0.00004);
    metrics.decided('call_admit', 'admitted');
    metrics.decided('call_admit', 'admitted_after_lease_wait');
    metrics.decided('call_admit', 'insufficient_balance');
    metrics.decided('call_admit', 'replayed');
    metrics.decided('call_auth', 'allowed');
    metrics.decided('call_auth', 'blocked');
    metrics.decided('call_route', 'routed');
    metrics.decided('cdr_ingest', 'rated');
    metrics.routedTo(21);
    metrics.routedTo(21);
    metrics.routedTo(20);
    metrics.failedOver(503, 'retry_next');
    metrics.failedOver(503, 'return_to_customer');
    metrics.failedOver(486, 'return_to_customer');
    const sample = parseNodeMetrics(metrics.render(), 1000);
    assert.deepEqual(sample.counters, {
      requests: 3,
      'calls:admitted': 2,
      'calls:insufficient_balance': 1,
      'calls:blocked': 1,
      'carrier:21': 2,
      'carrier:20': 1,
      'failover:503': 2,
      'failover:486': 1,
    });
    assert.equal(sample.latency.counts.at(-1), 3);
  });

  it('gives the p99 as the histogram bound it falls under, between two samples, and counts a restart from zero', () => {
    const metrics = new SidecarMetrics();
    traffic(metrics, 10, 0.00004);
    const first = parseNodeMetrics(metrics.render(), 0);
    traffic(metrics, 200, 0.02);
    const second = parseNodeMetrics(metrics.render(), 60_000);
    // 200 requests, 1 slow (20 ms): the 99th is the 198th, still under 50 µs.
    assert.equal(p99Between(first, second), 0.00005);
    traffic(metrics, 10, 0.02);
    const third = parseNodeMetrics(metrics.render(), 120_000);
    assert.equal(p99Between(second, third), 0.025, 'one in ten slow: the p99 is the slow one');
    assert.equal(p99Between(third, third), null, 'no requests between them');
    const restarted = parseNodeMetrics(new SidecarMetrics().render(), 180_000);
    assert.equal(growth(third.counters.requests, restarted.counters.requests), 0);
    assert.equal(growth(10, 4), 4, 'a counter lower than before: the sidecar restarted and counted 4 since');
    assert.equal(growth(undefined, 7), 7);
  });

  it('skips lines that do not parse and labels that are not what the sidecar writes', () => {
    const text = [
      '# HELP anything',
      'sidecar_http_requests_total{route="/api/opensips/call/route",status="200"} 5',
      'sidecar_http_requests_total{route="/api/opensips/call/route",status="200"} -3',
      'sidecar_http_requests_total{route="/api/opensips/call/route"} NaN',
      'sidecar_carrier_routes_total{carrier_trunk_id="21; DROP"} 4',
      'sidecar_carrier_routes_total{carrier_trunk_id="99999999999999999999"} 4',
      'sidecar_failovers_total{sip_code="999",action="x"} 1',
      'sidecar_failovers_total{sip_code="408",action="x\\"y"} 2',
      'garbage line with spaces',
      '{}{}{} 1',
    ].join('\n');
    assert.deepEqual(parseNodeMetrics(text, 0).counters, { requests: 5, 'failover:408': 2 });
  });

  it('keeps at most a bounded number of series from one scrape', () => {
    const lines = Array.from({ length: 5000 }, (_, i) => `sidecar_carrier_routes_total{carrier_trunk_id="${i + 1}"} 1`);
    assert.equal(Object.keys(parseNodeMetrics(lines.join('\n'), 0).counters).length, 2000);
  });

  it('bins each node’s growth by minute over the last hour, and gives decisions per second over the last minute', () => {
    const sampler = new MetricsSampler({} as ConfigStore, {} as NodePolicy, 10_000, {} as never);
    const at = (minute: number, second: number): number => minute * LIVE_BIN_MS + second * 1000;
    const sample = (time: number, counters: Record<string, number>): NodeSample => ({
      at: time,
      counters,
      latency: { le: [0.001, Infinity], counts: [counters.requests, counters.requests] },
    });
    const start = 29_000_000; // a minute number, as Date.now() / 60000 is
    sampler.record('node-1', sample(at(start, 0), { requests: 100, 'carrier:21': 10 }));
    sampler.record('node-1', sample(at(start, 30), { requests: 160, 'carrier:21': 15, 'failover:503': 2 }));
    sampler.record('node-2', sample(at(start, 10), { requests: 5, 'carrier:21': 1 }));
    sampler.record('node-2', sample(at(start + 1, 10), { requests: 2, 'carrier:21': 3 })); // restarted: 3 since
    const live = sampler.live(at(start + 1, 20));
    assert.equal(live.from, new Date(at(start - 58, 0)).toISOString());
    const carrier = live.groups.carrier?.find((series) => series.key === '21')?.values ?? [];
    assert.equal(carrier.length, 60);
    assert.deepEqual(carrier.slice(-2), [5, 3], 'node-1 grew 5 in the first minute, node-2 3 (after its restart) in the next');
    assert.deepEqual(
      live.groups.failover?.map((series) => [series.key, series.values.at(-2)]),
      [['503', 2]],
    );
    assert.deepEqual(live.groups.calls, []);
    assert.deepEqual(sampler.figures('node-1'), {
      decisions_per_second: 2,
      p99_ms: 1,
      p99_over: false,
      sampled_at: new Date(at(start, 30)).toISOString(),
      error: null,
    });
    // An hour on, the first minutes have left the window.
    sampler.record('node-1', sample(at(start + 61, 0), { requests: 160, 'carrier:21': 16, 'failover:503': 2 }));
    const later = sampler.live(at(start + 61, 0));
    assert.deepEqual(
      later.groups.carrier?.[0].values.reduce((a, b) => a + b, 0),
      1,
    );
    assert.deepEqual(later.groups.failover, []);
  });
});
