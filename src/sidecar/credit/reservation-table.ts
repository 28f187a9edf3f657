import { hashCallId } from '../journal/call-id-hash.js';
import type { AnswerKind } from '../journal/reservation-answer.js';

/**
 * The node's reservations by Call-ID — live ones, and the most recently
 * finished ones (a repeated admit is answered from them) — kept off the
 * JavaScript heap, in typed-array pages.
 *
 * Why: at 10k calls/s a reservation per call held as an object (plus its
 * answer string, its Call-ID string and the map entries) survived every
 * young-generation GC and was copied into the old generation, and each
 * scavenge under admission load took 3–9 ms instead of under one: the
 * admissions' p99 was those pauses. Here a reservation is a slot number;
 * its fields are columns, its Call-ID is bytes in the slot (a longer or
 * non-Latin-1 one alone stays a string), the Call-ID index is an
 * open-addressing hash table in an Int32Array, and the expiry windows are
 * linked lists through the slots. Nothing per call is left for the GC.
 *
 * Slots are reused: a caller that keeps a slot across an await checks the
 * reservation's id (`isHeld(slot, id)`) before acting on it.
 */
// The journal's, which writes the answer into money.db from the kind (held-reservation.ts).
export type { AnswerKind } from '../journal/reservation-answer.js';

/**
 * A call whose credit is reserved slice by slice (credit/slices.ts): what it has paid for so far, the price
 * the next slice is bought at, and the OpenSIPS dialog to end when it cannot be.
 */
export interface SliceTerms {
  /** Epoch ms until which the reservation pays for the call: its admission plus `paidBillable` seconds. */
  paidUntil: number;
  /** Billable seconds (a billing-increment boundary) the reservation's amount covers. */
  paidBillable: number;
  /** The call's rate in the account's currency, nano-units per minute, and its rounding slack (core/rating/cost-bound.ts). */
  rateNano: number;
  slackMicro: number;
  initial: number;
  step: number;
  /** OpenSIPS's $DLG_did ("2a1.5"). */
  dialogId: string;
  /** The next slice could not be paid: the dialog is being ended at `paidUntil`. */
  ending: boolean;
}

export interface ReservationRecord {
  /** The journal's key, handed out in order by this node. */
  id: number;
  callId: string;
  /** Index of the entity in NodeCredit's list of entities. */
  entityIndex: number;
  amountMicro: number;
  maxDurationSeconds: number | null;
  expiresAt: number;
  /** What the admission answered, to answer a repeated Call-ID the same. */
  answerKind: AnswerKind;
  headroomMicro: number;
  /** null: the whole call was reserved at admission. */
  slice: SliceTerms | null;
  /** The customer trunk whose port the call holds (limits/live-ports.ts); null: none (call-admit/check names no trunk). */
  trunkId: number | null;
}

const PAGE_BITS = 16;
const PAGE_SLOTS = 1 << PAGE_BITS;
const PAGE_MASK = PAGE_SLOTS - 1;
/** Call-IDs up to this many Latin-1 characters are stored in the slot (SIPp, Asterisk, FreeSWITCH ones are 20–50). */
const KEY_BYTES = 48;
/**
 * The Call-ID index starts with room for a million reservations (8 MB): growing it rehashes every entry on
 * the event loop (25 ms at 500k, 36 ms at 1M), a pause no call should wait through while the node ramps up.
 */
const INDEX_SLOTS = 1 << 21;
/** Expiry visits ten-second windows of expiry times, not every live reservation. */
const WINDOW_MS = 10_000;
const NONE = -1;
const LONG_KEY = 0xffff;

const FREE = 0;
const HELD = 1;
const FINISHED = 2;

