import { Decimal } from '../../src/core/money/decimal.js';
import { MAX_MICRO_TEXT } from '../../src/core/money/micro.js';
import type { LeaseState, NodeSyncReply, NodeSyncRequest, SettlementCdr } from '../../src/core/protocol/node-sync.js';
import type { BalanceChange, BalanceKey, BalanceState } from './store.js';
import type { SqlText, Steps } from './sql-steps.js';
import { entityFromRow, money, type EntityType, type LedgerEntity } from './balance.js';
import { cdrIdentity, roundRecord, type LedgerSteps, type RoundBalanceRows, type TransactionRow } from './steps.js';
import { max, min, moneyText, places, plain, toUnits, truncate } from './units.js';
import type { LeaseRecalls } from './lease-recall.js';
import type { Row } from '../store/config-store.js';

/**
 * One node's money round at the centre (POST /api/ledger/node-sync), applied
 * in one transaction:
 *  - each rated CDR is recorded once (by its sip_call_id and start_time:
 *    cdrIdentity) and debited from its account; the debit consumes the
 *    node's lease, since the node spent it;
 *  - each lease ask hands back what the node no longer needs and grants what
 *    it wants, never more than the entity's headroom, so the leases of all
 *    nodes together never exceed it;
 *  - the answer gives the node's lease and the entity's remaining headroom
 *    for every entity the round touched.
 * A node's balances' `reserved` is the sum of all nodes' leases on it.
 */
export class NodeSyncRefusal extends Error {
  constructor(
    readonly code: 'unknown_node' | 'stale_round' | 'round_out_of_sequence' | 'node_unauthenticated',
    message: string,
  ) {
    super(message);
    this.name = 'NodeSyncRefusal';
  }
}

/**
 * What a round did, for the control plane's metrics (sync/metrics/): CDRs recorded (each once), of them those
 * billed to no account, and leases granted or handed back, per entity type. Filled by one attempt of the round's
 * transaction: a retried one (PostgreSQL) starts from a fresh tally.
 */
export interface RoundTally {
  /** The round was a resend of the last applied one: its kept answer again, nothing applied. */
  resent: boolean;
  settled: number;
  unbilled: number;
  granted: Record<EntityType, number>;
  returned: Record<EntityType, number>;
}

/** How a money round ended, as the metrics count it: answered, answered again, bad body, failed, or refused. */
export type RoundResult = 'ok' | 'resent' | 'invalid' | 'error' | NodeSyncRefusal['code'];

/** Told of every money round answered (the control plane's metrics); `node` and `tally` once the node proved its secret. */
export type RoundObserver = (result: RoundResult, seconds: number, node?: string, tally?: RoundTally) => void;

export function emptyTally(): RoundTally {
  return {
    resent: false,
    settled: 0,
    unbilled: 0,
    granted: { customer: 0, carrier: 0, retail: 0 },
    returned: { customer: 0, carrier: 0, retail: 0 },
  };
}

/**
 * An entity's figures through a round, as integer units (units.ts): read once under the balance's lock and
 * written once when the round is done. The balance and `reserved` are each written as the string read, kept as
 * it was, until a change; then formatted only when written (or noted in a transaction row), from the operands of
 * their last change (balance.ts `money` counts their places): a round's 400 debits of one account set its balance
 * 400 times and write it once, and formatting each (two `places` of up to twelve BigInt divisions, a toString)
 * was a fifth of the centre's settlement, inside the balance locks. The lease is written as decimal.js's toFixed().
 */
interface Figures {
  key: BalanceKey;
  balance: bigint;
  /** The string read, until a change; then null and `balanceOperands` give the places. */
  balanceText: string | null;
  balanceOperands: [bigint, bigint];
  reserved: bigint;
  /** The string read, until a change; then null and `reservedOperands` give the places. */
  reservedText: string | null;
  reservedOperands: [bigint, bigint];
  balanceChanged: boolean;
  lease: bigint;
  leaseChanged: boolean;
}

