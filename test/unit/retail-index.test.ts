import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Delta } from '../../src/core/protocol/deltas.js';
import type { CallTranslationRow, RetailProductRow, SellDecks } from '../../src/core/snapshot/retail.js';
import { applyRetailDeltas, compileRetail, translationFor, type RetailIndex } from '../../src/core/snapshot/retail-index.js';
import { buildPrefixTrie, deepestNode, type PrefixTrie } from '../../src/core/trie/prefix-trie.js';
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
/** The snapshot's decks: customer deck 1 first, customer deck 3 second, carrier deck 101 third. */
const DECKS: SellDecks = {
  deckById: new Map([
    [1, 0],
    [3, 1],
    [101, 2],
  ]),
  decks: [{ deckType: 'customer' }, { deckType: 'customer' }, { deckType: 'carrier' }],
};
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

function applied(index: RetailIndex, deltas: Delta[], now = NOW, rateTrie: PrefixTrie | null = null): RetailIndex {
  const result = applyRetailDeltas(index, deltas, now, { rateTrie, ...DECKS });
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

  it("resolves a product's sell deck to the snapshot's deck index when compiled, and again when a delta changes it", () => {
    const index = compileRetail({ retail_products: [product(1, [ACCESS])] }, { rateTrie: null, ...DECKS });
    assert.equal(index.accessNumbers.get(ACCESS)?.sellDeck, 0, 'deck 1 is the first deck');
    const withDeck = (deck: number | null): RetailProductRow => ({ ...product(1, [ACCESS]), rate_deck_id: deck });
    const moved = applied(index, [upsert('retail_products', withDeck(3))]);
    assert.deepEqual([moved.accessNumbers.get(ACCESS)?.rateDeckId, moved.accessNumbers.get(ACCESS)?.sellDeck], [3, 1]);
    assert.equal(index.accessNumbers.get(ACCESS)?.sellDeck, 0, 'the index in service keeps its deck');
    const none = applied(moved, [upsert('retail_products', withDeck(null))]);
    assert.equal(none.accessNumbers.get(ACCESS)?.sellDeck, null, "no deck named: the trunk's");
    const unknown = applied(moved, [upsert('retail_products', withDeck(7))]);
    assert.equal(unknown.accessNumbers.get(ACCESS)?.sellDeck, -1, 'a deck not in the snapshot: none (its calls are refused)');
    const carrier = applied(moved, [upsert('retail_products', withDeck(101))]);
    assert.equal(carrier.accessNumbers.get(ACCESS)?.sellDeck, -1, 'a carrier deck: none either');
  });
});

