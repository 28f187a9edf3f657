import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { Counter, Gauge, Histogram, SeriesByLabel } from '../../src/core/metrics/exposition.js';
import { SidecarMetrics } from '../../src/sidecar/metrics/metrics.js';
import { parseExposition } from '../helpers/exposition.js';

/** Every metric /metrics rendered before the process metrics came (2026-12-07): dashboards read these names. */
const SIDECAR_TYPES_BEFORE = [
  ['sidecar_http_requests_total', 'counter'],
  ['sidecar_http_request_duration_seconds', 'histogram'],
  ['sidecar_decisions_total', 'counter'],
  ['sidecar_snapshot_version', 'gauge'],
  ['sidecar_delta_seq', 'gauge'],
  ['sidecar_delta_apply_seconds', 'histogram'],
  ['sidecar_snapshot_created_timestamp_seconds', 'gauge'],
  ['sidecar_snapshot_loads_total', 'counter'],
  ['sidecar_snapshot_compile_seconds', 'histogram'],
  ['sidecar_snapshot_swap_seconds', 'histogram'],
  ['process_resident_memory_bytes', 'gauge'],
  ['sidecar_http_body_bytes_held', 'gauge'],
  ['sidecar_reservations_held', 'gauge'],
  ['sidecar_cdr_outbox', 'gauge'],
  ['sidecar_centre_answer_age_seconds', 'gauge'],
  ['sidecar_credit_leases_held', 'gauge'],
  ['sidecar_credit_leases_lapsed', 'gauge'],
  ['sidecar_centre_rounds_total', 'counter'],
  ['sidecar_money_signals_total', 'counter'],
  ['sidecar_centre_round_seconds', 'histogram'],
  ['sidecar_balance_warnings_total', 'counter'],
  ['sidecar_call_slices_total', 'counter'],
  ['sidecar_cdr_overrun_total', 'counter'],
  ['sidecar_cdr_uncovered_micro_total', 'counter'],
  ['sidecar_carrier_routes_total', 'counter'],
  ['sidecar_failovers_total', 'counter'],
  // Since 2026-12-08: CDRs the node could not rate yet, kept in the OpenSIPS spool (cdr/spool.ts).
  ['sidecar_spool_parked_cdrs', 'gauge'],
] as const;

/** What the process metrics added: the Node.js names (RSS was there already, and stays one series). */
const PROCESS_TYPES = [
  ['nodejs_eventloop_lag_p99_seconds', 'gauge'],
  ['nodejs_eventloop_lag_max_seconds', 'gauge'],
  ['nodejs_heap_size_used_bytes', 'gauge'],
  ['nodejs_heap_size_total_bytes', 'gauge'],
  ['process_cpu_seconds_total', 'counter'],
  ['process_start_time_seconds', 'gauge'],
] as const;

/**
 * Every metric SidecarMetrics declares is in what /metrics renders (a list kept by hand once left
 * sidecar_credit_leases_held out), and what dashboards read stays as it was.
 */
describe('sidecar metrics exposition', () => {
  const scraped = new SidecarMetrics();
  after(() => scraped.process.stop());

  it('renders the metrics it rendered before, unchanged in name and type, and the process metrics beside them', () => {
    const { types } = parseExposition(scraped.render());
    assert.deepEqual(
      [...types].sort(([a], [b]) => a.localeCompare(b)),
      [...SIDECAR_TYPES_BEFORE, ...PROCESS_TYPES].map(([name, type]) => [name, type]).sort(([a], [b]) => a.localeCompare(b)),
    );
  });

  it('keeps its series as they were, RSS one series, and reads the process figures at each scrape', () => {
    scraped.observeRequest('/api/opensips/call/route', 200, 0.0001);
    scraped.decided('call_route', 'routed');
    scraped.routedTo(17);
    scraped.failedOver(503, 'retry_next');
    scraped.centreRounds.inc({ result: 'ok' });
    scraped.snapshotVersion.set(4);
    const parsed = parseExposition(scraped.render());
    assert.equal(parsed.value('sidecar_http_requests_total', { route: '/api/opensips/call/route', status: '200' }), 1);
    assert.equal(parsed.value('sidecar_http_request_duration_seconds_count', { route: '/api/opensips/call/route' }), 1);
    assert.equal(parsed.value('sidecar_decisions_total', { endpoint: 'call_route', outcome: 'routed' }), 1);
    assert.equal(parsed.value('sidecar_carrier_routes_total', { carrier_trunk_id: '17' }), 1);
    assert.equal(parsed.value('sidecar_failovers_total', { sip_code: '503', action: 'retry_next' }), 1);
    assert.equal(parsed.value('sidecar_centre_rounds_total', { result: 'ok' }), 1);
    assert.equal(parsed.value('sidecar_snapshot_version'), 4);
    assert.deepEqual(
      parsed.series('process_resident_memory_bytes').map(({ labels }) => labels),
      [{}],
      'RSS is one unlabelled series, as it was',
    );
    assert.ok(parsed.value('process_resident_memory_bytes')! > 1e6);
    assert.ok(parsed.value('nodejs_heap_size_used_bytes')! > 0);
    assert.ok(parsed.value('process_cpu_seconds_total')! > 0);
    const started = parsed.value('process_start_time_seconds')!;
    assert.ok(Math.abs(started - (Date.now() / 1000 - process.uptime())) < 5, `start time ${started}`);
    for (const lag of ['nodejs_eventloop_lag_p99_seconds', 'nodejs_eventloop_lag_max_seconds'])
      assert.ok(parsed.value(lag)! >= 0 && Number.isFinite(parsed.value(lag)), `${lag} is a number`);
  });

  it('renders every counter, gauge and histogram it declares', () => {
    const declared = [...Object.values(scraped), ...Object.values(scraped.process)].filter(
      (value): value is Counter | Gauge | Histogram => value instanceof Counter || value instanceof Gauge || value instanceof Histogram,
    );
    assert.ok(declared.length > 20, `found ${declared.length} metrics`);
    const rendered = scraped.render();
    const missing = declared.filter((metric) => !rendered.includes(`# TYPE ${metric.name} `)).map((metric) => metric.name);
    assert.deepEqual(missing, []);
  });

  it('counts a series by label through a kept handle as inc() with that label does', () => {
    const byHandle = new Counter('c_total', 'h');
    const byInc = new Counter('c_total', 'h');
    const byKind = new SeriesByLabel(byHandle, 'kind');
    for (const [kind, by] of [
      ['unadmitted', 1],
      ['beyond_reservation', 2],
      ['unadmitted', 5],
      ['a "quoted"\\kind', 1],
    ] as const) {
      byKind.of(kind).value += by;
      byInc.inc({ kind }, by);
    }
    assert.equal(byHandle.render(), byInc.render());
    assert.match(byHandle.render(), /^c_total\{kind="unadmitted"\} 6$/m);
    assert.equal(byKind.of('unadmitted'), byHandle.labels({ kind: 'unadmitted' }), 'one handle per label value');
  });
});
