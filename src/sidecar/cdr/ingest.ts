import type { DecisionEngine } from '../engine/engine.js';
import { RequestError } from '../../core/http/errors.js';
import { MAX_MICRO_TEXT, parseMicro } from '../../core/money/micro.js';
import { answerText, fingerprintText, type RatedCdr } from '../journal/rated-cdr.js';
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

export async function ingestCdr(engine: DecisionEngine, credit: NodeCredit, record: CallRecord, now: number): Promise<IngestAnswer> {
  const taken = credit.findCdr(record.sip_call_id);
  if (taken !== null) {
    await taken.committed;
    if (taken.cdr.fingerprint !== requestFingerprint(record)) {
      throw new RequestError('cdr_conflict', `a different CDR was already ingested under sip_call_id ${record.sip_call_id.slice(0, 128)}`);
    }
    return { status: 200, body: taken.cdr.result, overrun: null };
  }

  // A call admitted through an access number is the retail account's: billed the sell cost in its product's
  // (its trunk's) currency, held to its balance. Known by the reservation the call holds; once that is gone
  // (released, or expired before a late CDR), by the account the CDR names, or the call would be billed to
  // the product trunk's own account.
  const reservation = credit.reservationOf(record.sip_call_id);
  const named = record.retail_account_id ?? null;
  const retail = reservation !== NO_RESERVATION ? credit.retailOf(reservation) : named;
  const rating = rateCallRecord(engine, record, retail === null ? 'account' : 'retail');
  if (!rating.ok) throw new RequestError('unrateable_cdr', rating.message);
  const { rated } = rating;
  const { accountCharge, accountCurrency } = rated;
  // Exact: a trunk's precision is at most 6 decimals. NaN past the 9 integer digits a node's amounts hold (a
  // mistyped rate for days): it would have made the account's spend NaN, and every admission on it with it.
  const chargeMicro = parseMicro(accountCharge);
  if (Number.isNaN(chargeMicro))
    throw new RequestError(
      'unrateable_cdr',
      `the call's charge ${accountCharge} ${accountCurrency} is more than a node holds (${MAX_MICRO_TEXT})`,
    );
  const account = engine.snapshot.accounts.get(rated.accountId)!;
  // One object per CDR, every field named in one order: the journal's op, the outbox's, the duplicate check's.
  const cdr: RatedCdr = {
    op: 'rated',
    id: 0, // recordCdr's
    sipCallId: record.sip_call_id,
    customerTrunkId: record.customer_trunk_id,
    accountId: rated.accountId,
    carrierTrunkId: record.carrier_trunk_id,
    carrierGatewayId: record.carrier_gateway_id,
    ani: record.ani,
    dnis: record.dnis,
    startMs: record.startMs,
    answerMs: record.answerMs,
    endMs: record.endMs,
    durationSeconds: record.duration_seconds,
    sipResponseCode: record.sip_response_code,
    customer: rated.customer,
    vendor: rated.vendor,
    accountCharge,
    accountCurrency,
    chargeMicro,
    createdAt: now,
    reservedMicro: null, // recordCdr's
    uncoveredMicro: 0, // recordCdr's
    retailAccountId: retail,
    namedRetailAccountId: named,
    namedRateDeckId: record.customer_rate_deck_id ?? null,
  };
  // Only an account held to a limit can be overrun; one without is billed whatever it spends (retail: prepaid).
  await credit.recordCdr(cdr, retail !== null || account.enforcesHeadroom, now, reservation);
  const overrun: Overrun | null =
    cdr.uncoveredMicro === 0
      ? null
      : {
          sipCallId: record.sip_call_id,
          accountId: rated.accountId,
          currency: accountCurrency,
          kind: cdr.reservedMicro === null ? 'unadmitted' : 'beyond_reservation',
          uncoveredMicro: cdr.uncoveredMicro,
        };
  return { status: 201, body: answerText(cdr), overrun };
}

/** A request's fingerprint, to compare with the one its Call-ID's CDR was taken with. */
function requestFingerprint(record: CallRecord): string {
  return fingerprintText(
    record.customer_trunk_id,
    record.carrier_trunk_id,
    record.carrier_gateway_id,
    record.ani,
    record.dnis,
    record.startMs,
    record.answerMs,
    record.endMs,
    record.duration_seconds,
    record.sip_response_code,
    record.retail_account_id,
    record.customer_rate_deck_id,
  );
}