class Page {
  readonly id = new Float64Array(PAGE_SLOTS);
  readonly amountMicro = new Float64Array(PAGE_SLOTS);
  /** The customer trunk whose port the call holds; 0: none (trunk ids start at 1). */
  readonly trunkId = new Float64Array(PAGE_SLOTS);
  readonly expiresAt = new Float64Array(PAGE_SLOTS);
  readonly headroomMicro = new Float64Array(PAGE_SLOTS);
  /** Which entry of the finished ring stands for this slot (a slot held again and finished again gets a new one). */
  readonly finishSeq = new Float64Array(PAGE_SLOTS);
  readonly entityIndex = new Int32Array(PAGE_SLOTS);
  /** -1: not capped. */
  readonly maxDuration = new Int32Array(PAGE_SLOTS);
  readonly hash = new Int32Array(PAGE_SLOTS);
  /** The expiry window's list, while held. */
  readonly next = new Int32Array(PAGE_SLOTS);
  readonly prev = new Int32Array(PAGE_SLOTS);
  readonly state = new Uint8Array(PAGE_SLOTS);
  /** 0: admit, 1: check. */
  readonly answerKind = new Uint8Array(PAGE_SLOTS);
  /** LONG_KEY: the Call-ID is in the table's longKeys. */
  readonly keyLength = new Uint16Array(PAGE_SLOTS);
  readonly keys = new Uint8Array(PAGE_SLOTS * KEY_BYTES);
  // Sliced calls' terms (SliceTerms); sliceState WHOLE for the others.
  readonly sliceState = new Uint8Array(PAGE_SLOTS);
  readonly paidUntil = new Float64Array(PAGE_SLOTS);
  readonly paidBillable = new Int32Array(PAGE_SLOTS);
  readonly rateNano = new Float64Array(PAGE_SLOTS);
  readonly slackMicro = new Float64Array(PAGE_SLOTS);
  readonly initial = new Int32Array(PAGE_SLOTS);
  readonly step = new Int32Array(PAGE_SLOTS);
  /** The dialog id's two numbers (h_entry, h_id); see dialogIdText. */
  readonly dialogEntry = new Uint32Array(PAGE_SLOTS);
  readonly dialogNumber = new Uint32Array(PAGE_SLOTS);
}

const WHOLE = 0;
const SLICED = 1;
const ENDING = 2;

/** OpenSIPS prints a dialog id's numbers in hex, lowest digit first ("2a1.5" is h_entry 0x1a2, h_id 5). */
const reversedHex = (value: number): string => [...value.toString(16)].reverse().join('');
const fromReversedHex = (text: string): number => Number.parseInt([...text].reverse().join(''), 16);

export class ReservationTable {
  private readonly pages: Page[] = [];
  private slotsUsed = 0;
  private readonly freeSlots: number[] = [];
  /** Call-IDs that do not fit in a slot, by slot. */
  private readonly longKeys = new Map<number, string>();
  /** Open addressing, linear probing: slot + 1, 0 for empty; kept at most half full. */
  private index: Int32Array;
  private indexed = 0;
  /** Expiry window -> first held slot of its list. */
  private readonly windows = new Map<number, number>();
  /** No window before this one holds anything. */
  private firstWindow = Number.POSITIVE_INFINITY;
  private held = 0;
  /** The finished reservations kept for repeated Call-IDs, oldest first, as a ring. */
  private readonly finishedSlots: Int32Array;
  private readonly finishedSeqs: Float64Array;
  private finishedHead = 0;
  private finishedCount = 0;
  private finishCounter = 0;
  /** hashOf's last key and its hash. */
  private lastKey = '';
  private lastHash = hashCallId('');

  /** `indexSlots` (a power of two): tests start small to exercise the index's growth. */
  constructor(
    readonly finishedKept: number,
    indexSlots = INDEX_SLOTS,
  ) {
    this.index = new Int32Array(indexSlots);
    this.finishedSlots = new Int32Array(finishedKept);
    this.finishedSeqs = new Float64Array(finishedKept);
  }

  /** Live reservations. */
  get size(): number {
    return this.held;
  }

  /** The slot of the live or recently finished reservation under this Call-ID, or -1. */
  find(callId: string): number {
    const mask = this.index.length - 1;
    const hash = this.hashOf(callId);
    for (let at = hash & mask; ; at = (at + 1) & mask) {
      const entry = this.index[at];
      if (entry === 0) return NONE;
      const slot = entry - 1;
      if (this.page(slot).hash[slot & PAGE_MASK] === hash && this.keyEquals(slot, callId)) return slot;
    }
  }

  /** Holds a new reservation; its Call-ID must not be in the table. Returns its slot. */
  hold(record: ReservationRecord): number {
    const slot = this.insert(record);
    this.link(slot);
    return slot;
  }

  /** A reservation that finished before a restart, kept for repeated Call-IDs (oldest first). */
  remember(record: ReservationRecord): void {
    const slot = this.insert(record);
    this.page(slot).state[slot & PAGE_MASK] = FINISHED;
    this.pushFinished(slot);
  }

