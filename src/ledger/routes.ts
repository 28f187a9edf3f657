import type { Logger } from 'pino';
import type { DecisionEngine } from '../engine.js';
import { BodyReader, ID, NUMBER_TEXT, SIP_CODE, parseJsonObject, type IntegerBounds } from '../http/body.js';
import { RequestError } from '../http/errors.js';
import { guard } from '../http/guard.js';
import type { IncomingRequest, OutgoingResponse, Route } from '../http/server.js';
import type { SidecarMetrics } from '../metrics/metrics.js';
import { parseMicro } from '../money/micro.js';
import { normalizeAni, normalizeNumber } from '../numbers/normalize.js';
import type { SnapshotService } from '../snapshot/service.js';
import { admitCall, checkAndReserve, type Answer } from './call-admission.js';
import { ingestCdr } from './cdr-ingest.js';
import type { CallRecord } from './cdr-rating.js';
import { JournalWriteError } from './journal.js';
import type { NodeLedger } from './node-ledger.js';

/**
 * The money path's endpoints at the node: parse and validate, call the
 * decision, write the answer. Each answer is sent after its journal commit.
 */
export interface MoneyRoutesContext {
  snapshots: SnapshotService;
  ledger: NodeLedger;
  metrics: SidecarMetrics;
  log: Logger;
  maxBodyBytes: number;
}

const CALL_ID_TEXT = { maxLength: 255 };
/** RFC 3261 Call-IDs are visible ASCII (word ["@" word]); anything else is not one. */
const CALL_ID = /^[\x21-\x7e]+$/;
const DURATION: IntegerBounds = { min: 0, max: 7 * 86_400 };
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$/;

/** A money amount: a decimal string (never a JSON number), >= 0, at most 6 decimals. */
function moneyField(reader: BodyReader, name: string, required: boolean): number | null {
  const text = required ? reader.requiredString(name, { maxLength: 32 }) : reader.string(name, { maxLength: 32 });
  if (text === undefined) return null;
  const micro = parseMicro(text);
  if (Number.isNaN(micro)) throw new RequestError(400, `${name} must be a decimal string such as "0.25", with at most 6 decimals`);
  if (micro < 0) throw new RequestError(400, `${name} must not be negative`);
  return micro;
}

function callIdField(reader: BodyReader, name: string, required: boolean): string | null {
  const text = required ? reader.requiredString(name, CALL_ID_TEXT) : reader.string(name, CALL_ID_TEXT);
  if (text === undefined) return null;
  if (!CALL_ID.test(text)) throw new RequestError(400, `${name} must be a SIP Call-ID (visible ASCII, no spaces)`);
  return text;
}

function numberField(reader: BodyReader, name: string): string {
  const digits = normalizeNumber(reader.requiredString(name, NUMBER_TEXT));
  if (digits === null) throw new RequestError(400, `${name} must be a telephone number (digits, optional leading +, visual separators)`);
  return digits;
}

function timeField(reader: BodyReader, name: string, required: boolean): number | null {
  const text = required ? reader.requiredString(name, { maxLength: 40 }) : reader.string(name, { maxLength: 40 });
  if (text === undefined || (!required && text === '')) return null;
  const ms = RFC3339.test(text) ? Date.parse(text) : NaN;
  if (Number.isNaN(ms)) throw new RequestError(400, `${name} must be an RFC 3339 timestamp such as 2026-01-15T08:30:00Z`);
  return ms;
}

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
  };
  if (record.endMs < record.startMs) throw new RequestError(400, 'end_time is before start_time');
  if (record.answerMs === null) {
    if (record.duration_seconds !== 0) throw new RequestError(400, 'duration_seconds must be 0 when answer_time is null (the call was not answered)');
  } else {
    if (record.answerMs < record.startMs || record.answerMs > record.endMs) throw new RequestError(400, 'answer_time must lie between start_time and end_time');
    // One second of slack: the proxy may round its timestamps and its duration differently.
    if (record.duration_seconds > Math.ceil((record.endMs - record.answerMs) / 1000) + 1) {
      throw new RequestError(400, 'duration_seconds is longer than the time between answer_time and end_time');
    }
  }
  return record;
}

