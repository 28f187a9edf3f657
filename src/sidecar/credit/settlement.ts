import { quoteJson } from '../../core/json/quote.js';
import type { SettlementCdr } from '../../core/protocol/node-sync.js';

/**
 * A rated CDR as the node journals it and sends it to the centre for settlement, encoded by a template:
 * JSON.stringify's generic walk over the 28 fields (after the object spread that added the node's id) was
 * a tenth of a CDR's time on the event loop. Strings still go through JSON.stringify, so escaping stays
 * right (quoteJson: JSON.stringify's bytes, without its call for plain ASCII); test/unit/encode.test.ts pins
 * the bytes to JSON.stringify's. Only the fields a request supplies
 * (sip_call_id, ani, dnis) can hold a character JSON escapes: the times are written by isoInstant, the
 * amounts by the money formatters (digits, a sign, a point), currencies and rounding directions are the
 * schema's closed sets; those are quoted as they are (`q`), a tenth of a CDR's JSON.stringify calls fewer.
 */
export type Settlement = Omit<SettlementCdr, 'node_cdr_id' | 'uncovered'>;

const str = quoteJson;
/** A string our own code wrote from a closed alphabet (no quote, backslash or control character): quoted as it is. */
const q = (value: string): string => `"${value}"`;
/** Numbers as JSON.stringify writes them (NaN and ±Infinity as null): the money log embeds this text as JSON. */
const num = (value: number): string => (Number.isFinite(value) ? String(value) : 'null');
const numOrNull = (value: number | null): string => (value === null ? 'null' : num(value));
const nullableQ = (value: string | null): string => (value === null ? 'null' : q(value));

/** `uncovered`: decided with the CDR's id, when its reservation closes (NodeCredit.recordCdr). */
export function encodeSettlement(s: Settlement, nodeCdrId: number, uncovered: string): string {
  return (
    `{"sip_call_id":${str(s.sip_call_id)},"customer_trunk_id":${num(s.customer_trunk_id)},"customer_account_id":${num(s.customer_account_id)},` +
    `"carrier_trunk_id":${num(s.carrier_trunk_id)},"carrier_gateway_id":${num(s.carrier_gateway_id)},"ani":${str(s.ani)},"dnis":${str(s.dnis)},` +
    `"start_time":${q(s.start_time)},"answer_time":${nullableQ(s.answer_time)},"end_time":${q(s.end_time)},` +
    `"duration_seconds":${num(s.duration_seconds)},"sip_response_code":${numOrNull(s.sip_response_code)},` +
    `"billable_duration_customer":${num(s.billable_duration_customer)},"billable_duration_vendor":${num(s.billable_duration_vendor)},` +
    `"customer_rate_deck_id":${numOrNull(s.customer_rate_deck_id)},"carrier_rate_deck_id":${numOrNull(s.carrier_rate_deck_id)},` +
    `"customer_cost":${q(s.customer_cost)},"customer_currency":${q(s.customer_currency)},` +
    `"customer_decimal_precision":${num(s.customer_decimal_precision)},"customer_rounding_direction":${q(s.customer_rounding_direction)},` +
    `"vendor_cost":${q(s.vendor_cost)},"vendor_currency":${q(s.vendor_currency)},` +
    `"vendor_decimal_precision":${num(s.vendor_decimal_precision)},"vendor_rounding_direction":${q(s.vendor_rounding_direction)},` +
    `"account_charge":${q(s.account_charge)},"account_currency":${q(s.account_currency)},"created_at":${q(s.created_at)},` +
    `"uncovered":${q(uncovered)},"node_cdr_id":${num(nodeCdrId)}` +
    // Only on a call through an access number: every other settlement's bytes stay as they were.
    (s.retail_account_id === undefined || s.retail_account_id === null ? '}' : `,"retail_account_id":${num(s.retail_account_id)}}`)
  );
}
