import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { costBoundMicro, type CallPrice } from '../../src/core/rating/cost-bound.js';
import { billableSeconds } from '../../src/core/rating/rating.js';
import { estimatedCostTerms } from '../../src/sidecar/admission/estimated-cost.js';

// The fixture's mobile route: 0.0250 a minute, 6/6 increments, a 4-decimal trunk (0.0001 of rounding slack).
const MOBILE: CallPrice = { rateNano: 25_000_000, perCall: false, initial: 6, step: 6, slackMicro: 100 };
const PER_CALL: CallPrice = { rateNano: 500_000_000, perCall: true, initial: 1, step: 1, slackMicro: 100 };
const ADMISSION_SECONDS = 7200;

describe('call/admit with estimated_cost: the cap', () => {
  it('is the longest call the estimate pays for, on a billing-increment boundary', () => {
    // 0.10 buys 234 s (0.0975 + 0.0001); 240 s would cost 0.1000 + 0.0001.
    assert.deepEqual(estimatedCostTerms(MOBILE, 100_000, ADMISSION_SECONDS), { amountMicro: 100_000, maxDurationSeconds: 234 });
  });

  it('is never above what the reservation covers, for any estimate', () => {
    for (let estimated = 1; estimated <= 4_000_000; estimated += 997) {
      const { amountMicro, maxDurationSeconds } = estimatedCostTerms(MOBILE, estimated, ADMISSION_SECONDS);
      assert.ok(maxDurationSeconds > 0 && maxDurationSeconds <= ADMISSION_SECONDS, `estimate ${estimated}: cap ${maxDurationSeconds}`);
      assert.ok(amountMicro >= estimated, `estimate ${estimated}: reserved ${amountMicro}`);
      assert.ok(costBoundMicro(MOBILE, billableSeconds(maxDurationSeconds, MOBILE)) <= amountMicro, `estimate ${estimated}`);
      assert.equal(maxDurationSeconds % 6, 0, 'a billing-increment boundary');
    }
  });

  it('reserves the first increment when the estimate does not buy it, not a call that overruns from its first second', () => {
    assert.deepEqual(estimatedCostTerms(MOBILE, 100, ADMISSION_SECONDS), { amountMicro: 2_600, maxDurationSeconds: 6 });
  });

  it('stops at the admission seconds when the estimate buys more', () => {
    assert.deepEqual(estimatedCostTerms(MOBILE, 10_000_000, ADMISSION_SECONDS), { amountMicro: 10_000_000, maxDurationSeconds: 7200 });
  });

  it('lets a per-call price last the admission seconds once the estimate pays the call', () => {
    assert.deepEqual(estimatedCostTerms(PER_CALL, 1_000_000, ADMISSION_SECONDS), { amountMicro: 1_000_000, maxDurationSeconds: 7200 });
    assert.deepEqual(estimatedCostTerms(PER_CALL, 100_000, ADMISSION_SECONDS), { amountMicro: 500_100, maxDurationSeconds: 7200 });
  });

  it('is the admission seconds without a price (no dialled number, or none with a rate)', () => {
    assert.deepEqual(estimatedCostTerms(null, 300_000, ADMISSION_SECONDS), { amountMicro: 300_000, maxDurationSeconds: 7200 });
  });
});
