import Database from 'better-sqlite3';
import type { Logger } from 'pino';
import { Worker } from 'node:worker_threads';
import type { ApplierMessage } from './applier.js';
import { CdrFilter } from './cdr-filter.js';
import type { FilterLoaderMessage } from './cdr-filter-loader.js';
import { encodeRecord, LogAppendError, LogAppender, packPosition, RecordEncoder } from './log.js';
import { SETTLED_THROUGH, type JournalOp } from './ops.js';
import { answerText, decodeRatedBytes, fingerprintOf, settlementText, type RatedCdr } from './rated-cdr.js';
import { recoverLog } from './replay.js';
import { JournalStore, type SkippedOp } from './store.js';
import type { WriterReply } from './writer.js';
import type { EntityType } from '../../core/protocol/node-sync.js';

/**
 * The node's money journal: reservations, leases and rated CDRs, so that
 * after a crash the node knows what it admitted, what it holds and what it
 * still owes the centre.
 *
 * Group commit into a log: writes queue up during an event-loop turn and are
 * appended as one record to the money log (journal-log.ts); each caller's
 * promise settles after the append, so an acknowledgement never precedes
 * its durability. A thread applies the log to money.db (SQLite) behind the
 * event loop; start-up applies whatever a crash left, before anything is
 * read. What is in the log but not yet in money.db (CDRs, for the duplicate
 * check) is answered from memory.
 *
 * Durability is a setting: `normal` survives a crash of the process (the
 * append is one write(), on the event loop); `full` survives power loss
 * too (appends and their fdatasyncs in a writer thread; the applier takes
 * only what is synced).
 */
export type Durability = 'normal' | 'full';

export interface StoredReservation {
  id: number;
  call_id: string;
  entity_type: EntityType;
  entity_id: number;
  amount_micro: number;
  max_duration: number | null;
  expires_at: number;
  /** The admission answer as sent, replayed for a repeated call id. */
  answer: string;
  /** A sliced call's SliceTerms as JSON; null for a whole-call reservation (and rows from before slices). */
  slice: string | null;
  /** The customer trunk whose port the call holds; null: none (and rows from before ports were counted). */
  customer_trunk_id: number | null;
}

export interface StoredCdr {
  id: number;
  sip_call_id: string;
  /** The request's figures, to tell a resend from a different CDR under the same Call-ID. */
  fingerprint: string;
  /** The IngestResult as answered. */
  result: string;
  settlement: string;
  account_id: number;
  charge_micro: number;
}

/** A CDR's op: as nodes write it, or with its texts (as logs from before 2026-12-07 hold it). */
type CdrOp = RatedCdr | Extract<JournalOp, { op: 'cdr' }>;

/** A rated CDR as money.db will hold it (a resend found it before the applier wrote it). */
export function storedCdrOf(cdr: RatedCdr): StoredCdr {
  return {
    id: cdr.id,
    sip_call_id: cdr.sipCallId,
    fingerprint: fingerprintOf(cdr),
    result: answerText(cdr),
    settlement: settlementText(cdr),
    account_id: cdr.accountId,
    charge_micro: cdr.chargeMicro,
  };
}

/** A row of money.db's cdrs: a rated CDR's figures in `rated` (its texts empty), or, from older logs, the texts. */
type CdrRow = StoredCdr & { rated: Uint8Array | null };

/** The CDR a row holds, with its texts (made from its figures when the row keeps those). */
function storedCdrOfRow(row: CdrRow): StoredCdr {
  if (row.rated !== null) return storedCdrOf(decodeRatedBytes(row.rated));
  const { id, sip_call_id, fingerprint, result, settlement, account_id, charge_micro } = row;
  return { id, sip_call_id, fingerprint, result, settlement, account_id, charge_micro };
}

export interface StoredLease {
  entity_type: EntityType;
  entity_id: number;
  granted_micro: number;
  headroom_micro: number | null;
}

/**
 * The writes of one record. They share one promise: at 10k admissions/s a promise (and its settle
 * callbacks) per write was a good part of what each admission left for the GC.
 */
class Batch {
  /** The ops of every write, in order: pushed one by one (Array.prototype.flat over the writes was 3% of a CDR's event loop). */
  readonly ops: JournalOp[] = [];
  readonly durable: Promise<void>;
  resolve!: () => void;
  private refuse!: (error: Error) => void;