/**
 * The balances and this node's leases a round touches, all read (and on PostgreSQL locked) in one statement
 * and written in one when the round is done, with the round's transaction rows (each with the balance after
 * it, in the order they happened): a round settles up to a thousand CDRs, mostly of a few accounts, and on
 * PostgreSQL every statement is a round trip. The arithmetic between is on integers: no decimal.js number
 * per CDR (issue 21: it was most of a round's time under the balance locks).
 */
class RoundBalances {
  private readonly figures = new Map<string, Figures>();
  private readonly transactions: TransactionRow[] = [];

  constructor(
    private readonly tx: LedgerSteps,
    private readonly node: string,
  ) {}

  /** Holds the balances of `entities` and the node's leases on them, as read (and on PostgreSQL locked) in one statement. */
  hold(entities: readonly LedgerEntity[], found: RoundBalanceRows): void {
    for (const key of entities.map(balanceKey)) {
      const id = `${key.entityType}:${key.entityId}`;
      const row = found.get(id);
      const balanceText = row?.balance ?? '0';
      const reservedText = row?.reserved ?? '0';
      this.figures.set(id, {
        key,
        balance: toUnits(balanceText),
        balanceText,
        balanceOperands: [0n, 0n],
        reserved: toUnits(reservedText),
        reservedText,
        reservedOperands: [0n, 0n],
        balanceChanged: false,
        lease: toUnits(row?.lease ?? '0'),
        leaseChanged: false,
      });
    }
  }

  /** The entity's figures (read by `read`: every entity a round touches is). */
  of(entity: LedgerEntity): Figures {
    const figures = this.figures.get(`${entity.entityType}:${entity.entityId}`);
    if (figures === undefined) throw new Error(`${entity.entityType} ${entity.entityId} was not read with the round's balances`);
    return figures;
  }

  /** A change of the entity's figures: `balance` and `reserved`, each its new value and the two operands of its change. */
  change(
    figures: Figures,
    balance: { units: bigint; operands: [bigint, bigint] } | null,
    reserved: { units: bigint; operands: [bigint, bigint] },
  ): void {
    if (balance !== null) {
      figures.balance = balance.units;
      figures.balanceText = null;
      figures.balanceOperands = balance.operands;
    }
    figures.reserved = reserved.units;
    figures.reservedText = null;
    figures.reservedOperands = reserved.operands;
    figures.balanceChanged = true;
  }

  /**
   * A transaction row for the entity's figures as they now are; `id` when taken beforehand (a debit, whose
   * CDRs name it). The reserved string of a transaction's row is never read: only the balance after it is recorded.
   */
  note(figures: Figures, transaction: BalanceChange['transaction'], id?: number): void {
    this.transactions.push({ key: figures.key, change: { next: { balance: balanceText(figures), reserved: '' }, transaction }, id });
  }

  /** A change (see `change`) and its transaction row. */
  record(
    figures: Figures,
    balance: { units: bigint; operands: [bigint, bigint] } | null,
    reserved: { units: bigint; operands: [bigint, bigint] },
    transaction: BalanceChange['transaction'],
  ): void {
    this.change(figures, balance, reserved);
    this.note(figures, transaction);
  }

  /** What the balance is written as: each figure's string read, or formatted from its last change. */
  state(figures: Figures): BalanceState {
    return {
      balance: balanceText(figures),
      reserved: figures.reservedText ?? moneyText(figures.reserved, ...figures.reservedOperands),
    };
  }

  /** Writes what changed, with the transaction rows (and `also`, the round's record), in one round trip on PostgreSQL. */
  *flush(also: { sql: SqlText; params: unknown[] }[] = []): Steps<void> {
    const all = [...this.figures.values()];
    yield* this.tx.writeRound(
      this.node,
      this.transactions,
      all.filter((figures) => figures.balanceChanged).map((figures) => ({ key: figures.key, next: this.state(figures) })),
      all
        .filter((figures) => figures.leaseChanged)
        .map((figures) => ({ entityType: figures.key.entityType, entityId: figures.key.entityId, amount: plain(figures.lease) })),
      also,
    );
  }
}

