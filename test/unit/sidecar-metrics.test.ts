import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Counter, Gauge, Histogram, SidecarMetrics } from '../../src/sidecar/metrics/metrics.js';

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
});
