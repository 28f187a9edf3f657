import assert from 'node:assert/strict';
import { it } from 'node:test';
import { Decimal } from '../../src/core/money/decimal.js';
import type { NodeSyncRequest, SettlementCdr } from '../../src/core/protocol/node-sync.js';
import { settledCall } from '../../src/devkit/ledger-world.js';
import { money, type LedgerEntity } from '../../sync/ledger/balance.js';
import { applyNodeSync, leaseShareUnits, SCARCE_CALLS_PER_NODE } from '../../sync/ledger/settlement.js';
import { cdrIdentity, type LedgerSteps } from '../../sync/ledger/steps.js';
import type { BalanceChange, BalanceKey, BalanceState } from '../../sync/ledger/store.js';
import { fixed, max, min, moneyText, places, plain, toUnits, truncate } from '../../sync/ledger/units.js';
import { mulberry32 } from '../helpers/fuzz-requests.js';

/**
 * Settlement's integer units (sync/ledger/units.ts, issue 21) against decimal.js, the arithmetic they
 * replaced: every string a round writes or answers must be the one the decimal path wrote, character for
 * character. LEDGER_UNITS_CASES random cases (1,000,000 by default; LEDGER_UNITS_SEED picks others) of the
 * operations a round makes (about 30 s of CPU), then CASES / 200 whole rounds through applyNodeSync against a decimal.js model of the
 * settlement as it was (the ledger's engine tests keep their fixtures).
 */
const CASES = Number(process.env.LEDGER_UNITS_CASES ?? 1_000_000);
const SEED = Number(process.env.LEDGER_UNITS_SEED ?? 21);
const random = mulberry32(SEED);
const below = (n: number): number => Math.floor(random() * n);

/** A ledger amount as the wire and the store carry them: up to 15 integer digits and 12 decimals, mostly small and few places. */
function amount(negative = true): string {
  const wholeDigits = [0, 1, 1, 2, 3, 4, 6, 9, 15][below(9)];
  let whole = wholeDigits === 0 ? '0' : String(1 + below(9));
  for (let i = 1; i < wholeDigits; i++) whole += String(below(10));
  const decimals = [0, 2, 2, 4, 4, 5, 6, 6, 9, 12][below(10)];
  let fraction = '';
  for (let i = 0; i < decimals; i++) fraction += String(below(10));
  // Trailing zeros as a store writes them ("100.00", "0.0150").
  if (decimals > 0 && below(3) === 0) fraction = fraction.slice(0, -1) + '0';
  const text = decimals === 0 ? whole : `${whole}.${fraction}`;
  return negative && below(4) === 0 ? `-${text}` : text;
}

/** The decimal path's leaseShare (settlement.ts before issue 21), the reference for leaseShareUnits. */
function decimalLeaseShare(
  want: Decimal,
  need: string | null,
  headroomLeft: Decimal,
  sharing: { nodes: number; perCall: string | null },
): { grant: Decimal; short: boolean } {
  if (headroomLeft.lessThanOrEqualTo(0)) return { grant: new Decimal(0), short: need !== null && new Decimal(need).greaterThan(0) };
  const whole = Decimal.min(want, headroomLeft);
  if (need === null) return { grant: whole, short: false };
  const needed = new Decimal(need);
  if (headroomLeft.lessThanOrEqualTo(needed)) return { grant: whole, short: needed.greaterThan(0) };
  const unit = needed.greaterThan(0) ? needed : sharing.perCall !== null ? new Decimal(sharing.perCall) : null;
  if (unit === null || unit.lessThanOrEqualTo(0))
    return { grant: Decimal.min(whole, Decimal.max(needed, headroomLeft.div(2))), short: false };
  const share = headroomLeft.div(Math.max(1, sharing.nodes));
  if (share.lessThan(unit.mul(SCARCE_CALLS_PER_NODE))) return { grant: Decimal.min(whole, needed), short: needed.greaterThan(0) };
  return { grant: Decimal.min(whole, Decimal.max(needed, share.div(unit).floor().mul(unit))), short: false };
}

