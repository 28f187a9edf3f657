import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Counter, Gauge, Histogram, SeriesByLabel } from '../../src/core/metrics/exposition.js';
import { SidecarMetrics } from '../../src/sidecar/metrics/metrics.js';

/**
 * Every metric SidecarMetrics declares is in what /metrics renders: render() lists them by hand, and one
 * declared but left out of that list is silently never scraped (sidecar_credit_leases_held was, until a test
 * looked for it).
 */
describe('sidecar metrics exposition', () => {
  it('renders every counter, gauge and histogram it declares', () => {
    const metrics = new SidecarMetrics();
    const declared = Object.values(metrics).filter(
      (value): value is Counter | Gauge | Histogram => value instanceof Counter || value instanceof Gauge || value instanceof Histogram,
    );
    assert.ok(declared.length > 20, `found ${declared.length} metrics`);
    const rendered = metrics.render();
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
