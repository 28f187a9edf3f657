import { Decimal } from '../../src/core/money/decimal.js';
import type { MoneyEntity, MoneySignals } from '../../src/core/protocol/deltas.js';
import type { EntityType, LeaseAsk, LeaseRecall, LeaseState } from '../../src/core/protocol/node-sync.js';

/**
 * Lease the centre wants back, and word to nodes that an entity's headroom moved. Two ways to a node:
 *
 *  - **marks** ride the answer to the node's next money round (mark/take): when another node's ask was short
 *    but got what its call needed (call by call near the end of a balance), the spare lease can wait for
 *    the holder's next round;
 *  - **signals** ride the live channel (issue 18): the node's held `GET /api/nodes/deltas` is woken at once
 *    and answers `money: {recall, refresh}` (sync/deltas/routes.ts). A `recall` goes to the nodes holding
 *    lease when an ask could not be leased what its waiting call needs, or a debit needs what leases hold;
 *    a `refresh` goes to the nodes waiting for credit on an entity once lease of it has been handed back (or
 *    every recalled node has answered with nothing to spare), and to the holders and waiters of an entity
 *    whose balance an operator or partner changed. The node answers either with a money round at once.
 *
 * In memory: a mark or signal lost with a restart of the control plane costs only time (the node still
 * returns an idle lease after --lease-idle-seconds, and the next short ask recalls again); money is never at
 * stake, since a node gives back only what it has not admitted on, and every grant is still taken out of
 * the headroom in the round's transaction.
 */
/** A node waiting for credit on an entity is refreshed for this long after its short ask, no longer. */
const WANT_TTL_MS = 60_000;
/**
 * A recalled node that has not answered within this long is not waited for any more (its channel is down, or
 * it died: its lease comes back when it lapses): calls elsewhere stop waiting for it.
 */
const RECALL_ANSWER_MS = 2_000;
/** "Nothing to spare" is remembered this long at most (its calls end; a node's lease may move unseen). */
const NOTHING_SPARE_MS = 600_000;
/** How often the memory of old wants, recalls and answers is swept (on the next call that adds one). */
const SWEEP_MS = 60_000;

interface NodeSignals {
  recall: Map<string, MoneyEntity>;
  refresh: Map<string, MoneyEntity>;
}

/** A node's held ask for deltas, to be woken for its money signals; superseded by the node's next ask. */
export interface SignalListener {
  wake: () => void;
  superseded: boolean;
}

const keyOf = (entityType: EntityType, entityId: number): string => `${entityType}:${entityId}`;

export class LeaseRecalls {
  private readonly marks = new Map<string, Map<string, LeaseRecall>>();
  private readonly signals = new Map<string, NodeSignals>();
  private readonly listeners = new Map<string, SignalListener>();
  /** By entity: the nodes recalled over the channel that have not answered yet, and when they were recalled (ms). */
  private readonly outstanding = new Map<string, Map<string, number>>();
  /** By entity: the nodes whose ask was short of its need, and since when (ms). */
  private readonly wanting = new Map<string, Map<string, number>>();
  /**
   * `node|entity` -> the node's lease when it answered a recall with nothing to spare: recalling it again is
   * pointless until its lease has moved (its live calls hold it all).
   */
  private readonly nothingSpare = new Map<string, { lease: string; at: number }>();
  private sweptAt = Date.now();
  /** By entity: what debits waiting on recalled lease take before any node is granted more. */
  private readonly withheld = new Map<string, Decimal[]>();
  /** By entity: debits waiting for lease to come back. */
  private readonly returnWaiters = new Map<string, Set<() => void>>();
  private wakeQueued = new Set<string>();
  /** Counts lease handed back (or recalls answered) on any entity: a debit that saw it move tries again. */
  returns = 0;

  /** `node` is to give back its unused lease of the entity at its next round. */
  mark(node: string, entityType: EntityType, entityId: number): void {
    let entities = this.marks.get(node);
    if (entities === undefined) {
      entities = new Map();
      this.marks.set(node, entities);
    }
    entities.set(keyOf(entityType, entityId), { entity_type: entityType, entity_id: entityId });
  }

  /** The marks for a node whose round is being answered; they are cleared, as the answer carries them. */
  take(node: string): LeaseRecall[] {
    const entities = this.marks.get(node);
    if (entities === undefined) return [];
    this.marks.delete(node);
    const pending = this.signals.get(node);
    for (const key of entities.keys()) pending?.recall.delete(key);
    if (pending?.recall.size === 0 && pending.refresh.size === 0) this.signals.delete(node);
    return [...entities.values()];
  }