/** The balance as written: the string read, or (once) formatted from its last change's operands, as balance.ts `money` would. */
function balanceText(figures: Figures): string {
  figures.balanceText ??= moneyText(figures.balance, ...figures.balanceOperands);
  return figures.balanceText;
}

/** An entity's headroom in units (balance.ts `headroom`): funds (prepaid) or credit limit less usage (postpaid), less what is leased. */
function headroomUnits(entity: LedgerEntity, figures: Figures, creditLimit: bigint): bigint {
  return entity.billingMode === 'prepaid' ? figures.balance - figures.reserved : creditLimit - figures.balance - figures.reserved;
}

/** The most a node reads as an amount (src/core/money/micro.ts), either side of zero, in units. */
const NODE_AMOUNT_LIMIT = toUnits(MAX_MICRO_TEXT);

/**
 * The headroom as a node is told it: in whole micro-units (the node counts in them), and within what it reads.
 * Beyond that it read none (NaN) and asked for a round on every admission; a balance or credit limit of 10^9
 * or more (the ledger holds 15 integer digits) is plenty for any call, so the node is told its maximum, and a
 * deficit beyond it its minimum (no headroom either way).
 */
export function nodeHeadroom(units: bigint): bigint {
  return max(-NODE_AMOUNT_LIMIT, min(NODE_AMOUNT_LIMIT, truncate(units, 6)));
}

/** How far past the node's last applied round a round's number may be (see applyNodeSync). */
export const MAX_ROUND_JUMP = 1_000_000_000;

/** Refuses a round whose number does not follow the node's last applied round (`lastSeq`). */
export function checkRoundSeq(node: string, seq: number, lastSeq: number): void {
  // A round that arrives after a newer one (it timed out at the node and was resent) is stale: applying it
  // late would hand back lease the node has already been told it holds.
  if (seq <= lastSeq) throw new NodeSyncRefusal('stale_round', `round ${seq} is older than the last applied for node ${node}`);
  // A round numbered far past the last would, once applied, make every genuine round after it stale: the
  // node's money would stop for good. A node moves its numbers on by at most a block (1,000,000) per restart.
  if (seq > lastSeq + MAX_ROUND_JUMP)
    throw new NodeSyncRefusal(
      'round_out_of_sequence',
      `round ${seq} is more than ${MAX_ROUND_JUMP} past the last applied for node ${node} (${lastSeq})`,
    );
}

/** Every entity a round may touch: the accounts its CDRs bill (a retail account's, else the trunk's) and those it asks lease of. */
export function roundEntities(request: NodeSyncRequest): { entityType: EntityType; entityId: number }[] {
  return [
    ...request.settlements.map((cdr) =>
      cdr.retail_account_id === undefined || cdr.retail_account_id === null
        ? { entityType: 'customer' as const, entityId: cdr.customer_account_id }
        : { entityType: 'retail' as const, entityId: cdr.retail_account_id },
    ),
    ...request.leases.map((ask) => ({ entityType: ask.entity_type, entityId: ask.entity_id })),
  ];
}

/** Whether a round asks for lease (its grants are then shared among the active nodes). */
export function roundLeasesAsked(request: NodeSyncRequest): boolean {
  return request.leases.some((ask) => toUnits(ask.want) > 0n);
}

/**
 * A round's settlement and leases. The caller (node-round.ts) has authenticated the node (so it is
 * registered), opened its round (its row locked, the number checked) and records it after, or has it recorded
 * with the round's writes (`record`: the round's number and body digest; one statement fewer while the
 * balances are locked). `recalls`: where a round that finds an entity short marks the other nodes holding
 * lease on it (their next answers tell them to hand back what their calls do not hold).
 *
 * Everything that does not need the balances comes before they are locked (PostgreSQL): the entities' rows,
 * the CDRs' insert (with its debit rows' ids), each charge parsed; then the balances are locked
 * and read in one statement, the arithmetic is integers (units.ts), and one statement writes it all. Other
 * nodes' rounds on the same accounts wait on this one's balances only for that.
 */
