import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { failoverAction } from '../../src/sidecar/routing/failover.js';
import { lcrLookup } from '../../src/sidecar/routing/lcr-lookup.js';
import { lookupRate } from '../../src/sidecar/routing/rate-lookup.js';
import { firstAttemptRequest, routeCall, type RouteRequest } from '../../src/sidecar/routing/route.js';
import { FUTURE, routingTables } from '../fixtures/routing.js';
import { engineFor } from '../helpers/engine.js';
import { authorizeCall } from '../../src/sidecar/auth/call-auth.js';
import { firstAttempt } from '../../src/sidecar/call/decide.js';
import { callAuthRequest } from '../../src/devkit/requests.js';
import { LivePorts } from '../../src/sidecar/limits/live-ports.js';

const NOW = Date.parse('2026-11-24T12:00:00Z');

function route(engine: ReturnType<typeof engineFor>, fields: Partial<RouteRequest> = {}) {
  return routeCall(engine, { ...firstAttemptRequest(10, '61400123456', '6125550100'), ...fields }, NOW).decision;
}

describe('call route', () => {
  it('picks the cheapest carrier after currency conversion, with its first failover gateway (IPv6 in brackets)', () => {
    const engine = engineFor(routingTables());
    assert.deepEqual(route(engine), {
      allowed: true,
      customer_trunk_id: 10,
      carrier_trunk_id: 21,
      carrier_gateway_id: 211,
      destination_uri: 'sip:61400123456@[2001:db8::50]:5080',
      outbound_dnis: '61400123456',
      cps_limit: 40,
      port_limit: 400,
      per_minute_rate_limit: 2000,
      sip_trusted: true,
      rtpengine_enabled: false,
    });
  });

  it('moves to the next carrier, then gives up with 404, as carriers are tried', () => {
    const engine = engineFor(routingTables());
    const second = route(engine, { attempt: 2, tried_carrier_trunk_ids: [21], previous_carrier_trunk_id: 21, previous_failure_code: 503 });
    assert.equal(second.allowed && second.carrier_trunk_id, 20);
    assert.deepEqual(route(engine, { attempt: 3, tried_carrier_trunk_ids: [21, 20] }), {
      allowed: false,
      customer_trunk_id: 10,
      reject_code: 404,
      reject_reason: 'no route available',
      reason_code: 'no_route',
    });
  });

  it('skips tried gateways within a carrier before leaving it', () => {
    const engine = engineFor(routingTables());
    const next = route(engine, { tried_gateway_ids: [211] });
    assert.equal(next.allowed && next.carrier_gateway_id, 212);
    assert.equal(next.allowed && next.destination_uri, 'sip:61400123456@198.51.100.60:5060');
    const other = route(engine, { tried_gateway_ids: [211, 212] });
    assert.equal(other.allowed && other.carrier_trunk_id, 20);
  });

  it('spreads load_balance gateways by weight, smoothly (3:1 gives 202 201 202 202)', () => {
    const engine = engineFor(routingTables());
    const picks: number[] = [];
    for (let i = 0; i < 400; i++) {
      const decision = route(engine, { tried_carrier_trunk_ids: [21] });
      assert.ok(decision.allowed);
      picks.push(decision.carrier_gateway_id);
    }
    assert.deepEqual(picks.slice(0, 4), [202, 201, 202, 202]);
    assert.equal(picks.filter((id) => id === 202).length, 300);
    assert.equal(picks.filter((id) => id === 201).length, 100);
  });

  it('uses only rows already in force: a future row neither matches nor shadows a shorter prefix', () => {
    const engine = engineFor(routingTables());
    // Sell 6140 is future-dated: 614 (0.0250) applies; carrier 20's 614 has three versions, 0.0200 is in force.
    const view = lcrLookup(engine, 0, { customer_trunk_id: 10, dnis: '61401234567', ani: '' }, NOW);
    assert.equal(view.customer_rate, '0.0250');
    assert.equal(view.matched_prefix, '614');
    const carrier20 = view.carriers.find((carrier) => carrier.carrier_trunk_id === 20);
    assert.equal(carrier20?.original_cost, '0.0200');
    // Later than FUTURE every future row applies, including the 1.6 exchange rate: 0.0120 * 1.6 = 0.0192.
    const later = lcrLookup(engine, 0, { customer_trunk_id: 10, dnis: '61401234567', ani: '' }, Date.parse(FUTURE) + 1);
    assert.equal(later.customer_rate, '0.0100');
    assert.equal(later.matched_prefix, '6140');
  });

  it('excludes a carrier blocked by a carrier-trunk rule for that number only', () => {
    const engine = engineFor(routingTables());
    const blocked = route(engine, { dnis: '61499123456' });
    assert.equal(blocked.allowed && blocked.carrier_trunk_id, 20);
    const view = lcrLookup(engine, 0, { customer_trunk_id: 10, dnis: '61499123456', ani: '' }, NOW);
    const carrier21 = view.carriers.find((carrier) => carrier.carrier_trunk_id === 21);
    assert.equal(carrier21?.reason, 'blocked');
    assert.equal(carrier21.block_rule_id, 3);
  });

  it("holds a caller whose number is unusable to a carrier's ANI rule by its digits, as auth holds it to customer rules", () => {
    const engine = engineFor(
      routingTables((description) => {
        description.block_rules.push({
          id: 9,
          scope: 'carrier_trunk',
          scope_id: 21,
          block_type: 'ani',
          pattern: '6177712',
          match_type: 'prefix',
          sip_response_code: 403,
          is_active: true,
        });
      }),
    );
    const carrierFor = (ani: string | null): number | false => {
      const decision = route(engine, { ani });
      return decision.allowed && decision.carrier_trunk_id;
    };
    assert.equal(carrierFor('6125550100'), 21, 'the cheapest carrier, unblocked');
    assert.equal(carrierFor('6177712000'), 20);
    // Unusable (a letter, too many digits, an escape): normalised to '' it met no ANI rule and reached carrier 21.
    for (const ani of ['6177712x', 'x6177712', '61777120000000000', '%2B6177712', 'sip:6177712x@example.com'])
      assert.equal(carrierFor(ani), 20, ani);
    // Withheld, or no digits at all: no ANI rule applies, as at auth.
    for (const ani of [null, '', 'anonymous']) assert.equal(carrierFor(ani), 21, String(ani));
    // call/decide routes with the number as sent when auth found none usable in it.
    const auth = authorizeCall(engine, callAuthRequest('203.0.113.77', { ani: '6177712x', dnis: '61400123456' }), new LivePorts()).decision;
    assert.ok(auth.allowed && auth.ani === '');
    const first = routeCall(engine, firstAttempt(auth, '6177712x'), NOW).decision;
    assert.equal(first.allowed && first.carrier_trunk_id, 20);
  });

  it('reports a block rule ahead of the price when both exclude a carrier', () => {
    const engine = engineFor(
      routingTables((description) => {
        description.block_rules.push({
          id: 9,
          scope: 'carrier_trunk',
          scope_id: 22,
          block_type: 'dnis',
          pattern: '614',
          match_type: 'prefix',
          sip_response_code: 403,
          is_active: true,
        });
      }),
    );
    const view = lcrLookup(engine, 0, { customer_trunk_id: 10, dnis: '61400123456', ani: '' }, NOW);
    const dear = view.carriers.find((carrier) => carrier.carrier_trunk_id === 22)!;
    assert.deepEqual([dear.reason, dear.block_rule_id, dear.margin_ok], ['blocked', 9, false]);
  });

  it('refuses unknown and inactive trunks and unusable numbers', () => {
    const engine = engineFor(routingTables());
    assert.deepEqual(route(engine, { customer_trunk_id: 999 }), {
      allowed: false,
      customer_trunk_id: 999,
      reject_code: 403,
      reject_reason: 'unknown customer trunk',
      reason_code: 'unknown_customer_trunk',
    });
    assert.deepEqual(route(engine, { customer_trunk_id: 13 }), {
      allowed: false,
      customer_trunk_id: 13,
      reject_code: 403,
      reject_reason: 'customer trunk not active',
      reason_code: 'customer_trunk_not_active',
    });
    assert.deepEqual(route(engine, { dnis: '123' }), {
      allowed: false,
      customer_trunk_id: 10,
      reject_code: 484,
      reject_reason: 'invalid dnis',
      reason_code: 'invalid_dnis',
    });
  });

  it('answers 404 when the sell deck has no rate for the destination', () => {
    const engine = engineFor(routingTables());
    assert.equal(route(engine, { dnis: '4412345678' }).allowed, false);
    const view = lcrLookup(engine, 0, { customer_trunk_id: 10, dnis: '4412345678', ani: '' }, NOW);
    assert.equal(view.no_match_reason, 'no_active_rate_match');
    assert.deepEqual(view.carriers, []);
  });

  it('breaks cost ties by the lower carrier id, every time', () => {
    const engine = engineFor(
      routingTables((description) => {
        description.rate_deck_rates.find((row) => row.rate_deck_id === 103)!.rate_per_minute = '0.0200';
        description.lcr_config[0].acceptable_loss_pct = '5.00';
      }),
    );
    const view = lcrLookup(engine, 0, { customer_trunk_id: 10, dnis: '61400123456', ani: '' }, NOW);
    assert.deepEqual(
      view.carriers.map((carrier) => [carrier.carrier_trunk_id, carrier.reason]),
      [
        [21, 'ok'],
        [20, 'ok'],
        [22, 'ok'],
        [23, 'no_active_gateway'],
        [24, 'carrier_not_active'],
      ],
    );
  });

  it('routes a cost tie to the lower carrier id, as lcr/lookup orders it', () => {
    const engine = engineFor(
      routingTables((description) => {
        description.rate_deck_rates.find((row) => row.rate_deck_id === 103)!.rate_per_minute = '0.0200';
      }),
    );
    const decision = route(engine, { tried_carrier_trunk_ids: [21] });
    assert.equal(decision.allowed && decision.carrier_trunk_id, 20);
    const next = route(engine, { tried_carrier_trunk_ids: [21, 20] });
    assert.equal(next.allowed && next.carrier_trunk_id, 22);
  });

  it('compares per_call and per_minute rows on their one-minute cost', () => {
    const engine = engineFor(routingTables());
    // 6113: carrier 20 has a 0.2000 per-call row; carrier 21 falls back to its 61 row, 0.0100 USD = 0.0150 AUD.
    const view = lcrLookup(engine, 0, { customer_trunk_id: 10, dnis: '61130000000', ani: '' }, NOW);
    assert.equal(view.customer_rate_type, 'per_call');
    assert.deepEqual(
      view.carriers.slice(0, 2).map((carrier) => [carrier.carrier_trunk_id, carrier.converted_cost, carrier.original_rate_type]),
      [
        [21, '0.0150', 'per_minute'],
        [20, '0.2000', 'per_call'],
      ],
    );
  });
});