  /**
   * `node`, holding `lease` of the entity, is to give back what its calls do not hold now, over the channel.
   * `force`: even when it last answered a recall with nothing to spare (a debit asks them all). Returns
   * whether it was recalled.
   */
  recallNow(node: string, entityType: EntityType, entityId: number, lease: string, force = false): boolean {
    const key = keyOf(entityType, entityId);
    this.sweep();
    if (!force && this.nothingSpare.get(`${node}|${key}`)?.lease === lease) return false;
    this.signal(node, 'recall', key, entityType, entityId);
    // Marked too, for a node that does not follow the channel: whichever reaches it first clears the other.
    this.mark(node, entityType, entityId);
    let nodes = this.outstanding.get(key);
    if (nodes === undefined) {
      nodes = new Map();
      this.outstanding.set(key, nodes);
    }
    nodes.set(node, Date.now());
    return true;
  }

  /** Whether recalled nodes have yet to answer for the entity (a short call may wait for their lease). */
  recalling(entityType: EntityType, entityId: number): boolean {
    const nodes = this.outstanding.get(keyOf(entityType, entityId));
    if (nodes === undefined) return false;
    const now = Date.now();
    for (const at of nodes.values()) if (now - at < RECALL_ANSWER_MS) return true;
    return false;
  }

  /** `node`'s ask for the entity was short of what its waiting call needs: it is refreshed when credit comes back. */
  want(node: string, entityType: EntityType, entityId: number, now = Date.now()): void {
    this.sweep();
    const key = keyOf(entityType, entityId);
    let nodes = this.wanting.get(key);
    if (nodes === undefined) {
      nodes = new Map();
      this.wanting.set(key, nodes);
    }
    nodes.set(node, now);
  }

  /**
   * A round of `node` was applied (committed): lease it handed back, or its answer to a recall, refreshes the
   * nodes waiting for the entity and wakes the debits waiting for it.
   */
  roundApplied(node: string, asks: readonly LeaseAsk[], leases: readonly LeaseState[]): void {
    if (asks.length === 0) return;
    const granted = new Map(leases.map((state) => [keyOf(state.entity_type, state.entity_id), state.granted]));
    for (const ask of asks) {
      const key = keyOf(ask.entity_type, ask.entity_id);
      const gaveBack = /[1-9]/.test(ask.give_back);
      const recalled = this.outstanding.get(key);
      // Only an ask built after the node acted on the recall answers it. A round already in flight as the recall
      // was made names the entity with nothing given back; taken as the answer, it ended a debit's wait for
      // lease the node was about to hand back ("nothing came back": refused, flaky at load).
      const answered = ask.answers_recall !== false && recalled?.delete(node) === true;
      if (recalled !== undefined && recalled.size === 0) this.outstanding.delete(key);
      const lease = granted.get(key);
      if (answered && !gaveBack && lease !== undefined) this.nothingSpare.set(`${node}|${key}`, { lease, at: Date.now() });
      else if (this.nothingSpare.get(`${node}|${key}`)?.lease !== lease) this.nothingSpare.delete(`${node}|${key}`);
      // Credit came back, or the last recalled node had none: the waiting nodes ask again (and learn either way).
      if (gaveBack || (answered && !this.outstanding.has(key))) {
        this.refreshWanting(key, ask.entity_type, ask.entity_id, node);
        this.returns++;
        for (const wake of this.returnWaiters.get(key) ?? []) wake();
      }
    }
  }

  /**
   * An operator or partner changed the entity's balance (committed): the nodes holding lease of it and those
   * waiting for it ask again, so a top-up is leased and a debit seen at once.
   */
  balanceChanged(entityType: EntityType, entityId: number, holders: readonly string[]): void {
    const key = keyOf(entityType, entityId);
    for (const node of holders) this.signal(node, 'refresh', key, entityType, entityId);
    this.refreshWanting(key, entityType, entityId, null);
  }

  /**
   * A debit waits on recalled lease: until the returned function is called, new grants see the entity's
   * headroom less `amount`, so lease handed back goes to the debit first and not to the next ask.
   */
  withhold(entityType: EntityType, entityId: number, amount: Decimal): () => void {
    const key = keyOf(entityType, entityId);
    const list = this.withheld.get(key) ?? [];
    list.push(amount);
    this.withheld.set(key, list);
    return () => {
      const current = this.withheld.get(key);
      if (current === undefined) return;
      const at = current.indexOf(amount);
      if (at >= 0) current.splice(at, 1);
      if (current.length === 0) this.withheld.delete(key);
    };
  }