export function* applyNodeSync(
  tx: LedgerSteps,
  request: NodeSyncRequest & { seq: number },
  recalls?: LeaseRecalls,
  record?: { digest: string },
  opened?: { entityRows: Map<string, Row>; activeNodes: number },
  tally?: RoundTally,
): Steps<NodeSyncReply> {
  const { node } = request;

  // Every entity the round may touch, read once (by the caller, with the round's other opening reads: nodeRound).
  const entities = new Map<string, LedgerEntity | null>();
  const findEntity = (type: EntityType, id: number): LedgerEntity | null => entities.get(`${type}:${id}`) ?? null;
  const wanted = roundEntities(request);
  const rows = opened?.entityRows ?? (yield* tx.entityRows(wanted));
  for (const { entityType, entityId } of wanted)
    entities.set(`${entityType}:${entityId}`, entityFromRow(entityType, entityId, rows.get(`${entityType}:${entityId}`) ?? null));

  // The round's CDRs, once each (by cdrIdentity), the account each bills (none: an account this store does not know)
  // and what (parsed now: the balances are locked from the round trip that answers which CDRs are new).
  const fresh = new Map<string, { cdr: SettlementCdr; account: LedgerEntity | null; charge: bigint; uncovered: bigint }>();
  const identities = request.settlements.map((cdr) => cdrIdentity(cdr.sip_call_id, cdr.start_time));
  for (const [i, cdr] of request.settlements.entries()) {
    if (fresh.has(identities[i])) continue;
    // A call through a partner product's access number is billed to the retail account, not the trunk's account.
    const retail = cdr.retail_account_id ?? null;
    const account = retail === null ? findEntity('customer', cdr.customer_account_id) : findEntity('retail', retail);
    const billing = account !== null;
    fresh.set(identities[i], {
      cdr,
      account,
      charge: billing ? toUnits(cdr.account_charge) : 0n,
      uncovered: billing && cdr.uncovered !== undefined && cdr.uncovered !== null ? toUnits(cdr.uncovered) : 0n,
    });
  }
  const asks = request.leases.map((ask) => ({
    ask,
    entity: findEntity(ask.entity_type, ask.entity_id),
    want: toUnits(ask.want),
    giveBack: toUnits(ask.give_back),
    need: ask.need === undefined || ask.need === null ? null : toUnits(ask.need),
    perCall: ask.per_call === undefined || ask.per_call === null ? null : toUnits(ask.per_call),
  }));
  const activeNodes = opened?.activeNodes ?? (roundLeasesAsked(request) ? yield* tx.activeNodes() : 0);
  const creditLimits = new Map<LedgerEntity, bigint>();
  for (const entity of entities.values())
    if (entity !== null) creditLimits.set(entity, entity.billingMode === 'prepaid' ? 0n : toUnits(entity.creditLimit ?? '0'));

  // One debit row per account billed (docs/decisions.md), its id taken by the statement that inserts the CDRs
  // naming it (insertCdrs), before the balances are locked: the round's biggest statement, outside the locks other
  // nodes' rounds on the same accounts wait for. The row's place in its account's list is taken when it is
  // written, under the lock (recordTransactions `posted`). The CDRs settled before (by an earlier round whose
  // answer was lost, or another node's) are not inserted and bill nothing: an account whose CDRs all were leaves
  // its id unused.
  const billed = [...new Set([...fresh.values()].flatMap(({ account }) => (account === null ? [] : [account])))];
  const debitOrder = new Map(billed.map((account, i) => [account, i + 1]));
  // In one order (by identity): two rounds bringing the same new CDRs wait for each other's (the unique index waits
  // for the transaction inserting a key), and in one order neither can be waiting for the other at once (a deadlock:
  // a second's stall, then the round again). Without any balance locked, nothing else orders them.
  const debitOf = new Map<SettlementCdr, number | null>(
    [...fresh.values()].map(({ cdr, account }) => [cdr, account === null ? null : debitOrder.get(account)!]),
  );
  // Then, in the same round trip (PostgreSQL), the balances locked, in one order, and read with the node's leases.
  const lockedEntities = [...creditLimits.keys()];
  const {
    cdrs: cdrIds,
    balances,
    retail,
  } = yield* tx.insertCdrsAndLockBalances(
    node,
    [...fresh.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, { cdr }]) => cdr),
    billed.length,
    (cdr) => debitOf.get(cdr) ?? null,
    lockedEntities.map(balanceKey),
  );
  const debitIds = new Map<LedgerEntity, number>();

  // What each new CDR bills, in the round's order.
  const settled: string[] = [];
  const unbilled: string[] = [];
  const touched = new Set<LedgerEntity>();
  const bills: { account: LedgerEntity; charge: bigint; cdrId: number; callId: string; uncovered: bigint }[] = [];
  for (const [i, cdr] of request.settlements.entries()) {
    settled.push(cdr.sip_call_id);
    const inserted = cdrIds.get(identities[i]);
    if (inserted === undefined) continue; // settled before, or earlier in this round
    cdrIds.delete(identities[i]);
    if (tally !== undefined) tally.settled++;
    const { cdrId, debitId } = inserted;
    const { account, charge, uncovered } = fresh.get(identities[i])!;
    if (account === null) {
      // The node's snapshot knows an account this store does not (restored from an older backup?): keep
      // the CDR, bill nothing, and say so, rather than refuse the round and stall the node's money.
      unbilled.push(cdr.sip_call_id);
      if (tally !== undefined) tally.unbilled++;
      continue;
    }
    touched.add(account);
    debitIds.set(account, debitId!);
    bills.push({ account, charge, cdrId, callId: cdr.sip_call_id, uncovered });
  }

  const round = new RoundBalances(tx, node);
  round.hold(lockedEntities, balances);

  // Each bill applied in turn (the balance's string, formatted once after the last, as that step wrote it
  // before: units.ts), the account's debit row written once, for them all, with the balance after the last.
  const debits = new Map<LedgerEntity, { figures: Figures; total: bigint; widest: bigint; calls: number; first: (typeof bills)[0] }>();
  for (const bill of bills) {
    const figures = round.of(bill.account);
    const { charge } = bill;
    // The debit consumes the node's lease, since the node spent it.
    const consumed = min(charge, figures.lease);
    figures.lease -= consumed;
    figures.leaseChanged = true;
    // Prepaid: the funds go down. Postpaid: the usage goes up.
    const balance = figures.balance;
    const nextBalance = bill.account.billingMode === 'prepaid' ? balance - charge : balance + charge;
    round.change(
      figures,
      { units: nextBalance, operands: [balance, charge] },
      { units: figures.reserved - consumed, operands: [figures.reserved, consumed] },
    );
    const debit = debits.get(bill.account);
    if (debit === undefined) debits.set(bill.account, { figures, total: charge, widest: charge, calls: 1, first: bill });
    else {
      debit.total += charge;
      debit.calls++;
      // Most of an account's calls cost the same: no places counted for a charge equal to the widest so far.
      if (charge !== debit.widest && places(charge) > places(debit.widest)) debit.widest = charge;
    }
  }
  for (const [account, { figures, total, widest, calls, first }] of debits)
    round.note(figures, debitTransaction(node, request.seq, moneyText(total, widest), calls, first), debitIds.get(account));
  // Billed beyond what the node had reserved for it: recorded per account for the operator (GET balance).
  // The debit above already lowered the headroom every later lease comes out of by the whole charge, so the
  // next leases are smaller by the uncovered part without a second deduction (docs/decisions.md).
  for (const bill of bills) {
    if (bill.uncovered <= 0n) continue;
    const { entityType, entityId } = bill.account;
    const total = toUnits(yield* tx.overrun(entityType, entityId)) + bill.uncovered;
    yield* tx.addOverrunCdr(entityType, entityId, moneyText(total, total, bill.uncovered), bill.callId);
  }

  const unknown: LeaseState[] = [];
  const recalling = new Set<LedgerEntity>();
  for (const { ask, entity, want, giveBack: asked, need, perCall } of asks) {
    if (entity === null) {
      // Not in this store (restored from an older backup?): no lease, rather than refuse the round, which would
      // leave the node's other entities and its CDRs stuck behind this one.
      yield* tx.setLease(node, ask.entity_type, ask.entity_id, '0');
      unknown.push({ entity_type: ask.entity_type, entity_id: ask.entity_id, granted: '0', headroom: '0' });
      continue;
    }
    touched.add(entity);
    const figures = round.of(entity);
    const giveBack = min(asked, figures.lease);
    if (giveBack > 0n) {
      figures.lease -= giveBack;
      if (tally !== undefined) tally.returned[entity.entityType]++;
      // `reserved` is the sum of the nodes' leases, and the amount one of them: never below zero.
      round.record(
        figures,
        null,
        { units: max(0n, figures.reserved - giveBack), operands: [figures.reserved, giveBack] },
        leaseTransaction('release', giveBack, `credit lease returned by node ${node}`),
      );
    }
    // A deactivated retail account is leased nothing more: no node may admit a new call on it.
    if (want > 0n && entity.closed !== true) {
      // A debit waiting on recalled lease comes first (lease-recall.ts withhold).
      const withheld = recalls === undefined ? 0n : toUnits(recalls.withheldFrom(entity.entityType, entity.entityId).toFixed());
      const left = headroomUnits(entity, figures, creditLimits.get(entity)!) - withheld;
      const share = leaseShareUnits(want, need, left, { nodes: activeNodes, perCall });
      if (share.short && recalls !== undefined && (yield* recallOthers(tx, recalls, node, entity, share.grant, need)))
        recalling.add(entity);
      // Whole micro-units: the node counts in them.
      const grant = truncate(share.grant, 6);
      if (grant > 0n) {
        figures.lease += grant;
        if (tally !== undefined) tally.granted[entity.entityType]++;
        round.record(
          figures,
          null,
          { units: figures.reserved + grant, operands: [figures.reserved, grant] },
          leaseTransaction('reserve', grant, `credit lease granted to node ${node}`),
        );
      }
    }
    figures.leaseChanged = true;
  }

  const leases: LeaseState[] = [...unknown];
  for (const entity of touched) {
    const figures = round.of(entity);
    leases.push({
      entity_type: entity.entityType,
      entity_id: entity.entityId,
      granted: plain(figures.lease),
      headroom: plain(nodeHeadroom(headroomUnits(entity, figures, creditLimits.get(entity)!))),
      ...(recalling.has(entity) ? { recalling: true } : {}),
    });
  }
  const reply: NodeSyncReply = { settled, unbilled, leases };
  yield* round.flush([...retail, ...(record === undefined ? [] : [roundRecord(node, request.seq, record.digest, JSON.stringify(reply))])]);
  return reply;
}

