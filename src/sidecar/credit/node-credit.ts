import type { Logger } from 'pino';
import { formatMicro, parseMicro } from '../../core/money/micro.js';
import { answerWithHeadroom, parseStoredAnswer, renderAnswer } from '../journal/reservation-answer.js';
import { JournalWriteError, storedCdrOf, type MoneyJournal, type StoredCdr, type StoredReservation } from '../journal/journal.js';
import type { JournalOp } from '../journal/ops.js';
import {
  DEFAULT_LEASE_VALID_SECONDS,
  MAX_LEASE_ASKS,
  type EntityType,
  type LeaseAsk,
  type LeaseState,
  type NodeSyncReply,
} from '../../core/protocol/node-sync.js';
import type { MoneySignals } from '../../core/protocol/deltas.js';
import { affordableBillable } from '../../core/rating/cost-bound.js';
import { DEFAULT_SLICE_SECONDS, SLICE_RETRY_MS, defaultEndMarginMs, endAt, renewAt } from './slices.js';
import { settlementText, type RatedCdr } from '../journal/rated-cdr.js';
import { ReservationTable, type AnswerKind, type ReservationRecord, type SliceTerms } from './reservation-table.js';
import { LivePorts } from '../limits/live-ports.js';

/**
 * The node's money: per entity (customer account, carrier trunk), the credit
 * lease the centre granted this node, what live calls hold of it
 * (reservations) and what finished calls spent that the centre has not
 * settled yet. A call is admitted only within what is left:
 *
 *   available = granted - held - spent
 *
 * so the calls this node admits never exceed its lease, and the centre never
 * grants leases beyond the entity's headroom. Everything here is in memory
 * (admission makes no network hop and no database read); every change is
 * journalled, and acknowledged only after its commit.
 */
export interface CreditSettings {
  /** Longest call admission reserves for, seconds. */
  admissionSeconds: number;
  /** A reservation with no CDR is released this long after its call's longest duration. */
  reservationGraceSeconds: number;
  /** Lease asked for at a time, micro-units (more when one call needs more). */
  leaseChunkMicro: number;
  /** Unused lease goes back to the centre after this long without admissions. */
  idleReturnMs: number;
  /** Postpaid calls when the centre cannot be reached and the lease is spent. */
  offlinePostpaid: 'allow' | 'deny';
  /** Seconds of call a slice pays for (credit/slices.ts); null: admission reserves the whole call (no MI to end calls with). */
  sliceSeconds: number | null;
  /**
   * How long before its paid time a call that could not buy its next slice is ended, ms; absent: a quarter of
   * a slice, at most 6 s (defaultEndMarginMs). Less than the renewal's lead (renewLeadMs), or no retry is left.
   */
  sliceEndMarginMs?: number;
  /**
   * How long an admission the centre could not lease for may wait while the centre recalls other nodes'
   * unused lease for it (the answer says `recalling`), for the refresh that follows over the live channel;
   * 0 or absent: refused at once, as before the channel.
   */
  recallWaitMs?: number;
  /**
   * How long an admission may wait on the centre before it is refused (`credit_unavailable`) and reserves
   * nothing, ms; absent: as long as its rounds take. OpenSIPS stops waiting for the answer after the script's
   * rest_curl_timeout (1 s by default) and answers the call itself: an admission made after that would hold a
   * reservation and a port for a call never placed, until the reservation expired.
   */
  admissionDeadlineMs?: number;
  /**
   * The clock reservations expire by in memory (the reservation table's windows), given the wall-clock `now`
   * the caller passes; absent: that `now` itself (tests, whose `now` is already steady). The sidecar passes
   * steadyEpochClock(): a wall-clock step (NTP) then neither expires every reservation at once nor keeps them
   * all past their time. What is journalled keeps wall-clock instants.
   */
  steadyClock?: (now: number) => number;
}

/**
 * Epoch ms as the wall clock read when it was made, advanced since by the monotonic clock (performance.now): it
 * does not jump when the wall clock is stepped.
 */
export function steadyEpochClock(): (now: number) => number {
  const wallAtStart = Date.now();
  const monotonicAtStart = performance.now();
  return () => wallAtStart + (performance.now() - monotonicAtStart);
}

export interface EntityRef {
  type: EntityType;
  id: number;
}

export class EntityMoney {
  grantedMicro = 0;
  heldMicro = 0;
  spentMicro = 0;
  /** What the entity may spend beyond all leases, as the centre last said; NaN until it has. */
  centreHeadroomMicro = NaN;
  lastActivity = 0;
  /**
   * When an ask last came back with nothing: background top-ups and slice renewals do not ask again before
   * then. An admission the lease does not cover asks the centre at once regardless (a top-up there is
   * usable by the next call), sharing the round with every other admission waiting.
   */
  dryUntil = 0;
  /** The centre wants this node's unused lease back (a call elsewhere was short): it goes in the next round. */
  recalled = false;
  /** The recall came over the live channel: the next round names the entity even with nothing to give back, as the answer the centre waits for. */
  recallSignalled = false;
  /** The last answer said the centre is recalling other nodes' lease of this entity for this node's call. */
  recallPending = false;
  /** Counts the centre's refreshes of this entity (live channel): an admission waiting for one sees it move. */
  refreshCount = 0;
  /** Admissions waiting for the next refresh (at most --recall-wait-ms each). */
  refreshWaiters: (() => void)[] = [];
  /** What the last call admitted on this entity reserved (or needed): the centre leases in calls of this size. */
  perCallMicro = 0;
  /** Reservations made in the current demand window and the one before it: what a lease ask is sized to. */
  demandMicro = 0;
  demandBeforeMicro = 0;
  demandWindowStart = 0;
  wantMicro = 0;
  /** What the admissions waiting on the next round need of `wantMicro` (the centre keeps some headroom for other nodes beyond it). */
  needMicro = 0;
  giveBackMicro = 0;
  /** An ask for this entity is in a round in flight. */
  asking = false;
  /** The lapse (NodeCredit.lapses) an answered round taken during it last gave this entity's figures in; 0: none. */
  confirmedInLapse = 0;
  waiters: ((reached: boolean) => void)[] = [];
  constructor(
    readonly type: EntityType,
    readonly id: number,
    /** Its place in the node's list of entities: reservations name their entity by it. */
    readonly index: number,
  ) {}

  /** Reservations made over the last one to two demand windows, micro-units. */
  recentDemandMicro(now: number): number {
    this.rollDemand(now);
    return this.demandMicro + this.demandBeforeMicro;
  }

  recordDemand(amountMicro: number, now: number): void {
    this.rollDemand(now);
    this.demandMicro += amountMicro;
    this.perCallMicro = amountMicro;
  }

  private rollDemand(now: number): void {
    const since = now - this.demandWindowStart;
    if (since < DEMAND_WINDOW_MS) return;
    this.demandBeforeMicro = since < 2 * DEMAND_WINDOW_MS ? this.demandMicro : 0;
    this.demandMicro = 0;
    this.demandWindowStart = now;
  }

  get availableMicro(): number {
    return this.grantedMicro - this.heldMicro - this.spentMicro;
  }

  /** The entity's headroom as this node sees it: its own unused lease plus what the centre has left. */
  get headroomMicro(): number {
    return this.availableMicro + (Number.isNaN(this.centreHeadroomMicro) ? 0 : this.centreHeadroomMicro);
  }

  /** It holds lease or live calls: its figures are asked for at a start and confirmed after a lapse. */
  get holdsCredit(): boolean {
    return this.grantedMicro !== 0 || this.heldMicro !== 0;
  }

  /** The centre's recall is acted on (or dropped): the top-up this node wanted for the entity is cancelled with it. */
  dropRecall(): void {
    this.recalled = false;
    this.wantMicro = 0;
    this.needMicro = 0;
  }
}

