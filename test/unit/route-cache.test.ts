import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DeckMatcher } from '../../src/core/lcr/rate-match.js';
import { generateDataset, SIZES } from '../../src/devkit/dataset.js';
import { firstAttemptRequest, routeCall } from '../../src/sidecar/routing/route.js';
import { FUTURE, routingTables } from '../fixtures/routing.js';
import { engineFor } from '../helpers/engine.js';

/** call/route answers through the LCR cache; evaluate() (lcr/lookup's path, uncached) is the oracle. */

const NOW = Date.parse('2026-11-24T12:00:00Z');

function routeCarrier(
  engine: ReturnType<typeof engineFor>,
  trunkId: number,
  dnis: string,
  now: number,
  tried: number[] = [],
  ani = '',
): number | null {
  const { decision } = routeCall(engine, { ...firstAttemptRequest(trunkId, dnis, ani), tried_carrier_trunk_ids: tried }, now);
  return decision.allowed ? decision.carrier_trunk_id : null;
}

describe('route cache', () => {
  it('answers as the uncached evaluation does, cold and warm, with tried carriers', () => {
    const dataset = generateDataset(SIZES.small, 11);
    const engine = engineFor(dataset.tables);
    const trunks = engine.snapshot.customerTrunks
      .map((trunk, index) => ({ trunk, index }))
      .filter(({ trunk }) => trunk.active && trunk.sellDeck >= 0);
    let seed = 5;
    const random = (): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const cases = Array.from({ length: 1500 }, () => {
      const { trunk, index } = trunks[Math.floor(random() * trunks.length)];
      return { trunk, index, dnis: dataset.traffic.numbers[Math.floor(random() * 200)] };
    });
    let routed = 0;
    for (const pass of ['cold', 'warm']) {
      for (const { trunk, index, dnis } of cases) {
        const ordered = engine.lcr
          .evaluate({ trunk: index, dnis, ani: '', triedCarrierIds: [], triedGatewayIds: [], now: NOW })
          .candidates.filter((candidate) => candidate.status === 'ok');
        const ids = ordered.map((candidate) => engine.snapshot.carriers[candidate.carrier].id);
        assert.equal(routeCarrier(engine, trunk.id, dnis, NOW), ids[0] ?? null, `${pass} ${trunk.id} ${dnis}`);
        assert.equal(routeCarrier(engine, trunk.id, dnis, NOW, ids.slice(0, 1)), ids[1] ?? null, `${pass} tried ${trunk.id} ${dnis}`);
        if (ids.length > 0) routed++;
      }
    }
    assert.ok(routed > 1000, `only ${routed} routed`);
  });

  it("leaves the sell deck's row cached for admission, the row a lookup of its own finds", () => {
    const dataset = generateDataset(SIZES.small, 17);
    const engine = engineFor(dataset.tables);
    const reference = engineFor(dataset.tables).lcr;
    const trunks = engine.snapshot.customerTrunks.filter((trunk) => trunk.active && trunk.sellDeck >= 0).slice(0, 20);
    const numbers = dataset.traffic.numbers.slice(0, 100);
    for (const trunk of trunks)
      for (const dnis of numbers) {
        routeCarrier(engine, trunk.id, dnis, NOW); // a cold route cache: the route's walk fills the row cache
        assert.equal(engine.lcr.rowNow(trunk.sellDeck, dnis, NOW), reference.rowAt(trunk.sellDeck, dnis, NOW), `${trunk.id} ${dnis}`);
      }
  });

  it("finds one deck's row by its binary search as the walk over every deck's rows does", () => {
    // DeckMatcher.matchOne (admission's price row) against begin/want/walk/match, every deck, either side of
    // every effective_at, on the dataset's numbers, their prefixes and numbers the trie ends early on.
    const dataset = generateDataset(SIZES.small, 13);
    const { snapshot } = engineFor(dataset.tables);
    const { rates } = snapshot;
    const matcher = new DeckMatcher(snapshot.decks.length);
    const numbers = dataset.traffic.numbers.slice(0, 150).flatMap((dnis) => [dnis, dnis.slice(0, 3), dnis.slice(0, 6), `${dnis}9`]);
    numbers.push('', '0', '999999999999', '1');
    const moments = [0, ...Array.from(snapshot.effectiveTimes).flatMap((at) => [at - 1, at]), Number.MAX_SAFE_INTEGER];
    let matched = 0;
    for (const at of moments)
      for (const dnis of numbers)
        for (let deck = 0; deck < snapshot.decks.length; deck++) {
          matcher.begin();
          matcher.want(deck);
          matcher.walk(rates, dnis, at);
          const row = DeckMatcher.matchOne(rates, deck, dnis, at);
          assert.equal(row, matcher.match(deck), `deck ${deck} ${dnis} at ${at}`);
          if (row >= 0) matched++;
        }
    assert.ok(matched > 1000, `${matched} matches`); // the comparison met rows, not only misses
  });

  it('moves on when a rate row or exchange rate takes effect, and back for an earlier time', () => {
    const engine = engineFor(
      routingTables((description) => {
        description.block_rules = [];
      }),
    );
    // Before FUTURE: 21 at 0.0120 USD x 1.5 = 0.0180 beats 20 at 0.0200 (sell 0.0250).
    assert.equal(routeCarrier(engine, 10, '61451234567', NOW), 21);
    // After: 20's 0.0150 row applies and USD is 1.6 (21 = 0.0192).
    assert.equal(routeCarrier(engine, 10, '61451234567', Date.parse(FUTURE) + 1), 20);
    // Under 6140 the sell deck's own future row (0.0100) applies too: both carriers now cost more than the sale.
    assert.equal(routeCarrier(engine, 10, '61401234567', Date.parse(FUTURE) + 1), null);
    assert.equal(routeCarrier(engine, 10, '61451234567', NOW), 21);
  });

  it('applies carrier block rules per call on a shared cache entry', () => {
    const engine = engineFor(routingTables());
    // Both numbers stop at the 614 node; the carrier-21 rule blocks 61499... only.
    assert.equal(routeCarrier(engine, 10, '61491111111', NOW), 21);
    assert.equal(routeCarrier(engine, 10, '61499123456', NOW), 20);
    assert.equal(routeCarrier(engine, 10, '61491111111', NOW), 21);
  });
});
