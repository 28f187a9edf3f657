import { BodyReader, ID, NUMBER_TEXT, SIP_CODE, parseJsonObject } from '../../core/http/body.js';
import { RequestError, statusOf } from '../../core/http/errors.js';
import type { OutgoingResponse, Route } from '../../core/http/server.js';
import { normalizeAni } from '../../core/numbers/normalize.js';
import { admitCall, checkAndReserve, type Answer } from '../admission/admit.js';
import { ingestCdr } from '../cdr/ingest.js';
import { reportOverrun } from '../cdr/overrun.js';
import type { CallRecord } from '../cdr/rating.js';
import { SpoolPark, SpoolRetry, type SpoolHandler, type SpoolKind } from '../cdr/spool.js';
import { JournalWriteError } from '../journal/journal.js';
import { readDialogId } from './call-requests.js';
import type { SidecarContext } from './context.js';
import { DURATION, callIdField, moneyField, numberField, servingEngine, timeField } from './fields.js';

/**
 * The money path's endpoints at the node: admission (call/admit, call-admit/check), release, and CDR
 * ingest. Parse and validate, call the decision, write the answer; an answer that acknowledges a
 * reservation or a CDR goes out only once its journal record is durable.
 */

/** The CDR's times must tell one story: start <= answer <= end, and the duration fits between answer and end. */
function callRecord(reader: BodyReader): CallRecord {
  const record: CallRecord = {
    sip_call_id: callIdField(reader, 'sip_call_id', true)!,
    customer_trunk_id: reader.requiredInteger('customer_trunk_id', ID),
    carrier_trunk_id: reader.requiredInteger('carrier_trunk_id', ID),
    carrier_gateway_id: reader.requiredInteger('carrier_gateway_id', ID),
    // A withheld caller ("anonymous", or the "" call/auth answers for one) is billed all the same.
    ani: normalizeAni(reader.string('ani', NUMBER_TEXT)),
    dnis: numberField(reader, 'dnis'),
    startMs: timeField(reader, 'start_time', true)!,
    answerMs: timeField(reader, 'answer_time', false),
    endMs: timeField(reader, 'end_time', true)!,
    duration_seconds: reader.requiredInteger('duration_seconds', DURATION),
    sip_response_code: reader.integer('sip_response_code', SIP_CODE) ?? null,
    retail_account_id: reader.integer('retail_account_id', ID) ?? null,
    customer_rate_deck_id: reader.integer('customer_rate_deck_id', ID) ?? null,
  };
  if (record.endMs < record.startMs) throw new RequestError('invalid_field', 'end_time is before start_time');
  if (record.answerMs === null) {
    if (record.duration_seconds !== 0)
      throw new RequestError('invalid_field', 'duration_seconds must be 0 when answer_time is null (the call was not answered)');
  } else {
    if (record.answerMs < record.startMs || record.answerMs > record.endMs)
      throw new RequestError('invalid_field', 'answer_time must lie between start_time and end_time');
    // One second of slack: the proxy may round its timestamps and its duration differently.
    if (record.duration_seconds > Math.ceil((record.endMs - record.answerMs) / 1000) + 1) {
      throw new RequestError('invalid_field', 'duration_seconds is longer than the time between answer_time and end_time');
    }
  }
  return record;
}

/** An answer goes out once what it acknowledges is durable; a refusal acknowledges nothing and goes out at once. */
function whenCommitted(
  answer: Answer | Promise<Answer>,
  respond: (answer: Answer) => OutgoingResponse,
): OutgoingResponse | Promise<OutgoingResponse> {
  if (answer instanceof Promise) return answer.then((settled) => whenCommitted(settled, respond));
  return answer.committed === null ? respond(answer) : answer.committed.then(() => respond(answer));
}

/** The ingest as POST /api/cdrs/ingest does it, from a parsed body. */
async function ingestBody(context: SpoolContext, body: Record<string, unknown>): Promise<{ status: number; body: string }> {
  const record = callRecord(new BodyReader(body));
  const answer = await ingestCdr(servingEngine(context.snapshots), context.credit, record, Date.now());
  context.metrics.decided('cdr_ingest', answer.status === 201 ? 'rated' : 'duplicate');
  if (answer.overrun !== null) reportOverrun(context.metrics, context.log, answer.overrun);
  return { status: answer.status, body: answer.body };
}

async function releaseBody(context: SpoolContext, body: Record<string, unknown>): Promise<{ status: number; body: string }> {
  const callId = callIdField(new BodyReader(body), 'call_id', true)!;
  const released = await context.credit.release(callId, Date.now());
  context.metrics.decided('call_release', released ? 'released' : 'none');
  return { status: 200, body: JSON.stringify({ call_id: callId, released }) };
}

type SpoolContext = Pick<SidecarContext, 'snapshots' | 'credit' | 'metrics' | 'log'>;

