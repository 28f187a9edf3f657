import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Delta } from '../../src/core/snapshot/delta.js';
import { compileSnapshot } from '../../src/core/snapshot/compile.js';
import { applyDeltas, smallTablesOf } from '../../src/core/snapshot/live.js';
import type { SnapshotDescription, SnapshotTables } from '../../src/core/snapshot/schema.js';
import { deepestNode } from '../../src/core/trie/prefix-trie.js';
import { authorizeCall, type CallAuthAllowed } from '../../src/sidecar/auth/call-auth.js';
import { callAuthRequest } from '../../src/devkit/requests.js';
import { firstAttempt } from '../../src/sidecar/call/decide.js';
import { knownNode } from '../../src/core/lcr/lcr.js';
import { priceCall, type PriceResult } from '../../src/sidecar/admission/pricing.js';
import { DecisionEngine } from '../../src/sidecar/engine/engine.js';
import { LivePorts } from '../../src/sidecar/limits/live-ports.js';
import { firstAttemptRequest, routeCall, type RouteDecision } from '../../src/sidecar/routing/route.js';
import { FUTURE, routingTables } from '../fixtures/routing.js';

/**
 * A retail call's translation carries its b-number's node in the snapshot's rate trie (found when the
 * translation is compiled or applied), and call/decide's route step uses it instead of walking the digits
 * again. Whatever happens between the setup_call and the call, the route must be the one call/route answers
 * for the same number on an engine that knows nothing of it.
 */
const NOW = Date.parse('2026-06-01T00:00:00Z');
const ACCESS = '61280000000';
const LATER = new Date(NOW + 86_400_000).toISOString();
/** Callers and where their translations send them: a mobile, a per-call number, a landline, a number no deck rates. */
const TRANSLATED: readonly (readonly [string, string])[] = [
  ['6125550100', '61400123456'],
  ['6125550101', '6113000000'],
  ['6125550102', '61299990000'],
  ['6125550103', '442071234567'],
];

function withRetail(change?: (description: SnapshotDescription) => void): SnapshotTables {
  return routingTables((description) => {
    description.retail_products = [{ id: 7, customer_trunk_id: 10, rate_deck_id: 1, currency: 'AUD', access_numbers: [ACCESS] }];
    description.call_translations = TRANSLATED.map(([aNumber, bNumber], at) => ({
      id: at + 1,
      retail_account_id: 42,
      partner_product_id: 7,
      a_number: aNumber,
      access_number: ACCESS,
      b_number: bNumber,
      expires_at: LATER,
    }));
    change?.(description);
  });
}

/** Other rates: a deeper mobile prefix, so the trie's nodes are numbered otherwise and 614 00 routes elsewhere. */
const withOtherRates = (): SnapshotTables =>
  withRetail((description) => {
    const rates = description.rate_deck_rates;
    const like = rates.find((row) => row.rate_deck_id === 102 && row.prefix === '614')!;
    rates.unshift(
      { ...like, prefix: '61400', rate_per_minute: '0.0500' },
      { ...like, rate_deck_id: 1, prefix: '61400', rate_per_minute: '0.0300' },
    );
  });

function engineOf(tables: SnapshotTables, version = 1): DecisionEngine {
  const snapshot = {
    format_version: 1,
    version,
    created_at: '2026-01-01T00:00:00.000Z',
    checksum: `v${version}`,
    tables: { ...tables, delta_seq: 0 },
  };
  // Through structuredClone, as the compiled snapshot crosses from the compile worker.
  return new DecisionEngine(structuredClone(compileSnapshot(snapshot).compiled), smallTablesOf(tables));
}

/** call/auth from the access number's trunk: to the access number, or to `dnis` (a wholesale call on the same trunk). */
function dialAccess(engine: DecisionEngine, aNumber: string, now = NOW, dnis = ACCESS) {
  return authorizeCall(engine, callAuthRequest('203.0.113.77', { ani: aNumber, dnis }), new LivePorts(), now).decision;
}

function allowed(engine: DecisionEngine, aNumber: string): CallAuthAllowed {
  const decision = dialAccess(engine, aNumber);
  assert.ok(decision.allowed, `${aNumber}: ${JSON.stringify(decision)}`);
  return decision;
}

/** call/route's answer for what auth answered, the node left out (as OpenSIPS asks it), from `fresh`. */
function plainRoute(fresh: DecisionEngine, caller: CallAuthAllowed, now = NOW): RouteDecision {
  const request = firstAttempt(caller);
  delete request.dnisNode;
  delete request.dnisRates;
  return routeCall(fresh, request, now).decision;
}

/** Admission's price of what auth answered on `engine`, with the node it knows (as call/decide asks it). */
function knownPrice(engine: DecisionEngine, caller: CallAuthAllowed, now = NOW): PriceResult {
  const trunk = engine.snapshot.customerTrunks[engine.customerTrunkIndex(caller.customer_trunk_id)];
  return priceCall(engine, trunk, 'AUD', caller.dnis, now, knownNode(caller, engine.snapshot.rates));
}

/** The same from `fresh`, walked. */
function plainPrice(fresh: DecisionEngine, caller: CallAuthAllowed, now = NOW): PriceResult {
  const trunk = fresh.snapshot.customerTrunks[fresh.customerTrunkIndex(caller.customer_trunk_id)];
  return priceCall(fresh, trunk, 'AUD', caller.dnis, now);
}

/** Every prefix the fixture's rates hold (and withOtherRates'). */
const RATED_PREFIXES = ['61', '614', '6140', '61400', '6113', '1900'];