it(`writes every amount as decimal.js did, over ${CASES} random cases`, { timeout: 600_000 }, () => {
  for (let i = 0; i < CASES; i++) {
    const a = amount();
    const b = amount();
    const A = new Decimal(a);
    const B = new Decimal(b);
    const ua = toUnits(a);
    const ub = toUnits(b);
    const at = `case ${i}: ${a}, ${b}`;
    assert.equal(places(ua), A.decimalPlaces(), at);
    assert.equal(plain(ua), A.toFixed(), at);
    assert.equal(fixed(ua, 12), A.toFixed(12), at);
    // A debit (prepaid), usage (postpaid), a grant, a release and its floor at zero, as balance.ts money writes them.
    assert.equal(moneyText(ua - ub, ua, ub), money(A.minus(B), A, B), at);
    assert.equal(moneyText(ua + ub, ua, ub), money(A.plus(B), A, B), at);
    assert.equal(moneyText(max(0n, ua - ub), ua, ub), money(Decimal.max(0, A.minus(B)), A, B), at);
    assert.equal(moneyText(ua, ua), money(A, A), at);
    // A lease's string, the answer's headroom and a grant in whole micro-units.
    assert.equal(plain(min(ua, ub)), Decimal.min(A, B).toFixed(), at);
    assert.equal(plain(truncate(ua - ub, 6)), A.minus(B).toDecimalPlaces(6, Decimal.ROUND_DOWN).toFixed(), at);
    // An ask against the headroom: want a, headroom b, a need and a call's size from the same amounts.
    const need = below(4) === 0 ? null : amount(false);
    const perCall = below(2) === 0 ? null : amount(false);
    const nodes = below(5);
    const want = a.replace('-', '');
    const expected = decimalLeaseShare(new Decimal(want), need, B, { nodes, perCall });
    const got = leaseShareUnits(toUnits(want), need === null ? null : toUnits(need), ub, {
      nodes,
      perCall: perCall === null ? null : toUnits(perCall),
    });
    assert.equal(got.short, expected.short, `${at}, need ${need}, per call ${perCall}, ${nodes} nodes`);
    assert.equal(
      plain(truncate(got.grant, 6)),
      expected.grant.toDecimalPlaces(6, Decimal.ROUND_DOWN).toFixed(),
      `${at}, need ${need}, per call ${perCall}, ${nodes} nodes`,
    );
  }
});

/** One entity of a random round: its billing terms and what the store holds for it before the round. */
interface Held {
  entity: LedgerEntity;
  balance: string;
  reserved: string;
  lease: string;
}

/**
 * The ledger steps a round runs, in memory: the store's rows as given, every write captured. applyNodeSync
 * yields nothing to it (each step returns at once), so a round runs synchronously.
 */
function memoryLedger(held: Held[], activeNodes: number) {
  const writes: {
    transactions: { key: BalanceKey; change: BalanceChange }[];
    balances: { key: BalanceKey; next: BalanceState }[];
    leases: { entityType: string; entityId: number; amount: string }[];
  } = { transactions: [], balances: [], leases: [] };
  const byKey = new Map(held.map((entry) => [`${entry.entity.entityType}:${entry.entity.entityId}`, entry]));
  let nextCdr = 1;
  const tx = {
    // eslint-disable-next-line require-yield
    *entityRows() {
      return new Map(
        held.map((entry) => [
          `${entry.entity.entityType}:${entry.entity.entityId}`,
          { id: entry.entity.entityId, currency: 'AUD', billing_mode: entry.entity.billingMode, credit_limit: entry.entity.creditLimit },
        ]),
      );
    },
    // eslint-disable-next-line require-yield
    *insertCdrsAndLockBalances(_node: string, cdrs: SettlementCdr[], _debits: number, debitOf: (cdr: SettlementCdr) => number | null) {
      return {
        cdrs: new Map(
          cdrs.map((cdr) => [cdrIdentity(cdr.sip_call_id, cdr.start_time), { cdrId: nextCdr++, debitId: 1000 + (debitOf(cdr) ?? 0) }]),
        ),
        balances: new Map([...byKey].map(([id, entry]) => [id, { balance: entry.balance, reserved: entry.reserved, lease: entry.lease }])),
        retail: [],
      };
    },
    // eslint-disable-next-line require-yield
    *activeNodes() {
      return activeNodes;
    },
    // eslint-disable-next-line require-yield
    *writeRound(_node: string, transactions: never[], balances: never[], leases: never[]) {
      writes.transactions.push(...transactions);
      writes.balances.push(...balances);
      writes.leases.push(...leases);
    },
  };
  return { tx: tx as unknown as LedgerSteps, writes };
}

