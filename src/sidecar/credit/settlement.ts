import type { SettlementCdr } from '../../core/protocol/node-sync.js';

/**
 * A rated CDR as the node journals it and sends it to the centre for settlement, encoded by a template:
 * JSON.stringify's generic walk over the 28 fields (after the object spread that added the node's id) was
 * a tenth of a CDR's time on the event loop. Strings still go through JSON.stringify, so escaping stays
 * right; test/unit/encode.test.ts pins the bytes to JSON.stringify's.
 */
export type Settlement = Omit<SettlementCdr, 'node_cdr_id' | 'uncovered'>;

const str = JSON.stringify;
const nullable = (value: string | null): string => (value === null ? 'null' : str(value));

/** `uncovered`: decided with the CDR's id, when its reservation closes (NodeCredit.recordCdr). */
export function encodeSettlement(s: Settlement, nodeCdrId: number, uncovered: string): string {
  return (
    `{"sip_call_id":${str(s.sip_call_id)},"customer_trunk_id":${s.customer_trunk_id},"customer_account_id":${s.customer_account_id},` +
    `"carrier_trunk_id":${s.carrier_trunk_id},"carrier_gateway_id":${s.carrier_gateway_id},"ani":${str(s.ani)},"dnis":${str(s.dnis)},` +
    `"start_time":${str(s.start_time)},"answer_time":${nullable(s.answer_time)},"end_time":${str(s.end_time)},` +
    `"duration_seconds":${s.duration_seconds},"sip_response_code":${s.sip_response_code},` +
    `"billable_duration_customer":${s.billable_duration_customer},"billable_duration_vendor":${s.billable_duration_vendor},` +
    `"customer_rate_deck_id":${s.customer_rate_deck_id},"carrier_rate_deck_id":${s.carrier_rate_deck_id},` +
    `"customer_cost":${str(s.customer_cost)},"customer_currency":${str(s.customer_currency)},` +
    `"customer_decimal_precision":${s.customer_decimal_precision},"customer_rounding_direction":${str(s.customer_rounding_direction)},` +
    `"vendor_cost":${str(s.vendor_cost)},"vendor_currency":${str(s.vendor_currency)},` +
    `"vendor_decimal_precision":${s.vendor_decimal_precision},"vendor_rounding_direction":${str(s.vendor_rounding_direction)},` +
    `"account_charge":${str(s.account_charge)},"account_currency":${str(s.account_currency)},"created_at":${str(s.created_at)},` +
    `"uncovered":${str(uncovered)},"node_cdr_id":${nodeCdrId}` +
    // Only on a call through an access number: every other settlement's bytes stay as they were.
    (s.retail_account_id === undefined || s.retail_account_id === null ? '}' : `,"retail_account_id":${s.retail_account_id}}`)
  );
}
