import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { affordable, costBoundMicro, type CallPrice } from '../../src/core/rating/cost-bound.js';
import { billableSeconds } from '../../src/core/rating/rating.js';
import { priceCall } from '../../src/sidecar/admission/pricing.js';
import { rateCallRecord } from '../../src/sidecar/cdr/rating.js';
import { parseMicro } from '../../src/core/money/micro.js';
import type { SnapshotDescription } from '../../src/core/snapshot/schema.js';
import { engineFor } from '../helpers/engine.js';
import { FUTURE, routingTables } from '../fixtures/routing.js';

const NOW = Date.parse('2026-11-24T00:00:00Z');
const MOBILE = '61400123456';

function priced(
  change?: (description: SnapshotDescription) => void,
  dnis = MOBILE,
): { price: CallPrice; engine: ReturnType<typeof engineFor> } {
  const engine = engineFor(routingTables(change));
  const trunk = engine.snapshot.customerTrunks[engine.customerTrunkIndex(10)];
  const account = engine.snapshot.accounts.get(trunk.accountId)!;
  const result = priceCall(engine, trunk, account.currency, dnis, NOW);
  assert.ok(result.ok);
  return { price: result.price, engine };
}

/** The account's charge for a call of trunk 10 to `dnis` answered at once and lasting `duration` seconds (the CDR rated). */
function answeredCallCharge(engine: ReturnType<typeof engineFor>, dnis: string, duration: number, callId: string): string {
  const rated = rateCallRecord(engine, {
    sip_call_id: callId,
    customer_trunk_id: 10,
    carrier_trunk_id: 20,
    carrier_gateway_id: 201,
    ani: '61255500100',
    dnis,
    startMs: NOW,
    answerMs: NOW,
    endMs: NOW + duration * 1000 + 400,
    duration_seconds: duration,
    sip_response_code: 200,
  });
  assert.ok(rated.ok, rated.ok ? '' : rated.message);
  return rated.rated.accountCharge;
}