/** Written rows in entity order (the round writes them in the order it read them). */
const byId = (a: (string | number)[], b: (string | number)[]): number => Number(a[0]) - Number(b[0]);

/** The same round as the decimal path computed it (settlement.ts before issue 21): its writes and answer. */
function decimalRound(held: Held[], request: NodeSyncRequest, activeNodes: number) {
  const state = new Map(held.map((entry) => [entry.entity.entityId, { ...entry, changed: false, leaseSet: false }]));
  const transactions: { id: number; type: string; amount: string; balanceAfter: string }[] = [];
  const apply = (id: number, next: BalanceState, type: string, amount: string) => {
    const entry = state.get(id)!;
    entry.balance = next.balance;
    entry.reserved = next.reserved;
    entry.changed = true;
    transactions.push({ id, type, amount, balanceAfter: next.balance });
  };
  const headroom = (entry: Held) => {
    const balance = new Decimal(entry.balance);
    const reserved = new Decimal(entry.reserved);
    if (entry.entity.billingMode === 'prepaid') return money(balance.minus(reserved), balance, reserved);
    const limit = new Decimal(entry.entity.creditLimit ?? '0');
    return money(limit.minus(balance).minus(reserved), limit, balance, reserved);
  };
  const touched = new Set<number>();
  // One debit row per account, in the order of its first CDR: the charges' total and the balance after the last.
  const debits = new Map<number, { charges: Decimal[]; balanceAfter: string }>();
  for (const cdr of request.settlements) {
    const entry = state.get(cdr.customer_account_id)!;
    touched.add(cdr.customer_account_id);
    const charge = new Decimal(cdr.account_charge);
    const lease = new Decimal(entry.lease);
    const consumed = Decimal.min(charge, lease);
    entry.lease = lease.minus(consumed).toFixed();
    entry.leaseSet = true;
    const balance = new Decimal(entry.balance);
    const reserved = new Decimal(entry.reserved);
    const nextBalance = entry.entity.billingMode === 'prepaid' ? balance.minus(charge) : balance.plus(charge);
    entry.balance = money(nextBalance, balance, charge);
    entry.reserved = money(reserved.minus(consumed), reserved, consumed);
    entry.changed = true;
    const debit = debits.get(cdr.customer_account_id) ?? { charges: [], balanceAfter: '' };
    debit.charges.push(charge);
    debit.balanceAfter = entry.balance;
    debits.set(cdr.customer_account_id, debit);
  }
  for (const [id, { charges, balanceAfter }] of debits) {
    const total = charges.reduce((sum, charge) => sum.plus(charge), new Decimal(0));
    transactions.push({ id, type: 'debit', amount: money(total, ...charges), balanceAfter });
  }
  for (const ask of request.leases) {
    const entry = state.get(ask.entity_id)!;
    touched.add(ask.entity_id);
    let lease = new Decimal(entry.lease);
    const giveBack = Decimal.min(new Decimal(ask.give_back), lease);
    if (giveBack.greaterThan(0)) {
      lease = lease.minus(giveBack);
      const reserved = new Decimal(entry.reserved);
      apply(
        ask.entity_id,
        { balance: entry.balance, reserved: money(Decimal.max(0, reserved.minus(giveBack)), reserved, giveBack) },
        'release',
        money(giveBack, giveBack),
      );
    }
    const want = new Decimal(ask.want);
    if (want.greaterThan(0)) {
      const share = decimalLeaseShare(want, ask.need ?? null, new Decimal(headroom(entry)), {
        nodes: activeNodes,
        perCall: ask.per_call ?? null,
      });
      const grant = share.grant.toDecimalPlaces(6, Decimal.ROUND_DOWN);
      if (grant.greaterThan(0)) {
        lease = lease.plus(grant);
        const reserved = new Decimal(entry.reserved);
        apply(
          ask.entity_id,
          { balance: entry.balance, reserved: money(reserved.plus(grant), reserved, grant) },
          'reserve',
          money(grant, grant),
        );
      }
    }
    entry.lease = lease.toFixed();
    entry.leaseSet = true;
  }
  const entries = [...state.values()];
  return {
    transactions,
    balances: entries.filter((entry) => entry.changed).map((entry) => [entry.entity.entityId, entry.balance, entry.reserved]),
    leases: entries.filter((entry) => entry.leaseSet).map((entry) => [entry.entity.entityId, entry.lease]),
    answer: [...touched].map((id) => {
      const entry = state.get(id)!;
      // Told to the node within what it reads (999999999.999999 either side: settlement.ts nodeHeadroom).
      const told = Decimal.max(
        NODE_LIMIT.negated(),
        Decimal.min(NODE_LIMIT, new Decimal(headroom(entry)).toDecimalPlaces(6, Decimal.ROUND_DOWN)),
      );
      const room = told.toFixed();
      return { entity_type: 'customer', entity_id: id, granted: entry.lease, headroom: room };
    }),
  };
}