/** Routes every rated prefix, so the route cache has an entry at every node a stale node could name. */
function fillRouteCache(engine: DecisionEngine, now = NOW): void {
  const trunk = engine.snapshot.customerTrunks[engine.customerTrunkIndex(10)];
  for (const prefix of RATED_PREFIXES)
    for (const tail of ['', '9', '99999']) {
      routeCall(engine, plainRequest(prefix + tail), now);
      priceCall(engine, trunk, 'AUD', prefix + tail, now);
    }
}

function plainRequest(dnis: string) {
  return firstAttemptRequest(10, dnis, '6125550100');
}

describe("a retail call's route node, in call/decide's route and admission steps", () => {
  it("is the walk's node of the b-number, and call/decide's route with it is call/route's without it", () => {
    const engine = engineOf(withRetail());
    const fresh = engineOf(withRetail());
    const routes = new Set<string>();
    for (const [aNumber, bNumber] of TRANSLATED) {
      const caller = allowed(engine, aNumber);
      assert.equal(caller.dnis, bNumber);
      assert.equal(caller.dnisNode, deepestNode(engine.snapshot.rates.trie, bNumber));
      assert.equal(caller.dnisRates, engine.snapshot.rates);
      const route = routeCall(engine, firstAttempt(caller), NOW).decision;
      assert.deepEqual(route, plainRoute(fresh, caller), bNumber);
      assert.deepEqual(knownPrice(engine, caller), plainPrice(fresh, caller), bNumber);
      routes.add(route.allowed ? `carrier ${route.carrier_trunk_id}` : route.reason_code);
    }
    assert.ok(routes.size >= 2, `the numbers route differently: ${[...routes].join(', ')}`);
    // A wholesale call's answer carries none.
    const ordinary = dialAccess(engine, '6125550100', NOW, '61400123456');
    assert.ok(ordinary.allowed);
    assert.deepEqual([ordinary.dnisNode, ordinary.dnisRates], [undefined, undefined]);
  });

  it('is not used by a snapshot swapped in between auth and route (other rates, other nodes)', () => {
    const before = engineOf(withRetail());
    const otherTables = withOtherRates();
    const swapped = engineOf(otherTables, 2);
    fillRouteCache(swapped);
    const fresh = engineOf(otherTables, 2);
    let moved = 0;
    for (const [aNumber, bNumber] of TRANSLATED) {
      const caller = allowed(before, aNumber);
      if (caller.dnisNode !== deepestNode(swapped.snapshot.rates.trie, bNumber)) moved++;
      assert.deepEqual(routeCall(swapped, firstAttempt(caller), NOW).decision, plainRoute(fresh, caller), bNumber);
      assert.deepEqual(knownPrice(swapped, caller), plainPrice(fresh, caller), bNumber);
    }
    assert.ok(moved > 0, "the new snapshot's trie numbers some b-number's node otherwise");
    // The new snapshot's own translations carry its own trie's nodes.
    for (const [aNumber, bNumber] of TRANSLATED)
      assert.equal(allowed(swapped, aNumber).dnisNode, deepestNode(swapped.snapshot.rates.trie, bNumber));
  });

  it('follows a setup_call that replaces the b-number, and a translation that ends, applied live', () => {
    const engine = engineOf(withRetail());
    const row = (id: number, bNumber: string, expiresAt: string): Delta => ({
      seq: id - 100,
      table: 'call_translations',
      op: 'upsert',
      id,
      row: {
        id,
        retail_account_id: 42,
        partner_product_id: 7,
        a_number: '6125550100',
        access_number: ACCESS,
        b_number: bNumber,
        expires_at: expiresAt,
      },
    });
    const applied = applyDeltas({ compiled: engine.snapshot, tables: engine.tables! }, [row(101, '61299990000', LATER)], NOW);
    assert.ok(applied.ok, JSON.stringify(applied));
    const replaced = new DecisionEngine(applied.state.compiled, applied.state.tables, engine);
    fillRouteCache(replaced);
    const caller = allowed(replaced, '6125550100');
    assert.equal(caller.dnis, '61299990000');
    assert.equal(caller.dnisNode, deepestNode(replaced.snapshot.rates.trie, '61299990000'));
    assert.deepEqual(routeCall(replaced, firstAttempt(caller), NOW).decision, plainRoute(engineOf(withRetail()), caller));
    assert.deepEqual(knownPrice(replaced, caller), plainPrice(engineOf(withRetail()), caller));
    // The engine it replaced still answers the old number, with the old number's node.
    assert.equal(allowed(engine, '6125550100').dnisNode, deepestNode(engine.snapshot.rates.trie, '61400123456'));

    const ended = applyDeltas(applied.state, [row(102, '61400123456', new Date(NOW - 1).toISOString())], NOW);
    assert.ok(ended.ok, JSON.stringify(ended));
    const refused = dialAccess(new DecisionEngine(ended.state.compiled, ended.state.tables, replaced), '6125550100');
    assert.ok(!refused.allowed && refused.reason_code === 'no_call_translation');
  });

  it("routes as call/route when a rate takes effect between calls (the node is the number's, not the time's)", () => {
    const engine = engineOf(withRetail());
    const after = Date.parse(FUTURE) + 1;
    const caller = allowed(engine, '6125550100');
    const atNow = routeCall(engine, firstAttempt(caller), NOW).decision;
    const atLater = routeCall(engine, firstAttempt(caller), after).decision;
    assert.deepEqual(atNow, plainRoute(engineOf(withRetail()), caller, NOW));
    assert.deepEqual(atLater, plainRoute(engineOf(withRetail()), caller, after));
    assert.deepEqual(knownPrice(engine, caller, NOW), plainPrice(engineOf(withRetail()), caller, NOW));
    assert.deepEqual(knownPrice(engine, caller, after), plainPrice(engineOf(withRetail()), caller, after));
  });
});
