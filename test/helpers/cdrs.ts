/**
 * The CDR most money tests ingest: a call of the fixture world's customer trunk 10 (test/fixtures/routing.ts)
 * through carrier trunk 20's gateway 201 to an Australian mobile, which deck 1 rates on its 614 row (0.0250 a
 * minute, 6/6 increments). One shape, so a change to the ingest contract is made once.
 */
export const MOBILE = '61400123456';

/** 2026-01-15 08:30:00 UTC: a time the fixture's rates are in force. */
export const CALL_START_MS = Date.parse('2026-01-15T08:30:00Z');

export interface CallTimes {
  /** When the INVITE arrived (start_time). */
  startMs?: number;
  /** From start to answer; the call lasts `durationSeconds` from its answer. */
  ringMs?: number;
}

/**
 * A CDR of `durationSeconds` from answer to end. A call of 0 seconds was never answered: no answer_time and a
 * 487, as OpenSIPS reports a cancelled INVITE.
 */
export function trunk10Cdr(
  sipCallId: string,
  durationSeconds: number,
  { startMs = CALL_START_MS, ringMs = 5_000 }: CallTimes = {},
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  const answerMs = startMs + ringMs;
  return {
    sip_call_id: sipCallId,
    customer_trunk_id: 10,
    carrier_trunk_id: 20,
    carrier_gateway_id: 201,
    ani: '61255500100',
    dnis: MOBILE,
    start_time: new Date(startMs).toISOString(),
    answer_time: durationSeconds === 0 ? null : new Date(answerMs).toISOString(),
    end_time: new Date(answerMs + durationSeconds * 1000).toISOString(),
    duration_seconds: durationSeconds,
    sip_response_code: durationSeconds === 0 ? 487 : 200,
    ...extra,
  };
}

/**
 * The same call as a node settles it in a money round (`settlements` of POST /api/ledger/node-sync): rated as
 * the fixture world rates it, deck 1 selling at 6/6 increments and deck 101 costing at 60/60, all in AUD,
 * `charge` the customer cost and the account's charge. `extra` replaces any field (the account billed, the
 * carrier's cost, a retail account).
 */
export function trunk10Settlement(
  sipCallId: string,
  durationSeconds: number,
  charge: string,
  times: CallTimes = {},
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  const call = trunk10Cdr(sipCallId, durationSeconds, times);
  return {
    ...call,
    node_cdr_id: 1,
    customer_account_id: 1,
    billable_duration_customer: Math.ceil(durationSeconds / 6) * 6,
    billable_duration_vendor: Math.ceil(durationSeconds / 60) * 60,
    customer_rate_deck_id: 1,
    carrier_rate_deck_id: 101,
    customer_cost: charge,
    customer_currency: 'AUD',
    customer_decimal_precision: 4,
    customer_rounding_direction: 'standard',
    vendor_cost: '0.0400',
    vendor_currency: 'AUD',
    vendor_decimal_precision: 4,
    vendor_rounding_direction: 'up',
    account_charge: charge,
    account_currency: 'AUD',
    // A second after the call ended: when the node rated it.
    created_at: new Date(Date.parse(call.end_time as string) + 1000).toISOString(),
    ...extra,
  };
}
