import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Delta } from '../../src/core/protocol/deltas.js';
import type { CallTranslationRow, RetailProductRow } from '../../src/core/snapshot/retail.js';
import { applyRetailDeltas, compileRetail, translationFor, type RetailIndex } from '../../src/core/snapshot/retail-index.js';
import { lookupAccessNumber } from '../../src/sidecar/retail/access-numbers.js';

/** Live retail changes (issue 19 on issue 18's channel): copy-on-write by bucket, newest wins, expired dropped. */
const NOW = Date.parse('2026-12-06T03:00:00Z');
const ACCESS = '61280000000';
const product = (id: number, numbers: string[]): RetailProductRow => ({
  id,
  customer_trunk_id: 10,
  rate_deck_id: 1,
  currency: 'AUD',
  access_numbers: numbers,
});
const translation = (id: number, aNumber: string, expiresAt = '2026-12-06T04:00:00Z'): CallTranslationRow => ({
  id,
  retail_account_id: 100 + id,
  partner_product_id: 1,
  a_number: aNumber,
  access_number: ACCESS,
  b_number: `6129876543${id % 10}`,
  expires_at: expiresAt,
});
let seq = 0;
const upsert = (table: 'retail_products' | 'call_translations', row: { id: number }): Delta => ({
  seq: ++seq,
  table,
  op: 'upsert',
  id: row.id,
  row: row,
});
const base = (): RetailIndex =>
  compileRetail({
    retail_products: [product(1, [ACCESS])],
    call_translations: [translation(1, '61400111222'), translation(2, '61400333444')],
  });

function applied(index: RetailIndex, deltas: Delta[], now = NOW): RetailIndex {
  const result = applyRetailDeltas(index, deltas, now);
  assert.ok(result.ok, result.ok ? '' : result.reason);
  return result.index;
}

describe('the retail index under live changes', () => {
  it('applies a translation to a new index and leaves the one in service as it was', () => {
    const before = base();
    const after = applied(before, [upsert('call_translations', translation(3, '61400555666'))]);
    assert.equal(lookupAccessNumber(after, '61400555666', ACCESS, NOW).kind, 'translated');
    assert.equal(lookupAccessNumber(before, '61400555666', ACCESS, NOW).kind, 'no_translation', 'the old index is unchanged');
    assert.equal(after.translationCount, 3);
    assert.equal(before.translationCount, 2);
    const changed = after.translations.filter((bucket, at) => bucket !== before.translations[at]);
    assert.equal(changed.length, 1, 'one bucket copied, every other shared');
    assert.equal(after.accessNumbers, before.accessNumbers, 'products untouched are shared');
  });

  it('keeps the newest translation per caller and access number, in whatever order they come', () => {
    const newer = applied(base(), [upsert('call_translations', translation(9, '61400111222'))]);
    assert.equal(translationFor(newer, '61400111222', ACCESS)?.id, 9);
    const late = applied(newer, [upsert('call_translations', translation(5, '61400111222'))]);
    assert.equal(translationFor(late, '61400111222', ACCESS)?.id, 9, 'an older setup_call arriving late does not replace the newer');
  });

  it('ends a translation sent expired, and drops expired ones from the buckets it touches', () => {
    const ended = applied(base(), [upsert('call_translations', translation(1, '61400111222', '2026-12-06T02:59:59Z'))]);
    assert.equal(lookupAccessNumber(ended, '61400111222', ACCESS, NOW).kind, 'no_translation');
    assert.equal(translationFor(ended, '61400111222', ACCESS), undefined, 'dropped, not kept expired');
    assert.equal(ended.translationCount, 1);
    // Translation 2 expires at 04:00: after that, any change landing in its bucket takes it out (here an older
    // setup_call for the same caller arriving late, which itself changes nothing).
    const later = Date.parse('2026-12-06T04:00:01Z');
    const touched = applied(ended, [upsert('call_translations', translation(1, '61400333444', '2026-12-06T05:00:00Z'))], later);
    assert.equal(translationFor(touched, '61400333444', ACCESS), undefined, 'expired 2 dropped; superseded 1 not taken');
    assert.equal(touched.translationCount, 0);
    const untouched = applied(ended, [], later);
    assert.equal(translationFor(untouched, '61400333444', ACCESS)?.id, 2, 'a bucket no change touched keeps what it held');
    assert.equal(lookupAccessNumber(untouched, '61400333444', ACCESS, later).kind, 'no_translation', 'but the lookup checks expiry');
  });

  it('moves a product out and in by its deltas, and refuses an access number another product holds', () => {
    const index = base();
    const gone = applied(index, [{ seq: ++seq, table: 'retail_products', op: 'delete', id: 1, row: null }]);
    assert.equal(lookupAccessNumber(gone, '61400111222', ACCESS, NOW).kind, 'not_access_number');
    assert.equal(lookupAccessNumber(index, '61400111222', ACCESS, NOW).kind, 'translated', 'the old index still has it');
    const back = applied(gone, [upsert('retail_products', product(1, [ACCESS, '61280000001']))]);
    assert.equal(lookupAccessNumber(back, '61400111222', ACCESS, NOW).kind, 'translated');
    assert.equal(back.accessNumbers.size, 2);
    const renumbered = applied(back, [upsert('retail_products', product(1, ['61280000001']))]);
    assert.equal(
      lookupAccessNumber(renumbered, '61400111222', ACCESS, NOW).kind,
      'not_access_number',
      'the old number went with the change',
    );
    const clash = applyRetailDeltas(back, [upsert('retail_products', product(2, [ACCESS]))], NOW);
    assert.ok(!clash.ok);
    assert.match(clash.reason, /belongs to product 1/);
  });
});
