import { deepestNode, type PrefixTrie } from '../trie/prefix-trie.js';
import type { Delta } from './delta.js';
import {
  compileProduct,
  compileTranslation,
  retailProblem,
  type CallTranslation,
  type CallTranslationRow,
  type RetailProduct,
  type RetailProductRow,
  type RetailTables,
  type SellDecks,
} from './retail.js';

/**
 * The retail tables compiled for calls (issue 19): access number -> product, and (caller, access number) ->
 * the newest translation. Live changes (issue 18) reach it copy-on-write, as every other live table: an apply
 * builds a new index that shares what it did not touch, and the caller swaps it in with one assignment, so a
 * call sees a translation before its change or after it, never half of it.
 *
 * Translations may be hundreds of thousands (one per caller and access number), and setup_call is frequent:
 * copying all of them per change costs milliseconds. They are held in TRANSLATION_BUCKETS buckets by their
 * key's hash instead, so a change rebuilds the one bucket it lands in (plus the array of bucket pointers).
 *
 * A bucket holds its translations as numbers in one Float64Array, open-addressed by the key's hash, a record
 * of RECORD numbers a slot: the caller's digits (as up to three numbers), the access number's key, expiry,
 * id, account, product and the b-number's node in the snapshot's rate trie, all exact in a double. On a table
 * this size each separate object a lookup reads is a cache miss (and a TLB miss, in a 600 MB process): a Map's
 * table, its key string, the translation, its boxed expiry, its access number's string and the b-number were
 * six or more a retail call, and made its decisions cost twice a wholesale call's (bench/micro.ts,
 * 2026-12-07). A record is one or two cache lines; only the b-number string, which the call goes on with, is
 * read beside it. Nothing is built per call: the caller's digits are read into the key numbers, and the access
 * number's key is one read of a small Map. Expired translations are dropped from the buckets a change touches;
 * the others go with the next snapshot. Products are few: a product change copies their two Maps.
 *
 * The b-number's node is where call/decide's admission and route steps would stop walking its digits down the
 * rate trie (their caches are keyed by it): found once when the translation is compiled or applied, so a
 * retail call's steps after auth skip the walk (two walks of 11 digits through a 3.6 MB trie, mostly misses:
 * ~0.3 µs each, 2026-12-07, branch retail-route). A node holds for the rates it was found in only; the index
 * is compiled with its snapshot, and the rates are not a live table, so the two go together.
 */
export const TRANSLATION_BUCKETS = 1024;
/** A key's bucket is its hash's top bits; its slot, the low ones. */
const BUCKET_SHIFT = 32 - Math.log2(TRANSLATION_BUCKETS);

// A record's fields, by offset. CALLER_HIGH 0 is an empty slot: a caller's key number is never 0.
const CALLER_HIGH = 0;
const CALLER_MIDDLE = 1;
const CALLER_LOW = 2;
const ACCESS = 3;
const EXPIRES = 4;
const ID = 5;
const ACCOUNT = 6;
const PRODUCT = 7;
const ROUTE_NODE = 8;
const RECORD = 9;
/**
 * Digits per key number: 1 then up to 15 digits is below 2^53 (exact), and the leading 1 keeps "012" and
 * "12" apart. Three numbers hold the 32 digits a number may have (retail.ts); a number without the third (or
 * second) has 0 there.
 */
const KEY_DIGITS = 15;
const MAX_CALLER_DIGITS = 3 * KEY_DIGITS;

/** Plain Maps, arrays and typed arrays, so the compile worker can post them to the main thread. */
export interface RetailIndex {
  /** Access number digits -> its product. */
  accessNumbers: Map<string, RetailProduct>;
  /** Product id -> its access numbers: what a change to the product takes out of accessNumbers. */
  productNumbers: Map<number, readonly string[]>;
  /**
   * Access number digits -> the number translation records hold for it (from 1; never reused by this index
   * or those applied from it). Every access number a held translation names has one, a product's or not.
   */
  accessKeys: Map<string, number>;
  /** TRANSLATION_BUCKETS buckets of translations, by their key's hash. */
  translations: readonly TranslationBucket[];
  translationCount: number;
}

export interface TranslationBucket {
  /** RECORD numbers a slot; slots a power of two, at least one of them empty (where a probe ends). */
  records: Float64Array;
  /** Each slot's b-number ('' when empty). */
  bNumbers: readonly string[];
  count: number;
}

/** A translation as a change edits it, before it is written into a bucket. */
interface Entry {
  high: number;
  middle: number;
  low: number;
  access: number;
  expiresAtMs: number;
  id: number;
  retailAccountId: number;
  productId: number;
  bNumber: string;
  routeNode: number;
}

