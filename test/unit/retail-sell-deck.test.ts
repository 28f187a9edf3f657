import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sellDeckOf } from '../../src/core/lcr/lcr.js';
import { compileSnapshot } from '../../src/core/snapshot/compile.js';
import type { Delta } from '../../src/core/snapshot/delta.js';
import { applyDeltas, smallTablesOf } from '../../src/core/snapshot/live.js';
import type { RetailProductRow } from '../../src/core/snapshot/retail.js';
import type { SnapshotDescription, SnapshotTables } from '../../src/core/snapshot/schema.js';
import { callAuthRequest } from '../../src/devkit/requests.js';
import { priceCall } from '../../src/sidecar/admission/pricing.js';
import { authorizeCall, type CallAuthAllowed } from '../../src/sidecar/auth/call-auth.js';
import { rateCallRecord } from '../../src/sidecar/cdr/rating.js';
import { encodeCallAuthDecision } from '../../src/sidecar/call/encode.js';
import { firstAttempt } from '../../src/sidecar/call/decide.js';
import { DecisionEngine } from '../../src/sidecar/engine/engine.js';
import { LivePorts } from '../../src/sidecar/limits/live-ports.js';
import { routeCall } from '../../src/sidecar/routing/route.js';
import { routingTables } from '../fixtures/routing.js';

/**
 * A partner product's rate_deck_id is the sell deck of its calls (issue 19): priced, routed and rated with it,
 * not with the product trunk's assigned deck, when it names one; with the trunk's when it names none. Trunk 10
 * sells with deck 1 (614: 0.0250, every carrier allowed: carrier 21 is the cheapest); product 7's deck 5 sells
 * 614 at 0.1000 and allows carrier 20 only; product 8 names no deck.
 */
const NOW = Date.parse('2026-06-01T00:00:00Z');
const LATER = new Date(NOW + 86_400_000).toISOString();
const MOBILE = '61400123456';
const WITH_DECK = '61280000000';
const WITHOUT_DECK = '61280000001';
const CALLER = '6125550100';

const product = (id: number, deck: number | null, accessNumber: string): RetailProductRow => ({
  id,
  customer_trunk_id: 10,
  rate_deck_id: deck,
  currency: 'AUD',
  access_numbers: [accessNumber],
});

function tables(change?: (description: SnapshotDescription) => void): SnapshotTables {
  return routingTables((description) => {
    description.rate_decks.push({ id: 5, name: 'Retail AUD', deck_type: 'customer', currency: 'AUD' });
    const like = description.rate_deck_rates.find((row) => row.rate_deck_id === 1 && row.prefix === '614')!;
    description.rate_deck_rates.push({ ...like, rate_deck_id: 5, rate_per_minute: '0.1000' });
    description.rate_deck_allowlist.push({ id: 99, rate_deck_id: 5, carrier_trunk_id: 20 });
    description.retail_products = [product(7, 5, WITH_DECK), product(8, null, WITHOUT_DECK)];
    description.call_translations = [7, 8].map((productId, at) => ({
      id: at + 1,
      retail_account_id: 40 + productId,
      partner_product_id: productId,
      a_number: CALLER,
      access_number: productId === 7 ? WITH_DECK : WITHOUT_DECK,
      b_number: MOBILE,
      expires_at: LATER,
    }));
    change?.(description);
  });
}

function engineOf(snapshotTables: SnapshotTables, version = 1): DecisionEngine {
  const snapshot = { format_version: 1, version, created_at: '2026-01-01T00:00:00.000Z', checksum: `v${version}`, tables: snapshotTables };
  return new DecisionEngine(structuredClone(compileSnapshot(snapshot).compiled), smallTablesOf(snapshotTables));
}

function dial(engine: DecisionEngine, accessNumber: string): CallAuthAllowed {
  const { decision } = authorizeCall(engine, callAuthRequest('203.0.113.77', { ani: CALLER, dnis: accessNumber }), new LivePorts(), NOW);
  assert.ok(decision.allowed, JSON.stringify(decision));
  return decision;
}

/** Admission's price per minute of the call auth answered, as call/decide hands it on. */
function pricePerMinute(engine: DecisionEngine, caller: CallAuthAllowed): number {
  const trunk = engine.snapshot.customerTrunks[engine.customerTrunkIndex(caller.customer_trunk_id)];
  const request = firstAttempt(caller);
  const priced = priceCall(engine, trunk, 'AUD', caller.dnis, NOW, -1, sellDeckOf(request, engine.snapshot, trunk.sellDeck));
  assert.ok(priced.ok, JSON.stringify(priced));
  return priced.price.rateNano;
}

function carrierOf(engine: DecisionEngine, request: ReturnType<typeof firstAttempt>): number {
  const { decision } = routeCall(engine, request, NOW);
  assert.ok(decision.allowed, JSON.stringify(decision));
  return decision.carrier_trunk_id;
}

/** A 60-second call of `caller`'s as OpenSIPS reports it. */
function cdrOf(caller: CallAuthAllowed) {
  return {
    sip_call_id: 'deck@test',
    customer_trunk_id: caller.customer_trunk_id,
    carrier_trunk_id: 20,
    carrier_gateway_id: 201,
    ani: CALLER,
    dnis: caller.dnis,
    startMs: NOW - 120_000,
    answerMs: NOW - 120_000,
    endMs: NOW - 60_000,
    duration_seconds: 60,
    sip_response_code: 200,
  };
}

