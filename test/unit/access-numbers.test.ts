import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { retailProblem, type CallTranslationRow, type RetailTables } from '../../src/core/snapshot/retail.js';
import { compileRetail } from '../../src/core/snapshot/retail-index.js';
import { callAccess, lookupAccessNumber } from '../../src/sidecar/retail/access-numbers.js';

/** The access-number lookup the sidecar answers calls with (live changes to the index: retail-index.test.ts). */
const NOW = Date.parse('2026-12-05T12:00:00Z');
const translation = (id: number, aNumber: string, expiresAt: string, product = 1): CallTranslationRow => ({
  id,
  retail_account_id: 100 + id,
  partner_product_id: product,
  a_number: aNumber,
  access_number: '61280000000',
  b_number: `6129876543${id}`,
  expires_at: expiresAt,
});
const tables = (): RetailTables => ({
  retail_products: [
    { id: 1, customer_trunk_id: 10, rate_deck_id: 1, currency: 'AUD', access_numbers: ['61280000000', '61280000001'] },
    { id: 2, customer_trunk_id: null, rate_deck_id: null, currency: 'USD', access_numbers: [] },
  ],
  call_translations: [
    translation(1, '61400111222', '2026-12-05T12:05:00Z'),
    translation(2, '61400111222', '2026-12-05T12:10:00Z'),
    translation(3, '61400333444', '2026-12-05T11:59:59Z'),
  ],
});

describe('access numbers', () => {
  it('translates a live caller to the newest translation, and tells an access number without one from an ordinary call', () => {
    const index = compileRetail(tables());
    const found = lookupAccessNumber(index, '61400111222', '61280000000', NOW);
    assert.ok(found.kind === 'translated');
    assert.equal(found.translation.bNumber, '61298765432');
    assert.equal(found.translation.retailAccountId, 102);
    assert.equal(found.product.customerTrunkId, 10);
    assert.equal(lookupAccessNumber(index, '61400333444', '61280000000', NOW).kind, 'no_translation', 'expired');
    assert.equal(lookupAccessNumber(index, '61400111222', '61280000001', NOW).kind, 'no_translation', 'another access number');
    assert.equal(lookupAccessNumber(index, '61499999999', '61280000000', NOW).kind, 'no_translation', 'unknown caller');
    assert.equal(lookupAccessNumber(index, '61400111222', '61298765432', NOW).kind, 'not_access_number');
    assert.equal(lookupAccessNumber(index, '61400111222', '61280000000', Date.parse('2026-12-05T12:10:00Z')).kind, 'no_translation');
  });

  it('gives each caller its own translation: a kept answer stays after the next lookup, and a refused caller after a translated one is refused', () => {
    const withSecond = tables();
    withSecond.call_translations!.push(translation(4, '61400555666', '2026-12-05T12:30:00Z'));
    const index = compileRetail(withSecond);
    // callAccess answers every translated call in one object it writes over: what a caller keeps is a copy.
    const first = lookupAccessNumber(index, '61400111222', '61280000000', NOW);
    const second = lookupAccessNumber(index, '61400555666', '61280000000', NOW);
    assert.ok(first.kind === 'translated' && second.kind === 'translated');
    assert.deepEqual([first.translation.bNumber, first.translation.retailAccountId, first.translation.id], ['61298765432', 102, 2]);
    assert.deepEqual([second.translation.bNumber, second.translation.retailAccountId, second.translation.id], ['61298765434', 104, 4]);
    assert.equal(callAccess(index, '61400555666', '61280000000', NOW).kind, 'translated');
    assert.equal(callAccess(index, '61400333444', '61280000000', NOW).kind, 'no_translation', 'expired, after a live one');
    assert.equal(callAccess(index, '61499999999', '61280000000', NOW).kind, 'no_translation', 'unknown, after a live one');
    assert.equal(callAccess(index, '61400555666', '61280000000', Date.parse('2026-12-05T12:30:00Z')).kind, 'no_translation');
  });

  it('takes a snapshot without the retail tables as one without access numbers, and refuses malformed ones', () => {
    const empty = compileRetail({});
    assert.equal(empty.accessNumbers.size + empty.translationCount, 0);
    assert.equal(retailProblem({}), null);
    assert.equal(retailProblem(tables()), null);
    const shared = tables();
    shared.retail_products![1].access_numbers = ['61280000001'];
    assert.match(retailProblem(shared) ?? '', /belongs to products 1 and 2/);
    const badNumber = tables();
    badNumber.call_translations![0].b_number = '+6129';
    assert.match(retailProblem(badNumber) ?? '', /digit strings/);
    const badTime = tables();
    badTime.call_translations![0].expires_at = 'soon';
    assert.match(retailProblem(badTime) ?? '', /expires_at/);
  });
});