/**
 * The refusals that can be lifted, and by what (SpoolPark): `unrateable_cdr` by a later snapshot or live delta
 * (the CDR is sound, the configuration it is rated with has a gap: its trunk or deck not in the snapshot, no
 * rate, no exchange rate in force); `cdr_conflict` by the prune of the other CDR the node holds under its Call-ID
 * (a later call the customer made under it, whose CDR came first). The endpoint answers them 422 and 409 all the
 * same (the contract's answers; the script spools what is not 201/200), and the spool parks them.
 */
const PARKED_REFUSALS: ReadonlyMap<string, SpoolPark['until']> = new Map([
  ['unrateable_cdr', 'serving_state'],
  ['cdr_conflict', 'call_id_free'],
]);

/**
 * What OpenSIPS spooled while this sidecar was down (cdr/spool.ts), taken with the same checks, ingest and
 * release as the endpoints. A refusal the endpoint answers with 503 (no snapshot yet, the journal refusing
 * writes) keeps the row for later; an unrateable or conflicting CDR is parked (PARKED_REFUSALS); any other
 * refusal (a malformed body) would come again, so it drops it.
 */
export function spoolHandlers(context: SpoolContext): Record<SpoolKind, SpoolHandler> {
  const retryLater =
    (take: (context: SpoolContext, body: Record<string, unknown>) => Promise<unknown>): SpoolHandler =>
    async (body) => {
      try {
        await take(context, body);
      } catch (error) {
        if (error instanceof RequestError) {
          const until = PARKED_REFUSALS.get(error.code);
          if (until !== undefined) throw new SpoolPark(error.code, error.message, until);
        }
        const unavailable = error instanceof JournalWriteError || (error instanceof RequestError && statusOf(error.code) === 503);
        throw unavailable ? new SpoolRetry(String(error)) : error;
      }
    };
  return { cdr: retryLater(ingestBody), release: retryLater(releaseBody) };
}

export function moneyRoutes(context: SidecarContext): Route[] {
  const { snapshots, credit, metrics, post } = context;
  const admitContext = () => ({ engine: servingEngine(snapshots), credit, metrics, log: context.log });
  // Made once, not a closure per admission.
  const admitted = (answer: Answer): OutgoingResponse => {
    metrics.decided('call_admit', answer.outcome);
    return { status: 200, body: answer.body };
  };

  return [
    post('/api/opensips/call/admit', (request) => {
      const reader = new BodyReader(parseJsonObject(request.body, request.contentType));
      const input = {
        customer_trunk_id: reader.requiredInteger('customer_trunk_id', ID),
        dnis: reader.string('dnis', NUMBER_TEXT) ?? null,
        call_id: callIdField(reader, 'call_id', false),
        estimatedCostMicro: moneyField(reader, 'estimated_cost', false),
        dialogId: readDialogId(reader),
        // call/auth's answer for a call through a partner access number (the script passes it on): billed to it.
        retailAccountId: reader.integer('retail_account_id', ID) ?? null,
        // And its product's sell deck, when it names one: priced with it instead of the trunk's.
        sellDeckId: reader.integer('customer_rate_deck_id', ID),
      };
      if (input.dnis === null && input.estimatedCostMicro === null)
        throw new RequestError('invalid_field', 'dnis is required (or estimated_cost)');
      return whenCommitted(admitCall(admitContext(), input, Date.now()), admitted);
    }),

    post('/api/opensips/call/release', (request) => releaseBody(context, parseJsonObject(request.body, request.contentType))),

    post('/api/call-admit/check', (request) => {
      const reader = new BodyReader(parseJsonObject(request.body, request.contentType));
      const type = reader.requiredString('entity_type', { maxLength: 32 });
      // The contract's spelling, and the resource names operators also use.
      const entityType =
        type === 'customer' || type === 'customer_account' ? 'customer' : type === 'carrier' || type === 'carrier_trunk' ? 'carrier' : null;
      if (entityType === null) throw new RequestError('invalid_field', 'entity_type must be customer or carrier');
      const input = {
        entity_type: entityType,
        entity_id: reader.requiredInteger('entity_id', ID),
        estimatedCostMicro: moneyField(reader, 'estimated_cost', true)!,
        call_id: callIdField(reader, 'call_id', false),
      } as const;
      const answer = checkAndReserve(admitContext(), input, Date.now());
      if (answer === null)
        throw new RequestError(
          'not_found',
          `${entityType === 'customer' ? 'customer account' : 'carrier trunk'} ${input.entity_id} not found`,
        );
      return whenCommitted(answer, (settled) => {
        metrics.decided('call_admit_check', settled.outcome);
        return { status: 200, body: settled.body };
      });
    }),

    post('/api/cdrs/ingest', (request) => ingestBody(context, parseJsonObject(request.body, request.contentType))),
  ];
}