/** Its CDR rated as cdrs/ingest rates it, naming what the script keeps of call/auth's answer. */
function rated(engine: DecisionEngine, caller: CallAuthAllowed) {
  const record = { ...cdrOf(caller), retail_account_id: caller.retail_account_id, customer_rate_deck_id: caller.customer_rate_deck_id };
  const result = rateCallRecord(engine, record, 'retail');
  assert.ok(result.ok, result.ok ? '' : result.message);
  return result.rated;
}

describe("a partner product's sell deck", () => {
  it("prices, routes and rates its calls, and call/auth names it; a product without one uses the trunk's", () => {
    const engine = engineOf(tables());
    const withDeck = dial(engine, WITH_DECK);
    assert.equal(withDeck.customer_rate_deck_id, 5);
    assert.match(encodeCallAuthDecision(withDeck), /"retail_account_id":47,"customer_rate_deck_id":5\}$/);
    assert.equal(pricePerMinute(engine, withDeck), 100_000_000, "deck 5's 0.1000 a minute");
    assert.equal(carrierOf(engine, firstAttempt(withDeck)), 20, "deck 5's allowlist");
    const cdr = rated(engine, withDeck);
    assert.deepEqual([cdr.customer.rateDeckId, cdr.customer.cost, cdr.accountCharge], [5, '0.1000', '0.1000']);

    const withoutDeck = dial(engine, WITHOUT_DECK);
    assert.equal(withoutDeck.customer_rate_deck_id, undefined);
    assert.doesNotMatch(encodeCallAuthDecision(withoutDeck), /customer_rate_deck_id/);
    assert.equal(pricePerMinute(engine, withoutDeck), 25_000_000, "trunk 10's deck 1: 0.0250 a minute");
    assert.equal(carrierOf(engine, firstAttempt(withoutDeck)), 21, "deck 1's cheapest carrier");
    const trunkCdr = rated(engine, withoutDeck);
    assert.deepEqual([trunkCdr.customer.rateDeckId, trunkCdr.customer.cost], [1, '0.0250']);
  });

  it('is found by its id in a request that names it only so (call/route, call/admit, a CDR), and in a snapshot swapped in since auth', () => {
    const engine = engineOf(tables());
    const caller = dial(engine, WITH_DECK);
    const byId = firstAttempt(caller);
    delete byId.sellDeck;
    delete byId.sellDeckRates;
    assert.equal(carrierOf(engine, byId), 20);
    // A new snapshot with a deck numbered before deck 5: deck 5's dense index is another one there.
    const swapped = engineOf(
      tables((description) => description.rate_decks.push({ id: 3, name: 'Another', deck_type: 'customer', currency: 'AUD' })),
      2,
    );
    assert.notEqual(swapped.snapshot.deckById.get(5), caller.sellDeck);
    assert.equal(pricePerMinute(swapped, caller), 100_000_000);
    assert.equal(carrierOf(swapped, firstAttempt(caller)), 20);
    // A deck the snapshot does not have, or a carrier deck, sells nothing: refused, not sold at the trunk's rates.
    const trunk = engine.snapshot.customerTrunks[engine.customerTrunkIndex(10)];
    assert.equal(sellDeckOf({ sellDeckId: 77 }, engine.snapshot, trunk.sellDeck), -1);
    assert.equal(sellDeckOf({ sellDeckId: 101 }, engine.snapshot, trunk.sellDeck), -1);
    // A CDR comes after its call: the deck it names gone since (deleted while the call was up), it is rated with the
    // trunk's deck, not refused and parked for a deck that never comes back.
    for (const gone of [77, 101]) {
      const late = rateCallRecord(engine, { ...cdrOf(caller), customer_rate_deck_id: gone }, 'retail');
      assert.ok(late.ok, late.ok ? '' : late.message);
      assert.deepEqual([late.rated.customer.rateDeckId, late.rated.customer.cost], [1, '0.0250'], `deck ${gone}: trunk 10's deck 1`);
    }
  });

  it('follows a live change to the product: another deck, then none', () => {
    const engine = engineOf(tables());
    const change = (seq: number, deck: number | null): Delta => ({
      seq,
      table: 'retail_products',
      op: 'upsert',
      id: 7,
      row: product(7, deck, WITH_DECK) as unknown as Record<string, unknown>,
    });
    const toTrunk = applyDeltas({ compiled: engine.snapshot, tables: engine.tables! }, [change(1, null)], NOW);
    assert.ok(toTrunk.ok, JSON.stringify(toTrunk));
    const live = new DecisionEngine(toTrunk.state.compiled, toTrunk.state.tables, engine);
    const caller = dial(live, WITH_DECK);
    assert.equal(caller.customer_rate_deck_id, undefined);
    assert.equal(pricePerMinute(live, caller), 25_000_000);
    assert.equal(carrierOf(live, firstAttempt(caller)), 21);
    assert.equal(dial(engine, WITH_DECK).customer_rate_deck_id, 5, 'the engine it replaced keeps its deck');

    const back = applyDeltas(toTrunk.state, [change(2, 5)], NOW);
    assert.ok(back.ok, JSON.stringify(back));
    const again = new DecisionEngine(back.state.compiled, back.state.tables, live);
    const priced = dial(again, WITH_DECK);
    assert.equal(pricePerMinute(again, priced), 100_000_000);
    assert.equal(rated(again, priced).customer.rateDeckId, 5);
  });
});