/**
 * An account's debit row for a round's calls (`amount` their charges' total): one call's names it as a debit per
 * CDR did (its CDR and call id); several are described by their count, the node and the round, each CDR naming
 * the row (cdrs.debit_transaction_id).
 */
function debitTransaction(
  node: string,
  seq: number,
  amount: string,
  calls: number,
  first: { cdrId: number; callId: string },
): BalanceChange['transaction'] {
  if (calls === 1)
    return { transaction_type: 'debit', amount, description: `call ${first.callId}`, cdr_id: first.cdrId, call_id: first.callId };
  return { transaction_type: 'debit', amount, description: `${calls} calls (node ${node}, round ${seq})`, cdr_id: null, call_id: null };
}

/** A lease's transaction row (`release` or `reserve`) for `amount`. */
function leaseTransaction(type: 'release' | 'reserve', amount: bigint, description: string): BalanceChange['transaction'] {
  return { transaction_type: type, amount: moneyText(amount, amount), description, cdr_id: null, call_id: null };
}

/**
 * An ask found the entity's headroom short: the other nodes' unused lease of it comes back. When the ask got
 * less than its waiting call needs, at once over the live channel (the node is then refreshed when it comes
 * back, and its call may wait for that: the answer says `recalling`); else at the holders' next rounds, for
 * the calls to come. Returns whether a recall is under way for the asking node's call.
 */
