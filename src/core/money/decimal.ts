import { Decimal as BaseDecimal } from 'decimal.js';

/**
 * The one decimal type for money beyond the hot path's integers (rating, balances, settlement): our own
 * clone of decimal.js, so no other code's settings can change a bill. 40 significant digits hold any
 * amount the ledger accepts (15 integer digits, 12 decimals) exactly, through a product with a rate;
 * no exponent notation in the range money lives in.
 */
export const Decimal = BaseDecimal.clone({ precision: 40, toExpNeg: -40, toExpPos: 40 });
export type Decimal = BaseDecimal;
export type Rounding = BaseDecimal.Rounding;
