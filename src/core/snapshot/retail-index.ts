import type { Delta } from './delta.js';
import {
  compileProduct,
  compileTranslation,
  retailProblem,
  translationKey,
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
 * copying one Map of them per change costs milliseconds. They are held in TRANSLATION_BUCKETS Maps by a hash
 * of the key instead, so a change copies the one bucket it lands in (plus the array of bucket pointers).
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
  /** TRANSLATION_BUCKETS Maps, translationKey -> the newest translation set up for that caller and number. */
  translations: readonly Map<string, CallTranslation>[];
  translationCount: number;
}

/** FNV-1a over the key's UTF-16 units: cheap, and spreads similar numbers over the buckets. */
function bucketOf(key: string): number {
  let hash = 0x811c9dc5;
  for (let at = 0; at < key.length; at++) hash = Math.imul(hash ^ key.charCodeAt(at), 0x01000193);
  return (hash >>> 0) & (TRANSLATION_BUCKETS - 1);
}

/** The translation held for this caller and access number, live or not (the caller checks expiry). */
export function translationFor(index: RetailIndex, aNumber: string, accessNumber: string): CallTranslation | undefined {
  const key = translationKey(aNumber, accessNumber);
  return index.translations[bucketOf(key)].get(key);
}

/** A translation replaces the held one unless that one is newer (setup_call ids grow): newest wins, in any order. */
function putTranslation(bucket: Map<string, CallTranslation>, row: CallTranslationRow): void {
  const key = translationKey(row.a_number, row.access_number);
  const held = bucket.get(key);
  if (held === undefined || held.id <= row.id) bucket.set(key, compileTranslation(row));
}

export function compileRetail(tables: RetailTables): RetailIndex {
  const accessNumbers = new Map<string, RetailProduct>();
  const productNumbers = new Map<number, readonly string[]>();
  for (const row of tables.retail_products ?? []) {
    const product = compileProduct(row);
    for (const number of row.access_numbers) accessNumbers.set(number, product);
    productNumbers.set(row.id, row.access_numbers);
  }
  const translations = Array.from({ length: TRANSLATION_BUCKETS }, () => new Map<string, CallTranslation>());
  for (const row of tables.call_translations ?? [])
    putTranslation(translations[bucketOf(translationKey(row.a_number, row.access_number))], row);
  return { accessNumbers, productNumbers, translations, translationCount: countOf(translations) };
}

function countOf(buckets: readonly Map<string, CallTranslation>[]): number {
  let count = 0;
  for (const bucket of buckets) count += bucket.size;
  return count;
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
  const writable = (bucket: number): Map<string, CallTranslation> => {
    if (buckets === index.translations) buckets = [...index.translations];
    if (!touched.has(bucket)) {
      (buckets as Map<string, CallTranslation>[])[bucket] = new Map(buckets[bucket]);
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
        const at = buckets.findIndex((bucket) => [...bucket.values()].some((held) => held.id === delta.id));
        if (at >= 0) {
          const bucket = writable(at);
          for (const [key, held] of bucket) if (held.id === delta.id) bucket.delete(key);
        }
        continue;
      }
      const problem = retailProblem({ call_translations: [row as unknown as CallTranslationRow] });
      if (problem !== null) return { ok: false, reason: `delta ${delta.seq}: ${problem}` };
      const translation = row as unknown as CallTranslationRow;
      putTranslation(writable(bucketOf(translationKey(translation.a_number, translation.access_number))), translation);
    }
  }
  let translationCount = index.translationCount;
  for (const at of touched) {
    const bucket = buckets[at];
    for (const [key, held] of bucket) if (held.expiresAtMs <= nowMs) bucket.delete(key);
    translationCount += bucket.size - index.translations[at].size;
  }
  return { ok: true, index: { accessNumbers, productNumbers, translations: buckets, translationCount } };
}
