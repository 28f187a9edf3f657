import { Decimal } from '../../src/core/money/decimal.js';
import type { LeaseState, NodeSyncReply, NodeSyncRequest, SettlementCdr } from '../../src/core/protocol/node-sync.js';
import type { BalanceChange, BalanceKey, BalanceState } from './store.js';
import type { Steps } from './sql-steps.js';
import type { LedgerSteps } from './steps.js';
import { entityFromRow, headroom, money, type EntityType, type LedgerEntity } from './balance.js';
import type { LeaseRecalls } from './lease-recall.js';

/**
 * One node's money round at the centre (POST /api/ledger/node-sync), applied
 * in one transaction:
 *  - each rated CDR is recorded once (by sip_call_id) and debited from its
 *    account; the debit consumes the node's lease, since the node spent it;
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
 * The balances and this node's leases a round touches, all read in one statement each and written in one
 * each when the round is done, with the round's transaction rows (each with the balance after it, in the
 * order they happened): a round settles up to a thousand CDRs, mostly of a few accounts, and on PostgreSQL
 * every statement is a round trip.
 */
class RoundBalances {
  private readonly balances = new Map<string, { key: BalanceKey; state: BalanceState; dirty: boolean }>();
  private readonly leases = new Map<string, { entityType: EntityType; entityId: number; amount: string; dirty: boolean }>();
  private readonly transactions: { key: BalanceKey; change: BalanceChange }[] = [];

  constructor(
    private readonly tx: LedgerSteps,
    private readonly node: string,
  ) {}

  /** Locks (PostgreSQL) and reads the balances of `entities` and the node's leases on them, one statement for all. */
  *read(entities: readonly LedgerEntity[]): Steps<void> {
    if (entities.length === 0) return;
    const keys = entities.map(balanceKey);
    const found = yield* this.tx.roundBalances(this.node, keys);
    for (const key of keys) {
      const id = `${key.entityType}:${key.entityId}`;
      const row = found.get(id);
      this.balances.set(id, {
        key,
        state: row === undefined ? { balance: '0', reserved: '0' } : { balance: row.balance, reserved: row.reserved },
        dirty: false,
      });
      this.leases.set(id, { entityType: key.entityType, entityId: key.entityId, amount: row?.lease ?? '0', dirty: false });
    }
  }

  *balance(entity: LedgerEntity): Steps<BalanceState> {
    return (yield* this.balanceEntry(entity)).state;
  }

  *apply(entity: LedgerEntity, change: BalanceChange): Steps<void> {
    const entry = yield* this.balanceEntry(entity);
    this.transactions.push({ key: entry.key, change });
    entry.state = change.next;
    entry.dirty = true;
  }

  *lease(entity: LedgerEntity): Steps<string> {
    return (yield* this.leaseEntry(entity)).amount;
  }

  *setLease(entity: LedgerEntity, amount: string): Steps<void> {
    const entry = yield* this.leaseEntry(entity);
    entry.amount = amount;
    entry.dirty = true;
  }

  /** Writes what changed, with the transaction rows, in one round trip on PostgreSQL; the round's transaction commits it. */
  *flush(): Steps<void> {
    yield* this.tx.writeRound(
      this.node,
      this.transactions,
      [...this.balances.values()].filter((entry) => entry.dirty).map((entry) => ({ key: entry.key, next: entry.state })),
      [...this.leases.values()].filter((entry) => entry.dirty),
    );
  }

  private *balanceEntry(entity: LedgerEntity) {
    const id = `${entity.entityType}:${entity.entityId}`;
    let entry = this.balances.get(id);
    if (entry === undefined) {
      entry = {
        key: balanceKey(entity),
        state: yield* this.tx.balance(entity.entityType, entity.entityId),
        dirty: false,
      };
      this.balances.set(id, entry);
    }
    return entry;
  }

