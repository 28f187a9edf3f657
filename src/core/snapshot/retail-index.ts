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
} from './retail.js';

/**
 * The retail tables compiled for calls (issue 19): access number -> product, and (caller, access number) ->
 * the newest translation. Live changes (issue 18) reach it copy-on-write, as every other live table: an apply
 * builds a new index that shares what it did not touch, and the caller swaps it in with one assignment, so a
 * call sees a translation before its change or after it, never half of it.
 *
 * Translations may be hundreds of thousands (one per caller and access number), and setup_call is frequent:
 * copying one Map of them per change costs milliseconds. They are held in TRANSLATION_BUCKETS Maps by the
 * caller's number instead, so a change copies the one bucket it lands in (plus the array of bucket pointers).
 * Within a bucket, a caller's number leads to its translation, or to a list of them when it was set up for
 * more than one access number (rare); never changed in place. The lone translation is held without a list
 * around it, and every translation through one access number shares that number's string: on a table this
 * size each object a lookup visits is a cache miss, and the list and a per-row copy of the access number
 * were two of them (bench/micro.ts, 2026-12-07). The lookup on the call path hashes nothing in JavaScript and
 * builds no key: the bucket comes from the number's last digits, and the Map is keyed by the caller's number
 * as the request carried it (an earlier key of caller and access number joined cost 5.6 µs a call against
 * 0.35 µs for a wholesale call/auth, bench/micro.ts).
 * Expired translations are dropped from the buckets a change touches; the others go with the next snapshot.
 * Products are few: a product change copies their two Maps.
 */
export const TRANSLATION_BUCKETS = 1024;

/** Plain Maps and arrays, so the compile worker can post them to the main thread. */
export interface RetailIndex {
  /** Access number digits -> its product. */
  accessNumbers: Map<string, RetailProduct>;
  /** Product id -> its access numbers: what a change to the product takes out of accessNumbers. */
  productNumbers: Map<number, readonly string[]>;
  /** TRANSLATION_BUCKETS Maps, caller's number -> the newest translation per access number set up for it (one: unlisted). */
  translations: readonly TranslationBucket[];
  translationCount: number;
}

type Held = CallTranslation | readonly CallTranslation[];
type TranslationBucket = Map<string, Held>;

// Array.isArray narrows a readonly list to any[]: this keeps its type.
const isList = (held: Held): held is readonly CallTranslation[] => Array.isArray(held);
/** A caller's translations as a list, whichever way they are held. */
const listOf = (held: Held | undefined): readonly CallTranslation[] => (held === undefined ? [] : isList(held) ? held : [held]);
/** A caller's translations as held: the lone one bare. */
const heldOf = (list: readonly CallTranslation[]): Held => (list.length === 1 ? list[0] : list);

/** The last four digits of a phone number are as good as random: they pick the bucket, in constant time. */
function bucketOf(aNumber: string): number {
  let hash = aNumber.length;
  for (let at = Math.max(0, aNumber.length - 4); at < aNumber.length; at++) hash = hash * 31 + aNumber.charCodeAt(at);
  return hash & (TRANSLATION_BUCKETS - 1);
}

/** The translation held for this caller and access number, live or not (the caller checks expiry). */
export function translationFor(index: RetailIndex, aNumber: string, accessNumber: string): CallTranslation | undefined {
  const held = index.translations[bucketOf(aNumber)].get(aNumber);
  if (held === undefined) return undefined;
  if (!isList(held)) return held.accessNumber === accessNumber ? held : undefined;
  for (const translation of held) if (translation.accessNumber === accessNumber) return translation;
  return undefined;
}

/**
 * A translation replaces the held one for its caller and access number unless that one is newer (setup_call
 * ids grow): newest wins, in any order. The caller's list is replaced, not changed: the index in service may share it.
 */
function putTranslation(bucket: TranslationBucket, row: CallTranslationRow, shared: SharedNumbers): void {
  const held = listOf(bucket.get(row.a_number));
  const at = held.findIndex((translation) => translation.accessNumber === row.access_number);
  if (at >= 0 && held[at].id > row.id) return;
  const translation = compileTranslation(row);
  translation.accessNumber = shared(translation.accessNumber);
  bucket.set(row.a_number, heldOf(at < 0 ? [...held, translation] : held.map((old, index) => (index === at ? translation : old))));
}

/** The one string per access number that the translations through it share: the products' own where held. */
type SharedNumbers = (accessNumber: string) => string;