  /** True while `slot` holds the live reservation `id`. */
  isHeld(slot: number, id: number): boolean {
    const page = this.page(slot);
    const offset = slot & PAGE_MASK;
    return page.state[offset] === HELD && page.id[offset] === id;
  }

  /** Ends a live reservation: it stays findable among the recently finished. False when it was not live. */
  finish(slot: number, id: number): boolean {
    if (!this.isHeld(slot, id)) return false;
    this.unlink(slot);
    this.page(slot).state[slot & PAGE_MASK] = FINISHED;
    this.pushFinished(slot);
    return true;
  }

  /** A reservation finished by a write that was then refused: live again. False when its slot moved on. */
  rehold(slot: number, id: number): boolean {
    const page = this.page(slot);
    const offset = slot & PAGE_MASK;
    if (page.state[offset] !== FINISHED || page.id[offset] !== id) return false;
    page.finishSeq[offset] = 0; // its entry in the finished ring no longer stands for it
    this.link(slot);
    return true;
  }

  /** A reservation whose journal write was refused: never admitted, so not kept at all. */
  drop(slot: number, id: number): boolean {
    if (!this.isHeld(slot, id)) return false;
    this.unlink(slot);
    this.free(slot);
    return true;
  }

  /** The live reservations whose expiry is at or before `now`, oldest window first (they stay live until finished). */
  due(now: number): number[] {
    const last = Math.floor(now / WINDOW_MS);
    if (this.firstWindow > last) return [];
    // Usually a window or two; after a long gap (or a restart with old reservations) the windows that exist.
    const windows =
      last - this.firstWindow <= this.windows.size
        ? Array.from({ length: last - this.firstWindow + 1 }, (_, i) => this.firstWindow + i)
        : [...this.windows.keys()].filter((window) => window <= last).sort((a, b) => a - b);
    const due: number[] = [];
    for (const window of windows) {
      for (let slot = this.windows.get(window) ?? NONE; slot !== NONE;) {
        const page = this.page(slot);
        const offset = slot & PAGE_MASK;
        if (page.expiresAt[offset] <= now) due.push(slot);
        slot = page.next[offset];
      }
    }
    // Windows before the current one are emptied by the caller's finishing; the current one may keep some.
    this.firstWindow = this.windows.size === 0 ? Number.POSITIVE_INFINITY : last;
    return due;
  }

  // Fields of a slot.
  id(slot: number): number {
    return this.page(slot).id[slot & PAGE_MASK];
  }
  entityIndex(slot: number): number {
    return this.page(slot).entityIndex[slot & PAGE_MASK];
  }
  amountMicro(slot: number): number {
    return this.page(slot).amountMicro[slot & PAGE_MASK];
  }
  /** The customer trunk whose port the call holds; null: none (stored as 0, as `read` answers it). */
  trunkId(slot: number): number | null {
    const trunkId = this.page(slot).trunkId[slot & PAGE_MASK];
    return trunkId === 0 ? null : trunkId;
  }

  /** Everything about a slot, as an object (for the paths that are not per call: replay, tests). */
  read(slot: number): ReservationRecord {
    const page = this.page(slot);
    const offset = slot & PAGE_MASK;
    const maxDuration = page.maxDuration[offset];
    return {
      id: page.id[offset],
      callId: this.keyOf(slot),
      entityIndex: page.entityIndex[offset],
      amountMicro: page.amountMicro[offset],
      maxDurationSeconds: maxDuration < 0 ? null : maxDuration,
      expiresAt: page.expiresAt[offset],
      answerKind: page.answerKind[offset] === 0 ? 'admit' : 'check',
      headroomMicro: page.headroomMicro[offset],
      slice: this.slice(slot),
      trunkId: page.trunkId[offset] === 0 ? null : page.trunkId[offset],
    };
  }

  /** A sliced call's terms; null for a call reserved whole. */
  slice(slot: number): SliceTerms | null {
    const page = this.page(slot);
    const offset = slot & PAGE_MASK;
    const state = page.sliceState[offset];
    if (state === WHOLE) return null;
    const dialogId = `${reversedHex(page.dialogEntry[offset])}.${reversedHex(page.dialogNumber[offset])}`;
    return {
      paidUntil: page.paidUntil[offset],
      paidBillable: page.paidBillable[offset],
      rateNano: page.rateNano[offset],
      slackMicro: page.slackMicro[offset],
      initial: page.initial[offset],
      step: page.step[offset],
      dialogId,
      ending: state === ENDING,
    };
  }