  constructor() {
    this.durable = new Promise<void>((resolve, reject) => {
      this.resolve = resolve;
      this.refuse = reject;
    });
  }

  reject(error: Error): void {
    // Every writer awaits or catches it; this keeps a refusal nobody waits for from being an unhandled rejection.
    // Attached only here: on every record, the handler was a promise and a reaction more for each admission turn.
    this.durable.catch(ignoreRefusal);
    this.refuse(error);
  }
}

function ignoreRefusal(): void {}

/** Told of every batch the log refused, before its writers hear of it: what the ops stood for must be undone. */
export type RefusalListener = (ops: JournalOp[], error: JournalWriteError) => void;

const DURABLE: Promise<void> = Promise.resolve();

/**
 * How often the applier carries the log into money.db. Nothing on the request path waits for a pass (the log
 * is what an answer waits for; until money.db has a CDR the duplicate check finds it in memory), and a pass
 * costs about a millisecond of CPU whatever it carries (not its fsync: without it a pass cost the same).
 * Through OpenSIPS at 300 calls/s the applier spent 71-77 µs per call passing every 100 ms, 31-43 every
 * second, and V8's helpers about 7 more (the held CDRs now outlive a scavenge; docs/performance-log.md).
 * Memory grows with it: a second of unapplied CDRs held for the check.
 */
const APPLY_INTERVAL_MS = 1000;

/** A write that could not be made durable: nothing it stood for may be acknowledged. */
export class JournalWriteError extends Error {
  constructor(
    message: string,
    readonly code: string | undefined,
  ) {
    super(message);
    this.name = 'JournalWriteError';
  }
}

export class MoneyJournal {
  /** For reads (start-up recovery, the duplicate check); every write goes through the log to the applier. */
  private readonly db: Database.Database;
  /** Durability `normal`: appends on the event loop, each record encoded in the same buffer. */
  private readonly appender: LogAppender | null = null;
  private readonly encoder = new RecordEncoder();
  /** Durability `full`: appends and fdatasyncs in the writer thread. */
  private readonly writer: Worker | null = null;
  private readonly applier: Worker;
  private pending = new Batch();
  private flushScheduled = false;
  /** flush, made once: the turn's setImmediate takes it without a closure per record. */
  private readonly flushOnce = (): void => this.flush();
  /** Records at the writer thread (durability `full`), with the ops each holds. */
  private readonly inFlight = new Map<number, { ops: JournalOp[]; batch: Batch }>();
  private refusalListener: RefusalListener = () => undefined;
  private nextSeq = 1;
  private broken: JournalWriteError | null = null;
  /** Counters' high marks (read from money.db once, then kept here: their writes go through the log). */
  private readonly counters = new Map<string, number>();
  /**
   * CDRs in the log that money.db does not have yet, for the duplicate check; in id order. The ops
   * themselves: a StoredCdr (and its texts) is made only for a resend that finds one.
   */
  private readonly unappliedCdrs = new Map<string, CdrOp>();
  /** Every CDR money.db or the log may have, so that a new CDR's duplicate check need not read money.db. */
  private readonly knownCdrs = new CdrFilter();
  /** Until the filter of what money.db held at start-up is loaded, every duplicate check reads money.db. */
  private cdrFilterReady = false;
  private cdrFilterLoader: Worker | null = null;
  /** Settles once the start-up filter is loaded, or has failed to load (then money.db answers every check). */
  readonly cdrFilterLoaded: Promise<void>;
  /** What the log says is settled at the centre, for the filter to follow the prune. */
  private settledThroughId = 0;
  private readonly statements: ReturnType<MoneyJournal['prepare']>;