function* recallOthers(
  tx: LedgerSteps,
  recalls: LeaseRecalls,
  node: string,
  entity: LedgerEntity,
  grant: bigint,
  need: bigint | null,
): Steps<boolean> {
  const { entityType, entityId } = entity;
  const urgent = need !== null && grant < need;
  for (const holder of yield* tx.leaseHolders(entityType, entityId)) {
    if (holder === node) continue;
    if (urgent) recalls.recallNow(holder, entityType, entityId, yield* tx.lease(holder, entityType, entityId));
    else recalls.mark(holder, entityType, entityId);
  }
  if (!urgent) return false;
  recalls.want(node, entityType, entityId);
  return recalls.recalling(entityType, entityId);
}

/** How many nodes may share an entity's headroom, and the size of one call of the asking node's. */
export interface LeaseSharing {
  /** Nodes registered as active: any of them may take the entity's next call. */
  nodes: number;
  /** What one of the asking node's calls reserves (the ask's need, else its per_call); null: not known. */
  perCall: string | null;
}

/**
 * Below this many calls per active node left in the headroom, a node is leased only what a waiting call needs
 * (a round per call): with so little left, spare lease on one node is a call refused on another.
 */
export const SCARCE_CALLS_PER_NODE = 4;

/**
 * What a node's ask gets out of the entity's headroom, and whether the headroom is short (the centre then
 * recalls the unused lease of the other nodes holding some):
 *  - not even the waiting call's `need` is left: all there is (the call may still fit in less);
 *  - with `sharing` known: the headroom split among the active nodes is this node's share; beyond the need
 *    it gets up to its share, in whole calls (so no fraction of a call is stranded on one node), as much as
 *    it wants (its recent demand); when the share is less than SCARCE_CALLS_PER_NODE calls, only the need;
 *  - else (an older node that sends no call size): the need or half the headroom, whichever is more;
 *  - no need at all (an older node): up to the whole headroom.
 * In integer units (units.ts); half the headroom is cut to the units' last place, which settlement's cut
 * of the grant to whole micro-units makes no difference to (both cut down, and min and max keep order).
 */