  isSliced(slot: number): boolean {
    return this.page(slot).sliceState[slot & PAGE_MASK] !== WHOLE;
  }

  /** A live reservation's new amount, terms and next wake-up (its expiry window changes with it). */
  update(slot: number, amountMicro: number, slice: SliceTerms | null, expiresAt: number): void {
    const page = this.page(slot);
    const offset = slot & PAGE_MASK;
    page.amountMicro[offset] = amountMicro;
    this.writeSlice(page, offset, slice);
    if (page.state[offset] !== HELD) {
      page.expiresAt[offset] = expiresAt;
      return;
    }
    this.unlink(slot);
    page.expiresAt[offset] = expiresAt;
    this.link(slot);
  }

  private writeSlice(page: Page, offset: number, slice: SliceTerms | null): void {
    if (slice === null) {
      page.sliceState[offset] = WHOLE;
      return;
    }
    page.sliceState[offset] = slice.ending ? ENDING : SLICED;
    page.paidUntil[offset] = slice.paidUntil;
    page.paidBillable[offset] = slice.paidBillable;
    page.rateNano[offset] = slice.rateNano;
    page.slackMicro[offset] = slice.slackMicro;
    page.initial[offset] = slice.initial;
    page.step[offset] = slice.step;
    // Checked at the door (http/call-requests.ts): two canonical reversed-hex numbers.
    const dot = slice.dialogId.indexOf('.');
    page.dialogEntry[offset] = fromReversedHex(slice.dialogId.slice(0, dot));
    page.dialogNumber[offset] = fromReversedHex(slice.dialogId.slice(dot + 1));
  }

  private page(slot: number): Page {
    return this.pages[slot >>> PAGE_BITS];
  }

  private insert(record: ReservationRecord): number {
    const slot = this.allocate();
    const page = this.page(slot);
    const offset = slot & PAGE_MASK;
    page.id[offset] = record.id;
    page.entityIndex[offset] = record.entityIndex;
    page.amountMicro[offset] = record.amountMicro;
    page.trunkId[offset] = record.trunkId ?? 0;
    page.maxDuration[offset] = record.maxDurationSeconds ?? -1;
    page.expiresAt[offset] = record.expiresAt;
    page.answerKind[offset] = record.answerKind === 'admit' ? 0 : 1;
    page.headroomMicro[offset] = record.headroomMicro;
    page.finishSeq[offset] = 0;
    this.writeSlice(page, offset, record.slice);
    const key = record.callId;
    if (!this.storeInline(page, offset, key)) {
      page.keyLength[offset] = LONG_KEY;
      this.longKeys.set(slot, key);
    }
    const hash = this.hashOf(key);
    page.hash[offset] = hash;
    if ((this.indexed + 1) * 2 > this.index.length) this.growIndex();
    const mask = this.index.length - 1;
    let at = hash & mask;
    while (this.index[at] !== 0) at = (at + 1) & mask;
    this.index[at] = slot + 1;
    this.indexed++;
    return slot;
  }

  /**
   * hashCallId, once per Call-ID an admission looks up and then holds: the hash of the last key looked up is
   * kept (an admission's find and insert are given the same string, and its CDR check, NodeCredit.hasCdr, asks
   * for it: the CDR filter's first hash is this one).
   */
  hashOf(key: string): number {
    if (key === this.lastKey) return this.lastHash;
    const hash = hashCallId(key);
    this.lastKey = key;
    this.lastHash = hash;
    return hash;
  }

  /** Copies a Latin-1 Call-ID of up to KEY_BYTES into the slot, checking as it copies; false: it stays a string. */
  private storeInline(page: Page, offset: number, key: string): boolean {
    const length = key.length;
    if (length > KEY_BYTES) return false;
    const { keys } = page;
    const base = offset * KEY_BYTES;
    for (let i = 0; i < length; i++) {
      const code = key.charCodeAt(i);
      if (code > 0xff) return false;
      keys[base + i] = code;
    }
    page.keyLength[offset] = length;
    return true;
  }

  private allocate(): number {
    const reused = this.freeSlots.pop();
    if (reused !== undefined) return reused;
    if (this.slotsUsed === this.pages.length * PAGE_SLOTS) this.pages.push(new Page());
    return this.slotsUsed++;
  }

  private free(slot: number): void {
    this.unindex(slot);
    this.longKeys.delete(slot);
    this.page(slot).state[slot & PAGE_MASK] = FREE;
    this.freeSlots.push(slot);
  }