/**
 * readCaller's answer: the caller's key numbers, high, middle and low (the event loop runs one lookup at a
 * time). In a Float64Array, not three module variables: a key number is a double beyond a small integer's
 * range, and a module variable holds one boxed, a new heap number on every store (every retail call).
 */
const callerKey = new Float64Array(3);

/** Reads a caller's digits into callerKey; false when it is not 1..45 digits (no translation has it). */
function readCaller(aNumber: string): boolean {
  const length = aNumber.length;
  if (length === 0 || length > MAX_CALLER_DIGITS) return false;
  callerKey[1] = 0;
  callerKey[2] = 0;
  let key = 1;
  for (let at = 0; at < length;) {
    const digit = aNumber.charCodeAt(at) - 48;
    if (digit < 0 || digit > 9) return false;
    key = key * 10 + digit;
    at++;
    if (at === length || at % KEY_DIGITS === 0) {
      callerKey[at <= KEY_DIGITS ? 0 : at <= 2 * KEY_DIGITS ? 1 : 2] = key;
      key = 1;
    }
  }
  return true;
}

/** Mixes a key number (an integer below 2^53) into a 32-bit hash, both its halves. */
function mix(hash: number, value: number): number {
  hash = Math.imul(hash ^ (value | 0), 0x01000193);
  return Math.imul(hash ^ ((value / 4294967296) | 0), 0x01000193);
}

/** The key's hash, an unsigned 32-bit number. */
function hashOf(high: number, middle: number, low: number, access: number): number {
  let hash = mix(mix(mix(Math.imul(access, 0x9e3779b1), high), middle), low);
  hash ^= hash >>> 16;
  hash = Math.imul(hash, 0x85ebca6b);
  hash ^= hash >>> 13;
  return hash >>> 0;
}

/** The slot of readCaller's key and `access` in `bucket`, else -1. */
function slotOf(bucket: TranslationBucket, hash: number, access: number): number {
  const records = bucket.records;
  const mask = records.length / RECORD - 1;
  for (let slot = hash & mask; ; slot = (slot + 1) & mask) {
    const at = slot * RECORD;
    const high = records[at + CALLER_HIGH];
    if (high === 0) return -1;
    if (
      high === callerKey[0] &&
      records[at + CALLER_MIDDLE] === callerKey[1] &&
      records[at + CALLER_LOW] === callerKey[2] &&
      records[at + ACCESS] === access
    )
      return slot;
  }
}

/**
 * findTranslation's answer, written over by every lookup: a call reads it before the next one (the event loop
 * runs one at a time). An object per call, and one more for its boxed expiry, was garbage on every retail call.
 */
const found: CallTranslation = { id: 0, retailAccountId: 0, productId: 0, accessNumber: '', bNumber: '', expiresAtMs: 0, bNumberNode: 0 };

/**
 * The translation held for this caller and access number, live or not (the caller checks expiry), as the one
 * object every lookup writes over: read it before the next lookup (translationFor gives one to keep).
 */
export function findTranslation(index: RetailIndex, aNumber: string, accessNumber: string): Readonly<CallTranslation> | undefined {
  const access = index.accessKeys.get(accessNumber);
  if (access === undefined || !readCaller(aNumber)) return undefined;
  const hash = hashOf(callerKey[0], callerKey[1], callerKey[2], access);
  const bucket = index.translations[hash >>> BUCKET_SHIFT];
  const slot = slotOf(bucket, hash, access);
  if (slot < 0) return undefined;
  const records = bucket.records;
  const at = slot * RECORD;
  found.id = records[at + ID];
  found.retailAccountId = records[at + ACCOUNT];
  found.productId = records[at + PRODUCT];
  found.accessNumber = accessNumber;
  found.bNumber = bucket.bNumbers[slot];
  found.expiresAtMs = records[at + EXPIRES];
  found.bNumberNode = records[at + ROUTE_NODE];
  return found;
}

/** The translation held for this caller and access number, live or not, as an object of its own. */
export function translationFor(index: RetailIndex, aNumber: string, accessNumber: string): CallTranslation | undefined {
  const held = findTranslation(index, aNumber, accessNumber);
  return held === undefined ? undefined : { ...held };
}

