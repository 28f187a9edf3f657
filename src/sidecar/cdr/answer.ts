import { formatMicro } from '../../core/money/micro.js';
import type { RatedSide } from './rating.js';

/**
 * cdrs/ingest's 201 body, written by a template in the contract's field order: JSON.stringify of an object
 * built for it walked eight fields generically for every CDR. Every string here is this process's own,
 * from closed alphabets (amounts from the money formatters: digits, a sign, a point; currencies from the
 * schema's set), so they are quoted as they are; test/unit/encode.test.ts pins the bytes to JSON.stringify's.
 *
 * `reservedMicro`: what the call's reservation held (null: it held none); `uncoveredMicro`: what the charge
 * went beyond it, in the account's currency.
 */
export function ingestAnswer(
  cdrId: number,
  customer: RatedSide,
  vendor: RatedSide,
  chargeMicro: number,
  reservedMicro: number | null,
  uncoveredMicro: number,
): string {
  return (
    `{"cdr_id":${cdrId},"customer_cost":"${customer.cost}","customer_currency":"${customer.currency}",` +
    `"vendor_cost":"${vendor.cost}","vendor_currency":"${vendor.currency}",` +
    // false: billed, but beyond what was reserved for it (`uncovered`).
    `"reconciled":${uncoveredMicro === 0},` +
    // The charge less what was reserved: negative when part of the reservation went back.
    `"adjustment":${reservedMicro === null ? 'null' : `"${formatMicro(chargeMicro - reservedMicro, 4)}"`},` +
    `"uncovered":"${formatMicro(uncoveredMicro, 4)}"}`
  );
}
