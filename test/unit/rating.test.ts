import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  billableSeconds,
  convertAmount,
  convertMoney,
  formatMoney,
  isDecimalString,
  rateCall,
  rateCallDecimal,
  type RateCallInput,
} from '../../src/core/rating/rating.js';

describe('billable seconds', () => {
  const cases: [initial: number, step: number, duration: number, billable: number][] = [
    // 0 s: answered and ended within the first second (OpenSIPS's whole seconds, cut down): the first increment.
    [60, 60, 0, 60],
    [6, 6, 0, 6],
    [30, 6, 0, 30],
    [1, 1, 0, 1],
    [60, 60, 1, 60],
    [60, 60, 59, 60],
    [60, 60, 60, 60],
    [60, 60, 61, 120],
    [60, 60, 3599, 3600],
    [60, 60, 3601, 3660],
    [6, 6, 1, 6],
    [6, 6, 5, 6],
    [6, 6, 6, 6],
    [6, 6, 7, 12],
    [6, 6, 29, 30],
    [6, 6, 31, 36],
    [1, 1, 1, 1],
    [1, 1, 7, 7],
    [1, 1, 3601, 3601],
    [30, 6, 1, 30],
    [30, 6, 29, 30],
    [30, 6, 30, 30],
    [30, 6, 31, 36],
    [30, 6, 36, 36],
    [30, 6, 37, 42],
    [1, 60, 1, 1],
    [1, 60, 2, 61],
    [1, 60, 61, 61],
    [1, 60, 62, 121],
  ];
  for (const [initial, step, duration, billable] of cases) {
    it(`${initial}/${step}: ${duration} s bills ${billable} s`, () => {
      assert.equal(billableSeconds(duration, { initial, step }), billable);
    });
  }

  it('refuses durations that are not whole seconds >= 0', () => {
    for (const duration of [-1, 1.5, Number.NaN]) assert.throws(() => billableSeconds(duration, { initial: 1, step: 1 }), RangeError);
  });
});