  private keyEquals(slot: number, key: string): boolean {
    const page = this.page(slot);
    const offset = slot & PAGE_MASK;
    const length = page.keyLength[offset];
    if (length === LONG_KEY) return this.longKeys.get(slot) === key;
    // An inline key is Latin-1: a character above 0xff never equals one of its bytes.
    if (length !== key.length) return false;
    const base = offset * KEY_BYTES;
    for (let i = 0; i < key.length; i++) if (page.keys[base + i] !== key.charCodeAt(i)) return false;
    return true;
  }

  private keyOf(slot: number): string {
    const page = this.page(slot);
    const length = page.keyLength[slot & PAGE_MASK];
    if (length === LONG_KEY) return this.longKeys.get(slot)!;
    const base = (slot & PAGE_MASK) * KEY_BYTES;
    return String.fromCharCode(...page.keys.subarray(base, base + length));
  }

  /** Removes a slot from the index, shifting later entries of its probe run back (no tombstones). */
  private unindex(slot: number): void {
    const mask = this.index.length - 1;
    let at = this.page(slot).hash[slot & PAGE_MASK] & mask;
    while (this.index[at] !== slot + 1) at = (at + 1) & mask;
    let hole = at;
    for (let next = (hole + 1) & mask; this.index[next] !== 0; next = (next + 1) & mask) {
      const moving = this.index[next] - 1;
      const home = this.page(moving).hash[moving & PAGE_MASK] & mask;
      // The entry may fill the hole unless its home lies cyclically in (hole, next].
      const stays = hole <= next ? hole < home && home <= next : hole < home || home <= next;
      if (!stays) {
        this.index[hole] = this.index[next];
        hole = next;
      }
    }
    this.index[hole] = 0;
    this.indexed--;
  }

  private growIndex(): void {
    const old = this.index;
    this.index = new Int32Array(old.length * 2);
    const mask = this.index.length - 1;
    for (const entry of old) {
      if (entry === 0) continue;
      const slot = entry - 1;
      let at = this.page(slot).hash[slot & PAGE_MASK] & mask;
      while (this.index[at] !== 0) at = (at + 1) & mask;
      this.index[at] = entry;
    }
  }

  private link(slot: number): void {
    const page = this.page(slot);
    const offset = slot & PAGE_MASK;
    const window = Math.floor(page.expiresAt[offset] / WINDOW_MS);
    const head = this.windows.get(window) ?? NONE;
    page.state[offset] = HELD;
    page.prev[offset] = NONE;
    page.next[offset] = head;
    if (head !== NONE) this.page(head).prev[head & PAGE_MASK] = slot;
    this.windows.set(window, slot);
    if (window < this.firstWindow) this.firstWindow = window;
    this.held++;
  }

  private unlink(slot: number): void {
    const page = this.page(slot);
    const offset = slot & PAGE_MASK;
    const prev = page.prev[offset];
    const next = page.next[offset];
    if (next !== NONE) this.page(next).prev[next & PAGE_MASK] = prev;
    if (prev !== NONE) {
      this.page(prev).next[prev & PAGE_MASK] = next;
    } else {
      const window = Math.floor(page.expiresAt[offset] / WINDOW_MS);
      if (next === NONE) this.windows.delete(window);
      else this.windows.set(window, next);
    }
    this.held--;
  }

  /** Appends to the ring of finished reservations; the oldest one leaves the table when it is full. */
  private pushFinished(slot: number): void {
    const kept = this.finishedSlots.length;
    if (kept === 0) return this.free(slot);
    const seq = ++this.finishCounter;
    this.page(slot).finishSeq[slot & PAGE_MASK] = seq;
    if (this.finishedCount === kept) {
      const oldest = this.finishedSlots[this.finishedHead];
      const page = this.page(oldest);
      const offset = oldest & PAGE_MASK;
      // Unless it was held again since (then a newer entry, or none, stands for it).
      if (page.state[offset] === FINISHED && page.finishSeq[offset] === this.finishedSeqs[this.finishedHead]) this.free(oldest);
      this.finishedSlots[this.finishedHead] = slot;
      this.finishedSeqs[this.finishedHead] = seq;
      this.finishedHead = (this.finishedHead + 1) % kept;
      return;
    }
    const at = (this.finishedHead + this.finishedCount) % kept;
    this.finishedSlots[at] = slot;
    this.finishedSeqs[at] = seq;
    this.finishedCount++;
  }
}
