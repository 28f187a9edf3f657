import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import pino from 'pino';
import type { SettlementCdr } from '../../src/core/protocol/node-sync.js';
import { ingestCdr } from '../../src/sidecar/cdr/ingest.js';
import { NodeCredit } from '../../src/sidecar/credit/node-credit.js';
import { MoneyJournal } from '../../src/sidecar/journal/journal.js';
import { LcrEngine } from '../../src/core/lcr/lcr.js';
import { rateCallRecord, type CallRecord } from '../../src/sidecar/cdr/rating.js';
import type { SnapshotDescription } from '../../src/core/snapshot/schema.js';
import { engineFor } from '../helpers/engine.js';
import { routingTables } from '../fixtures/routing.js';
import { CREDIT_SETTINGS } from '../helpers/credit.js';

/**
 * Rating cases worked out by hand. The fixture: trunk 10 sells from deck 1
 * (AUD, 614 at 0.0250/min, 6113 at 0.3300 per call; 6/6, 4 decimals,
 * standard); carrier 20 costs from deck 101 (AUD, 614 at 0.0200, 0.0220
 * before 2025; 60/60, 4 decimals, up); carrier 21 from deck 102 (USD, 614 at
 * 0.0120). USD->AUD is 1.5, so AUD->USD divides by it.
 */
const START = Date.parse('2026-01-15T08:30:00Z');

/** A call of `duration` s from its answer; 0 s is a call never answered (no answer_time, a 486). */
function call(duration: number, extra: Partial<CallRecord> = {}): CallRecord {
  return {
    sip_call_id: 'case@test',
    customer_trunk_id: 10,
    carrier_trunk_id: 20,
    carrier_gateway_id: 201,
    ani: '61255500100',
    dnis: '61400123456',
    startMs: START,
    answerMs: duration === 0 ? null : START + 5000,
    endMs: START + 5000 + duration * 1000,
    duration_seconds: duration,
    sip_response_code: duration === 0 ? 486 : 200,
    ...extra,
  };
}

/** A call answered that ended within its first second: OpenSIPS's whole-second $DLG_lifetime says 0. */
const underASecond = (extra: Partial<CallRecord> = {}): CallRecord =>
  call(0, { answerMs: START + 5000, endMs: START + 5400, sip_response_code: 200, ...extra });

const trunk10 = (fields: Record<string, unknown>) => (d: SnapshotDescription) => Object.assign(d.customer_trunks[0], fields);
const sell614 = (fields: Record<string, unknown>) => (d: SnapshotDescription) =>
  Object.assign(
    d.rate_deck_rates.find((row) => row.rate_deck_id === 1 && row.prefix === '614')!,
    fields,
  );

interface Case {
  name: string;
  change?: (d: SnapshotDescription) => void;
  record: CallRecord;
  customer: [cost: string, currency: string, billable: number];
  vendor: [cost: string, currency: string, billable: number];
  charge?: [amount: string, currency: string];
}