export function leaseShareUnits(
  want: bigint,
  need: bigint | null,
  headroomLeft: bigint,
  sharing?: { nodes: number; perCall: bigint | null },
): { grant: bigint; short: boolean } {
  if (headroomLeft <= 0n) return { grant: 0n, short: need !== null && need > 0n };
  const whole = min(want, headroomLeft);
  if (need === null) return { grant: whole, short: false };
  if (headroomLeft <= need) return { grant: whole, short: need > 0n };
  const unit = need > 0n ? need : sharing !== undefined ? sharing.perCall : null;
  if (sharing === undefined || unit === null || unit <= 0n) return { grant: min(whole, max(need, headroomLeft / 2n)), short: false };
  const nodes = BigInt(Math.max(1, sharing.nodes));
  // The share (headroom / nodes) against SCARCE_CALLS_PER_NODE calls, and in whole calls, without dividing twice.
  if (headroomLeft < unit * BigInt(SCARCE_CALLS_PER_NODE) * nodes) return { grant: min(whole, need), short: need > 0n };
  return { grant: min(whole, max(need, (headroomLeft / (nodes * unit)) * unit)), short: false };
}

/** leaseShareUnits on decimal.js numbers and strings (the edges: tests, callers outside a round). */
export function leaseShare(
  want: Decimal,
  need: string | null,
  headroomLeft: Decimal,
  sharing?: LeaseSharing,
): { grant: Decimal; short: boolean } {
  const perCall = sharing?.perCall ?? null;
  const share = leaseShareUnits(
    toUnits(want.toFixed()),
    need === null ? null : toUnits(need),
    toUnits(headroomLeft.toFixed()),
    sharing === undefined ? undefined : { nodes: sharing.nodes, perCall: perCall === null ? null : toUnits(perCall) },
  );
  return { grant: new Decimal(plain(share.grant)), short: share.short };
}

