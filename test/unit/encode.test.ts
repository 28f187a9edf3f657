import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { authorizeCall } from '../../src/sidecar/auth/call-auth.js';
import { LivePorts } from '../../src/sidecar/limits/live-ports.js';
import { encodeCallAuthDecision, encodeRouteDecision } from '../../src/sidecar/call/encode.js';
import { encodeSettlement, type Settlement } from '../../src/sidecar/credit/settlement.js';
import { routeCall } from '../../src/sidecar/routing/route.js';
import { routingTables } from '../fixtures/routing.js';
import { ANSWERED_SETTLEMENT } from '../fixtures/settlement.js';
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
            {
              customer_trunk_id: trunk,
              dnis,
              ani: '6125550100',
              attempt: 1,
              previous_carrier_trunk_id: null,
              previous_gateway_id: null,
              previous_failure_code: null,
              tried_carrier_trunk_ids: triedCarriers,
              tried_gateway_ids: [],
            },
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
      const { decision } = authorizeCall(
        engine,
        {
          source_ip: sourceIp,
          call_id: null,
          ani,
          dnis,
          ruri: null,
          pai: null,
          ppi: null,
          rpid: null,
          username: null,
          domain: null,
        },
        new LivePorts(),
      );
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

describe('the settlement encoder writes the same bytes as JSON.stringify', () => {
  it('for answered and unanswered CDRs, with strings that need escaping', () => {
    const base = ANSWERED_SETTLEMENT;
    const unanswered: Settlement = {
      ...base,
      answer_time: null,
      sip_response_code: null,
      customer_rate_deck_id: null,
      carrier_rate_deck_id: null,
      duration_seconds: 0,
    };
    for (const settlement of [base, unanswered])
      for (const uncovered of ['0.00', '0.0325'])
        assert.equal(encodeSettlement(settlement, 42, uncovered), JSON.stringify({ ...settlement, uncovered, node_cdr_id: 42 }));
  });
});