const CASES: Case[] = [
  {
    name: 'the contract example: 73 s at 6/6 bills 78 s; the carrier at 60/60 bills 120 s',
    record: call(73),
    customer: ['0.0325', 'AUD', 78],
    vendor: ['0.0400', 'AUD', 120],
  },
  {
    name: "unanswered: zero on both sides, at each side's precision",
    record: call(0),
    customer: ['0.0000', 'AUD', 0],
    vendor: ['0.0000', 'AUD', 0],
  },
  {
    name: 'per_call rows: charged once, whatever the length',
    record: call(1000, { dnis: '6113555000' }),
    customer: ['0.3300', 'AUD', 1000],
    vendor: ['0.2000', 'AUD', 1000],
  },
  {
    name: 'per_call unanswered: nothing',
    record: call(0, { dnis: '6113555000' }),
    customer: ['0.0000', 'AUD', 0],
    vendor: ['0.0000', 'AUD', 0],
  },
  {
    name: 'answered, under a second (0 s): the first increment on both sides, 6 s and 60 s',
    record: underASecond(),
    customer: ['0.0025', 'AUD', 6],
    vendor: ['0.0200', 'AUD', 60],
  },
  {
    name: 'answered, under a second, 1/1: billed as 1 s, 0.000416.. standard -> 0.0004',
    change: trunk10({ billing_increment_initial: 1, billing_increment_step: 1 }),
    record: underASecond(),
    customer: ['0.0004', 'AUD', 1],
    vendor: ['0.0200', 'AUD', 60],
  },
  {
    name: 'per_call answered, under a second: charged once on both sides',
    record: underASecond({ dnis: '6113555000' }),
    customer: ['0.3300', 'AUD', 0],
    vendor: ['0.2000', 'AUD', 0],
  },
  {
    name: 'a USD account, answered under a second: the first increment converted, 0.0025 / 1.5 -> 0.0017',
    change: (d) => (d.customer_accounts[0].currency = 'USD'),
    record: underASecond(),
    customer: ['0.0025', 'AUD', 6],
    vendor: ['0.0200', 'AUD', 60],
    charge: ['0.0017', 'USD'],
  },
  {
    name: '60/60: 61 s bills two minutes',
    change: trunk10({ billing_increment_initial: 60, billing_increment_step: 60 }),
    record: call(61),
    customer: ['0.0500', 'AUD', 120],
    vendor: ['0.0400', 'AUD', 120],
  },
  {
    name: '1/1: 7 s bills 7 s, 0.0029166.. standard -> 0.0029',
    change: trunk10({ billing_increment_initial: 1, billing_increment_step: 1 }),
    record: call(7),
    customer: ['0.0029', 'AUD', 7],
    vendor: ['0.0200', 'AUD', 60],
  },
  {
    name: '1/1 up',
    change: trunk10({ billing_increment_initial: 1, billing_increment_step: 1, rounding_direction: 'up' }),
    record: call(7),
    customer: ['0.0030', 'AUD', 7],
    vendor: ['0.0200', 'AUD', 60],
  },
  {
    name: '1/1 down',
    change: trunk10({ billing_increment_initial: 1, billing_increment_step: 1, rounding_direction: 'down' }),
    record: call(7),
    customer: ['0.0029', 'AUD', 7],
    vendor: ['0.0200', 'AUD', 60],
  },
  {
    name: '5 decimals standard',
    change: trunk10({ billing_increment_initial: 1, billing_increment_step: 1, decimal_precision: 5 }),
    record: call(7),
    customer: ['0.00292', 'AUD', 7],
    vendor: ['0.0200', 'AUD', 60],
  },
  {
    name: '5 decimals down',
    change: trunk10({ billing_increment_initial: 1, billing_increment_step: 1, decimal_precision: 5, rounding_direction: 'down' }),
    record: call(7),
    customer: ['0.00291', 'AUD', 7],
    vendor: ['0.0200', 'AUD', 60],
  },
  {
    name: '6 decimals up',
    change: trunk10({ billing_increment_initial: 1, billing_increment_step: 1, decimal_precision: 6, rounding_direction: 'up' }),
    record: call(7),
    customer: ['0.002917', 'AUD', 7],
    vendor: ['0.0200', 'AUD', 60],
  },
  {
    name: '6 decimals down',
    change: trunk10({ billing_increment_initial: 1, billing_increment_step: 1, decimal_precision: 6, rounding_direction: 'down' }),
    record: call(7),
    customer: ['0.002916', 'AUD', 7],
    vendor: ['0.0200', 'AUD', 60],
  },
  {
    name: "the rate row's 30/6 wins over the trunk's 6/6: 31 s bills 36 s",
    change: sell614({ billing_increment_initial: 30, billing_increment_step: 6 }),
    record: call(31),
    customer: ['0.0150', 'AUD', 36],
    vendor: ['0.0200', 'AUD', 60],
  },
  {
    name: '30/6: 1 s bills 30 s',
    change: sell614({ billing_increment_initial: 30, billing_increment_step: 6 }),
    record: call(1),
    customer: ['0.0125', 'AUD', 30],
    vendor: ['0.0200', 'AUD', 60],
  },
  {
    name: "the rate in force at the call's start: 0.0220 before 2025",
    change: sell614({ effective_at: '2023-01-01T00:00:00.000Z' }),
    record: call(73, {
      startMs: Date.parse('2024-06-01T00:00:00Z'),
      answerMs: Date.parse('2024-06-01T00:00:05Z'),
      endMs: Date.parse('2024-06-01T00:01:18Z'),
    }),
    customer: ['0.0325', 'AUD', 78],
    vendor: ['0.0440', 'AUD', 120],
  },
  {
    name: 'a USD carrier: vendor cost in USD, 73 s at 60/60 up',
    record: call(73, { carrier_trunk_id: 21, carrier_gateway_id: 212 }),
    customer: ['0.0325', 'AUD', 78],
    vendor: ['0.0240', 'USD', 120],
  },
  {
    name: 'a USD account on an AUD deck: 0.0325 / 1.5 = 0.021666.. -> 0.0217',
    change: (d) => (d.customer_accounts[0].currency = 'USD'),
    record: call(73),
    customer: ['0.0325', 'AUD', 78],
    vendor: ['0.0400', 'AUD', 120],
    charge: ['0.0217', 'USD'],
  },
  {
    name: 'a USD account, rounding down after conversion',
    change: (d) => {
      d.customer_accounts[0].currency = 'USD';
      trunk10({ rounding_direction: 'down' })(d);
    },
    record: call(73),
    customer: ['0.0325', 'AUD', 78],
    vendor: ['0.0400', 'AUD', 120],
    charge: ['0.0216', 'USD'],
  },
];