describe('margin protection', () => {
  const lookup = (config: { block: boolean; loss: string; deck?: number }) => {
    const engine = engineFor(
      routingTables((description) => {
        description.lcr_config.push({
          id: 2,
          rate_deck_id: config.deck ?? 1,
          block_if_cost_exceeds_sell: config.block,
          acceptable_loss_pct: config.loss,
          cache_ttl_seconds: 60,
        });
      }),
    );
    return lcrLookup(engine, 0, { customer_trunk_id: 10, dnis: '61400123456', ani: '' }, NOW).carriers.find(
      (carrier) => carrier.carrier_trunk_id === 22,
    )!;
  };

  it('blocks cost above sell when the loss allowance is 0, and reports the margin', () => {
    const dear = lookup({ block: true, loss: '0' });
    assert.deepEqual(
      [dear.allowed, dear.reason, dear.margin_ok, dear.margin_pct, dear.cost, dear.sell],
      [false, 'cost_exceeds_sell', false, '-4.00', '0.0260', '0.0250'],
    );
  });

  it('lets a loss within acceptable_loss_pct through (0.0260 <= 0.0250 * 1.05)', () => {
    const dear = lookup({ block: true, loss: '5.00' });
    assert.equal(dear.allowed, true);
    assert.equal(lookup({ block: true, loss: '3.99' }).allowed, false); // ceiling 0.02599...
    assert.equal(lookup({ block: true, loss: '4.00' }).allowed, true); // ceiling exactly 0.0260
  });

  it('routes at a loss when margin protection is off', () => {
    assert.equal(lookup({ block: false, loss: '0' }).allowed, true);
  });

  it('uses the global row for decks without an override', () => {
    assert.equal(lookup({ block: false, loss: '0', deck: 101 }).allowed, false);
  });

  it('blocks break-even cost when the loss allowance is 0 (cost >= sell)', () => {
    const engine = engineFor(
      routingTables((description) => {
        description.rate_deck_rates.find((row) => row.rate_deck_id === 103)!.rate_per_minute = '0.0250';
      }),
    );
    const view = lcrLookup(engine, 0, { customer_trunk_id: 10, dnis: '61400123456', ani: '' }, NOW);
    assert.equal(view.carriers.find((carrier) => carrier.carrier_trunk_id === 22)?.reason, 'cost_exceeds_sell');
  });
});