describe('translation records in the retail index', () => {
  const live = (index: RetailIndex, aNumber: string, access: string, now = NOW) => {
    const found = lookupAccessNumber(index, aNumber, access, now);
    return found.kind === 'translated' ? found.translation.id : found.kind;
  };
  const row = (id: number, aNumber: string, access = ACCESS, expiresAt = '2026-12-06T04:00:00Z'): CallTranslationRow => ({
    ...translation(id, aNumber, expiresAt),
    access_number: access,
  });

  it('tells callers apart by every digit, their number of digits and leading zeros, up to 32 digits', () => {
    const callers = ['61400111222', '061400111222', '0061400111222', '614001112220', '61400111220'];
    callers.push('12345678901234567890123456789012', '12345678901234567890123456789013', '123456789012345', '1234567890123456');
    // Many sharing their first 15 digits (one key number) and differing after, so lookups meet them on the way.
    for (let at = 0; at < 2000; at += 2) callers.push(`614001112220000${at}`, `6140011122200001234567890${at}`);
    const longest = (group: number, at: number): string => `6140011122200001234567890${10000 + group}${at}`;
    for (let group = 0; group < 50; group++) for (let at = 0; at < 100; at += 2) callers.push(longest(group, at));
    const index = compileRetail({
      retail_products: [product(1, [ACCESS])],
      call_translations: callers.map((aNumber, at) => row(at + 1, aNumber)),
    });
    assert.equal(index.translationCount, callers.length);
    callers.forEach((aNumber, at) => assert.equal(translationFor(index, aNumber, ACCESS)?.id, at + 1, aNumber));
    const strangers = ['6140011122', '614001112221', '1234567890123456789012345678901', '12345678901234567890123456789012345', ''];
    // ':' is the digit after 9: read as a digit, "...1:" would be "...20"'s key.
    strangers.push('6140011121:', '61400l11222');
    for (let at = 1; at < 2000; at += 2) strangers.push(`614001112220000${at}`, `6140011122200001234567890${at}`);
    for (let group = 0; group < 50; group++) for (let at = 1; at < 100; at += 2) strangers.push(longest(group, at));
    for (const stranger of strangers) assert.equal(translationFor(index, stranger, ACCESS), undefined, stranger);
  });

  it('holds a caller set up for two access numbers twice, replaces one without the other, and finds one a product takes later', () => {
    const other = '61280000009';
    let index = compileRetail({
      retail_products: [product(1, [ACCESS])],
      call_translations: [row(1, '61400111222'), row(2, '61400111222', other)],
    });
    assert.equal(live(index, '61400111222', ACCESS), 1);
    assert.equal(live(index, '61400111222', other), 'not_access_number', 'no product has that number yet');
    index = applied(index, [
      upsert('call_translations', row(7, '61400111222', other)),
      upsert('retail_products', product(1, [ACCESS, other])),
    ]);
    assert.equal(live(index, '61400111222', other), 7, 'replaced');
    assert.equal(live(index, '61400111222', ACCESS), 1, 'the other access number keeps its own');
    assert.equal(index.translationCount, 2);
    const resent: CallTranslationRow = { ...row(7, '61400111222', other), b_number: '61290000000' };
    const again = applied(index, [upsert('call_translations', resent)]);
    assert.equal(translationFor(again, '61400111222', other)?.bNumber, '61290000000', 'the same id again replaces (a resent row)');
    const gone = applied(again, [{ seq: ++seq, table: 'call_translations', op: 'delete', id: 1, row: null }]);
    assert.equal(live(gone, '61400111222', ACCESS), 'no_translation', 'deleted by id');
    assert.equal(live(gone, '61400111222', other), 7);
    assert.equal(gone.translationCount, 1);
  });

  it('is live until the exact millisecond it expires, in a lookup and when a change touches its bucket', () => {
    const expiry = Date.parse('2026-12-06T04:00:00Z');
    const index = base();
    assert.equal(live(index, '61400111222', ACCESS, expiry - 1), 1);
    assert.equal(live(index, '61400111222', ACCESS, expiry), 'no_translation');
    // A resent row lands in its own bucket: kept when applied a millisecond before it expires, dropped at it.
    const before = applied(index, [upsert('call_translations', translation(1, '61400111222'))], expiry - 1);
    assert.equal(translationFor(before, '61400111222', ACCESS)?.id, 1);
    const at = applied(index, [upsert('call_translations', translation(1, '61400111222'))], expiry);
    assert.equal(translationFor(at, '61400111222', ACCESS), undefined);
  });

  it('answers as the rows say for thousands of callers, after changes in any order', () => {
    let state = 7;
    const random = (below: number): number => {
      state = (Math.imul(state, 1103515245) + 12345) >>> 0;
      return state % below;
    };
    const accessNumbers = [ACCESS, '61280000001', '0061280000002'];
    const callers = Array.from(
      { length: 3000 },
      (_, at) => (at % 7 === 0 ? '0' : '') + String(61400000000 + random(1e9)) + (at % 11 === 0 ? '123456789' : ''),
    );
    const expected = new Map<string, CallTranslationRow>();
    const keep = (row: CallTranslationRow): void => {
      const key = `${row.a_number} ${row.access_number}`;
      if ((expected.get(key)?.id ?? 0) <= row.id) expected.set(key, row);
    };
    const made = (id: number): CallTranslationRow => ({
      ...row(id, callers[random(callers.length)], accessNumbers[random(accessNumbers.length)]),
      retail_account_id: 1 + random(50),
      b_number: String(61200000000 + random(1e9)),
    });
    const rows = Array.from({ length: 6000 }, (_, at) => made(at + 1));
    rows.forEach(keep);
    // Rates' prefixes some b-numbers reach, to several depths: each translation carries its b-number's node.
    const { trie } = buildPrefixTrie(['612', '6120', '61201', '612012', '6121', '61299', '6129']);
    let index = compileRetail({ retail_products: [product(1, accessNumbers)], call_translations: rows }, { rateTrie: trie, ...DECKS });
    const changes = Array.from({ length: 2000 }, () => made(1 + random(9000)));
    for (let from = 0; from < changes.length; from += 250) {
      const batch = changes.slice(from, from + 250);
      index = applied(
        index,
        batch.map((change) => upsert('call_translations', change)),
        NOW,
        trie,
      );
      batch.forEach(keep);
    }
    assert.equal(index.translationCount, expected.size);
    for (const [key, want] of expected) {
      const [aNumber, access] = key.split(' ');
      const found = lookupAccessNumber(index, aNumber, access, NOW);
      assert.ok(found.kind === 'translated', key);
      assert.deepEqual(found.translation, {
        id: want.id,
        retailAccountId: want.retail_account_id,
        productId: 1,
        accessNumber: access,
        bNumber: want.b_number,
        expiresAtMs: Date.parse(want.expires_at),
        bNumberNode: deepestNode(trie, want.b_number),
      });
    }
  });
});
