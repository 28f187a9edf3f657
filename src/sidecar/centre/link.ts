import { setImmediate as nextTurn } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { SidecarMetrics } from '../metrics/metrics.js';
import { CentreClient } from './client.js';
import { RoundBody } from './round-body.js';
import type { CentreCredential } from './credential.js';
import type { MoneyJournal } from '../journal/journal.js';
import type { NodeCredit } from '../credit/node-credit.js';
import type { NodeSyncReply, NodeSyncRequest } from '../../core/protocol/node-sync.js';

/**
 * The node's money rounds with the control plane (POST /api/ledger/node-sync):
 * one in flight at a time; asks made meanwhile go in the next round. Rounds
 * are numbered (the number survives restarts, reserved in blocks in the
 * journal) so the centre can refuse a round that arrives after a newer one.
 * Off the hot path: admission only waits for a round when its lease does not
 * cover a call.
 */
export interface CentreLinkOptions {
  /** Control plane base URLs, tried in turn; null: no centre (every ask fails, prepaid calls are refused). */
  urls: readonly string[] | null;
  node: string;
  timeoutMs: number;
  /** How often the outbox is sent while it has CDRs. */
  intervalMs: number;
  /**
   * A round also goes as soon as this many CDRs have come since the last one (0: only every `intervalMs`): at a
   * high call rate, an interval's CDRs make a round too large for the centre to settle quickly (issue 21).
   */
  roundCdrs?: number;
  maxSettlements: number;
  /** This node's secret with the centre, sent on every round; null: none (the centre refuses the rounds). */
  credential?: CentreCredential | null;
}

const SEQ_BLOCK = 1_000_000;
const BACKGROUND_DELAY_MS = 50;
const SEQ_KEY = 'round_seq';

export class CentreLink {
  private running = false;
  private listeners: ((reached: boolean) => void)[] = [];
  /** The next round number, and the last of the block the journal handed out (none yet). */
  private seq = 1;
  private seqEnd = 0;
  private timer: NodeJS.Timeout | null = null;
  private lastFailureLog = 0;
  private soon: Promise<boolean> | null = null;
  /** Whether the last round reached the centre: while it does not, only the interval retries (roundFull). */
  private answering = true;
  private readonly client: CentreClient | null;
  private readonly body = new RoundBody();

  constructor(
    private readonly options: CentreLinkOptions,
    private readonly credit: NodeCredit,
    private readonly journal: MoneyJournal,
    private readonly metrics: SidecarMetrics,
    private readonly log: Logger,
  ) {
    const credential = options.credential ?? null;
    this.client =
      options.urls === null
        ? null
        : new CentreClient(options.urls, options.timeoutMs, credential === null ? null : () => credential.authorization());
    credit.connect((urgent) => (urgent ? this.round() : this.roundSoon()));
    const roundCdrs = options.roundCdrs ?? 0;
    if (roundCdrs > 0) credit.sendRoundAt(roundCdrs, () => this.roundFull());
  }

  start(): void {
    this.timer = setInterval(() => {
      if (this.credit.outboxSize > 0 || this.credit.keepaliveDue(Date.now())) void this.roundSoon();
    }, this.options.intervalMs);
    this.timer.unref();
    this.credit.refreshAll();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.client?.close();
  }

