import { FNV_OFFSET_BASIS, hashCallId } from './call-id-hash.js';

/**
 * Which Call-IDs this node may have taken a CDR for, so that the duplicate
 * check of CDR ingest reads money.db only when the answer may be yes: for a
 * resend, and for the new CDR in a hundred or so that the filter mistakes for
 * one. A read of money.db per CDR on the event loop was a third of what
 * ingesting a CDR cost.
 *
 * Bloom filters (10 bits and 7 hashes per Call-ID: under 1% false
 * positives), one per generation of CDRs. A generation holds the CDRs of up
 * to ten minutes, or as many as its size was planned for; it is dropped once
 * the prune deletes all of its CDRs from money.db (created before the
 * prune's cutoff and settled), never before: a "no" from the filter must be
 * true.
 */
const BITS_PER_CDR = 10;
const HASHES = 7;
const GENERATION_MS = 10 * 60_000;
const SECOND_SEED = 0x9747b28c;

/** A generation as plain data, to hand from the thread that loads the filter to the event loop. */
export interface GenerationData {
  capacity: number;
  bits: Uint32Array;
  count: number;
  firstCreatedAt: number;
  lastCreatedAt: number;
  lastId: number;
}

class Generation implements GenerationData {
  readonly bits: Uint32Array;
  readonly mask: number;
  count = 0;
  /** The CDRs it holds: ids and creation times, for the prune's test. */
  firstCreatedAt = Number.POSITIVE_INFINITY;
  lastCreatedAt = 0;
  lastId = 0;

  constructor(
    readonly capacity: number,
    bits?: Uint32Array,
  ) {
    let size = 1024;
    while (size < capacity * BITS_PER_CDR) size *= 2; // a power of two: positions by mask
    this.bits = bits ?? new Uint32Array(size / 32);
    this.mask = size - 1;
  }

  static from(data: GenerationData): Generation {
    const generation = new Generation(data.capacity, data.bits);
    generation.count = data.count;
    generation.firstCreatedAt = data.firstCreatedAt;
    generation.lastCreatedAt = data.lastCreatedAt;
    generation.lastId = data.lastId;
    return generation;
  }
}

export class CdrFilter {
  private generations: Generation[] = [];

  constructor(private readonly minCapacity = 65_536) {}

  add(sipCallId: string, id: number, createdAt: number): void {
    const generation = this.current(createdAt);
    const h1 = hashCallId(sipCallId, FNV_OFFSET_BASIS);
    const h2 = hashCallId(sipCallId, SECOND_SEED) | 1;
    for (let i = 0; i < HASHES; i++) {
      const bit = (h1 + Math.imul(i, h2)) & generation.mask;
      generation.bits[bit >>> 5] |= 1 << (bit & 31);
    }
    generation.count++;
    generation.firstCreatedAt = Math.min(generation.firstCreatedAt, createdAt);
    generation.lastCreatedAt = Math.max(generation.lastCreatedAt, createdAt);
    generation.lastId = Math.max(generation.lastId, id);
  }

  /**
   * false: this node has no CDR under the Call-ID; true: it may have. `callIdHash`: its hashCallId with the FNV basis, when
   * the caller has it already (admission: the reservation table's hash of the Call-ID).
   */
  mightHave(sipCallId: string, callIdHash?: number): boolean {
    if (this.generations.length === 0) return false;
    const h1 = callIdHash ?? hashCallId(sipCallId, FNV_OFFSET_BASIS);
    const h2 = hashCallId(sipCallId, SECOND_SEED) | 1;
    for (const generation of this.generations) {
      let all = true;
      for (let i = 0; i < HASHES && all; i++) {
        const bit = (h1 + Math.imul(i, h2)) & generation.mask;
        all = (generation.bits[bit >>> 5] & (1 << (bit & 31))) !== 0;
      }
      if (all) return true;
    }
    return false;
  }

  /** The prune deleted the settled CDRs (id up to `settledThrough`) created before `createdBefore`: forget generations of only those. */
  forget(createdBefore: number, settledThrough: number): void {
    this.generations = this.generations.filter(
      (generation) => generation.lastCreatedAt >= createdBefore || generation.lastId > settledThrough,
    );
  }

  /** The generations as plain data (their bits are shared, not copied). */
  export(): GenerationData[] {
    return this.generations.map(({ capacity, bits, count, firstCreatedAt, lastCreatedAt, lastId }) => ({
      capacity,
      bits,
      count,
      firstCreatedAt,
      lastCreatedAt,
      lastId,
    }));
  }

  /** Takes in generations of CDRs older than any this filter holds (loaded beside it at start-up). */
  adoptOlder(generations: GenerationData[]): void {
    this.generations = [...generations.map((data) => Generation.from(data)), ...this.generations];
  }

  get generationCount(): number {
    return this.generations.length;
  }

  private current(createdAt: number): Generation {
    const last = this.generations.at(-1);
    if (last !== undefined && last.count < last.capacity && createdAt - last.firstCreatedAt < GENERATION_MS) return last;
    // Full before its ten minutes: twice the size (a node ramping up gets there in a few generations).
    // Else sized for a little more than the last one held: a node's CDR rate changes slowly.
    const capacity = last === undefined ? this.minCapacity : last.count >= last.capacity ? last.capacity * 2 : Math.ceil(last.count * 1.25);
    const generation = new Generation(Math.max(this.minCapacity, capacity));
    this.generations.push(generation);
    return generation;
  }
}
