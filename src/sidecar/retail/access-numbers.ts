import {
  compileTranslation,
  translationKey,
  type CallTranslation,
  type CallTranslationRow,
  type RetailIndex,
  type RetailProduct,
} from '../../core/snapshot/retail.js';

/**
 * Calls through a partner product's access number (issue 19): who may call it, and where the call goes.
 * A setup_call translation says that a call from `a_number` to `access_number` goes to `b_number`, billed
 * to one retail account, until it expires. The routing snapshot carries the products' access numbers and
 * the translations live when it was built (src/core/snapshot/retail.ts).
 *
 * `lookup` is pure: the index and the time in, the answer out; nothing on the call path but two Map reads.
 * `apply` is the one place a translation changes between snapshots: the live change channel (issue 18)
 * is to call it with each translation the centre sets up or ends; until it does, a translation reaches a
 * node with the next routing sync (docs/operations.md#partner-api). Each change is one Map write, so a
 * call sees the translation before or after it, never half of it.
 */
export type AccessLookup =
  /** The dialled number is no product's access number: an ordinary call. */
  | { kind: 'not_access_number' }
  /** An access number, but no live translation for this caller: refused. */
  | { kind: 'no_translation'; product: RetailProduct }
  | { kind: 'translated'; product: RetailProduct; translation: CallTranslation };

const NOT_ACCESS_NUMBER: AccessLookup = Object.freeze({ kind: 'not_access_number' });

export function lookupAccessNumber(index: RetailIndex, ani: string, dialled: string, nowMs: number): AccessLookup {
  const product = index.accessNumbers.get(dialled);
  if (product === undefined) return NOT_ACCESS_NUMBER;
  const translation = index.translations.get(translationKey(ani, dialled));
  // Expired is checked here, per call: the snapshot holds what was live when it was built, not what is live now.
  if (translation === undefined || translation.expiresAtMs <= nowMs || translation.productId !== product.id)
    return { kind: 'no_translation', product };
  return { kind: 'translated', product, translation };
}

/** A translation set up (or replaced) at the centre, or ended there (its account was deactivated). */
export type TranslationChange =
  { op: 'set'; translation: CallTranslationRow } | { op: 'end'; id: number; a_number: string; access_number: string };

export function applyTranslationChange(index: RetailIndex, change: TranslationChange): void {
  if (change.op === 'set') {
    const key = translationKey(change.translation.a_number, change.translation.access_number);
    const held = index.translations.get(key);
    // A change that arrives after a newer one (or after a snapshot that holds a newer one) is already superseded.
    if (held === undefined || held.id <= change.translation.id) index.translations.set(key, compileTranslation(change.translation));
    return;
  }
  const key = translationKey(change.a_number, change.access_number);
  if (index.translations.get(key)?.id === change.id) index.translations.delete(key);
}