  constructor(
    path: string,
    durability: Durability,
    private readonly log: Logger,
  ) {
    const dir = `${path}-log`;
    const store = new JournalStore(path);
    const recovered = recoverLog(store, dir);
    store.close();
    for (const applied of recovered.applied) this.report(applied.skipped, applied.lostBytes, applied.segment);

    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('busy_timeout = 2000'); // the schema is the store's, made above
    this.statements = this.prepare();
    this.settledThroughId = this.settledThrough();
    this.cdrFilterLoaded = this.loadCdrFilter(path, this.lastCdrId());

    const segment = recovered.next.segment;
    // Durability `full`: how far the writer has synced the log; the applier applies nothing beyond it.
    const durable = durability === 'full' ? new BigInt64Array(new SharedArrayBuffer(8)) : null;
    if (durable !== null) durable[0] = packPosition(segment, 0);
    if (durability === 'normal') {
      this.appender = new LogAppender(dir, segment, false);
    } else {
      const writer = new Worker(new URL('./writer.js', import.meta.url), { workerData: { dir, segment, durable } });
      writer.on('message', (reply: WriterReply) => this.settle(reply));
      const fail = (error: JournalWriteError): void => {
        this.broken = error;
        const records = [...this.inFlight.values()];
        this.inFlight.clear();
        for (const { ops, batch } of records) this.refuse(batch, ops, error);
      };
      writer.on('error', (error) => fail(new JournalWriteError(`journal writer failed: ${error.message}`, 'WRITER_FAILED')));
      writer.on('exit', (code) => fail(new JournalWriteError(`journal writer exited (${code})`, 'WRITER_EXITED')));
      this.writer = writer;
    }
    this.applier = new Worker(new URL('./applier.js', import.meta.url), {
      workerData: { dbPath: path, dir, intervalMs: APPLY_INTERVAL_MS, durable },
    });
    this.applier.on('message', (message: ApplierMessage) => this.applied(message));
    this.applier.on('error', (error) =>
      this.log.error({ err: error }, 'money journal applier failed: the log grows until a restart applies it'),
    );
    this.applier.unref();
  }

  private prepare() {
    const db = this.db;
    return {
      findCdr: db.prepare(
        'SELECT id, sip_call_id, fingerprint, result, settlement, account_id, charge_micro, rated FROM cdrs WHERE sip_call_id = ?',
      ),
      maxCdrId: db.prepare('SELECT MAX(id) AS id FROM cdrs'),
      readMeta: db.prepare('SELECT value FROM meta WHERE key = ?'),
    };
  }

  /** Loads the filter of money.db's CDRs (ids up to `throughId`) in a thread beside the event loop. */
  private loadCdrFilter(path: string, throughId: number): Promise<void> {
    if (throughId === 0) {
      this.cdrFilterReady = true;
      return Promise.resolve();
    }
    const started = performance.now();
    const loader = new Worker(new URL('./cdr-filter-loader.js', import.meta.url), { workerData: { dbPath: path, throughId } });
    this.cdrFilterLoader = loader;
    loader.once('message', (message: FilterLoaderMessage) => {
      if (message.type === 'failed') {
        this.log.error({ reason: message.message }, 'CDR filter not loaded: every duplicate check reads money.db');
        return;
      }
      this.knownCdrs.adoptOlder(message.generations);
      this.cdrFilterReady = true;
      this.log.info({ cdrs: message.cdrs, seconds: Math.round(performance.now() - started) / 1000 }, 'CDR filter loaded');
    });
    loader.once('error', (error) => this.log.error({ err: error }, 'CDR filter loader failed: every duplicate check reads money.db'));
    return new Promise((resolve) => {
      loader.once('exit', () => {
        this.cdrFilterLoader = null;
        resolve();
      });
    });
  }

  /** Where refused batches are reported (the ledger undoes what their ops stood for). */
  onRefused(listener: RefusalListener): void {
    this.refusalListener = listener;
  }