/** A bucket holding `entries`, with at least twice as many slots (so one at least is empty). */
function bucketOf(entries: readonly Entry[]): TranslationBucket {
  let slots = 1;
  while (slots < entries.length * 2) slots *= 2;
  const records = new Float64Array(slots * RECORD);
  const bNumbers = new Array<string>(slots).fill('');
  const mask = slots - 1;
  for (const entry of entries) {
    let slot = hashOf(entry.high, entry.middle, entry.low, entry.access) & mask;
    while (records[slot * RECORD + CALLER_HIGH] !== 0) slot = (slot + 1) & mask;
    const at = slot * RECORD;
    records[at + CALLER_HIGH] = entry.high;
    records[at + CALLER_MIDDLE] = entry.middle;
    records[at + CALLER_LOW] = entry.low;
    records[at + ACCESS] = entry.access;
    records[at + EXPIRES] = entry.expiresAtMs;
    records[at + ID] = entry.id;
    records[at + ACCOUNT] = entry.retailAccountId;
    records[at + PRODUCT] = entry.productId;
    records[at + ROUTE_NODE] = entry.routeNode;
    bNumbers[slot] = entry.bNumber;
  }
  return { records, bNumbers, count: entries.length };
}

/** A bucket's translations, for a change to edit. */
function entriesOf(bucket: TranslationBucket): Entry[] {
  const { records, bNumbers } = bucket;
  const entries: Entry[] = [];
  for (let at = 0; at < records.length; at += RECORD) {
    if (records[at + CALLER_HIGH] === 0) continue;
    entries.push({
      high: records[at + CALLER_HIGH],
      middle: records[at + CALLER_MIDDLE],
      low: records[at + CALLER_LOW],
      access: records[at + ACCESS],
      expiresAtMs: records[at + EXPIRES],
      id: records[at + ID],
      retailAccountId: records[at + ACCOUNT],
      productId: records[at + PRODUCT],
      bNumber: bNumbers[at / RECORD],
      routeNode: records[at + ROUTE_NODE],
    });
  }
  return entries;
}

/** Whether a bucket's records hold the translation with this id. */
function holdsId(records: Float64Array, id: number): boolean {
  for (let at = 0; at < records.length; at += RECORD) if (records[at + ID] === id && records[at + CALLER_HIGH] !== 0) return true;
  return false;
}

/** The entries of bucket `at`, for a change to edit (a new list the first time). */
type Editing = (at: number) => Entry[];

/**
 * Puts a translation among its bucket's entries: it replaces the one held for its caller and access number
 * unless that one is newer (setup_call ids grow), so newest wins, in any order.
 */
function putTranslation(editing: Editing, row: CallTranslationRow, access: number, rateTrie: PrefixTrie | null): void {
  // retailProblem has checked the digits (1..32 of them).
  readCaller(row.a_number);
  const [high, middle, low] = callerKey;
  const entries = editing(hashOf(high, middle, low, access) >>> BUCKET_SHIFT);
  const { id, retailAccountId, productId, bNumber, expiresAtMs } = compileTranslation(row);
  // The b-number is digits (retailProblem), what call/route's normalisation hands the walk unchanged.
  const routeNode = rateTrie === null ? -1 : deepestNode(rateTrie, bNumber);
  const entry: Entry = {
    high,
    middle,
    low,
    access,
    expiresAtMs,
    id,
    retailAccountId,
    productId,
    bNumber,
    routeNode,
  };
  const held = entries.findIndex(
    (other) => other.access === access && other.high === entry.high && other.middle === entry.middle && other.low === entry.low,
  );
  if (held < 0) entries.push(entry);
  else if (entries[held].id <= id) entries[held] = entry;
}

/** An access number's key, given one (by `accessKeys`, which it may add to) the first time a translation names it. */
function accessKeyOf(accessKeys: Map<string, number>, accessNumber: string): number {
  const held = accessKeys.get(accessNumber);
  if (held !== undefined) return held;
  const key = accessKeys.size + 1;
  accessKeys.set(accessNumber, key);
  return key;
}

/**
 * What of its snapshot an index is compiled against: the rates' trie (null: the translations' route nodes are
 * not known, -1) and its decks (products' sell decks). An index holds route nodes and deck
 * indexes of its own snapshot only: a new snapshot compiles a new index, and neither the rates nor the decks
 * are live tables, so live changes (applyRetailDeltas) are applied against the same ones.
 */
export interface RetailBasis extends SellDecks {
  rateTrie: PrefixTrie | null;
}

const NO_BASIS: RetailBasis = { rateTrie: null, deckById: new Map(), decks: [] };

