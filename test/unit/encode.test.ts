import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { jsonNumber } from '../../src/core/json/number.js';
import { quoteJson } from '../../src/core/json/quote.js';
import { formatMicro } from '../../src/core/money/micro.js';
import { answerText, fingerprintOf, settlementText, type RatedSide } from '../../src/sidecar/journal/rated-cdr.js';
import { authorizeCall } from '../../src/sidecar/auth/call-auth.js';
import { callAuthRequest } from '../../src/devkit/requests.js';
import { LivePorts } from '../../src/sidecar/limits/live-ports.js';
import { encodeCallAuthDecision, encodeRouteDecision } from '../../src/sidecar/call/encode.js';
import { renderAnswer } from '../../src/sidecar/journal/reservation-answer.js';
import { firstAttemptRequest, routeCall } from '../../src/sidecar/routing/route.js';
import { routingTables } from '../fixtures/routing.js';
import { ANSWERED_CDR, settlementObject } from '../fixtures/settlement.js';
import { engineFor } from '../helpers/engine.js';

const engine = engineFor(routingTables());

describe('hot-path encoders write the same bytes as JSON.stringify', () => {
  it('for every route answer of the fixture, allowed or not', () => {
    const dnisList = ['61400123456', '61499123456', '61212345678', '61130000000', '4412345678', '123'];
    const tried = [[], [21], [21, 20], [20]];
    let allowed = 0;
    for (const trunk of [10, 11, 13, 999]) {
      for (const dnis of dnisList) {
        for (const triedCarriers of tried) {
          const { decision } = routeCall(
            engine,
            { ...firstAttemptRequest(trunk, dnis, '6125550100'), tried_carrier_trunk_ids: triedCarriers },
            Date.parse('2026-11-24T12:00:00Z'),
          );
          if (decision.allowed) allowed++;
          assert.equal(encodeRouteDecision(decision), JSON.stringify(decision));
        }
      }
    }
    assert.ok(allowed > 10);
  });

  it('for call auth answers, including strings that need escaping', () => {
    for (const [sourceIp, dnis, ani] of [
      ['203.0.113.77', '61400123456', '6125550100'],
      ['203.0.113.10', '999961400123456', ''],
      ['10.0.0.1', '61400123456', ''],
      ['203.0.113.77', '19001234567', ''],
    ]) {
      const { decision } = authorizeCall(engine, callAuthRequest(sourceIp, { ani, dnis }), new LivePorts());
      assert.equal(encodeCallAuthDecision(decision), JSON.stringify(decision));
    }
    const odd = {
      allowed: true as const,
      trunk_type: 'customer' as const,
      customer_trunk_id: 1,
      ani: 'a"b\\c\u0001',
      dnis: '1\n2',
      cps_limit: 1,
      port_limit: 2,
      per_minute_rate_limit: 3,
      sip_trusted: true,
      rtpengine_enabled: false,
    };
    assert.equal(encodeCallAuthDecision(odd), JSON.stringify(odd));
  });
});

describe('the admission answers are the bytes JSON.stringify writes of the contract objects', () => {
  it('for call/admit and call-admit/check, any headroom, capped or not', () => {
    for (const headroomMicro of [0, 1, 32_500, -1_500_000, 123_456_789_012, Number.NaN])
      for (const maxDurationSeconds of [null, 0, 7200]) {
        const headroom = formatMicro(headroomMicro);
        const admit = { allowed: true, headroom, reject_code: null, reject_reason: null, max_duration_seconds: maxDurationSeconds };
        assert.equal(renderAnswer('admit', headroomMicro, maxDurationSeconds), JSON.stringify(admit));
        assert.equal(
          renderAnswer('check', headroomMicro, maxDurationSeconds),
          JSON.stringify({ allowed: true, headroom, message: 'call admitted' }),
        );
      }
  });
});

describe('the settlement encoder writes the same bytes as JSON.stringify', () => {
  it('for answered and unanswered CDRs, covered or not, retail or not, with strings that need escaping', () => {
    const base = ANSWERED_CDR;
    const unanswered = {
      ...base,
      answerMs: null,
      sipResponseCode: null,
      durationSeconds: 0,
      customer: { ...base.customer, rateDeckId: null },
      vendor: { ...base.vendor, rateDeckId: null },
    };
    for (const cdr of [base, unanswered])
      for (const uncoveredMicro of [0, 32_500])
        for (const retailAccountId of [null, 9]) {
          const variant = { ...cdr, uncoveredMicro, retailAccountId };
          assert.equal(settlementText(variant), JSON.stringify(settlementObject(variant)));
        }
  });
});