describe('rating a call', () => {
  const call = (
    rate: string,
    durationSeconds: number,
    initial: number,
    step: number,
    precision: 4 | 5 | 6,
    rounding: 'up' | 'down' | 'standard',
    rateType: RateCallInput['rateType'] = 'per_minute',
  ): string => {
    const input = { rate, rateType, durationSeconds, increments: { initial, step }, precision, rounding };
    const integer = rateCall(input);
    // The table holds for both paths: the integer one the CDR path uses, and decimal.js, its reference.
    assert.equal(integer, rateCallDecimal(input), `integer and decimal rating differ for ${JSON.stringify(input)}`);
    return integer;
  };

  const cases: [string, string, number, number, number, 4 | 5 | 6, 'up' | 'down' | 'standard', string, ('per_minute' | 'per_call')?][] = [
    // 6/6, 73 s bills 78 s: 0.0250 * 78 / 60 = 0.0325 exactly
    ['contract example', '0.0250', 73, 6, 6, 4, 'standard', '0.0325'],
    // 1/1, 7 s: 0.0333 * 7 / 60 = 0.003885
    ['0.003885 up', '0.0333', 7, 1, 1, 4, 'up', '0.0039'],
    ['0.003885 down', '0.0333', 7, 1, 1, 4, 'down', '0.0038'],
    ['0.003885 standard', '0.0333', 7, 1, 1, 4, 'standard', '0.0039'],
    // 1/1, 30 s: 0.0003 * 30 / 60 = 0.00015, exactly half of the last digit
    ['half: standard rounds up', '0.0003', 30, 1, 1, 4, 'standard', '0.0002'],
    ['half: down truncates', '0.0003', 30, 1, 1, 4, 'down', '0.0001'],
    // 1/1, 10 s: 0.00066 * 10 / 60 = 0.00011: up differs from standard
    ['0.00011 up', '0.00066', 10, 1, 1, 4, 'up', '0.0002'],
    ['0.00011 standard', '0.00066', 10, 1, 1, 4, 'standard', '0.0001'],
    // 60/60: 1 s bills a minute, 61 s two
    ['60/60 1 s', '0.1200', 1, 60, 60, 4, 'standard', '0.1200'],
    ['60/60 60 s', '0.1200', 60, 60, 60, 4, 'standard', '0.1200'],
    ['60/60 61 s', '0.1200', 61, 60, 60, 4, 'standard', '0.2400'],
    ['60/60 3599 s', '0.0100', 3599, 60, 60, 4, 'standard', '0.6000'],
    ['60/60 3601 s', '0.0100', 3601, 60, 60, 4, 'standard', '0.6100'],
    // 30/6 at 0.06/min: 31 s bills 36 s = 0.036; 37 s bills 42 s = 0.042
    ['30/6 1 s', '0.0600', 1, 30, 6, 4, 'standard', '0.0300'],
    ['30/6 31 s', '0.0600', 31, 30, 6, 4, 'standard', '0.0360'],
    ['30/6 37 s', '0.0600', 37, 30, 6, 4, 'standard', '0.0420'],
    // 6/6, 7 s bills 12 s: 0.05 * 12 / 60 = 0.01
    ['6/6 7 s', '0.0500', 7, 6, 6, 4, 'standard', '0.0100'],
    // 1/60 at 0.60/min: 2 s bills 61 s = 0.61
    ['1/60 2 s', '0.6000', 2, 1, 60, 4, 'standard', '0.6100'],
    ['1/60 62 s', '0.6000', 62, 1, 60, 4, 'standard', '1.2100'],
    // 1/1, 7 s: 0.0123456 * 7 / 60 = 0.00144032
    ['5 dp standard', '0.0123456', 7, 1, 1, 5, 'standard', '0.00144'],
    ['5 dp up', '0.0123456', 7, 1, 1, 5, 'up', '0.00145'],
    ['5 dp down', '0.0123456', 7, 1, 1, 5, 'down', '0.00144'],
    ['6 dp standard', '0.0123456', 7, 1, 1, 6, 'standard', '0.001440'],
    ['6 dp up', '0.0123456', 7, 1, 1, 6, 'up', '0.001441'],
    // 12.345678 * 3601 / 60 = 44456.786478 / 60 = 740.9464413
    ['large, 6 dp up', '12.345678', 3601, 1, 1, 6, 'up', '740.946442'],
    ['large, 6 dp down', '12.345678', 3601, 1, 1, 6, 'down', '740.946441'],
    ['large, 6 dp standard', '12.345678', 3601, 1, 1, 6, 'standard', '740.946441'],
    // answered for under a second (0 s): the first increment, never free (unanswered calls are not rated at all)
    ['0 s at 60/60', '0.1200', 0, 60, 60, 4, 'up', '0.1200'],
    ['0 s at 1/1: 0.12 / 60 = 0.002', '0.1200', 0, 1, 1, 4, 'up', '0.0020'],
    ['0 s at 1/1, down: 0.0333 / 60 = 0.000555', '0.0333', 0, 1, 1, 4, 'down', '0.0005'],
    ['zero rate', '0', 125, 1, 1, 5, 'up', '0.00000'],
    // per_call rows: the flat charge once per connected call, however short
    ['per call, 0 s', '0.3300', 0, 60, 60, 4, 'up', '0.3300', 'per_call'],
    ['per call, 1 s', '0.3300', 1, 60, 60, 4, 'up', '0.3300', 'per_call'],
    ['per call, an hour', '0.3300', 3601, 1, 1, 6, 'standard', '0.330000', 'per_call'],
    ['per call rounded once', '0.33335', 10, 1, 1, 4, 'standard', '0.3334', 'per_call'],
  ];
  for (const [name, rate, duration, initial, step, precision, rounding, expected, rateType] of cases) {
    it(name, () => {
      assert.equal(call(rate, duration, initial, step, precision, rounding, rateType), expected);
    });
  }
});

describe('money helpers', () => {
  it('converts exactly and formats with the trunk rounding', () => {
    assert.equal(convertAmount('0.0120', '1.520000'), '0.01824');
    assert.equal(convertAmount('0.0240', '0.657895'), '0.01578948');
    assert.equal(formatMoney('0.01578948', 4, 'standard'), '0.0158');
    assert.equal(formatMoney('0.01578948', 4, 'down'), '0.0157');
    assert.equal(formatMoney('-0.00015', 4, 'up'), '-0.0002');
    // The same in integers, as the CDR path converts an account's charge.
    assert.equal(convertMoney('0.0240', '0.657895', false, 4, 'standard'), '0.0158');
    assert.equal(convertMoney('0.0240', '0.657895', false, 4, 'down'), '0.0157');
    assert.equal(convertMoney('0.0240', '0.657895', true, 4, 'up'), '0.0365'); // 0.0240 / 0.657895 = 0.036480...
    assert.equal(convertMoney('-0.0001', '1.5', false, 4, 'up'), '-0.0002');
  });

  it('accepts only plain decimal strings', () => {
    for (const good of ['0', '0.0250', '-1.5', '123456789012345', '1.123456789012']) assert.equal(isDecimalString(good), true, good);
    for (const bad of ['1e5', ' 1', '1.', '.5', '--1', 'NaN', 'Infinity', '0x10', '1'.repeat(16), '1.1234567890123', '+1', '']) {
      assert.equal(isDecimalString(bad), false, bad);
    }
  });
});