const NODE_LIMIT = new Decimal('999999999.999999');

it('settles random rounds exactly as the decimal path did: transactions, balances, leases and the answer', { timeout: 600_000 }, () => {
  const rounds = Math.max(1, Math.round(CASES / 200));
  for (let r = 0; r < rounds; r++) {
    const held: Held[] = Array.from({ length: 1 + below(3) }, (_, i) => {
      const prepaid = below(3) > 0;
      return {
        entity: {
          entityType: 'customer',
          entityId: i + 1,
          currency: 'AUD',
          billingMode: prepaid ? 'prepaid' : 'postpaid',
          creditLimit: prepaid ? null : amount(false),
        },
        balance: amount(),
        reserved: amount(false),
        lease: below(3) === 0 ? '0' : amount(false),
      };
    });
    const account = () => 1 + below(held.length);
    const request: NodeSyncRequest & { seq: number } = {
      node: 'node-a',
      seq: 1,
      settlements: Array.from({ length: below(12) }, (_, i) => settledCall(`r${r}-c${i}`, account(), amount(false))),
      leases: Array.from({ length: below(3) }, () => ({
        entity_type: 'customer' as const,
        entity_id: account(),
        want: below(4) === 0 ? '0' : amount(false),
        give_back: below(2) === 0 ? '0' : amount(false),
        need: below(3) === 0 ? null : amount(false),
        per_call: below(2) === 0 ? null : amount(false),
      })),
    };
    const nodes = below(4);
    const { tx, writes } = memoryLedger(held, nodes);
    const steps = applyNodeSync(tx, request);
    const done = steps.next();
    assert.ok(done.done, 'a round in memory yields no step');
    const answer = done.value;
    const expected = decimalRound(
      held.map((entry) => ({ ...entry })),
      request,
      nodes,
    );
    const at = `round ${r}: ${JSON.stringify({ held, request: { ...request, settlements: request.settlements.map((cdr) => [cdr.customer_account_id, cdr.account_charge]) }, nodes })}`;
    assert.deepEqual(
      writes.transactions.map(({ key, change }) => ({
        id: key.entityId,
        type: change.transaction.transaction_type,
        amount: change.transaction.amount,
        balanceAfter: change.next.balance,
      })),
      expected.transactions,
      at,
    );
    assert.deepEqual(writes.balances.map(({ key, next }) => [key.entityId, next.balance, next.reserved]).sort(byId), expected.balances, at);
    assert.deepEqual(writes.leases.map((lease) => [lease.entityId, lease.amount]).sort(byId), expected.leases, at);
    assert.deepEqual(answer.leases, expected.answer, at);
  }
});