describe('admission pricing', () => {
  it('reserves for the admission duration when the account can afford it', () => {
    const { price } = priced();
    // 0.0250/min for 7200 s = 3.0000, plus one unit of the trunk's 4 decimals for rounding.
    assert.deepEqual(affordable(price, parseMicro('5.00'), 7200), { maxDurationSeconds: 7200, amountMicro: 3_000_100 });
  });

  it('caps the call at the longest 6/6 boundary the balance covers', () => {
    const { price } = priced();
    // 1.00 at 0.0250/min: 2400 s would cost 1.0000 + 0.0001 slack; 2394 s costs 0.9975 + 0.0001.
    assert.deepEqual(affordable(price, parseMicro('1.00'), 7200), { maxDurationSeconds: 2394, amountMicro: 997_600 });
  });

  it('refuses when not even the first increment fits', () => {
    const { price } = priced();
    // 6 s at 0.0250/min = 0.0025, + 0.0001.
    assert.equal(affordable(price, 2_599, 7200), null);
    assert.deepEqual(affordable(price, 2_600, 7200), { maxDurationSeconds: 6, amountMicro: 2_600 });
  });

  it('prices a per_call destination once, whatever the duration', () => {
    const { price } = priced(undefined, '6113555000');
    assert.equal(price.perCall, true);
    assert.equal(costBoundMicro(price, 60), costBoundMicro(price, 7200));
    assert.deepEqual(affordable(price, parseMicro('0.3301'), 7200), { maxDurationSeconds: 7200, amountMicro: 330_100 });
    assert.equal(affordable(price, parseMicro('0.3300'), 7200), null);
  });

  it('prices by the row in force at each admission, also after the cached span ends (a new rate takes effect)', () => {
    const engine = engineFor(routingTables());
    const trunk = engine.snapshot.customerTrunks[engine.customerTrunkIndex(10)];
    const rate = (dnis: string, at: number): number => {
      const result = priceCall(engine, trunk, 'AUD', dnis, at);
      assert.ok(result.ok);
      return result.price.rateNano;
    };
    const future = Date.parse(FUTURE) + 3_600_000;
    // 614 at 0.0250 now; 6140 at 0.0100 from 2099. Numbers reaching the same trie node share the cached row.
    assert.deepEqual([rate(MOBILE, NOW), rate('61400999999', NOW)], [25_000_000, 25_000_000]);
    assert.deepEqual([rate(MOBILE, future), rate('61400999999', future)], [10_000_000, 10_000_000]);
    assert.equal(rate(MOBILE, NOW), 25_000_000);
  });

  it('says why a call cannot be priced', () => {
    const engine = engineFor(routingTables());
    const trunk = engine.snapshot.customerTrunks[engine.customerTrunkIndex(10)];
    assert.deepEqual(priceCall(engine, trunk, 'AUD', '4420', NOW), { ok: false, reason: 'no_rate' });
    assert.deepEqual(priceCall(engine, trunk, 'USD', MOBILE, NOW).ok, true); // USD>AUD exists: its inverse converts
    const noFx = engineFor(routingTables((d) => (d.exchange_rates = [])));
    const noFxTrunk = noFx.snapshot.customerTrunks[noFx.customerTrunkIndex(10)];
    assert.deepEqual(priceCall(noFx, noFxTrunk, 'USD', MOBILE, NOW), { ok: false, reason: 'no_exchange_rate' });
  });

  // The prepaid promise: a call that lasts no longer than admission said never costs more than was reserved,
  // one answered for under a second (0 s, billed its first increment or its per-call charge) included.
  for (const [label, change, dnis = MOBILE] of [
    ['AUD account, 6/6, standard', undefined],
    [
      'USD account (converted), 1/1, up, 6 decimals',
      (d: SnapshotDescription) => {
        d.customer_accounts[0].currency = 'USD';
        Object.assign(d.customer_trunks[0], {
          billing_increment_initial: 1,
          billing_increment_step: 1,
          decimal_precision: 6,
          rounding_direction: 'up',
        });
      },
    ],
    [
      'AUD account, 30/6, down, 5 decimals, odd rate',
      (d: SnapshotDescription) => {
        Object.assign(d.customer_trunks[0], {
          billing_increment_initial: 30,
          billing_increment_step: 6,
          decimal_precision: 5,
          rounding_direction: 'down',
        });
        d.rate_deck_rates.find((row) => row.rate_deck_id === 1 && row.prefix === '614')!.rate_per_minute = '0.0333337';
      },
    ],
    ['USD account (converted), per_call', (d: SnapshotDescription) => (d.customer_accounts[0].currency = 'USD'), '6113555000'],
  ] as const) {
    it(`never lets a capped call cost more than its reservation: ${label}`, () => {
      const { price, engine } = priced(change, dnis);
      let seed = 7;
      const random = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
      for (let i = 0; i < 400; i++) {
        // Every fourth call answered for under a second, on a balance that affords little more than the first
        // increment (the least admission reserves); the others the longest call admitted, or any shorter.
        const underASecond = i % 4 === 1;
        const balance = underASecond
          ? costBoundMicro(price, price.initial) + Math.floor(random() * 100)
          : 1 + Math.floor(random() * 3_000_000);
        const fit = affordable(price, balance, 7200);
        if (fit === null) continue;
        assert.ok(fit.amountMicro <= balance);
        const duration = underASecond ? 0 : i % 4 === 0 ? fit.maxDurationSeconds : Math.floor(random() * (fit.maxDurationSeconds + 1));
        const charge = answeredCallCharge(engine, dnis, duration, `c${i}`);
        assert.ok(parseMicro(charge) <= fit.amountMicro, `${duration} s cost ${charge}, reserved ${fit.amountMicro}`);
      }
    });
  }

  // The largest rates and durations the node accepts take rate x seconds past 2^53, where a float product rounds.
  it('bounds a cost whose nano-unit product passes 2^53 from above, exactly', () => {
    const price: CallPrice = { rateNano: 157_258_296_966_552, perCall: false, initial: 1, step: 1, slackMicro: 0 };
    const exactNano = (157_258_296_966_552n * 182_436n + 59n) / 60n;
    assert.equal(costBoundMicro(price, 182_436), Number((exactNano + 999n) / 1000n));
  });

  // Converted through the opposite pair (only USD->AUD configured, the account in USD): the node's inverse of
  // 1.1 is 0.909090909, a little under 1/1.1, and a premium rate multiplies that shortfall by its minutes.
  // The bound once fell 5 micro-units short of a 675 AUD/min call of 88 minutes: the CDR cost more than reserved.
  it('bounds a premium-rate call converted at the inverse of an exchange rate', () => {
    for (const rate of ['675.0', '249.999999999', '31.7']) {
      const { price, engine } = priced((d) => {
        d.customer_accounts[0].currency = 'USD';
        for (const fx of d.exchange_rates) fx.rate = '1.1';
        Object.assign(d.customer_trunks[0], {
          billing_increment_initial: 1,
          billing_increment_step: 1,
          decimal_precision: 6,
          rounding_direction: 'up',
        });
        d.rate_deck_rates.find((row) => row.rate_deck_id === 1 && row.prefix === '614')!.rate_per_minute = rate;
      });
      for (let duration = 0; duration <= 7200; duration++) {
        const charge = answeredCallCharge(engine, MOBILE, duration, `p${duration}`);
        const bound = costBoundMicro(price, billableSeconds(duration, price));
        assert.ok(parseMicro(charge) <= bound, `${rate}/min for ${duration} s cost ${charge}, bound ${bound}`);
      }
    }
  });
});
