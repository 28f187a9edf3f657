import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { exactAmount } from '../../sync/partner/amount.js';
import { JsonNumber, RawNumber, canonicalJson, parseExactJson, stringifyWithRawNumbers } from '../../sync/partner/exact-json.js';

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

/** The form a write's body is compared in (the Idempotency-Key's "same request body"). */
describe('the canonical form of a partner body', () => {
  const canonical = (text: string): string => canonicalJson(parseExactJson(text));

  it('is the same for the same JSON: keys in any order, any spacing, a number written any way that means the same value', () => {
    const amounts = ['2.25', '2.250', '225e-2', '0.225E+1', '22.5e-1', '0.0000225e5'];
    const forms = amounts.map((amount) => canonical(`{"amount":${amount},"account":"000000000042"}`));
    forms.push(canonical('{ "account" : "000000000042" ,\n "amount" : 2.25 }'));
    assert.deepEqual(new Set(forms).size, 1, forms.join(' '));
    for (const same of [
      ['1', '1.0', '10e-1', '0.1e1', '1E0', '1e+0', '1.000e0'],
      ['0', '-0', '0.00', '0e7', '-0.0e-3'],
      ['100', '1e2', '1.00E2', '100.0'],
      ['1e400', '10e399', '0.1e401'],
      ['-3.5e-300', '-35e-301'],
    ])
      assert.equal(new Set(same.map((number) => canonical(`[${number}]`))).size, 1, same.join(' '));
  });

  it('differs for bodies that mean different things', () => {
    const different = ['1', '-1', '1.01', '0.1', '0.01', '10', '1e400', '1e401', '1e-400', '1e-401', '"1"', 'true', 'null'];
    assert.equal(new Set(different.map((value) => canonical(`{"amount":${value}}`))).size, different.length);
    assert.notEqual(canonical('{"a":"x","b":"y"}'), canonical('{"a":"y","b":"x"}'));
  });

  it("stays as short as the number's digits, however large its exponent", () => {
    assert.ok(canonical('[1e999999999999999999999]').length < 40);
    assert.ok(canonical('[1e-999999999999999999999]').length < 40);
  });
});

/** Amounts read from the number as the client wrote it (sync/partner/amount.ts). */
describe('partner amounts', () => {
  const amount = (text: string, allowZero = false): string => exactAmount('amount', new JsonNumber(text), 'AUD', allowZero);

  it('takes an amount of the currency’s decimals exactly, however it is written', () => {
    for (const [text, exact] of [
      ['0.1', '0.10'],
      ['10', '10.00'],
      ['1.000', '1.00'],
      ['225e-2', '2.25'],
      ['999999999999999.99', '999999999999999.99'],
    ])
      assert.equal(amount(text), exact);
    assert.equal(amount('0', true), '0.00');
    assert.equal(amount('0e-99999999999999999999', true), '0.00');
  });

  it('refuses a positive amount too small for the currency, even one below what decimal.js can hold (it reads that as 0)', () => {
    for (const text of ['0.001', '1e-7', '1e-400', '1e-99999999999999999999', '5e-9000000000000001'])
      for (const allowZero of [false, true])
        assert.throws(() => amount(text, allowZero), /more than the 2 decimals AUD has/, `${text} (opening balance: ${allowZero})`);
  });

  it('refuses zero or less, and from 10^15 up', () => {
    for (const text of ['0', '-0', '-1', '0e5']) assert.throws(() => amount(text), /more than zero/, text);
    for (const text of ['1e15', '1e21', '1e400', '1e99999999999999999999'])
      assert.throws(() => amount(text), /larger than the ledger/, text);
  });
});
