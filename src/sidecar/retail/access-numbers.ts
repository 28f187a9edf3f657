import type { CallTranslation, RetailProduct } from '../../core/snapshot/retail.js';
import { findTranslation, type RetailIndex } from '../../core/snapshot/retail-index.js';

/**
 * Calls through a partner product's access number (issue 19): who may call it, and where the call goes.
 * A setup_call translation says that a call from `a_number` to `access_number` goes to `b_number`, billed
 * to one retail account, until it expires. The routing snapshot carries the products' access numbers and
 * the translations live when it was built (src/core/snapshot/retail.ts).
 *
 * `lookup` is pure: the index and the time in, the answer out; on the call path, two reads of small Maps and
 * one translation record (retail-index.ts says why a record, not an object). call/auth asks callAccess, which
 * allocates nothing for a translated call.
 * Between snapshots the index changes only by the live channel's deltas (issue 18: a setup_call, an account
 * or product that stops being live), applied copy-on-write into a new index that is swapped in whole
 * (src/core/snapshot/retail-index.ts), so a call sees a change before or after it, never half of it.
 */
export type AccessLookup =
  /** The dialled number is no product's access number: an ordinary call. */
  | { kind: 'not_access_number' }
  /** An access number, but no live translation for this caller: refused. */
  | { kind: 'no_translation'; product: RetailProduct }
  | { kind: 'translated'; product: RetailProduct; translation: CallTranslation };

const NOT_ACCESS_NUMBER: AccessLookup = Object.freeze({ kind: 'not_access_number' });

type Translated = Extract<AccessLookup, { kind: 'translated' }>;
/** callAccess's answer for a translated call, written over by every lookup. */
const translated: Translated = {
  kind: 'translated',
  product: { id: 0, customerTrunkId: null, rateDeckId: null, sellDeck: null, currency: 'USD' },
  translation: {
    id: 0,
    retailAccountId: 0,
    productId: 0,
    accessNumber: '',
    bNumber: '',
    expiresAtMs: 0,
    bNumberNode: -1,
  },
};

/**
 * lookupAccessNumber as call/auth asks it, on every call: a translated call's answer is the one object every
 * lookup writes over, its translation findTranslation's, to be read before the next lookup (the event loop
 * runs one at a time). Two objects a retail call (three with the expiry's box) were garbage.
 */
export function callAccess(index: RetailIndex, ani: string, dialled: string, nowMs: number): Readonly<AccessLookup> {
  const product = index.accessNumbers.get(dialled);
  if (product === undefined) return NOT_ACCESS_NUMBER;
  const translation = findTranslation(index, ani, dialled);
  // Expired is checked here, per call: the snapshot holds what was live when it was built, not what is live now.
  if (translation === undefined || translation.expiresAtMs <= nowMs || translation.productId !== product.id)
    return { kind: 'no_translation', product };
  translated.product = product;
  translated.translation = translation;
  return translated;
}

/** The access-number lookup, its answer the caller's to keep. */
export function lookupAccessNumber(index: RetailIndex, ani: string, dialled: string, nowMs: number): AccessLookup {
  const access = callAccess(index, ani, dialled, nowMs);
  return access.kind === 'translated' ? { kind: 'translated', product: access.product, translation: { ...access.translation } } : access;
}