  /**
   * A node that stops hands back the lease its live calls do not hold, and settles what it can, in one last
   * round (at most `timeoutMs`): otherwise that credit stays leased to a node that is gone, and refused to
   * every other, until the centre takes it back after the lease validity.
   */
  async finish(timeoutMs: number): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer);
    this.credit.returnAllLeases(Date.now());
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)));
    const reached = await Promise.race([this.round(), late]);
    clearTimeout(timer);
    if (!reached) this.log.warn('stopping without a last round: unused leases go back to the centre when they lapse');
    this.client?.close();
  }

  /** A background round (top-ups, returns) within the interval: many asks share one round. */
  private roundSoon(): Promise<boolean> {
    if (this.soon === null) {
      this.soon = new Promise((resolve) => {
        setTimeout(() => {
          this.soon = null;
          resolve(this.round());
        }, BACKGROUND_DELAY_MS).unref();
      });
    }
    return this.soon;
  }

  /**
   * `roundCdrs` CDRs are waiting: their round goes now (or right after the one in flight), in a turn of its own
   * rather than the ingest's, and the interval restarts from it, so at a rate that fills rounds the interval
   * sends none of its own. Not when a background round is due within BACKGROUND_DELAY_MS anyway (it takes these
   * CDRs: near the rate where the count and the interval meet, both would go, the second with a few CDRs), nor
   * while the centre is not answering (a round per `roundCdrs` CDRs would build a body of the whole outbox each
   * time only to fail; the interval retries, as before).
   */
  private roundFull(): void {
    if (!this.answering || this.soon !== null) return;
    this.timer?.refresh();
    setImmediate(() => void this.round());
  }

  /** Runs a round now (or right after the one in flight); resolves whether it reached the centre. */
  round(): Promise<boolean> {
    return new Promise((resolve) => {
      this.listeners.push(resolve);
      if (!this.running) void this.loop();
    });
  }

  private async loop(): Promise<void> {
    this.running = true;
    while (this.listeners.length > 0) {
      const listeners = this.listeners;
      this.listeners = [];
      let reached = false;
      let more = false;
      try {
        ({ reached, more } = await this.exchange());
      } catch (error) {
        this.log.error({ err: error }, 'money round failed');
      }
      this.answering = reached;
      for (const resolve of listeners) resolve(reached);
      if (more && reached) this.listeners.push(() => undefined); // more than one round's worth of CDRs or lease asks
    }
    this.running = false;
  }

  /** Rounds run one at a time, so blocks are reserved one at a time. */
  private async nextSeq(): Promise<number> {
    if (this.seq > this.seqEnd) {
      this.seq = await this.journal.reserveCounterBlock(SEQ_KEY, SEQ_BLOCK);
      this.seqEnd = this.seq + SEQ_BLOCK - 1;
    }
    return this.seq++;
  }

  private async exchange(): Promise<{ reached: boolean; more: boolean }> {
    const round = this.credit.takeRound(this.options.maxSettlements);
    // An empty round still goes when it keeps this node's leases valid (the centre notes every round it applies).
    if (round.settlements.length === 0 && round.asks.length === 0 && !this.credit.keepaliveDue(Date.now()))
      return { reached: true, more: false };
    if (this.client === null) {
      this.credit.roundFailed(round);
      return { reached: false, more: false };
    }
    let failure: string;
    // Where this round goes: a failure names it (the client moves on to the next control plane after one).
    const url = this.client.base;
    const started = performance.now();
    try {
      // Lease handed back is first journalled as gone (a restart must not admit on it once the centre has it back).
      if (round.durable !== null) await round.durable;
      const head: Omit<NodeSyncRequest, 'settlements'> & { seq: number } = {
        node: this.options.node,
        seq: await this.nextSeq(),
        leases: round.asks.map((entry) => entry.ask),
      };
      const body = this.body.write(head, round.settlements);
      // A round's work in turns of its own (issue 16): its body made, its request sent, its reply applied. In one
      // stretch each ~1 ms at 1,000 calls/s, and a call/decide arriving meanwhile waited through all of it;
      // between them the requests waiting are answered. The reply is applied whole, in one turn, as before.
      await nextTurn();
      const { status, text } = await this.client.post('/api/ledger/node-sync', body);
      if (status >= 200 && status < 300) {
        await nextTurn();
        this.credit.applyReply(round, JSON.parse(text) as NodeSyncReply, Date.now());
        this.metrics.centreRounds.inc({ result: 'ok' });
        this.metrics.centreRoundSeconds.observe((performance.now() - started) / 1000);
        // More CDRs than a round carries, or more lease asks (a lapse or a restart asks after every lease): the rest go at once.
        return { reached: true, more: round.settlements.length === this.options.maxSettlements || round.leftOut.length > 0 };
      }
      if (status === 409) await this.catchUp(text);
      failure =
        status === 401
          ? "the control plane refused this node's credential (--centre-secret-file, CENTRE_SECRET): HTTP 401"
          : `HTTP ${status}: ${text.slice(0, 200)}`;
    } catch (error) {
      failure = error instanceof Error ? error.message : String(error);
    }
    this.credit.roundFailed(round);
    this.metrics.centreRounds.inc({ result: 'failed' });
    const now = Date.now();
    if (now - this.lastFailureLog > 5000) {
      this.lastFailureLog = now;
      this.log.warn({ url, reason: failure, outbox: this.credit.outboxSize }, 'control plane unreachable for money rounds');
    }
    return { reached: false, more: false };
  }

  /**
   * The centre has applied a newer round than ours (this node's journal was reset): continue after it. Or
   * ours is too far past its last (round_out_of_sequence): come back down to just after it.
   */
  private async catchUp(body: string): Promise<void> {
    let lastSeq: unknown;
    let reason: unknown;
    try {
      ({ last_seq: lastSeq, reason_code: reason } = JSON.parse(body) as { last_seq?: unknown; reason_code?: unknown });
    } catch {
      return; // not our error body: nothing to learn
    }
    if (typeof lastSeq !== 'number' || !Number.isSafeInteger(lastSeq) || lastSeq < 0) return;
    if (reason === 'round_out_of_sequence') {
      await this.journal.setCounter(SEQ_KEY, lastSeq);
      this.seq = await this.journal.reserveCounterBlock(SEQ_KEY, SEQ_BLOCK);
      this.seqEnd = this.seq + SEQ_BLOCK - 1;
      return;
    }
    if (lastSeq >= this.seq) {
      await this.journal.raiseCounter(SEQ_KEY, lastSeq);
      this.seq = await this.journal.reserveCounterBlock(SEQ_KEY, SEQ_BLOCK);
      this.seqEnd = this.seq + SEQ_BLOCK - 1;
    }
  }
}