  /** What waiting debits hold back from new grants on the entity (zero: nothing). */
  withheldFrom(entityType: EntityType, entityId: number): Decimal {
    let total = new Decimal(0);
    for (const amount of this.withheld.get(keyOf(entityType, entityId)) ?? []) total = total.plus(amount);
    return total;
  }

  /** Resolves when lease of the entity is handed back or every recalled node has answered, or after `ms`. */
  whenReturned(entityType: EntityType, entityId: number, ms: number): Promise<void> {
    const key = keyOf(entityType, entityId);
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        const waiters = this.returnWaiters.get(key);
        waiters?.delete(done);
        if (waiters?.size === 0) this.returnWaiters.delete(key);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, ms));
      const waiters = this.returnWaiters.get(key) ?? new Set();
      waiters.add(done);
      this.returnWaiters.set(key, waiters);
    });
  }

  /** Whether money signals wait for the node (its ask is then answered at once). */
  hasSignals(node: string): boolean {
    return this.signals.has(node);
  }

  /** The node's pending signals, cleared: its ask's answer carries them. */
  takeSignals(node: string): MoneySignals | undefined {
    const pending = this.signals.get(node);
    if (pending === undefined) return undefined;
    this.signals.delete(node);
    const marks = this.marks.get(node);
    for (const key of pending.recall.keys()) marks?.delete(key);
    if (marks?.size === 0) this.marks.delete(node);
    return { recall: [...pending.recall.values()], refresh: [...pending.refresh.values()] };
  }

  /**
   * The node's ask is held: `wake` answers it when a signal comes. A node has one ask at a time; an older one
   * still held (the node restarted, its connection gone) is superseded and woken, and takes no signals.
   */
  listen(node: string, wake: () => void): SignalListener {
    const previous = this.listeners.get(node);
    if (previous !== undefined) {
      previous.superseded = true;
      previous.wake();
    }
    const listener: SignalListener = { wake, superseded: false };
    this.listeners.set(node, listener);
    return listener;
  }

  unlisten(node: string, listener: SignalListener): void {
    if (this.listeners.get(node) === listener) this.listeners.delete(node);
  }

  /** Forgets wants, recalls and "nothing to spare" past their time, at most once a SWEEP_MS: bounded memory. */
  private sweep(now = Date.now()): void {
    if (now - this.sweptAt < SWEEP_MS) return;
    this.sweptAt = now;
    const drop = <K, V>(map: Map<K, V>, old: (value: V) => boolean): void => {
      for (const [key, value] of map) if (old(value)) map.delete(key);
    };
    for (const nodes of this.wanting.values()) drop(nodes, (since) => now - since > WANT_TTL_MS);
    drop(this.wanting, (nodes) => nodes.size === 0);
    for (const nodes of this.outstanding.values()) drop(nodes, (at) => now - at > RECALL_ANSWER_MS);
    drop(this.outstanding, (nodes) => nodes.size === 0);
    drop(this.nothingSpare, (entry) => now - entry.at > NOTHING_SPARE_MS);
  }

  private refreshWanting(key: string, entityType: EntityType, entityId: number, except: string | null): void {
    const nodes = this.wanting.get(key);
    if (nodes === undefined) return;
    const now = Date.now();
    for (const [node, since] of nodes) {
      if (node === except) continue;
      nodes.delete(node);
      if (now - since <= WANT_TTL_MS) this.signal(node, 'refresh', key, entityType, entityId);
    }
    if (nodes.size === 0) this.wanting.delete(key);
  }

  private signal(node: string, kind: keyof NodeSignals, key: string, entityType: EntityType, entityId: number): void {
    let pending = this.signals.get(node);
    if (pending === undefined) {
      pending = { recall: new Map(), refresh: new Map() };
      this.signals.set(node, pending);
    }
    pending[kind].set(key, { entity_type: entityType, entity_id: entityId });
    // Woken once the work that signalled is done (a round's transaction may still be open): one wake per node.
    if (this.wakeQueued.size === 0) setImmediate(() => this.wakeAll());
    this.wakeQueued.add(node);
  }

  private wakeAll(): void {
    const nodes = this.wakeQueued;
    this.wakeQueued = new Set();
    for (const node of nodes) this.listeners.get(node)?.wake();
  }
}
