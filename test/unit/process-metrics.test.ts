import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ProcessMetrics, type DelaySampler } from '../../src/core/metrics/process.js';

/**
 * A stand-in for perf_hooks' event-loop delay sampler: the times between its timer's runs, in nanoseconds (the
 * resolution when the loop is on time, more when it was late).
 */
class Sampler implements DelaySampler {
  samples: number[] = [];
  get count(): number {
    return this.samples.length;
  }
  get max(): number {
    return Math.max(...this.samples);
  }
  percentile(p: number): number {
    const sorted = [...this.samples].sort((a, b) => a - b);
    return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
  }
  reset(): void {
    this.samples = [];
  }
  disable(): boolean {
    return true;
  }
}

const MS = 1e6;

describe('process metrics: event-loop lag', () => {
  function setUp(): { metrics: ProcessMetrics; sampler: Sampler; clock: { at: number }; read: () => { p99: number; max: number } } {
    const sampler = new Sampler();
    const clock = { at: 0 };
    const metrics = new ProcessMetrics(20, 60_000, () => clock.at, sampler);
    const read = (): { p99: number; max: number } => {
      metrics.collect();
      const value = (text: string): number => Number(/ (\S+)\n$/.exec(text)![1]);
      return { p99: value(metrics.lagP99.render()), max: value(metrics.lagMax.render()) };
    };
    return { metrics, sampler, clock, read };
  }

  it('reads how late the loop was beyond the sampling interval: an on-time loop reads 0, not the interval', () => {
    const { sampler, read } = setUp();
    assert.deepEqual(read(), { p99: 0, max: 0 }, 'no sample yet');
    sampler.samples = Array.from({ length: 100 }, () => 20.1 * MS);
    const onTime = read();
    assert.ok(onTime.max < 0.001, `an on-time loop reads ${onTime.max} s late`);
    sampler.samples.push(320 * MS);
    assert.equal(read().max, 0.3);
  });

  it('shows a stall to every reader, however many read: a read does not reset what the next one sees', () => {
    const { sampler, clock, read } = setUp();
    sampler.samples = [20 * MS, 320 * MS, 20 * MS];
    clock.at = 10_000; // the console's read
    assert.equal(read().max, 0.3);
    clock.at = 15_000; // Prometheus's, 5 s later
    assert.equal(read().max, 0.3);
    clock.at = 61_000; // the window ends: what it saw stays for one more window
    assert.equal(read().max, 0.3);
    assert.equal(sampler.count, 0, 'the sampler starts the next window');
    sampler.samples = [25 * MS];
    clock.at = 120_000;
    assert.equal(read().max, 0.3, 'a reader once a minute still sees it');
    clock.at = 121_000; // the second window ends: the stall is a window behind
    assert.equal(read().max, 0.005);
  });

  it('measures a real stall of the event loop', async () => {
    const metrics = new ProcessMetrics(10);
    try {
      await new Promise((resolve) => setTimeout(resolve, 50));
      const until = Date.now() + 150;
      while (Date.now() < until); // the loop held for 150 ms: the sampler's timer runs at least 130 ms late
      await new Promise((resolve) => setTimeout(resolve, 50));
      metrics.collect();
      const max = Number(/ (\S+)\n$/.exec(metrics.lagMax.render())![1]);
      assert.ok(max >= 0.1, `max lag ${max} s after a 150 ms stall`);
    } finally {
      metrics.stop();
    }
  });
});