export interface Plan {
  amountMicro: number;
  maxDurationSeconds: number | null;
  /** Reserve slice by slice: the first slice's terms (its paidUntil counts from the admission); null: the whole call. */
  slice: Omit<SliceTerms, 'paidUntil' | 'ending'> | null;
}

/** What the slice keeper (credit/slices.ts) must do for a sliced call: look for its dialog, or end it. */
export interface SliceAction {
  kind: 'check' | 'end';
  slot: number;
  id: number;
  callId: string;
  dialogId: string;
  paidUntil: number;
  /** When the reservation lapses (its grace after the paid time): an end still failing by then is given up. */
  expiresAt: number;
}

export interface AdmitRequest {
  entity: EntityRef;
  callId: string;
  /** What to reserve out of what is available (headroom: that and what the centre has left); null when that does not cover the call. */
  plan: (availableMicro: number, headroomMicro: number) => Plan | null;
  /** false: the entity's limit is not enforced (postpaid without auto-cutoff); the call is reserved for the record and always admitted. */
  enforce: boolean;
  /** Admit with the full plan when the centre cannot be reached and the lease is spent (the postpaid policy). */
  admitWhenUnreachable: boolean;
  /** Which answer the call gets (and a repeated call id gets again): call/admit's or call-admit/check's. */
  answer: AnswerKind;
  /**
   * The customer trunk whose port the call takes, and the trunk's port_limit (0 or less: none); null: the
   * call takes no port (call-admit/check names no trunk).
   */
  port: { trunkId: number; limit: number } | null;
  now: number;
}

/**
 * What an admission waited for: 'lease', a round with the centre (the lease did not cover the call); 'recall',
 * also other nodes' lease recalled for it (the live channel); null: nothing.
 */
export type AdmitWait = 'lease' | 'recall' | null;

export type AdmitOutcome =
  | { kind: 'reserved'; answer: string; entity: EntityMoney; waited: AdmitWait; committed: Promise<void> }
  | { kind: 'replayed'; answer: string }
  | {
      kind: 'refused';
      reason: 'insufficient_balance' | 'credit_unavailable' | 'port_limit_reached' | 'call_id_reused';
      entity: EntityMoney;
    };

/**
 * The waiter of an ask no admission waits on (figures wanted at a start, a refresh, learnHeadroom): a round
 * with more asks than it carries takes the ones admissions wait on first.
 */
const NO_ONE_WAITING = (): void => undefined;

/** A committing CDR's promise until its write is queued (replaced at once; read by nothing in between). */
const NOT_YET_WRITTEN: Promise<void> = Promise.resolve();

/** A settlement on its way to the centre. */
export interface OutboxEntry {
  /** The CDR's id in the journal: the outbox is in id order. */
  id: number;
  sipCallId: string;
  entity: EntityMoney;
  chargeMicro: number;
  /** The SettlementCdr as JSON, as sent (journal/rated-cdr.ts: settlementText). */
  settlementJson: string;
}

export interface Round {
  settlements: OutboxEntry[];
  asks: { entity: EntityMoney; ask: LeaseAsk; waiters: ((reached: boolean) => void)[] }[];
  /**
   * Taken while this node's leases had lapsed, and it asks after every entity holding lease or live calls that
   * no answered round has since the lapse began: with its answer, every lease has been given afresh.
   */
  confirmsLeases: boolean;
  /** The lapse it was taken in (NodeCredit.lapses), 0: taken while the leases were valid. */
  lapse: number;
  /**
   * Entities with asks left out of this round (more than MAX_LEASE_ASKS were due), kept as they were for the
   * next round, which the link sends at once; empty when none was.
   */
  leftOut: EntityMoney[];
  /**
   * The journal record of the smaller leases this round gives back (idle or recalled), or null: the round is
   * sent only once it is durable, so a node killed meanwhile does not restart on a lease the centre took back.
   */
  durable: Promise<void> | null;
}

/** Asks the centre for a round (`urgent`: now, for an admission waiting on it; else within the background interval); resolves true when it reached the centre. */
export type RoundTrigger = (urgent: boolean) => Promise<boolean>;

const RECENT_LIMIT = 65_536;
/** When this node last had an answer from the centre (epoch ms), kept across restarts. */
const REACHED_KEY = 'centre_reached_at';
/** The lease validity the centre last gave, in ms, for the time after a restart before its next answer. */
const VALIDITY_KEY = 'lease_valid_ms';
const NO_SLOT = -1;
/** reservationOf's answer for a call that holds no live reservation. */
export const NO_RESERVATION = NO_SLOT;
/**
 * A lease ask is sized to the node's own demand: what it reserved on the entity over the last demand window
 * or two, at least twice TOP_UP_CALLS calls like the one that prompted it (and --lease-chunk); the centre
 * grants at most this node's share of the headroom (sync/ledger/settlement.ts) ...
 */
const DEMAND_WINDOW_MS = 10_000;
/** ... and a top-up starts when fewer than this many calls (or a quarter of the demand) are left. */
const TOP_UP_CALLS = 4;

export class NodeCredit {
  private readonly customers = new Map<number, EntityMoney>();
  private readonly carriers = new Map<number, EntityMoney>();
  /** Partner retail accounts (calls through access numbers), settled and leased like customers. */
  private readonly retails = new Map<number, EntityMoney>();
  /** Both maps' entities, by their index. */
  private readonly entities: EntityMoney[] = [];
  /** Live reservations, and the newest finished ones for an admit repeated after its call ended. */
  private readonly reservations = new ReservationTable(RECENT_LIMIT);
  /** Live calls per customer trunk: a port lives as long as its call's reservation (limits/live-ports.ts). */
  readonly ports = new LivePorts();
  private readonly outbox = new Map<string, OutboxEntry>();
  private readonly committingCdrs = new Map<string, { cdr: RatedCdr; committed: Promise<void> }>();
  /**
   * The CDRs of the record being filled, to leave `committingCdrs` once it settles: one reaction per
   * record, not two closures and a reaction per CDR (a refused record's CDRs are undone by undoRefused).
   */
  private committingRecord: { durable: Promise<void>; sipCallIds: string[] } | null = null;
  private requestRound: RoundTrigger = () => Promise.resolve(false);
  /** CDRs recorded since the last round was taken; at `roundCdrs` (0: never), `roundFull` is called once (sendRoundAt). */
  private cdrsSinceRound = 0;
  private roundCdrs = 0;
  private roundFull: () => void = () => undefined;
  /** Leases are good for this long after the last answered round (the centre says how long). */
  private leaseValidMs = DEFAULT_LEASE_VALID_SECONDS * 1000;
  private reachedAt: number;
  /** performance.now() at the last answered round in this process (NaN: none since the start). */
  private reachedAtMonotonic = Number.NaN;
  /** No answered round for longer than the leases are valid: admit on none until rounds have confirmed them all. */
  private lapsed = false;
  /** Counts lapses: the one under way is `lapses` (entities confirmed in it carry its number). */
  private lapses = 0;
  private nextCdrId: number;
  private nextReservationId: number;
  /**
   * Sliced calls the last run had begun to end (out of credit) and still held: the MI calls ending them died
   * with that process, so the first upkeep tick asks for their ends again. Without it such a call ran on unpaid
   * until its dialog's cap, its reservation given back after the grace period.
   */
  private endsToResume: { slot: number; id: number }[] = [];
  /**
   * Whether calls admitted now may be reserved in slices: the node's MI answers (SliceKeeper.probe), so a call
   * short of its next slice can be ended. While it does not, admission reserves whole calls.
   */
  slicesEnforceable = true;