  private *leaseEntry(entity: LedgerEntity) {
    const id = `${entity.entityType}:${entity.entityId}`;
    let entry = this.leases.get(id);
    if (entry === undefined) {
      entry = {
        entityType: entity.entityType,
        entityId: entity.entityId,
        amount: yield* this.tx.lease(this.node, entity.entityType, entity.entityId),
        dirty: false,
      };
      this.leases.set(id, entry);
    }
    return entry;
  }
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

/**
 * A round's settlement and leases. The caller (node-round.ts) has authenticated the node (so it is
 * registered), opened its round (its row locked, the number checked) and records it after. `recalls`: where
 * a round that finds an entity short marks the other nodes holding lease on it (their next answers tell them
 * to hand back what their calls do not hold).
 */
export function* applyNodeSync(tx: LedgerSteps, request: NodeSyncRequest & { seq: number }, recalls?: LeaseRecalls): Steps<NodeSyncReply> {
  const { node } = request;

  // Every entity the round may touch, read once; (PostgreSQL) their balances are locked before any is read.
  const entities = new Map<string, LedgerEntity | null>();
  const findEntity = (type: EntityType, id: number): LedgerEntity | null => entities.get(`${type}:${id}`) ?? null;
  const wanted: [EntityType, number][] = [
    ...request.settlements.map((cdr): [EntityType, number] =>
      cdr.retail_account_id === undefined || cdr.retail_account_id === null
        ? ['customer', cdr.customer_account_id]
        : ['retail', cdr.retail_account_id],
    ),
    ...request.leases.map((ask): [EntityType, number] => [ask.entity_type, ask.entity_id]),
  ];
  const rows = yield* tx.entityRows(wanted.map(([entityType, entityId]) => ({ entityType, entityId })));
  for (const [type, id] of wanted) entities.set(`${type}:${id}`, entityFromRow(type, id, rows.get(`${type}:${id}`) ?? null));

  // The round's CDRs, once each, inserted together but those settled before (by an earlier round whose answer
  // was lost); before the balances are locked, as is every read that does not need them, so that the other
  // nodes' rounds wait on this one's balances only for the arithmetic and its writes.
  const fresh = new Map<string, SettlementCdr>();
  for (const cdr of request.settlements) if (!fresh.has(cdr.sip_call_id)) fresh.set(cdr.sip_call_id, cdr);
  const cdrIds = yield* tx.insertCdrs(node, [...fresh.values()]);
  const activeNodes = request.leases.some((ask) => new Decimal(ask.want).greaterThan(0)) ? yield* tx.activeNodes() : 0;

  const known = [...entities.values()].filter((entity) => entity !== null);
  const round = new RoundBalances(tx, node);
  yield* round.read(known);

  const settled: string[] = [];
  const unbilled: string[] = [];
  const touched = new Set<LedgerEntity>();
  for (const cdr of request.settlements) {
    settled.push(cdr.sip_call_id);
    const cdrId = cdrIds.get(cdr.sip_call_id);
    if (cdrId === undefined) continue; // settled before, or earlier in this round
    cdrIds.delete(cdr.sip_call_id);
    // A call through a partner product's access number is billed to the retail account, not the trunk's account.
    const retail = cdr.retail_account_id ?? null;
    const account = retail === null ? findEntity('customer', cdr.customer_account_id) : findEntity('retail', retail);
    if (account === null) {
      // The node's snapshot knows an account this store does not (restored from an older backup?): keep
      // the CDR, bill nothing, and say so, rather than refuse the round and stall the node's money.
      unbilled.push(cdr.sip_call_id);
      continue;
    }
    touched.add(account);
    const charge = new Decimal(cdr.account_charge);
    const current = yield* round.balance(account);
    const lease = new Decimal(yield* round.lease(account));
    const consumed = Decimal.min(charge, lease);
    yield* round.setLease(account, lease.minus(consumed).toFixed());
    const balance = new Decimal(current.balance);
    const reserved = new Decimal(current.reserved);
    // Prepaid: the funds go down. Postpaid: the usage goes up.
    const nextBalance = account.billingMode === 'prepaid' ? balance.minus(charge) : balance.plus(charge);
    yield* round.apply(account, {
      next: { balance: money(nextBalance, balance, charge), reserved: money(reserved.minus(consumed), reserved, consumed) },
      transaction: {
        transaction_type: 'debit',
        amount: money(charge, charge),
        description: `call ${cdr.sip_call_id}`,
        cdr_id: cdrId,
        call_id: cdr.sip_call_id,
      },
    });
    // Billed beyond what the node had reserved for it: recorded per account for the operator (GET balance).
    // The debit above already lowered the headroom every later lease comes out of by the whole charge, so the
    // next leases are smaller by the uncovered part without a second deduction (docs/decisions.md).
    const uncovered = new Decimal(cdr.uncovered ?? '0');
    if (uncovered.greaterThan(0)) {
      const total = new Decimal(yield* tx.overrun(account.entityType, account.entityId)).plus(uncovered);
      yield* tx.addOverrunCdr(account.entityType, account.entityId, money(total, total, uncovered), cdr.sip_call_id);
    }
  }

  const unknown: LeaseState[] = [];
  const recalling = new Set<LedgerEntity>();
  for (const ask of request.leases) {
    const entity = findEntity(ask.entity_type, ask.entity_id);
    if (entity === null) {
      // Not in this store (restored from an older backup?): no lease, rather than refuse the round, which would
      // leave the node's other entities and its CDRs stuck behind this one.
      yield* tx.setLease(node, ask.entity_type, ask.entity_id, '0');
      unknown.push({ entity_type: ask.entity_type, entity_id: ask.entity_id, granted: '0', headroom: '0' });
      continue;
    }
    touched.add(entity);
    let lease = new Decimal(yield* round.lease(entity));
    const giveBack = Decimal.min(new Decimal(ask.give_back), lease);
    if (giveBack.greaterThan(0)) {
      lease = lease.minus(giveBack);
      yield* round.apply(entity, leaseRelease(yield* round.balance(entity), giveBack, `credit lease returned by node ${node}`));
    }
    const want = new Decimal(ask.want);
    // A deactivated retail account is leased nothing more: no node may admit a new call on it.
    if (want.greaterThan(0) && entity.closed !== true) {
      const current = yield* round.balance(entity);
      // A debit waiting on recalled lease comes first (lease-recall.ts withhold).
      const withheld = recalls?.withheldFrom(entity.entityType, entity.entityId) ?? new Decimal(0);
      const share = leaseShare(want, ask.need ?? null, new Decimal(headroom(entity, current)).minus(withheld), {
        nodes: activeNodes,
        perCall: ask.per_call ?? null,
      });
      if (share.short && recalls !== undefined && (yield* recallOthers(tx, recalls, node, entity, share.grant, ask.need ?? null)))
        recalling.add(entity);
      // Whole micro-units: the node counts in them.
      const grant = share.grant.toDecimalPlaces(6, Decimal.ROUND_DOWN);
      if (grant.greaterThan(0)) {
        lease = lease.plus(grant);
        const reserved = new Decimal(current.reserved);
        yield* round.apply(entity, {
          next: { balance: current.balance, reserved: money(reserved.plus(grant), reserved, grant) },
          transaction: {
            transaction_type: 'reserve',
            amount: money(grant, grant),
            description: `credit lease granted to node ${node}`,
            cdr_id: null,
            call_id: null,
          },
        });
      }
    }
    yield* round.setLease(entity, lease.toFixed());
  }
  yield* round.flush();

  const leases: LeaseState[] = [...unknown];
  for (const entity of touched)
    leases.push({
      entity_type: entity.entityType,
      entity_id: entity.entityId,
      granted: yield* round.lease(entity),
      headroom: new Decimal(headroom(entity, yield* round.balance(entity))).toDecimalPlaces(6, Decimal.ROUND_DOWN).toFixed(),
      ...(recalling.has(entity) ? { recalling: true } : {}),
    });
  return { settled, unbilled, leases };
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
  grant: Decimal,
  need: string | null,
): Steps<boolean> {
  const { entityType, entityId } = entity;
  const urgent = need !== null && grant.lessThan(new Decimal(need));
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
 */
export function leaseShare(
  want: Decimal,
  need: string | null,
  headroomLeft: Decimal,
  sharing?: LeaseSharing,
): { grant: Decimal; short: boolean } {
  if (headroomLeft.lessThanOrEqualTo(0)) return { grant: new Decimal(0), short: need !== null && new Decimal(need).greaterThan(0) };
  const whole = Decimal.min(want, headroomLeft);
  if (need === null) return { grant: whole, short: false };
  const needed = new Decimal(need);
  if (headroomLeft.lessThanOrEqualTo(needed)) return { grant: whole, short: needed.greaterThan(0) };
  const unit = needed.greaterThan(0) ? needed : sharing !== undefined && sharing.perCall !== null ? new Decimal(sharing.perCall) : null;
  if (sharing === undefined || unit === null || unit.lessThanOrEqualTo(0))
    return { grant: Decimal.min(whole, Decimal.max(needed, headroomLeft.div(2))), short: false };
  const share = headroomLeft.div(Math.max(1, sharing.nodes));
  if (share.lessThan(unit.mul(SCARCE_CALLS_PER_NODE))) return { grant: Decimal.min(whole, needed), short: needed.greaterThan(0) };
  return { grant: Decimal.min(whole, Decimal.max(needed, share.div(unit).floor().mul(unit))), short: false };
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
}

/**
 * Credit leased to nodes the centre has not heard from since `silentSince` (ISO time) goes back to its
 * accounts: the lease drops to zero and the entity's `reserved` with it, each with a `release`
 * transaction. Safe because such a node stopped admitting on those leases before now (they lapse at the
 * node after `lease_valid_seconds` without an answered round; the centre waits longer), and a node that
 * comes back asks again. `stillSilent` has the last word per node (the caller's own clock). Returns what
 * was taken back, per lease.
 */
export function* reclaimSilentNodesLeases(
  tx: LedgerSteps,
  silentSince: string,
  stillSilent: (node: string) => boolean,
): Steps<ReclaimedLease[]> {
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
    reclaimed.push({ node: lease.node, entityType: lease.entity_type, entityId: lease.entity_id, amount: lease.amount });
  }
  return reclaimed;
}

function balanceKey(entity: LedgerEntity): BalanceKey {
  return { entityType: entity.entityType, entityId: entity.entityId, currency: entity.currency };
}