/** What a node's ask gets out of the entity's headroom (see leaseShare). */
export function leaseGrant(want: Decimal, need: string | null, headroomLeft: Decimal, sharing?: LeaseSharing): Decimal {
  return leaseShare(want, need, headroomLeft, sharing).grant;
}

/**
 * Lease going back to the entity's headroom: `reserved` drops by `amount` (never below zero: it is the sum
 * of the nodes' leases, and `amount` is one of them), with a `release` transaction.
 */
function leaseRelease(current: BalanceState, amount: Decimal, description: string): BalanceChange {
  const reserved = new Decimal(current.reserved);
  return {
    next: { balance: current.balance, reserved: money(Decimal.max(0, reserved.minus(amount)), reserved, amount) },
    transaction: { transaction_type: 'release', amount: money(amount, amount), description, cdr_id: null, call_id: null },
  };
}

export interface ReclaimedLease {
  node: string;
  entityType: EntityType;
  entityId: number;
  amount: string;
  /** The cutoff (ISO): no money round from the node since before it. */
  silentSince: string;
}

/**
 * Credit leased to nodes the centre has not heard from for `silentForMs` goes back to its accounts: the
 * lease drops to zero and the entity's `reserved` with it, each with a `release` transaction. Safe because
 * such a node stopped admitting on those leases before now (they lapse at the node after
 * `lease_valid_seconds` without an answered round; the centre waits longer), and a node that comes back asks
 * again. Silent by the clock the rounds' times were written by (LedgerSteps.silenceCutoff: on PostgreSQL the
 * server's, since another control plane may have answered the node), and `stillSilent` has the last word per
 * node (the caller's own monotonic clock). Returns what was taken back, per lease.
 */
export function* reclaimSilentNodesLeases(
  tx: LedgerSteps,
  silentForMs: number,
  stillSilent: (node: string) => boolean,
): Steps<ReclaimedLease[]> {
  const silentSince = yield* tx.silenceCutoff(silentForMs);
  // PostgreSQL: the silent nodes' round rows first (in node order), then the balances, as a round locks
  // them; the leases are read again once locked, since a round may have come in meanwhile.
  const silentNodes = new Set((yield* tx.silentNodesLeases(silentSince)).map((lease) => lease.node).filter(stillSilent));
  if (silentNodes.size === 0) return [];
  for (const node of [...silentNodes].sort()) yield* tx.lockRound(node);
  const leases = (yield* tx.silentNodesLeases(silentSince)).filter((lease) => silentNodes.has(lease.node) && stillSilent(lease.node));
  const entities = new Map<string, LedgerEntity | null>();
  for (const lease of leases)
    entities.set(
      `${lease.entity_type}:${lease.entity_id}`,
      entityFromRow(lease.entity_type, lease.entity_id, yield* tx.entityRow(lease.entity_type, lease.entity_id)),
    );
  yield* tx.lockBalances([...entities.values()].filter((entity) => entity !== null).map(balanceKey));
  const reclaimed: ReclaimedLease[] = [];
  for (const lease of leases) {
    const amount = new Decimal(lease.amount);
    yield* tx.setLease(lease.node, lease.entity_type, lease.entity_id, '0');
    yield* tx.forgetRoundReply(lease.node); // it names the lease taken back
    const entity = entities.get(`${lease.entity_type}:${lease.entity_id}`) ?? null;
    if (entity !== null && amount.greaterThan(0)) {
      const description = `credit lease of node ${lease.node} lapsed: no money round from it since before ${silentSince}`;
      yield* tx.applyChange(balanceKey(entity), leaseRelease(yield* tx.balance(entity.entityType, entity.entityId), amount, description));
    }
    reclaimed.push({ node: lease.node, entityType: lease.entity_type, entityId: lease.entity_id, amount: lease.amount, silentSince });
  }
  return reclaimed;
}

function balanceKey(entity: LedgerEntity): BalanceKey {
  return { entityType: entity.entityType, entityId: entity.entityId, currency: entity.currency };
}