describe('a CDR fingerprint is the bytes JSON.stringify writes of its figures', () => {
  it('with the retail account only when the request named one', () => {
    const c = ANSWERED_CDR;
    const figures = [c.customerTrunkId, c.carrierTrunkId, c.carrierGatewayId, c.ani, c.dnis, c.startMs, c.answerMs, c.endMs];
    assert.equal(fingerprintOf(c), JSON.stringify([...figures, c.durationSeconds, c.sipResponseCode]));
    const named = { ...c, answerMs: null, sipResponseCode: null, namedRetailAccountId: 9, ani: 'a"\\b' };
    assert.equal(
      fingerprintOf(named),
      JSON.stringify([
        c.customerTrunkId,
        c.carrierTrunkId,
        c.carrierGatewayId,
        'a"\\b',
        c.dnis,
        c.startMs,
        null,
        c.endMs,
        c.durationSeconds,
        null,
        9,
      ]),
    );
  });

  it('with the sell deck after the retail account (null when only the deck is named), only when the request named one', () => {
    const c = ANSWERED_CDR;
    const figures = [c.customerTrunkId, c.carrierTrunkId, c.carrierGatewayId, c.ani, c.dnis, c.startMs, c.answerMs, c.endMs];
    const base = [...figures, c.durationSeconds, c.sipResponseCode];
    assert.equal(fingerprintOf({ ...c, namedRetailAccountId: 9, namedRateDeckId: 5 }), JSON.stringify([...base, 9, 5]));
    assert.equal(fingerprintOf({ ...c, namedRateDeckId: 5 }), JSON.stringify([...base, null, 5]));
    assert.notEqual(fingerprintOf({ ...c, namedRateDeckId: 5 }), fingerprintOf({ ...c, namedRetailAccountId: 5 }));
  });
});

describe('the cdrs/ingest answer is the bytes JSON.stringify writes of the contract object', () => {
  it('with and without a reservation, covered or not, costs of any sign', () => {
    const side = (cost: string, currency: 'AUD' | 'USD'): RatedSide => ({
      rateDeckId: 1,
      billableSeconds: 60,
      cost,
      currency,
      precision: 4,
      rounding: 'up',
    });
    for (const [customer, vendor] of [
      [side('0.0325', 'AUD'), side('0.0100', 'USD')],
      [side('0.0000', 'USD'), side('-1.5000', 'USD')],
    ])
      for (const chargeMicro of [0, 32_500, 1_000_000_007])
        for (const reservedMicro of [null, 0, 32_500, 50_000])
          for (const uncoveredMicro of [0, 1, 32_500]) {
            const contract = {
              cdr_id: 7,
              customer_cost: customer.cost,
              customer_currency: customer.currency,
              vendor_cost: vendor.cost,
              vendor_currency: vendor.currency,
              reconciled: uncoveredMicro === 0,
              adjustment: reservedMicro === null ? null : formatMicro(chargeMicro - reservedMicro, 4),
              uncovered: formatMicro(uncoveredMicro, 4),
            };
            const cdr = { ...ANSWERED_CDR, id: 7, customer, vendor, chargeMicro, reservedMicro, uncoveredMicro };
            assert.equal(answerText(cdr), JSON.stringify(contract));
          }
  });
});

describe('quoteJson writes what JSON.stringify writes of a string', () => {
  it('for printable ASCII, quotes, backslashes, control characters, non-ASCII and lone surrogates', () => {
    const samples = ['', 'a', 'cdr-1@bench', '61255500100', 'say "hi"', 'back\\slash', 'tab\tnew\nline', '\x00\x1f\x7f', 'é', '日本', '😀'];
    samples.push('\ud800', 'x\udfffy', '~ !#$%&()*+,-./:;<=>?@[]^_`{|}');
    for (let code = 0; code < 0x3000; code++) samples.push(`a${String.fromCharCode(code)}b`);
    for (const value of samples) assert.equal(quoteJson(value), JSON.stringify(value), `for ${JSON.stringify(value)}`);
  });
});

describe('jsonNumber writes what JSON.stringify writes of a number', () => {
  it('for epoch milliseconds, the edges of its split, and what it leaves to String()', () => {
    const samples = [0, -0, 1, -1, 0.5, 2 ** 31 - 1, 2 ** 31, 2 ** 31 + 1, 1e6, 1e9, 1e15 - 1, 1e15, 1e15 + 1, 2 ** 53 - 1];
    samples.push(-(2 ** 31), -1796000000000, 1796000000000.5, 1e21, 1.5e300, Number.MAX_VALUE, Number.MIN_VALUE, NaN, Infinity, -Infinity);
    for (let high = 2147; high < 1e9; high = high * 3 + 1)
      for (const low of [0, 1, 9, 10, 99_999, 100_000, 999_999]) samples.push(high * 1e6 + low);
    // Epoch ms from 1970 to 2100 and beyond: a million, seeded (xorshift32).
    let seed = 0x2545f491;
    const next = (): number => {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return (seed >>> 0) / 2 ** 32;
    };
    for (let i = 0; i < 1_000_000; i++) samples.push(Math.floor(next() * 1e15));
    for (const value of samples) assert.equal(jsonNumber(value), JSON.stringify(value), `for ${value}`);
  });
});