  constructor(
    private readonly journal: MoneyJournal,
    readonly settings: CreditSettings,
    private readonly log: Logger,
  ) {
    this.nextCdrId = journal.lastCdrId() + 1;
    this.nextReservationId = journal.lastReservationId() + 1;
    this.reachedAt = journal.counter(REACHED_KEY);
    this.leaseValidMs = journal.counter(VALIDITY_KEY) || this.leaseValidMs;
    journal.onRefused((ops, error) => this.undoRefused(ops, error));
    this.recover();
  }

  /** Where rounds go (the CentreLink); until set, the centre is unreachable. */
  connect(trigger: RoundTrigger): void {
    this.requestRound = trigger;
  }

  /**
   * Calls `full` once `cdrs` CDRs have been recorded since the last round was taken, and not again before the
   * next is taken: the link then sends them at once rather than at its next interval. At high call rates an
   * interval's CDRs make a round that takes the centre too long (issue 21, docs/performance-log.md 2026-12-07).
   */
  sendRoundAt(cdrs: number, full: () => void): void {
    this.roundCdrs = cdrs;
    this.roundFull = full;
  }

  entity(ref: EntityRef): EntityMoney {
    const map = ref.type === 'customer' ? this.customers : ref.type === 'retail' ? this.retails : this.carriers;
    let entity = map.get(ref.id);
    if (entity === undefined) {
      entity = new EntityMoney(ref.type, ref.id, this.entities.length);
      map.set(ref.id, entity);
      this.entities.push(entity);
    }
    return entity;
  }

  /**
   * Admits a call: reserves what `plan` decides from what is available, asking the centre for more
   * lease first when that does not cover the call. Within the lease it decides at once (no promise
   * per call): a reservation is acknowledged only after its `committed`.
   */
  admit(request: AdmitRequest): AdmitOutcome | Promise<AdmitOutcome> {
    const { callId, plan, now } = request;
    const entity = this.entity(request.entity);
    // A CDR of this Call-ID waits in the spool (parked, cdr/spool.ts): that call has ended, even while its
    // reservation is held, so this is another call, refused as one whose CDR the node holds (not replayed).
    if (this.parkedCdr(callId)) return { kind: 'refused', reason: 'call_id_reused', entity };
    const existing = this.reservations.find(callId);
    if (existing !== NO_SLOT) return this.answerRepeated(existing, entity);
    // The same for a Call-ID this node holds a CDR of whose reservation has left memory (or that had none): a
    // new reservation would be held, but its CDR refused as a conflict and never billed. The CDR filter answers
    // in memory; money.db is read only when it says "maybe" (a reuse, or one of its rare false positives).
    if (this.hasCdr(callId, this.reservations.hashOf(callId))) return { kind: 'refused', reason: 'call_id_reused', entity };
    // call/auth refuses a full trunk before this; checked again where the port is taken, as calls admitted
    // after waiting for the centre were all authorised while none of them held a port yet.
    if (this.portsFull(request)) return { kind: 'refused', reason: 'port_limit_reached', entity };
    entity.lastActivity = now;
    const decided = !request.enforce
      ? plan(Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY)
      : this.leasesValid(now)
        ? plan(entity.availableMicro, entity.headroomMicro)
        : null;
    if (decided === null) return this.admitAfterAsking(request, entity);
    return this.reserve(request, entity, decided, null);
  }

  /**
   * Whether this node may admit on its leases: only within their validity since its last answered round.
   * A node cut off from the centre for longer stops, as the centre will take the leases back.
   */
  private leasesValid(now: number): boolean {
    if (this.lapsed) return false;
    if (this.sinceAnswered(now) < this.leaseValidMs) return true;
    this.lapsed = true;
    this.lapses++;
    if (this.reachedAt === 0)
      // A new node: nothing lapsed, there is nothing yet (this used to be logged as a lapse "since 1970").
      this.log.info('no money round answered yet: admissions wait for the control plane to grant the first leases');
    else
      this.log.warn(
        { last_answered_round: new Date(this.reachedAt).toISOString(), lease_valid_seconds: this.leaseValidMs / 1000 },
        'credit leases lapsed: no answered money round within their validity; admitting on none until the centre confirms them',
      );
    return false;
  }

  /**
   * Milliseconds since the centre last answered a round. Within a process, on the monotonic clock: a wall
   * clock stepped back must not stretch the leases past the time the centre takes them back, nor one
   * stepped forward end them early. Across a restart only the journalled wall time is known.
   */
  private sinceAnswered(now: number): number {
    return Number.isNaN(this.reachedAtMonotonic) ? now - this.reachedAt : performance.now() - this.reachedAtMonotonic;
  }

  /** Keep-alive: a node holding leases has a round answered well within their validity, busy or not. */
  keepaliveDue(now: number): boolean {
    if (this.sinceAnswered(now) < this.leaseValidMs / 3) return false;
    return this.entities.some((entity) => entity.grantedMicro > 0);
  }

  /** The lease does not cover the call: ask the centre for more, then decide. */
  private async admitAfterAsking(request: AdmitRequest, entity: EntityMoney): Promise<AdmitOutcome> {
    const { callId, plan, now } = request;
    const deadline = performance.now() + (this.settings.admissionDeadlineMs ?? Number.POSITIVE_INFINITY);
    const full = plan(Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY);
    const needMicro = full?.amountMicro ?? 0;
    if (needMicro > 0) entity.perCallMicro = needMicro;
    const waitUntil = performance.now() + (this.settings.recallWaitMs ?? 0);
    let refreshes = entity.refreshCount;
    // At once, whatever an earlier answer said (dryUntil): the centre may have been topped up since.
    let reached = await this.askForLease(entity, this.wantFor(entity, needMicro, now), needMicro, now, true);
    // Its entity confirmed but not yet every lease (more than one round's asks): it waits in the rounds that
    // confirm the rest, its entity asked after in each (first, as it has a waiter) so each goes out non-empty.
    while (reached && this.lapsed) reached = await this.askForLease(entity, 0, 0, now, true);
    let recalled = false;
    for (;;) {
      // The same call id may have been admitted while we waited.
      const raced = this.reservations.find(callId);
      if (raced !== NO_SLOT) return this.answerRepeated(raced, entity);
      // Calls that did not wait may have taken the trunk's last ports meanwhile.
      if (this.portsFull(request)) return { kind: 'refused', reason: 'port_limit_reached', entity };
      const decided =
        (this.leasesValid(now) ? plan(entity.availableMicro, entity.headroomMicro) : null) ??
        (!reached && request.admitWhenUnreachable ? full : null);
      if (decided !== null) {
        if (performance.now() > deadline) return this.tooLate(entity);
        return this.reserve(request, entity, decided, recalled ? 'recall' : 'lease');
      }
      // Short, while the centre recalls other nodes' unused lease for this call: wait (a bounded moment) for the
      // refresh it sends once that lease is back, and ask again. Nothing blocks meanwhile: a timer and a promise.
      const left = waitUntil - performance.now();
      if (!reached || !entity.recallPending || left <= 0) break;
      if (entity.refreshCount === refreshes && !(await this.refreshed(entity, left))) break;
      refreshes = entity.refreshCount;
      recalled = true;
      reached = await this.askForLease(entity, this.wantFor(entity, needMicro, now), needMicro, now, true);
    }
    return { kind: 'refused', reason: reached ? 'insufficient_balance' : 'credit_unavailable', entity };
  }

  /** When an admission past its deadline was last logged: one line a second at most, however many there are. */
  private lateLoggedAt = 0;