function sharedNumbers(accessNumbers: ReadonlyMap<string, RetailProduct>): SharedNumbers {
  const strings = new Map<string, string>();
  for (const number of accessNumbers.keys()) strings.set(number, number);
  return (accessNumber) => {
    const held = strings.get(accessNumber);
    if (held !== undefined) return held;
    strings.set(accessNumber, accessNumber);
    return accessNumber;
  };
}

/** Keeps what `keep` says of `bucket`'s translations, replacing only the lists it changes. */
function filterBucket(bucket: TranslationBucket, keep: (translation: CallTranslation) => boolean): void {
  for (const [aNumber, held] of bucket) {
    const list = listOf(held);
    const kept = list.filter(keep);
    if (kept.length === list.length) continue;
    if (kept.length === 0) bucket.delete(aNumber);
    else bucket.set(aNumber, heldOf(kept));
  }
}

function sizeOf(bucket: TranslationBucket): number {
  let size = 0;
  for (const held of bucket.values()) size += isList(held) ? held.length : 1;
  return size;
}

export function compileRetail(tables: RetailTables): RetailIndex {
  const accessNumbers = new Map<string, RetailProduct>();
  const productNumbers = new Map<number, readonly string[]>();
  for (const row of tables.retail_products ?? []) {
    const product = compileProduct(row);
    for (const number of row.access_numbers) accessNumbers.set(number, product);
    productNumbers.set(row.id, row.access_numbers);
  }
  const translations = Array.from({ length: TRANSLATION_BUCKETS }, (): TranslationBucket => new Map());
  const shared = sharedNumbers(accessNumbers);
  for (const row of tables.call_translations ?? []) putTranslation(translations[bucketOf(row.a_number)], row, shared);
  let translationCount = 0;
  for (const bucket of translations) translationCount += sizeOf(bucket);
  return { accessNumbers, productNumbers, translations, translationCount };
}

export type RetailApply = { ok: true; index: RetailIndex } | { ok: false; reason: string };

/**
 * Applies retail_products and call_translations deltas, in order, to a new index; `index` is left as it was.
 * A product is live while it and its tenant are active: the centre sends a delete when it stops being live.
 * A row the snapshot checks would refuse, or an access number another product holds, refuses the batch.
 */
export function applyRetailDeltas(index: RetailIndex, deltas: readonly Delta[], nowMs: number): RetailApply {
  let accessNumbers = index.accessNumbers;
  let productNumbers = index.productNumbers;
  let buckets = index.translations;
  const touched = new Set<number>();
  const shared = sharedNumbers(index.accessNumbers);
  const writable = (bucket: number): TranslationBucket => {
    if (buckets === index.translations) buckets = [...index.translations];
    if (!touched.has(bucket)) {
      (buckets as TranslationBucket[])[bucket] = new Map(buckets[bucket]);
      touched.add(bucket);
    }
    return buckets[bucket];
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
      const compiled = compileProduct(product);
      for (const number of product.access_numbers) {
        const other = accessNumbers.get(number);
        if (other !== undefined) return { ok: false, reason: `delta ${delta.seq}: access number ${number} belongs to product ${other.id}` };
        accessNumbers.set(number, compiled);
      }
      productNumbers.set(delta.id, product.access_numbers);
    } else if (delta.table === 'call_translations') {
      if (row === null) {
        // The centre ends a translation by sending it expired; a delete (by id only) is found by looking.
        const holds = (bucket: TranslationBucket): boolean => {
          for (const held of bucket.values()) if (listOf(held).some((translation) => translation.id === delta.id)) return true;
          return false;
        };
        const at = buckets.findIndex(holds);
        if (at >= 0) filterBucket(writable(at), (translation) => translation.id !== delta.id);
        continue;
      }
      const problem = retailProblem({ call_translations: [row as unknown as CallTranslationRow] });
      if (problem !== null) return { ok: false, reason: `delta ${delta.seq}: ${problem}` };
      const translation = row as unknown as CallTranslationRow;
      putTranslation(writable(bucketOf(translation.a_number)), translation, shared);
    }
  }
  let translationCount = index.translationCount;
  for (const at of touched) {
    const bucket = buckets[at];
    filterBucket(bucket, (translation) => translation.expiresAtMs > nowMs);
    translationCount += sizeOf(bucket) - sizeOf(index.translations[at]);
  }
  return { ok: true, index: { accessNumbers, productNumbers, translations: buckets, translationCount } };
}