describe('exchange rates', () => {
  it('falls back to the inverse of the opposite pair', () => {
    const engine = engineFor(
      routingTables((description) => {
        description.exchange_rates = [
          { id: 9, from_currency: 'AUD', to_currency: 'USD', rate: '0.800000', effective_at: '2024-01-01T00:00:00Z' },
        ];
      }),
    );
    const view = lcrLookup(engine, 0, { customer_trunk_id: 10, dnis: '61400123456', ani: '' }, NOW);
    const usd = view.carriers.find((carrier) => carrier.carrier_trunk_id === 21)!;
    assert.equal(usd.converted_cost, '0.0150'); // 0.0120 / 0.8
    assert.equal(usd.exchange_rate, '1.250000');
  });

  it('excludes a foreign-currency carrier when no rate exists', () => {
    const engine = engineFor(
      routingTables((description) => {
        description.exchange_rates = [];
      }),
    );
    const view = lcrLookup(engine, 0, { customer_trunk_id: 10, dnis: '61400123456', ani: '' }, NOW);
    assert.equal(view.carriers.find((carrier) => carrier.carrier_trunk_id === 21)?.reason, 'no_exchange_rate');
  });
});

describe('rate lookup', () => {
  const engine = engineFor(routingTables());
  it('finds the longest prefix in force with its name, type and currency', () => {
    const result = lookupRate(engine, { rate_deck_id: 1, destination: '61400123456' }, NOW);
    assert.ok(result.found);
    assert.deepEqual(
      {
        prefix: result.rate.prefix,
        name: result.rate.destination_name,
        rate: result.rate.rate_per_minute,
        type: result.rate.rate_type,
        currency: result.rate.currency,
      },
      { prefix: '614', name: 'Australia Mobile', rate: '0.0250', type: 'per_minute', currency: 'AUD' },
    );
    const usd = lookupRate(engine, { rate_deck_id: 102, destination: '61212345678' }, NOW);
    assert.ok(usd.found);
    assert.deepEqual([usd.rate.prefix, usd.rate.rate_per_minute, usd.rate.currency], ['61', '0.0100', 'USD']);
  });

  it('says which of deck and match is missing', () => {
    assert.deepEqual(lookupRate(engine, { rate_deck_id: 999, destination: '614' }, NOW), { found: false, reason: 'unknown_rate_deck' });
    assert.deepEqual(lookupRate(engine, { rate_deck_id: 1, destination: '4420' }, NOW), { found: false, reason: 'no_match' });
  });
});

describe('failover', () => {
  const engine = engineFor(routingTables());
  it('follows the carrier rule, and retries the next carrier without one', () => {
    assert.deepEqual(failoverAction(engine, { customer_trunk_id: 10, carrier_trunk_id: 20, failure_code: 486 }), {
      action: 'return_to_customer',
    });
    assert.deepEqual(failoverAction(engine, { customer_trunk_id: 10, carrier_trunk_id: 20, failure_code: 503 }), { action: 'retry_next' });
    assert.deepEqual(failoverAction(engine, { customer_trunk_id: 10, carrier_trunk_id: 20, failure_code: 500 }), { action: 'retry_next' });
    assert.deepEqual(failoverAction(engine, { customer_trunk_id: null, carrier_trunk_id: 21, failure_code: 486 }), {
      action: 'retry_next',
    });
    assert.deepEqual(failoverAction(engine, { customer_trunk_id: null, carrier_trunk_id: 9999, failure_code: 486 }), {
      action: 'retry_next',
    });
  });
});