  /** An admission that could be made only after OpenSIPS stopped waiting for it: refused, nothing held. */
  private tooLate(entity: EntityMoney): AdmitOutcome {
    const at = performance.now();
    if (at - this.lateLoggedAt >= 1000) {
      this.lateLoggedAt = at;
      this.log.warn(
        { entity_type: entity.type, entity_id: entity.id, admission_deadline_ms: this.settings.admissionDeadlineMs },
        'admission refused: the centre answered after the deadline (OpenSIPS has stopped waiting); nothing reserved',
      );
    }
    return { kind: 'refused', reason: 'credit_unavailable', entity };
  }

  /** Resolves true at the entity's next refresh from the centre, false after `ms` without one. */
  private refreshed(entity: EntityMoney, ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const came = (): void => {
        clearTimeout(timer);
        resolve(true);
      };
      const timer = setTimeout(() => {
        entity.refreshWaiters = entity.refreshWaiters.filter((waiter) => waiter !== came);
        resolve(false);
      }, ms);
      entity.refreshWaiters.push(came);
    });
  }

  /**
   * Money signals from the centre over the live channel (issue 18): a recall hands back this node's unused
   * lease of the entity, a refresh asks for its figures (and lease, where this node has calls on it) again;
   * either in one round at once, shared with whatever else is due.
   */
  moneySignals(signals: MoneySignals, now: number): void {
    for (const ref of signals.recall) {
      const entity = this.entity({ type: ref.entity_type, id: ref.entity_id });
      entity.recalled = true;
      entity.recallSignalled = true;
    }
    for (const ref of signals.refresh) {
      const entity = this.entity({ type: ref.entity_type, id: ref.entity_id });
      entity.refreshCount++;
      entity.dryUntil = 0;
      if (entity.refreshWaiters.length > 0) {
        // The admissions waiting on it ask again themselves, each with what its call needs.
        const waiters = entity.refreshWaiters;
        entity.refreshWaiters = [];
        for (const resolve of waiters) resolve();
        continue;
      }
      // Nobody waits: this node takes the new figures, and a lease sized to its demand if it has calls on the entity.
      if (entity.perCallMicro > 0) entity.wantMicro = Math.max(entity.wantMicro, this.wantFor(entity, entity.perCallMicro, now));
      entity.waiters.push(NO_ONE_WAITING);
    }
    if (signals.recall.length > 0 || signals.refresh.length > 0) void this.requestRound(true);
  }

  private portsFull(request: AdmitRequest): boolean {
    return request.port !== null && this.ports.full(request.port.trunkId, request.port.limit);
  }

  private reserve(request: AdmitRequest, entity: EntityMoney, decided: Plan, waited: AdmitWait): AdmitOutcome {
    const trunkId = request.port?.trunkId ?? null;
    const { answer, committed } = this.hold(entity, request.callId, decided, request.answer, trunkId, request.now);
    // Top up before the next calls need it, sized to this node's demand, in the next background round.
    const demand = entity.recentDemandMicro(request.now);
    if (
      request.enforce &&
      entity.availableMicro < Math.max(this.settings.leaseChunkMicro / 4, TOP_UP_CALLS * decided.amountMicro, demand / 4)
    ) {
      this.topUp(entity, this.wantFor(entity, decided.amountMicro, request.now), request.now);
    }
    return { kind: 'reserved', answer, entity, waited, committed };
  }

  /** Lease to ask for: this node's recent demand on the entity, at least a few calls like this one and --lease-chunk. */
  private wantFor(entity: EntityMoney, callMicro: number, now: number): number {
    return Math.max(this.settings.leaseChunkMicro, 2 * TOP_UP_CALLS * callMicro, entity.recentDemandMicro(now));
  }

  /**
   * An admission under a Call-ID the table holds. A retry of a live call's admission gets its first answer. A
   * Call-ID whose call has ended is not that call again: answering it `allowed` would admit a second call holding
   * nothing, whose CDR the duplicate check then refuses (one CDR a Call-ID, as the contract dedupes them): a free
   * call for whoever reuses Call-IDs.
   */
  private answerRepeated(slot: number, entity: EntityMoney): AdmitOutcome | Promise<AdmitOutcome> {
    if (!this.reservations.isHeld(slot, this.reservations.id(slot))) return { kind: 'refused', reason: 'call_id_reused', entity };
    return this.replay(slot);
  }

  /** The first answer again, once the reservation it made is durable. */
  private async replay(slot: number): Promise<AdmitOutcome> {
    const { id, callId, answerKind, headroomMicro, maxDurationSeconds } = this.reservations.read(slot);
    await this.journal.written();
    // Its own record may have been refused (and the reservation dropped) while a later one was not.
    if (this.reservations.find(callId) !== slot || this.reservations.id(slot) !== id)
      throw new JournalWriteError('the reservation for this call id was not committed', undefined);
    return { kind: 'replayed', answer: renderAnswer(answerKind, headroomMicro, maxDurationSeconds) };
  }

  private hold(
    entity: EntityMoney,
    callId: string,
    plan: Plan,
    answerKind: AnswerKind,
    trunkId: number | null,
    now: number,
  ): { answer: string; committed: Promise<void> } {
    const id = this.nextReservationId++;
    const slice: SliceTerms | null =
      plan.slice === null ? null : { ...plan.slice, paidUntil: now + plan.slice.paidBillable * 1000, ending: false };
    const expiresAt =
      slice !== null
        ? renewAt(slice, this.settings.sliceSeconds!)
        : now + ((plan.maxDurationSeconds ?? this.settings.admissionSeconds) + this.settings.reservationGraceSeconds) * 1000;
    entity.heldMicro += plan.amountMicro;
    entity.recordDemand(plan.amountMicro, now);
    const headroomMicro = entity.headroomMicro;
    const headroom = formatMicro(headroomMicro);
    const answer = answerWithHeadroom(answerKind, headroom, plan.maxDurationSeconds);
    this.reservations.hold({
      id,
      callId,
      entityIndex: entity.index,
      amountMicro: plan.amountMicro,
      maxDurationSeconds: plan.maxDurationSeconds,
      expiresAt: this.steadyInstant(expiresAt, now),
      answerKind,
      headroomMicro,
      slice,
      trunkId,
    });
    if (trunkId !== null) this.ports.take(trunkId);
    // If the record is refused, undoRefused() takes the reservation back.
    const committed = this.journal.write({
      op: 'held',
      id,
      callId,
      entityType: entity.type,
      entityId: entity.id,
      amountMicro: plan.amountMicro,
      maxDuration: plan.maxDurationSeconds,
      createdAt: now,
      expiresAt,
      answerKind,
      headroom,
      slice: slice === null ? null : JSON.stringify(slice),
      trunkId,
    });
    return { answer, committed };
  }

  /** A record the journal could not make durable: its reservations were never admitted (the endpoint answers 503). */
  private undoRefused(ops: JournalOp[], error: Error): void {
    for (const [i, op] of ops.entries()) {
      if (op.op === 'rated') {
        // recordCdr writes the finish of the reservation the CDR closed right after it, in the same write.
        const next = ops[i + 1] as JournalOp | undefined;
        const closed = next?.op === 'finish' && next.state === 'settled' ? next.id : null;
        this.undoRefusedCdr(op, closed, error);
        continue;
      }
      if (op.op !== 'held') continue;
      const slot = this.reservations.find(op.callId);
      if (slot === NO_SLOT) continue;
      // Read before drop() frees the slot.
      const entityIndex = this.reservations.entityIndex(slot);
      const trunkId = this.reservations.trunkId(slot);
      // Not held any more (a CDR or a release finished it meanwhile): what it held was already given back.
      if (this.reservations.drop(slot, op.id)) this.letGo(entityIndex, trunkId, op.amountMicro);
      this.log.error({ err: error, call_id: op.callId }, 'reservation not committed');
    }
  }

  /** A CDR whose record was refused: not billed here, not sent to the centre, and the call it closed is live again. */
  private undoRefusedCdr(cdr: RatedCdr, reservationId: number | null, error: Error): void {
    const { sipCallId } = cdr;
    const committing = this.committingCdrs.get(sipCallId);
    if (committing === undefined) return; // not this process's CDR in the making (nothing of it was counted)
    this.committingCdrs.delete(sipCallId);
    // Out of the outbox, and its charge off what the entity spent (the retail account's for a call through an
    // access number): unless a round already settled it (durability full: a round may carry a CDR before its
    // record is synced), which took the charge off then; the centre has it once, and the resend is a duplicate.
    const entry = this.outbox.get(sipCallId);
    if (entry !== undefined && entry.id === cdr.id) {
      this.outbox.delete(sipCallId);
      entry.entity.spentMicro -= cdr.chargeMicro;
    }
    const slot = this.reservations.find(sipCallId);
    if (reservationId !== null && slot !== NO_SLOT) {
      const amountMicro = this.reservations.amountMicro(slot);
      // False when the slot no longer holds that reservation (rehold checks its id).
      if (this.reservations.rehold(slot, reservationId)) {
        this.entities[this.reservations.entityIndex(slot)].heldMicro += amountMicro;
        // The call is live again: its port with it (even past the limit: it was admitted within it).
        const trunkId = this.reservations.trunkId(slot);
        if (trunkId !== null) this.ports.take(trunkId);
      }
    }
    this.log.error({ err: error, sip_call_id: sipCallId }, 'cdr not committed');
  }

  /**
   * An entity's headroom as admission sees it (read-only: the simulator). Asks the centre for its
   * figures (a round that grants nothing) when this node has never had them.
   */
  async headroomOf(ref: EntityRef, now: number): Promise<number> {
    const entity = this.entity(ref);
    if (Number.isNaN(entity.centreHeadroomMicro)) await this.askForLease(entity, 0, 0, now);
    return entity.headroomMicro;
  }

  /** Frees a live reservation (a call that never reached a carrier). */
  async release(callId: string, now: number): Promise<boolean> {
    const slot = this.reservations.find(callId);
    if (slot === NO_SLOT) return false;
    const id = this.reservations.id(slot);
    if (!this.reservations.isHeld(slot, id)) return false;
    await this.journal.written();
    if (!this.finish(slot, id)) return false;
    await this.journal.write({ op: 'finish', id, state: 'released', at: now });
    return true;
  }

  /** Takes a live reservation off its entity (it stays among the recently finished); false when it was no longer live. */
  private finish(slot: number, id: number): boolean {
    const { reservations } = this;
    const entityIndex = reservations.entityIndex(slot);
    const trunkId = reservations.trunkId(slot);
    const amountMicro = reservations.amountMicro(slot);
    if (!reservations.finish(slot, id)) return false;
    this.letGo(entityIndex, trunkId, amountMicro);
    return true;
  }

  /** A reservation no longer holds: its amount goes back to its entity, its port (if it took one) to its trunk. */
  private letGo(entityIndex: number, trunkId: number | null, amountMicro: number): void {
    this.entities[entityIndex].heldMicro -= amountMicro;
    if (trunkId !== null) this.ports.giveBack(trunkId);
  }

  /**
   * The call's live reservation (NO_RESERVATION: it holds none: never admitted, or ended), for `retailOf` and
   * `recordCdr`: one lookup of the Call-ID serves both. Valid until the event loop turns (a release or an
   * expiry may reuse the slot), so it is taken and used in one synchronous stretch.
   */
  reservationOf(callId: string): number {
    return this.reservations.find(callId);
  }

  /** The retail account a reservation is held against; null: another kind of entity's. */
  retailOf(reservation: number): number | null {
    const entity = this.entities[this.reservations.entityIndex(reservation)];
    return entity.type === 'retail' ? entity.id : null;
  }

  /**
   * A rated CDR: its reservation (if any) closes, its charge counts as spent until the centre settles
   * it, and it joins the outbox. For an account held to a limit (`heldToLimit`), what the reservation did
   * not cover (all of the charge without one) is `uncoveredMicro`: billed all the same (the call happened),
   * but said in the answer and carried to the centre with the settlement. It needs no separate deduction
   * here: `spentMicro` takes the whole charge while `heldMicro` gave back only the reservation, so what the
   * lease has left for the next calls is already smaller by it. Fills in the CDR's `id`, `reservedMicro`
   * (what its reservation held, null when there was none) and `uncoveredMicro`. `reservation`: the call's,
   * from `reservationOf` in the same synchronous stretch.
   */
  recordCdr(cdr: RatedCdr, heldToLimit: boolean, now: number, reservation: number): Promise<void> {
    const id = (cdr.id = this.nextCdrId++);
    const entity = this.billedEntity(cdr);
    const slot = reservation;
    let reservationId = 0;
    let reservedMicro: number | null = null;
    if (slot !== NO_SLOT) {
      reservationId = this.reservations.id(slot);
      const amountMicro = this.reservations.amountMicro(slot);
      if (this.finish(slot, reservationId)) reservedMicro = amountMicro;
    }
    cdr.reservedMicro = reservedMicro;
    cdr.uncoveredMicro = heldToLimit ? Math.max(0, cdr.chargeMicro - (reservedMicro ?? 0)) : 0;
    entity.spentMicro += cdr.chargeMicro;
    // The settlement text is made now and kept flat, not when the round goes: kept until its round, a CDR's
    // object with its strings and boxed times costs each scavenge more than one flat string does (callgrind,
    // docs/performance-log.md 2026-12-07).
    const settlementJson = flat(settlementText(cdr));
    this.outbox.set(cdr.sipCallId, { id, sipCallId: cdr.sipCallId, entity, chargeMicro: cdr.chargeMicro, settlementJson });
    // Registered before the write: a journal that refuses at once calls undoRefused from inside write().
    const committing = { cdr, committed: NOT_YET_WRITTEN };
    this.committingCdrs.set(cdr.sipCallId, committing);
    // If the record is refused, undoRefused() takes the CDR back (and makes its reservation live again).
    // Two calls rather than a spread of a conditional array into one: the common case passes one op.
    const committed =
      reservedMicro === null
        ? this.journal.write(cdr)
        : this.journal.write(cdr, { op: 'finish', id: reservationId, state: 'settled', at: now });
    committing.committed = committed;
    this.forgetOnceSettled(committed, cdr.sipCallId);
    // After its write is queued, as the interval's rounds are taken. One compare a CDR; 0 never equals the count.
    if (++this.cdrsSinceRound === this.roundCdrs) this.roundFull();
    return committed;
  }

  /** A call through an access number is the retail account's (its settlement names it); any other, its account's. */
  private billedEntity(cdr: RatedCdr): EntityMoney {
    return this.entity(
      cdr.retailAccountId === null ? { type: 'customer', id: cdr.accountId } : { type: 'retail', id: cdr.retailAccountId },
    );
  }

  /** `sipCallId` leaves `committingCdrs` once its record settles (then the journal answers for it, or it was undone). */
  private forgetOnceSettled(committed: Promise<void>, sipCallId: string): void {
    let record = this.committingRecord;
    if (record === null || record.durable !== committed) {
      const settling = { durable: committed, sipCallIds: [] as string[] };
      const forget = (): void => {
        if (this.committingRecord === settling) this.committingRecord = null;
        for (const id of settling.sipCallIds) if (this.committingCdrs.get(id)?.committed === committed) this.committingCdrs.delete(id);
      };
      committed.then(forget, forget);
      record = this.committingRecord = settling;
    }
    record.sipCallIds.push(sipCallId);
  }

  /**
   * Whether a CDR of this Call-ID is parked in the OpenSIPS spool (cdr/spool.ts, which the sidecar sets once it
   * has one): taken under it, that CDR was not yet.
   */
  parkedCdr: (sipCallId: string) => boolean = () => false;

  /**
   * Whether a CDR was taken under this Call-ID (committed or committing), without making its texts. `callIdHash`:
   * the Call-ID's hashCallId when the caller has it (an admission, from its reservation lookup).
   */
  hasCdr(sipCallId: string, callIdHash?: number): boolean {
    return this.committingCdrs.has(sipCallId) || this.journal.hasCdr(sipCallId, callIdHash);
  }

  /** A CDR already taken under this Call-ID (committed, or committing: then wait for `committed`). */
  findCdr(sipCallId: string): { cdr: StoredCdr; committed: Promise<void> } | null {
    const committing = this.committingCdrs.get(sipCallId);
    // Its texts are made only now: a resend is rare, and a new CDR never needs them here.
    if (committing !== undefined) return { cdr: storedCdrOf(committing.cdr), committed: committing.committed };
    const cdr = this.journal.findCdr(sipCallId);
    return cdr === null ? null : { cdr, committed: Promise.resolve() };
  }

  /**
   * Reservations due: whole-call ones whose calls must have ended without a CDR are released (`expired`
   * counts them); sliced calls buy their next slice, or are to be ended (`slices`: what the keeper must do).
   */
  expire(now: number): { expired: number; slices: SliceAction[] } {
    let expired = 0;
    const slices: SliceAction[] = [];
    if (this.endsToResume.length > 0) {
      for (const { slot, id } of this.endsToResume) if (this.reservations.isHeld(slot, id)) slices.push(this.endAgain(slot, now));
      this.endsToResume = [];
    }
    for (const slot of this.reservations.due(this.steadyNow(now))) {
      const id = this.reservations.id(slot);
      const terms = this.reservations.slice(slot);
      if (terms !== null && !terms.ending) {
        const action = this.renewSlice(slot, id, terms, now);
        if (action !== null) slices.push(action);
      } else if (this.finish(slot, id)) {
        expired++;
        void this.journal.write({ op: 'finish', id, state: 'expired', at: now }).catch(() => undefined);
      }
    }
    return { expired, slices };
  }

  /**
   * A sliced call's next slice, from this node's lease: a whole slice, else as much as there is, while the
   * centre is asked for more. When its paid time is about to run out with nothing more to buy, the call is to
   * be ended (it keeps its reservation until the CDR, or expiry after the grace period).
   */
  private renewSlice(slot: number, id: number, terms: SliceTerms, now: number): SliceAction | null {
    const entity = this.entities[this.reservations.entityIndex(slot)];
    const sliceSeconds = this.settings.sliceSeconds ?? DEFAULT_SLICE_SECONDS;
    let amountMicro = this.reservations.amountMicro(slot);
    const target = terms.paidBillable + sliceSeconds;
    const spare = this.leasesValid(now) ? Math.max(0, entity.availableMicro) : 0;
    const fit = affordableBillable({ ...terms, perCall: false }, amountMicro + spare, target);
    const bought = fit !== null && fit.billable > terms.paidBillable;
    if (bought) {
      entity.heldMicro += fit.amountMicro - amountMicro;
      amountMicro = fit.amountMicro;
      terms.paidUntil += (fit.billable - terms.paidBillable) * 1000;
      terms.paidBillable = fit.billable;
    }
    const whole = fit !== null && fit.billable >= target;
    // Less than a whole slice left in the lease: ask the centre now (the call is retried until its paid time is nearly up),
    // for the rest of the slice as a waiting call's need: when the headroom is short the centre leases no more than that.
    if (!whole) {
      const slice = affordableBillable({ ...terms, perCall: false }, Number.MAX_SAFE_INTEGER, target);
      const needMicro = slice === null ? 0 : Math.max(0, slice.amountMicro - amountMicro);
      void this.askForLease(entity, Math.max(this.settings.leaseChunkMicro, needMicro), needMicro, now);
    } else if (entity.availableMicro < this.settings.leaseChunkMicro / 4) this.topUp(entity, this.settings.leaseChunkMicro, now);
    // After any part of a slice bought above: the end is due ahead of the paid time as it now stands.
    const endsAt = endAt(terms, this.settings.sliceEndMarginMs ?? defaultEndMarginMs(sliceSeconds));
    let expiresAt: number;
    let action: SliceAction['kind'] | null = null;
    if (whole) {
      expiresAt = renewAt(terms, sliceSeconds);
      action = 'check';
    } else if (now < endsAt) {
      expiresAt = Math.min(now + SLICE_RETRY_MS, endsAt);
    } else {
      terms.ending = true;
      // Held until the dialog's cap has surely ended the call, as a whole call's reservation is, unless the
      // keeper ends it sooner (endedOverMi): until then the call may run on (an MI down), and a reservation given
      // back while it does lets other calls spend what its CDR will be charged. Paid time counts from the admission.
      const admittedAt = terms.paidUntil - terms.paidBillable * 1000;
      const capSeconds = this.reservations.read(slot).maxDurationSeconds ?? this.settings.admissionSeconds;
      expiresAt = Math.max(terms.paidUntil, admittedAt + capSeconds * 1000) + this.settings.reservationGraceSeconds * 1000;
      action = 'end';
    }
    this.reservations.update(slot, amountMicro, terms, this.steadyInstant(expiresAt, now));
    if (bought || terms.ending)
      this.journal
        .write({ op: 'extend', id, amountMicro, expiresAt, slice: JSON.stringify(terms) })
        .catch((error: unknown) => this.log.error({ err: error, reservation: id }, 'slice not journalled'));
    if (action === null) return null;
    return {
      kind: action,
      slot,
      id,
      callId: this.reservations.read(slot).callId,
      dialogId: terms.dialogId,
      paidUntil: terms.paidUntil,
      expiresAt,
    };
  }

  /** The end of a call whose reservation is already ending (its terms say so), as renewSlice asked for it. */
  private endAgain(slot: number, now: number): SliceAction {
    const { id, callId, expiresAt, slice } = this.reservations.read(slot);
    // The keeper's retries read the wall clock.
    return {
      kind: 'end',
      slot,
      id,
      callId,
      dialogId: slice!.dialogId,
      paidUntil: slice!.paidUntil,
      expiresAt: this.wallInstant(expiresAt, now),
    };
  }

  /**
   * A call being ended is ended (or OpenSIPS no longer has it): its reservation waits a grace period past its paid
   * time (or now, if later) for the CDR, no longer until the dialog's cap. Not journalled: a restarted node asks
   * for the end again (endsToResume), and learns the same.
   */
  endedOverMi(slot: number, id: number, now: number): void {
    if (!this.reservations.isHeld(slot, id)) return;
    const terms = this.reservations.slice(slot);
    if (terms === null) return;
    const expiresAt = Math.max(now, terms.paidUntil) + this.settings.reservationGraceSeconds * 1000;
    this.reservations.update(slot, this.reservations.amountMicro(slot), terms, this.steadyInstant(expiresAt, now));
  }

  /** Whether `slot` still holds the live reservation `id` (a SliceAction's, after an await). */
  holds(slot: number, id: number): boolean {
    return this.reservations.isHeld(slot, id);
  }

  /** OpenSIPS no longer has the call's dialog and no CDR came: its reservation ends now. */
  dialogGone(slot: number, id: number, now: number): boolean {
    if (!this.finish(slot, id)) return false;
    void this.journal.write({ op: 'finish', id, state: 'ended', at: now }).catch(() => undefined);
    return true;
  }

  /**
   * Hands unused lease back from entities without admissions for `idleMs` (a long call keeps only what it
   * holds); 0: from every entity, as a node that stops does.
   */
  returnIdleLeases(now: number, idleMs = this.settings.idleReturnMs): void {
    let any = false;
    for (const map of [this.customers, this.carriers, this.retails]) {
      for (const entity of map.values()) {
        // What live calls hold and unsettled CDRs spent stays leased; only the unused part goes back.
        if (now - entity.lastActivity < idleMs || entity.availableMicro <= 0) continue;
        entity.giveBackMicro += entity.availableMicro;
        // Counted as gone at once: if the round fails the centre still holds it, and its next answer gives it back.
        entity.grantedMicro -= entity.availableMicro;
        any = true;
      }
    }
    if (any) void this.requestRound(false);
  }

  /** A node that stops: it asks for nothing more and hands back all the lease its live calls do not hold. */
  returnAllLeases(now: number): void {
    for (const entity of this.entities) {
      entity.wantMicro = 0;
      entity.needMicro = 0;
    }
    this.returnIdleLeases(now, 0);
  }

  /**
   * Asks for lease now (a round right away) and resolves when the centre answered (true) or could not be
   * reached. `despiteDry`: even within dryUntil (an admission waiting; the others only retry).
   */
  private askForLease(entity: EntityMoney, wantMicro: number, needMicro: number, now: number, despiteDry = false): Promise<boolean> {
    if (!despiteDry && now < entity.dryUntil) return Promise.resolve(true);
    entity.wantMicro = Math.max(entity.wantMicro, wantMicro);
    entity.needMicro = Math.max(entity.needMicro, needMicro);
    return new Promise((resolve) => {
      entity.waiters.push(resolve);
      void this.requestRound(true);
    });
  }

  /** Gets the centre's figures for an entity in the next background round (an ask that wants nothing). */
  learnHeadroom(entity: EntityMoney, now: number): void {
    if (entity.asking || entity.waiters.length > 0 || now < entity.dryUntil) return;
    entity.waiters.push(NO_ONE_WAITING);
    void this.requestRound(false);
  }

  /** Asks for lease in the next background round, unless an ask for this entity is already on its way. */
  private topUp(entity: EntityMoney, wantMicro: number, now: number): void {
    if (now < entity.dryUntil || entity.asking || entity.wantMicro > 0) return;
    entity.wantMicro = wantMicro;
    void this.requestRound(false);
  }

  /**
   * Everything due to go to the centre now: at most `maxSettlements` CDRs and `maxAsks` lease asks. Entities
   * beyond `maxAsks` keep what they have to ask for the next round (Round.leftOut), admissions waiting first.
   */
  takeRound(maxSettlements: number, maxAsks = MAX_LEASE_ASKS): Round {
    this.cdrsSinceRound = 0;
    const settlements: OutboxEntry[] = [];
    for (const entry of this.outbox.values()) {
      if (settlements.length >= maxSettlements) break;
      settlements.push(entry);
    }
    const lapse = this.lapsed ? this.lapses : 0;
    let due: EntityMoney[] = [];
    for (const map of [this.customers, this.carriers, this.retails]) {
      for (const entity of map.values()) {
        // A recall is acted on in the round the entity goes in (takeAsk), unless calls are waiting for more.
        const actsOnRecall = entity.recalled && entity.waiters.length === 0;
        if (
          entity.waiters.length === 0 &&
          entity.giveBackMicro === 0 &&
          !entity.recallSignalled &&
          (actsOnRecall ? entity.availableMicro <= 0 : entity.wantMicro === 0) &&
          !this.confirms(entity, lapse)
        ) {
          // Nothing to ask: a recall with nothing to spare only cancels a top-up.
          if (actsOnRecall) entity.dropRecall();
          continue;
        }
        due.push(entity);
      }
    }
    let leftOut: EntityMoney[] = [];
    if (due.length > maxAsks) {
      // More than the centre takes in a round (a lapse or a restart asks after every lease): the asks admissions
      // wait on go first; the others stay as they are for the rounds that follow at once.
      const admitting = (entity: EntityMoney): boolean => entity.waiters.some((waiter) => waiter !== NO_ONE_WAITING);
      const ordered = due.filter(admitting).concat(due.filter((entity) => !admitting(entity)));
      due = ordered.slice(0, maxAsks);
      leftOut = ordered.slice(maxAsks);
    }
    const asks: Round['asks'] = [];
    const returned: JournalOp[] = [];
    for (const entity of due) asks.push(this.takeAsk(entity, returned));
    const durable = returned.length === 0 ? null : this.journal.write(...returned);
    const confirmsLeases = lapse !== 0 && !leftOut.some((entity) => this.confirms(entity, lapse));
    return { settlements, asks, confirmsLeases, lapse, leftOut, durable };
  }

  /** During lapse `lapse` (0: none), the entity's figures are still to be asked for (it holds lease or live calls). */
  private confirms(entity: EntityMoney, lapse: number): boolean {
    return lapse !== 0 && entity.confirmedInLapse !== lapse && entity.holdsCredit;
  }

  /** The entity's ask in the round being taken; what it asked for is cleared (the answer or a failure settles it). */
  private takeAsk(entity: EntityMoney, returned: JournalOp[]): Round['asks'][number] {
    // A recall is acted on now, not when it arrived: the admissions that waited on that round have reserved
    // their share since. A node with calls waiting for more keeps what it has for them.
    if (entity.recalled && entity.waiters.length === 0) {
      entity.dropRecall();
      if (entity.availableMicro > 0) {
        entity.giveBackMicro += entity.availableMicro;
        // Counted as gone at once, as an idle return is.
        entity.grantedMicro -= entity.availableMicro;
      }
    }
    // A recall that came over the channel is answered even with nothing to give back: the centre waits for it.
    const answersRecall = entity.recallSignalled;
    entity.recallSignalled = false;
    if (entity.giveBackMicro > 0)
      returned.push({
        op: 'lease',
        entityType: entity.type,
        entityId: entity.id,
        grantedMicro: entity.grantedMicro,
        headroomMicro: Number.isNaN(entity.centreHeadroomMicro) ? null : entity.centreHeadroomMicro,
      });
    const taken = {
      entity,
      ask: {
        entity_type: entity.type,
        entity_id: entity.id,
        want: formatMicro(entity.wantMicro),
        need: formatMicro(Math.min(entity.needMicro, entity.wantMicro)),
        per_call: entity.perCallMicro > 0 ? formatMicro(entity.perCallMicro) : null,
        give_back: formatMicro(entity.giveBackMicro),
        answers_recall: answersRecall,
      },
      waiters: entity.waiters,
    };
    entity.wantMicro = 0;
    entity.needMicro = 0;
    entity.giveBackMicro = 0;
    entity.waiters = [];
    entity.asking = true;
    return taken;
  }

  /** The centre's answer to a round: settled CDRs leave the outbox, leases take the centre's figures. */
  applyReply(round: Round, reply: NodeSyncReply, now: number): void {
    if (reply.lease_valid_seconds !== undefined && reply.lease_valid_seconds * 1000 !== this.leaseValidMs) {
      this.leaseValidMs = reply.lease_valid_seconds * 1000;
      this.journal
        .setCounter(VALIDITY_KEY, this.leaseValidMs)
        .catch((error: unknown) => this.log.error({ err: error }, 'lease validity not journalled'));
    }
    // During a lapse, an entity's figures count as what this node holds now (the centre may have taken the lease
    // back) from an answered round taken in it; the lapse ends with the round that completes them all.
    const confirming = this.lapsed && round.lapse === this.lapses;
    if (confirming) for (const { entity } of round.asks) entity.confirmedInLapse = this.lapses;
    if (!this.lapsed || (confirming && round.confirmsLeases)) {
      this.lapsed = false;
      this.reachedAt = now;
      this.reachedAtMonotonic = performance.now();
      this.journal
        .raiseCounter(REACHED_KEY, now)
        .catch((error: unknown) => this.log.error({ err: error }, 'time of the last answered round not journalled'));
    }
    const settled = new Set(reply.settled);
    for (const entry of round.settlements) {
      if (!settled.has(entry.sipCallId) || this.outbox.get(entry.sipCallId) !== entry) continue;
      this.outbox.delete(entry.sipCallId);
      entry.entity.spentMicro -= entry.chargeMicro;
    }
    if (reply.unbilled.length > 0)
      this.log.error(
        { sip_call_ids: reply.unbilled.slice(0, 20), count: reply.unbilled.length },
        'the control plane recorded CDRs without billing them: it does not know their account',
      );
    for (const { entity } of round.asks) entity.asking = false;
    const leases = reply.leases.map((state) => this.applyLease(state, now));
    const firstUnsettled = this.outbox.values().next().value?.id ?? this.nextCdrId;
    void this.journal
      .write({ op: 'settledThrough', id: firstUnsettled - 1 }, ...leases)
      .catch((error: unknown) => this.log.error({ err: error }, 'settlement not journalled: the centre will answer the resend as settled'));
    for (const { waiters } of round.asks) for (const resolve of waiters) resolve(true);
    if (reply.recall !== undefined && reply.recall.length > 0) {
      for (const recall of reply.recall) {
        const entity = this.entity({ type: recall.entity_type, id: recall.entity_id });
        entity.recalled = true;
        // Answered explicitly in the next round, as a recall over the channel is (answers_recall).
        entity.recallSignalled = true;
      }
      void this.requestRound(false);
    }
  }

  private applyLease(state: LeaseState, now: number) {
    const entity = this.entity({ type: state.entity_type, id: state.entity_id });
    const before = entity.availableMicro;
    // Lease handed back since this round was taken (an idle return while it was in flight) goes in the next
    // round: the centre's figure still holds it, and it stays counted as gone, or the node would admit on
    // lease that the next round hands back to the centre's headroom (overspend).
    entity.grantedMicro = parseMicro(state.granted) - entity.giveBackMicro;
    entity.centreHeadroomMicro = parseMicro(state.headroom);
    entity.recallPending = state.recalling === true;
    if (entity.availableMicro <= before && entity.centreHeadroomMicro <= 0) entity.dryUntil = now + 1000;
    return {
      op: 'lease',
      entityType: entity.type,
      entityId: entity.id,
      grantedMicro: entity.grantedMicro,
      headroomMicro: entity.centreHeadroomMicro,
    } as const;
  }

  roundFailed(round: Round): void {
    for (const { entity, waiters } of round.asks) {
      entity.asking = false;
      for (const resolve of waiters) resolve(false);
      entity.dryUntil = 0;
    }
    // The admissions left out of it get its answer too: the link sends no next round at once after a failure.
    for (const entity of round.leftOut) {
      if (entity.waiters.length === 0) continue;
      const waiters = entity.waiters;
      entity.waiters = [];
      for (const resolve of waiters) resolve(false);
    }
  }

  get outboxSize(): number {
    return this.outbox.size;
  }

  /** Seconds since the centre last answered a round, as lease validity counts them (NaN: never, as far as this node's journal knows). */
  centreAnswerAge(now: number): number {
    return this.reachedAt === 0 ? Number.NaN : this.sinceAnswered(now) / 1000;
  }

  get leasesLapsed(): boolean {
    return this.lapsed;
  }

  get heldCount(): number {
    return this.reservations.size;
  }

  /** Accounts this node holds a credit lease on now (granted by the centre and not handed back). */
  get leaseCount(): number {
    let count = 0;
    for (const entity of this.entities) if (entity.grantedMicro > 0) count++;
    return count;
  }

  /** Entities holding lease or live calls: their figures are asked for at start-up (unsettled CDRs go in the same round). */
  refreshAll(): void {
    for (const map of [this.customers, this.carriers, this.retails]) {
      for (const entity of map.values()) if (entity.holdsCredit) entity.waiters.push(NO_ONE_WAITING);
    }
    void this.requestRound(true);
  }

  /** The steady clock's reading for the wall-clock `now` (CreditSettings.steadyClock). */
  private steadyNow(now: number): number {
    return this.settings.steadyClock === undefined ? now : this.settings.steadyClock(now);
  }

  /** A wall-clock instant (`now` being the wall clock's reading) on the steady clock the table expires by. */
  private steadyInstant(wallInstant: number, now: number): number {
    return this.steadyNow(now) + (wallInstant - now);
  }

  /** steadyInstant's inverse: an instant of the table's (steady) clock on the wall clock whose reading is `now`. */
  private wallInstant(steadyInstant: number, now: number): number {
    return now + (steadyInstant - this.steadyNow(now));
  }

  private fromStored(stored: StoredReservation, now: number): ReservationRecord {
    const { kind, headroomMicro } = parseStoredAnswer(stored.answer);
    return {
      id: stored.id,
      callId: stored.call_id,
      entityIndex: this.entity({ type: stored.entity_type, id: stored.entity_id }).index,
      amountMicro: stored.amount_micro,
      maxDurationSeconds: stored.max_duration,
      expiresAt: this.steadyInstant(stored.expires_at, now),
      answerKind: kind,
      headroomMicro,
      slice: stored.slice === null ? null : (JSON.parse(stored.slice) as SliceTerms),
      trunkId: stored.customer_trunk_id ?? null,
    };
  }

  private recover(): void {
    for (const lease of this.journal.leases()) {
      const entity = this.entity({ type: lease.entity_type, id: lease.entity_id });
      entity.grantedMicro = lease.granted_micro;
      entity.centreHeadroomMicro = lease.headroom_micro ?? NaN;
    }
    const now = Date.now();
    for (const stored of this.journal.heldReservations()) {
      const record = this.fromStored(stored, now);
      this.entities[record.entityIndex].heldMicro += stored.amount_micro;
      const slot = this.reservations.hold(record);
      if (record.slice?.ending === true) this.endsToResume.push({ slot, id: record.id });
      // The live calls a restarted node counts are the ones it still holds reservations for.
      if (record.trunkId !== null) this.ports.take(record.trunkId);
    }
    for (const stored of this.journal.recentlyFinishedReservations(RECENT_LIMIT)) {
      // A live reservation under the same Call-ID (admitted again after this one left memory) answers for it.
      if (this.reservations.find(stored.call_id) === NO_SLOT) this.reservations.remember(this.fromStored(stored, now));
    }
    for (const stored of this.journal.unsettledCdrs()) {
      const retail = retailAccountOf(stored.settlement);
      const entity = this.entity(retail === null ? { type: 'customer', id: stored.account_id } : { type: 'retail', id: retail });
      entity.spentMicro += stored.charge_micro;
      this.outbox.set(stored.sip_call_id, {
        id: stored.id,
        sipCallId: stored.sip_call_id,
        entity,
        chargeMicro: stored.charge_micro,
        settlementJson: stored.settlement,
      });
    }
  }
}

/**
 * A settlement's text as one flat string (reading a character flattens a concatenation's tree; the check keeps
 * the read from being optimised away), so that it survives as one object rather than sixty.
 */
function flat(text: string): string {
  if (text.charCodeAt(0) !== 0x7b) throw new Error('a settlement is a JSON object');
  return text;
}

/** The retail account a journalled settlement names (read once per unsettled CDR at start), else null. */
function retailAccountOf(settlementJson: string): number | null {
  if (!settlementJson.includes('"retail_account_id"')) return null;
  const id = (JSON.parse(settlementJson) as { retail_account_id?: unknown }).retail_account_id;
  return typeof id === 'number' ? id : null;
}
