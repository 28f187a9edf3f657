import type { DecisionEngine } from '../engine/engine.js';
import { RequestError } from '../../core/http/errors.js';
import { quoteJson } from '../../core/json/quote.js';
import { parseMicro } from '../../core/money/micro.js';
import { isoInstant as iso } from '../../core/time/iso-instant.js';
import { ingestAnswer } from './answer.js';
import { rateCallRecord, type CallRecord } from './rating.js';
import { NO_RESERVATION, type NodeCredit } from '../credit/node-credit.js';

/**
 * POST /api/cdrs/ingest at the node: rate the call, close its reservation,
 * journal the CDR (durable before the answer) and queue it for settlement at
 * the centre. Deduplicated by sip_call_id: the same CDR again gets the first
 * answer (200); different figures under the same Call-ID are refused (409).
 */
export interface IngestAnswer {
  status: 200 | 201;
  body: string;
  /** A new CDR its reservation did not cover (only on the first answer, so it is counted once); null: covered. */
  overrun: Overrun | null;
}

/** A CDR billed beyond what was reserved for it (issue 17, finding 6). */
export interface Overrun {
  sipCallId: string;
  accountId: number;
  currency: string;
  /** unadmitted: no live reservation (never admitted, refused with 402, or expired); beyond_reservation: it ran past it. */
  kind: 'unadmitted' | 'beyond_reservation';
  uncoveredMicro: number;
}

/**
 * The figures that make a CDR what it is: a resend carries the same ones. The bytes are JSON.stringify's of
 * the array (fingerprints journalled before are compared with these), written by a template: numbers are
 * whole and finite (the request parser's), so only the two strings need JSON's quoting (quoteJson).
 */
function fingerprintOf(record: CallRecord): string {
  return (
    `[${record.customer_trunk_id},${record.carrier_trunk_id},${record.carrier_gateway_id},${quoteJson(record.ani)},${quoteJson(record.dnis)},` +
    `${record.startMs},${record.answerMs},${record.endMs},${record.duration_seconds},${record.sip_response_code}` +
    // Only when named, so a wholesale CDR's fingerprint is what it was before the field existed (journals keep them).
    (record.retail_account_id === undefined || record.retail_account_id === null ? ']' : `,${record.retail_account_id}]`)
  );
}

export async function ingestCdr(engine: DecisionEngine, credit: NodeCredit, record: CallRecord, now: number): Promise<IngestAnswer> {
  const fingerprint = fingerprintOf(record);
  const taken = credit.findCdr(record.sip_call_id);
  if (taken !== null) {
    await taken.committed;
    if (taken.cdr.fingerprint !== fingerprint) {
      throw new RequestError('cdr_conflict', `a different CDR was already ingested under sip_call_id ${record.sip_call_id.slice(0, 128)}`);
    }
    return { status: 200, body: taken.cdr.result, overrun: null };
  }

  const rating = rateCallRecord(engine, record);
  if (!rating.ok) throw new RequestError('unrateable_cdr', rating.message);
  const { rated } = rating;
  const { customer, vendor } = rated;
  // A call admitted through an access number is the retail account's: billed the sell cost in its product's
  // (its trunk's) currency, held to its balance. Known by the reservation the call holds; once that is gone
  // (released, or expired before a late CDR), by the account the CDR names, or the call would be billed to
  // the product trunk's own account.
  const reservation = credit.reservationOf(record.sip_call_id);
  const retail = reservation !== NO_RESERVATION ? credit.retailOf(reservation) : (record.retail_account_id ?? null);
  const accountCharge = retail === null ? rated.accountCharge : customer.cost;
  const accountCurrency = retail === null ? rated.accountCurrency : customer.currency;
  const chargeMicro = parseMicro(accountCharge); // exact: a trunk's precision is at most 6 decimals
  const account = engine.snapshot.accounts.get(rated.accountId)!;
  const recorded = credit.recordCdr(
    { sip_call_id: record.sip_call_id, fingerprint, account_id: rated.accountId, charge_micro: chargeMicro },
    {
      sip_call_id: record.sip_call_id,
      customer_trunk_id: record.customer_trunk_id,
      customer_account_id: rated.accountId,
      carrier_trunk_id: record.carrier_trunk_id,
      carrier_gateway_id: record.carrier_gateway_id,
      ani: record.ani,
      dnis: record.dnis,
      start_time: iso(record.startMs),
      answer_time: record.answerMs === null ? null : iso(record.answerMs),
      end_time: iso(record.endMs),
      duration_seconds: record.duration_seconds,
      sip_response_code: record.sip_response_code,
      billable_duration_customer: customer.billableSeconds,
      billable_duration_vendor: vendor.billableSeconds,
      customer_rate_deck_id: customer.rateDeckId,
      carrier_rate_deck_id: vendor.rateDeckId,
      customer_cost: customer.cost,
      customer_currency: customer.currency,
      customer_decimal_precision: customer.precision,
      customer_rounding_direction: customer.rounding,
      vendor_cost: vendor.cost,
      vendor_currency: vendor.currency,
      vendor_decimal_precision: vendor.precision,
      vendor_rounding_direction: vendor.rounding,
      account_charge: accountCharge,
      account_currency: accountCurrency,
      created_at: iso(now),
      // Always present (null: a wholesale call, written as absent): one object shape, no spread of a partial one.
      retail_account_id: retail,
    },
    // Only an account held to a limit can be overrun; one without is billed whatever it spends (retail: prepaid).
    retail !== null || account.enforcesHeadroom,
    (id, reservedMicro, uncoveredMicro) => ingestAnswer(id, customer, vendor, chargeMicro, reservedMicro, uncoveredMicro),
    now,
    reservation,
  );
  await recorded.committed;
  const overrun: Overrun | null =
    recorded.uncoveredMicro === 0
      ? null
      : {
          sipCallId: record.sip_call_id,
          accountId: rated.accountId,
          currency: accountCurrency,
          kind: recorded.reservedMicro === null ? 'unadmitted' : 'beyond_reservation',
          uncoveredMicro: recorded.uncoveredMicro,
        };
  return { status: 201, body: recorded.result, overrun };
}