/** The journal could not make it durable: nothing was admitted or taken, and OpenSIPS may retry. */
function journalUnavailable(error: unknown): unknown {
  return error instanceof JournalWriteError ? new RequestError(503, 'the money journal cannot commit; nothing was recorded') : error;
}

/** An answer goes out once what it acknowledges is durable; a refusal acknowledges nothing and goes out at once. */
function whenCommitted(answer: Answer | Promise<Answer>, respond: (answer: Answer) => OutgoingResponse): OutgoingResponse | Promise<OutgoingResponse> {
  if (answer instanceof Promise) return answer.then((settled) => whenCommitted(settled, respond));
  return answer.committed === null ? respond(answer) : answer.committed.then(() => respond(answer));
}

export function moneyRoutes(context: MoneyRoutesContext): Route[] {
  const { snapshots, ledger, metrics } = context;
  const engine = (): DecisionEngine => {
    const current = snapshots.engine;
    if (current === null) throw new RequestError(503, 'no routing snapshot loaded');
    return current;
  };
  const post = (path: string, handler: (request: IncomingRequest) => OutgoingResponse | Promise<OutgoingResponse>): Route => ({
    method: 'POST',
    path,
    maxBodyBytes: context.maxBodyBytes,
    handler: guard(handler, journalUnavailable),
  });
  const admitContext = () => ({ engine: engine(), ledger, metrics, log: context.log });

  return [
    post('/api/opensips/call/admit', (request) => {
      const reader = new BodyReader(parseJsonObject(request.body, request.contentType));
      const input = {
        customer_trunk_id: reader.requiredInteger('customer_trunk_id', ID),
        dnis: reader.string('dnis', NUMBER_TEXT) ?? null,
        call_id: callIdField(reader, 'call_id', false),
        estimatedCostMicro: moneyField(reader, 'estimated_cost', false),
      };
      if (input.dnis === null && input.estimatedCostMicro === null) throw new RequestError(400, 'dnis is required (or estimated_cost)');
      return whenCommitted(admitCall(admitContext(), input, Date.now()), (answer) => {
        metrics.decided('call_admit', answer.outcome);
        return { status: 200, body: answer.body };
      });
    }),

    post('/api/opensips/call/release', async (request) => {
      const reader = new BodyReader(parseJsonObject(request.body, request.contentType));
      const callId = callIdField(reader, 'call_id', true)!;
      const released = await ledger.release(callId, Date.now());
      metrics.decided('call_release', released ? 'released' : 'none');
      return { status: 200, body: JSON.stringify({ call_id: callId, released }) };
    }),

    post('/api/call-admit/check', (request) => {
      const reader = new BodyReader(parseJsonObject(request.body, request.contentType));
      const type = reader.requiredString('entity_type', { maxLength: 32 });
      // The contract's spelling, and the resource names operators also use.
      const entityType = type === 'customer' || type === 'customer_account' ? 'customer' : type === 'carrier' || type === 'carrier_trunk' ? 'carrier' : null;
      if (entityType === null) throw new RequestError(400, 'entity_type must be customer or carrier');
      const input = {
        entity_type: entityType,
        entity_id: reader.requiredInteger('entity_id', ID),
        estimatedCostMicro: moneyField(reader, 'estimated_cost', true)!,
        call_id: callIdField(reader, 'call_id', false),
      } as const;
      const answer = checkAndReserve(admitContext(), input, Date.now());
      if (answer === null) throw new RequestError(404, `${entityType === 'customer' ? 'customer account' : 'carrier trunk'} ${input.entity_id} not found`);
      return whenCommitted(answer, (settled) => {
        metrics.decided('call_admit_check', settled.outcome);
        return { status: 200, body: settled.body };
      });
    }),

    post('/api/cdrs/ingest', async (request) => {
      const record = callRecord(new BodyReader(parseJsonObject(request.body, request.contentType)));
      const answer = await ingestCdr(engine(), ledger, record, Date.now());
      metrics.decided('cdr_ingest', answer.status === 201 ? 'rated' : 'duplicate');
      return answer;
    }),
  ];
}