export function compileRetail(tables: RetailTables, basis: RetailBasis = NO_BASIS): RetailIndex {
  const rateTrie = basis.rateTrie;
  const accessNumbers = new Map<string, RetailProduct>();
  const productNumbers = new Map<number, readonly string[]>();
  const accessKeys = new Map<string, number>();
  for (const row of tables.retail_products ?? []) {
    const product = compileProduct(row, basis);
    for (const number of row.access_numbers) {
      accessNumbers.set(number, product);
      accessKeyOf(accessKeys, number);
    }
    productNumbers.set(row.id, row.access_numbers);
  }
  const entries = Array.from({ length: TRANSLATION_BUCKETS }, (): Entry[] => []);
  const editing: Editing = (at) => entries[at];
  for (const row of tables.call_translations ?? []) putTranslation(editing, row, accessKeyOf(accessKeys, row.access_number), rateTrie);
  let translationCount = 0;
  for (const bucket of entries) translationCount += bucket.length;
  return { accessNumbers, productNumbers, accessKeys, translations: entries.map(bucketOf), translationCount };
}

export type RetailApply = { ok: true; index: RetailIndex } | { ok: false; reason: string };

/**
 * Applies retail_products and call_translations deltas, in order, to a new index; `index` is left as it was.
 * A product is live while it and its tenant are active: the centre sends a delete when it stops being live.
 * A row the snapshot checks would refuse, or an access number another product holds, refuses the batch.
 */
export function applyRetailDeltas(index: RetailIndex, deltas: readonly Delta[], nowMs: number, basis: RetailBasis = NO_BASIS): RetailApply {
  const rateTrie = basis.rateTrie;
  let accessNumbers = index.accessNumbers;
  let productNumbers = index.productNumbers;
  let accessKeys = index.accessKeys;
  const edited = new Map<number, Entry[]>();
  const editing: Editing = (at) => {
    let entries = edited.get(at);
    if (entries === undefined) {
      entries = entriesOf(index.translations[at]);
      edited.set(at, entries);
    }
    return entries;
  };
  for (const delta of deltas) {
    const row = delta.row;
    if (row !== null && row.id !== delta.id) return { ok: false, reason: `delta ${delta.seq}: the row's id is not ${delta.id}` };
    if (delta.table === 'retail_products') {
      const problem = row === null ? null : retailProblem({ retail_products: [row as unknown as RetailProductRow] });
      if (problem !== null) return { ok: false, reason: `delta ${delta.seq}: ${problem}` };
      if (accessNumbers === index.accessNumbers) {
        accessNumbers = new Map(accessNumbers);
        productNumbers = new Map(productNumbers);
      }
      for (const number of productNumbers.get(delta.id) ?? []) accessNumbers.delete(number);
      productNumbers.delete(delta.id);
      if (row === null) continue;
      const product = row as unknown as RetailProductRow;
      // A product's deck resolved here, once per change, not per call: a changed rate_deck_id sells from the next call on.
      const compiled = compileProduct(product, basis);
      for (const number of product.access_numbers) {
        const other = accessNumbers.get(number);
        if (other !== undefined) return { ok: false, reason: `delta ${delta.seq}: access number ${number} belongs to product ${other.id}` };
        accessNumbers.set(number, compiled);
      }
      productNumbers.set(delta.id, product.access_numbers);
    } else if (delta.table === 'call_translations') {
      if (row === null) {
        // The centre ends a translation by sending it expired; a delete (by id only) is found by looking.
        const holds = (bucket: TranslationBucket, at: number): boolean =>
          edited.get(at)?.some((entry) => entry.id === delta.id) ?? holdsId(bucket.records, delta.id);
        const at = index.translations.findIndex(holds);
        if (at >= 0)
          edited.set(
            at,
            editing(at).filter((entry) => entry.id !== delta.id),
          );
        continue;
      }
      const problem = retailProblem({ call_translations: [row as unknown as CallTranslationRow] });
      if (problem !== null) return { ok: false, reason: `delta ${delta.seq}: ${problem}` };
      const translation = row as unknown as CallTranslationRow;
      if (!accessKeys.has(translation.access_number) && accessKeys === index.accessKeys) accessKeys = new Map(accessKeys);
      putTranslation(editing, translation, accessKeyOf(accessKeys, translation.access_number), rateTrie);
    }
  }
  let buckets = index.translations;
  let translationCount = index.translationCount;
  for (const [at, entries] of edited) {
    if (buckets === index.translations) buckets = [...index.translations];
    const bucket = bucketOf(entries.filter((entry) => entry.expiresAtMs > nowMs));
    (buckets as TranslationBucket[])[at] = bucket;
    translationCount += bucket.count - index.translations[at].count;
  }
  return { ok: true, index: { accessNumbers, productNumbers, accessKeys, translations: buckets, translationCount } };
}