  /**
   * Queues ops to be appended together in the next record; resolves once they are durable. The promise
   * is the whole record's, shared by every write in it.
   */
  write(...ops: JournalOp[]): Promise<void> {
    if (this.broken !== null) {
      this.refusalListener(ops, this.broken);
      return Promise.reject(this.broken);
    }
    const pending = this.pending.ops;
    for (let i = 0; i < ops.length; i++) pending.push(ops[i]);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.flushOnce);
    }
    return this.pending.durable;
  }

  /** Resolves once every write made so far is durable (rejects if the last of them was refused). */
  written(): Promise<void> {
    if (this.pending.ops.length > 0) return this.pending.durable;
    let last: Promise<void> = DURABLE;
    for (const { batch } of this.inFlight.values()) last = batch.durable;
    return last;
  }

  /**
   * Appends what is queued as one record. To the writer thread, one record at a time: the next holds
   * everything that queued meanwhile, so a record is as big as an fdatasync is slow.
   */
  private flush(): void {
    this.flushScheduled = false;
    if (this.inFlight.size > 0) return;
    const batch = this.pending;
    if (batch.ops.length === 0) return;
    this.pending = new Batch();
    const { ops } = batch;
    if (this.broken !== null) return this.refuse(batch, ops, this.broken);
    this.holdCdrs(ops);
    if (this.appender !== null) {
      try {
        this.appender.append(this.encoder.encode(ops));
      } catch (error) {
        this.refused(batch, ops, error as LogAppendError);
        return;
      }
      this.followPrune(ops);
      batch.resolve();
      return;
    }
    // The record goes to the writer thread: its own memory, transferred.
    const record = encodeRecord(ops);
    const seq = this.nextSeq++;
    this.inFlight.set(seq, { ops, batch });
    this.writer!.postMessage({ seq, record }, [record.buffer as ArrayBuffer]);
  }

  private settle(reply: WriterReply): void {
    const record = this.inFlight.get(reply.seq);
    if (record === undefined) return;
    this.inFlight.delete(reply.seq);
    if (reply.failure === null) {
      this.followPrune(record.ops);
      record.batch.resolve();
    } else this.refused(record.batch, record.ops, new LogAppendError(reply.failure.message, reply.failure.code, reply.failure.intact));
    this.flush();
  }

  /** The append failed: none of the batch is acknowledged. A log that could not be cut back takes nothing more. */
  private refused(batch: Batch, ops: JournalOp[], failure: LogAppendError): void {
    const error = new JournalWriteError(`money log append failed: ${failure.message}`, failure.code);
    if (!failure.intact) {
      this.broken = error;
      this.log.error({ err: failure }, 'money log could not be cut back after a failed append: refusing every write until a restart');
    }
    this.refuse(batch, ops, error);
  }

  private refuse(batch: Batch, ops: JournalOp[], error: JournalWriteError): void {
    for (const op of ops) if (op.op === 'rated' || op.op === 'cdr') this.unappliedCdrs.delete(op.sipCallId);
    try {
      this.refusalListener(ops, error);
    } finally {
      batch.reject(error);
    }
  }

  private holdCdrs(ops: JournalOp[]): void {
    for (const op of ops) {
      if (op.op !== 'rated' && op.op !== 'cdr') continue;
      this.unappliedCdrs.set(op.sipCallId, op);
      this.knownCdrs.add(op.sipCallId, op.id, op.createdAt);
    }
  }

  /** A durable prune deletes settled CDRs past their keeping; the filter forgets them with it (ops apply in log order). */
  private followPrune(ops: JournalOp[]): void {
    for (const op of ops) {
      if (op.op === 'settledThrough')
        this.settledThroughId = op.id; // as money.db's meta takes it
      else if (op.op === 'prune') this.knownCdrs.forget(op.cdrsBefore, this.settledThroughId);
    }
  }

  private applied(message: ApplierMessage): void {
    if (message.type === 'failed') {
      this.log.error(
        { reason: message.message, code: message.code },
        'money journal applier cannot write money.db: retrying; the log holds everything meanwhile',
      );
      return;
    }
    // In id order, as appended: what money.db now has leaves memory.
    for (const [sipCallId, cdr] of this.unappliedCdrs) {
      if (cdr.id > message.lastCdrId) break;
      this.unappliedCdrs.delete(sipCallId);
    }
    this.report(message.skipped, message.lostBytes, message.segment);
  }

  private report(skipped: SkippedOp[], lostBytes: number, segment: number): void {
    if (skipped.length > 0)
      this.log.error({ skipped: skipped.slice(0, 20), count: skipped.length, segment }, 'money journal ops refused by money.db');
    if (lostBytes > 0)
      this.log.error(
        { bytes: lostBytes, segment },
        'money log segment ended in bytes that are not a whole record (a torn tail or damage): ignored',
      );
  }

  // Reads: start-up recovery, and the duplicate check of CDR ingest (memory; one indexed row only when the filter says it may be there).
  findCdr(sipCallId: string, callIdHash?: number): StoredCdr | null {
    // The filter first: every CDR held in memory was added to it as it was (holdCdrs), so its "no" answers for
    // memory as for money.db, and a new CDR (nearly every one) costs no lookup in the map of those not yet applied.
    if (this.cdrFilterReady && !this.knownCdrs.mightHave(sipCallId, callIdHash)) return null;
    const unapplied = this.unappliedCdrs.get(sipCallId);
    if (unapplied !== undefined)
      return unapplied.op === 'rated'
        ? storedCdrOf(unapplied)
        : {
            id: unapplied.id,
            sip_call_id: unapplied.sipCallId,
            fingerprint: unapplied.fingerprint,
            result: unapplied.result,
            settlement: unapplied.settlement,
            account_id: unapplied.accountId,
            charge_micro: unapplied.chargeMicro,
          };
    const row = this.statements.findCdr.get(sipCallId) as CdrRow | undefined;
    return row === undefined ? null : storedCdrOfRow(row);
  }
  /**
   * Whether this node holds a CDR under the Call-ID, for admission's reuse check (NodeCredit.admit). Only once the
   * filter is loaded: while it loads at start-up a check would read money.db for every call; until then the
   * recently ended reservations in memory answer alone.
   */
  hasCdr(sipCallId: string, callIdHash?: number): boolean {
    return this.cdrFilterReady && this.findCdr(sipCallId, callIdHash) !== null;
  }

  lastCdrId(): number {
    return (this.statements.maxCdrId.get() as { id: number | null }).id ?? 0;
  }

  heldReservations(): StoredReservation[] {
    return this.db.prepare(`SELECT * FROM reservations WHERE state = 'held'`).all() as StoredReservation[];
  }

  /** The newest finished ones, oldest first, so that the newest end up last in an insertion-ordered map. */
  recentlyFinishedReservations(limit: number): StoredReservation[] {
    return this.db
      .prepare(`SELECT * FROM (SELECT * FROM reservations WHERE state != 'held' ORDER BY id DESC LIMIT ?) ORDER BY id`)
      .all(limit) as StoredReservation[];
  }

  lastReservationId(): number {
    return (this.db.prepare('SELECT MAX(id) AS id FROM reservations').get() as { id: number | null }).id ?? 0;
  }

  leases(): StoredLease[] {
    return this.db.prepare('SELECT * FROM leases').all() as StoredLease[];
  }

  unsettledCdrs(): StoredCdr[] {
    const rows = this.db
      .prepare(
        'SELECT id, sip_call_id, fingerprint, result, settlement, account_id, charge_micro, rated FROM cdrs WHERE id > ? ORDER BY id',
      )
      .all(this.settledThrough()) as CdrRow[];
    return rows.map(storedCdrOfRow);
  }

  private settledThrough(): number {
    return (this.statements.readMeta.get(SETTLED_THROUGH) as { value: number } | undefined)?.value ?? 0;
  }

  /**
   * A counter that survives restarts, handed out in blocks so it is written once per block; resolves with
   * the block's first number once its end is durable (through the log, like every other write).
   */
  async reserveCounterBlock(key: string, blockSize: number): Promise<number> {
    const start = this.counter(key) + 1;
    const end = start + blockSize - 1;
    this.counters.set(key, end);
    await this.write({ op: 'counter', key, value: end });
    return start;
  }

  /** Moves a counter up to at least `value`. */
  async raiseCounter(key: string, value: number): Promise<void> {
    if (value > this.counter(key)) await this.setCounter(key, value);
  }

  /** A value kept in money.db through the log, which may go down as well as up (a setting the centre sends). */
  async setCounter(key: string, value: number): Promise<void> {
    if (value === this.counter(key)) return;
    this.counters.set(key, value);
    await this.write({ op: 'counter', key, value });
  }

  /** A counter's current high mark (0 before its first write). */
  counter(key: string): number {
    let value = this.counters.get(key);
    if (value === undefined) {
      value = (this.statements.readMeta.get(key) as { value: number } | undefined)?.value ?? 0;
      this.counters.set(key, value);
    }
    return value;
  }

  /** Waits for every queued write to be durable, stops the writer, and lets the applier finish the log. */
  async close(): Promise<void> {
    await this.cdrFilterLoader?.terminate();
    this.flush();
    while ((this.inFlight.size > 0 || this.pending.ops.length > 0) && this.broken === null)
      await new Promise((resolve) => setTimeout(resolve, 5));
    if (this.writer !== null) {
      const writer = this.writer;
      writer.postMessage('stop');
      await new Promise((resolve) => writer.once('exit', resolve));
    }
    this.appender?.close();
    const applier = this.applier;
    applier.ref(); // nothing else may be keeping the process up while it finishes
    await new Promise<void>((resolve) => {
      applier.once('exit', () => resolve());
      applier.postMessage('drain');
    });
    this.db.close();
  }
}
