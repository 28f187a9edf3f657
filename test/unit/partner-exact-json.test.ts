import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RawNumber, stringifyWithRawNumbers } from '../../sync/partner/exact-json.js';

/** How the partner API writes its answers: balances as JSON numbers from their exact decimals, everything else as JSON.stringify would. */
describe('partner answers with exact numbers', () => {
  it('writes each RawNumber as its digits, in objects and arrays alike', () => {
    const balance = new RawNumber('1000000000000212.09');
    assert.equal(
      stringifyWithRawNumbers({
        total_balance: balance,
        balances: [{ id: 'monetary', value: balance }],
        negative: new RawNumber('-0.0125'),
      }),
      '{"total_balance":1000000000000212.09,"balances":[{"id":"monetary","value":1000000000000212.09}],"negative":-0.0125}',
    );
  });

  it("writes a caller's string as a string, whatever it holds (one shaped like the writer's own marker included)", () => {
    // external_user_id, cli and reason are echoed back: a partner's "\u0001num:5" came back as the number 5.
    for (const text of ['\u0001num:5', '\u0001num:-12.5', 'x"\u0001num:1"', '\\u0001num:7']) {
      const body = { external_user_id: text, reason: text, list: [text] };
      assert.equal(stringifyWithRawNumbers(body), JSON.stringify(body));
      assert.deepEqual(JSON.parse(stringifyWithRawNumbers(body)), body);
    }
  });

  it('writes what holds no RawNumber exactly as JSON.stringify does (undefined fields left out, null kept)', () => {
    const body = { a: 1, b: undefined, c: null, d: [1, 'two', null, true], e: { f: 'é\n"', 'k"\u0001': 2 }, g: 0.1, h: false };
    assert.equal(stringifyWithRawNumbers(body), JSON.stringify(body));
  });

  it('refuses to make a RawNumber of anything but decimal digits', () => {
    for (const text of ['', '1e5', '"1"', '1,2', 'NaN', '1.']) assert.throws(() => new RawNumber(text), /not a decimal/);
  });
});
