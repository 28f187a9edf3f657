import { RequestError } from '../../src/core/http/errors.js';
import { Decimal } from '../../src/core/money/decimal.js';
import { LEDGER_LIMIT } from '../ledger/balance.js';
import { JsonNumber, type ExactJson } from './exact-json.js';

/**
 * Amounts as the partner contract sends them (JSON numbers), converted exactly from the text the client
 * sent: refused when not positive, with more decimals than the currency has, or beyond what the ledger holds.
 */

/** Minor units of the currencies the engine rates in (src/core/snapshot/schema.ts CURRENCIES). */
const MINOR_UNITS: Record<string, number> = { AUD: 2, USD: 2 };

export function decimalsOf(currency: string): number {
  return MINOR_UNITS[currency] ?? 2;
}

/** The amount as a decimal string with the currency's decimals; `allowZero` for an opening balance. */
export function exactAmount(name: string, value: ExactJson | undefined, currency: string, allowZero = false): string {
  if (!(value instanceof JsonNumber)) throw new RequestError('invalid_amount', `${name} must be a JSON number`);
  const amount = new Decimal(value.text);
  const decimals = decimalsOf(currency);
  // Below decimal.js's smallest exponent (1e-9e15) a number reads as 0: one whose digits are not all zeros is a
  // positive amount far finer than the currency, not an opening balance of zero.
  if (amount.isZero() && /[1-9]/.test(value.text.split(/[eE]/)[0]))
    throw new RequestError('invalid_amount', `${name} has more than the ${decimals} decimals ${currency} has`);
  if (amount.isNegative() || (!allowZero && amount.isZero()))
    throw new RequestError('invalid_amount', `${name} must be ${allowZero ? 'zero or more' : 'more than zero'}`);
  if (amount.decimalPlaces() > decimals)
    throw new RequestError('invalid_amount', `${name} has more than the ${decimals} decimals ${currency} has`);
  if (amount.greaterThanOrEqualTo(LEDGER_LIMIT)) throw new RequestError('invalid_amount', `${name} is larger than the ledger holds`);
  return amount.toFixed(decimals);
}