describe('CDR rating', () => {
  for (const entry of CASES) {
    it(entry.name, () => {
      const result = rateCallRecord(engineFor(routingTables(entry.change)), entry.record);
      assert.ok(result.ok, result.ok ? '' : result.message);
      const { customer, vendor, accountCharge, accountCurrency } = result.rated;
      assert.deepEqual([customer.cost, customer.currency, customer.billableSeconds], entry.customer);
      assert.deepEqual([vendor.cost, vendor.currency, vendor.billableSeconds], entry.vendor);
      assert.deepEqual([accountCharge, accountCurrency], entry.charge ?? [entry.customer[0], 'AUD']);
    });
  }

  it("a call through an access number is charged in its product's currency, its trunk's: converted from the deck's", async () => {
    // The retail account's balance is in the product's currency, which is its trunk's (admission reserves in it);
    // the trunk's sell deck may be in another, as any customer trunk's may. Its reservation gone, the CDR names it.
    const dir = mkdtempSync(join(tmpdir(), 'retail-charge-'));
    const journal = new MoneyJournal(join(dir, 'money.db'), 'normal', pino({ level: 'silent' }));
    try {
      const credit = new NodeCredit(journal, CREDIT_SETTINGS, pino({ level: 'silent' }));
      const engine = engineFor(routingTables(trunk10({ currency: 'USD' })));
      const answer = await ingestCdr(engine, credit, call(73, { retail_account_id: 5 }), START + 80_000);
      assert.equal(answer.status, 201);
      const settlement = JSON.parse(credit.takeRound(10).settlements[0].settlementJson) as SettlementCdr;
      assert.deepEqual([settlement.customer_cost, settlement.customer_currency], ['0.0325', 'AUD']);
      assert.deepEqual([settlement.account_charge, settlement.account_currency], ['0.0217', 'USD'], '0.0325 AUD / 1.5');
      assert.equal(credit.entity({ type: 'retail', id: 5 }).spentMicro, 21_700);
    } finally {
      await journal.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  // A node's amounts are micro-units with 9 integer digits (core/money/micro.ts): a charge past them read as NaN,
  // and the account's spend with it, so every later admission on it compared with NaN. A mistyped rate does it:
  // 250000 a minute for the ingest's seven days is 2,520,000,000.
  it('refuses a CDR whose charge is more than a node can hold, rather than spend NaN', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'huge-charge-'));
    const journal = new MoneyJournal(join(dir, 'money.db'), 'normal', pino({ level: 'silent' }));
    try {
      const credit = new NodeCredit(journal, CREDIT_SETTINGS, pino({ level: 'silent' }));
      const engine = engineFor(routingTables(sell614({ rate_per_minute: '250000' })));
      await assert.rejects(ingestCdr(engine, credit, call(604_800), START + 604_900_000), (error: Error & { code?: string }) => {
        assert.equal(error.code, 'unrateable_cdr');
        assert.match(error.message, /2520000000\.0000 .*more than a node holds/);
        return true;
      });
      assert.equal(credit.entity({ type: 'customer', id: 1 }).spentMicro, 0);
      // The largest the node holds is still billed.
      const engineAtMost = engineFor(routingTables(sell614({ rate_per_minute: '99206.349206' })));
      assert.equal((await ingestCdr(engineAtMost, credit, call(604_800), START + 604_900_000)).status, 201);
      assert.equal(credit.entity({ type: 'customer', id: 1 }).spentMicro, 999_999_999_996_500); // 999999999.9965
    } finally {
      await journal.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('one engine rates calls either side of a rate change by the rate in force at each start, in any order', () => {
    // The engine caches rate rows for the span without a rate change that "now" is in; an older call must not be
    // answered from that cache, nor drop it.
    const engine = engineFor(routingTables(sell614({ effective_at: '2023-01-01T00:00:00.000Z' })));
    const before = call(73, {
      startMs: Date.parse('2024-06-01T00:00:00Z'),
      answerMs: Date.parse('2024-06-01T00:00:05Z'),
      endMs: Date.parse('2024-06-01T00:01:18Z'),
    });
    const vendorCost = (record: CallRecord): string => {
      const result = rateCallRecord(engine, record);
      assert.ok(result.ok);
      return result.rated.vendor.cost;
    };
    assert.deepEqual([call(73), before, call(73), before].map(vendorCost), ['0.0400', '0.0440', '0.0400', '0.0440']);
  });

  it("finds both decks' rows in one walk as a lookup per deck does, from the cache or past it", () => {
    const tables = () => routingTables(sell614({ effective_at: '2023-01-01T00:00:00.000Z' }));
    const { lcr, snapshot } = engineFor(tables());
    // Another engine, its own cache filled by rowAt alone: a row rowsAt cached wrongly would not be read back as right.
    const reference = engineFor(tables()).lcr;
    const decks = [-1, ...snapshot.decks.map((_, deck) => deck)];
    const older = Date.parse('2024-06-01T00:00:00Z');
    // Each moment twice: the first fills the cache (the current span), the second reads it.
    for (const at of [START, START, older, older, START])
      for (const dnis of ['61400123456', '6113', '614', '4420123', '19005550100'])
        for (const first of decks)
          for (const second of decks) {
            lcr.rowsAt(first, second, dnis, at);
            const pair = [...lcr.pair];
            const one = (deck: number): number => (deck < 0 ? -1 : reference.rowAt(deck, dnis, at));
            assert.deepEqual(pair, [one(first), one(second)], `${dnis} decks ${first}, ${second} at ${at}`);
          }
  });

  it("reads a deck's rows alike with or without a row table of its own (admission's), however many fit", () => {
    // rowNow (admission) keeps its decks' rows in a table per deck while the budget allows, rowsAt (rating) the
    // others' in a Map; once a deck has a table, either lookup must read and fill it (not rows the Map had).
    const tables = () => routingTables(sell614({ effective_at: '2023-01-01T00:00:00.000Z' }));
    const reference = engineFor(tables()).lcr;
    const numbers = ['61400123456', '6113', '614', '4420123', '19005550100'];
    const budget = LcrEngine.rowTableBytes;
    try {
      for (const tablesThatFit of [Infinity, 0, 1]) {
        const { lcr, snapshot } = engineFor(tables());
        LcrEngine.rowTableBytes = tablesThatFit === Infinity ? budget : tablesThatFit * snapshot.rates.trie.nodeCount * 4;
        const decks = snapshot.decks.map((_, deck) => deck);
        const expected = (deck: number, dnis: string): number => reference.rowAt(deck, dnis, START);
        for (const dnis of numbers) for (const deck of decks) lcr.rowsAt(deck, -1, dnis, START); // the Map, first
        for (const deck of decks) {
          for (const dnis of numbers) assert.equal(lcr.rowNow(deck, dnis, START), expected(deck, dnis), `rowNow ${dnis} deck ${deck}`);
          for (const dnis of numbers)
            for (const other of decks) {
              lcr.rowsAt(deck, other, dnis, START);
              assert.deepEqual([...lcr.pair], [expected(deck, dnis), expected(other, dnis)], `rowsAt ${dnis} decks ${deck}, ${other}`);
            }
        }
      }
    } finally {
      LcrEngine.rowTableBytes = budget;
    }
  });

  it('refuses what it cannot rate, naming why', () => {
    const engine = engineFor(routingTables());
    const refused = (record: CallRecord): string => {
      const result = rateCallRecord(engine, record);
      if (result.ok) assert.fail(`rated ${JSON.stringify(result.rated)}`);
      return result.message;
    };
    assert.match(refused(call(60, { customer_trunk_id: 999 })), /customer_trunk_id 999 is not a known customer trunk/);
    assert.match(refused(call(60, { carrier_trunk_id: 999 })), /carrier_trunk_id 999 is not a known carrier trunk/);
    assert.match(refused(call(60, { dnis: '4420123' })), /customer trunk 10 has no rate for 4420123/);
    assert.match(refused(call(60, { dnis: '19005550100', carrier_trunk_id: 21 })), /carrier trunk 21 has no rate for 19005550100/);
    // Answered for under a second is answered: rated, so it needs a rate like any other.
    assert.match(refused(underASecond({ dnis: '4420123' })), /customer trunk 10 has no rate for 4420123/);
  });

  it('rates an unanswered call zero without a rate for its number', () => {
    const result = rateCallRecord(engineFor(routingTables()), call(0, { dnis: '4420123' }));
    assert.ok(result.ok, result.ok ? '' : result.message);
    assert.deepEqual([result.rated.customer.cost, result.rated.vendor.cost, result.rated.accountCharge], ['0.0000', '0.0000', '0.0000']);
  });
});
