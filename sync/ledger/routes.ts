import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { RequestError, errorBody, statusOf } from '../../src/core/http/errors.js';
import { parseQuery, queryInteger } from '../../src/core/http/query.js';
import { json } from '../../src/core/http/respond.js';
import type { IncomingRequest, OutgoingResponse, Route } from '../../src/core/http/server.js';
import {
  MAX_LEASE_ASKS,
  type LeaseAsk,
  type NodeSyncReply,
  type NodeSyncRequest,
  type SettlementCdr,
} from '../../src/core/protocol/node-sync.js';
import { isDecimalString } from '../../src/core/rating/rating.js';
import { isoInstant } from '../../src/core/time/iso-instant.js';
import { parseInstant } from '../../src/core/time/parse-instant.js';
import { CURRENCIES } from '../../src/core/snapshot/schema.js';
import { nodeRound } from './node-round.js';
import { emptyTally, NodeSyncRefusal, type RoundObserver } from './settlement.js';
import { adminRoute, readBody } from '../http/handlers.js';
import type { NodeSilence } from './lease-reclaim.js';
import { LeaseRecalls } from './lease-recall.js';
import type { LedgerStore } from './store.js';

/**
 * The money endpoints of the control plane: the nodes' money rounds
 * (POST /api/ledger/node-sync: settle rated CDRs, grant and take back credit
 * leases) and GET /api/cdrs/search over the settled CDRs.
 */
const MAX_SETTLEMENTS = 5000;

type FieldKind =
  | 'id'
  | 'id?'
  | 'string'
  | 'string?'
  | 'text'
  | 'money'
  | 'count'
  | 'code?'
  | 'currency'
  | 'precision'
  | 'rounding'
  | 'time'
  | 'time?'
  | 'money?'
  | 'boolean?';

const SETTLEMENT_FIELD_KINDS: Record<keyof SettlementCdr, FieldKind> = {
  sip_call_id: 'string',
  node_cdr_id: 'id',
  customer_trunk_id: 'id',
  customer_account_id: 'id',
  carrier_trunk_id: 'id',
  carrier_gateway_id: 'id',
  // A withheld caller's ANI is empty: the node bills the call all the same (cdrs/ingest).
  ani: 'text',
  dnis: 'string',
  start_time: 'time',
  answer_time: 'time?',
  end_time: 'time',
  duration_seconds: 'count',
  sip_response_code: 'code?',
  billable_duration_customer: 'count',
  billable_duration_vendor: 'count',
  customer_rate_deck_id: 'id?',
  carrier_rate_deck_id: 'id?',
  customer_cost: 'money',
  customer_currency: 'currency',
  customer_decimal_precision: 'precision',
  customer_rounding_direction: 'rounding',
  vendor_cost: 'money',
  vendor_currency: 'currency',
  vendor_decimal_precision: 'precision',
  vendor_rounding_direction: 'rounding',
  account_charge: 'money',
  account_currency: 'currency',
  created_at: 'time',
  uncovered: 'money?',
  retail_account_id: 'id?',
};

const isInteger = (value: unknown): value is number => typeof value === 'number' && Number.isSafeInteger(value);
const CURRENCY_SET: ReadonlySet<unknown> = new Set(CURRENCIES);

const CHECKS: Record<string, (value: unknown) => boolean> = {
  id: (value) => isInteger(value) && value >= 1,
  count: (value) => isInteger(value) && value >= 0,
  code: (value) => isInteger(value) && value >= 100 && value <= 699,
  string: (value) => typeof value === 'string' && value.length > 0 && value.length <= 256,
  /** A string that may be empty. */
  text: (value) => typeof value === 'string' && value.length <= 256,
  money: (value) => typeof value === 'string' && isDecimalString(value) && !value.startsWith('-'),
  currency: (value) => CURRENCY_SET.has(value),
  precision: (value) => value === 4 || value === 5 || value === 6,
  rounding: (value) => value === 'up' || value === 'down' || value === 'standard',
  // The node's own CDR times, as it checked them (parseInstant: RFC 3339, and a date that exists; Date.parse
  // rolls 2026-02-30 into March).
  time: (value) => typeof value === 'string' && value.length <= 40 && !Number.isNaN(parseInstant(value)),
  boolean: (value) => typeof value === 'boolean',
};

interface FieldCheck {
  field: string;
  kind: string;
  optional: boolean;
  check: (value: unknown) => boolean;
}

/** Each field's check picked once: a round validates up to a thousand settlements of 28 fields each. */
function compileFields(fields: Record<string, FieldKind>): FieldCheck[] {
  return Object.entries(fields).map(([field, kind]) => {
    const optional = kind.endsWith('?');
    const base = optional ? kind.slice(0, -1) : kind;
    return { field, kind: base, optional, check: CHECKS[base] };
  });
}

/**
 * A CDR's start in the one spelling the centre keeps (UTC, milliseconds, as isoInstant and so the node write it):
 * its identity is its Call-ID and start compared as text (contract note 60), and the CDR search's range compares
 * starts as text too, so a node writing the same instant another RFC 3339 way (an offset, no fraction) must not
 * bill a resend again. Already in that spelling (every node's CDR), it is taken as it is: a round carries up to
 * 1,000 of them. Checked before (parseInstant), so the digits are a time that exists.
 */
function canonicalInstant(text: string): string {
  const canonical =
    text.length === 24 &&
    text.charCodeAt(10) === 84 && // T
    text.charCodeAt(19) === 46 && // .
    text.charCodeAt(23) === 90 && // Z
    text.charCodeAt(17) <= 53; // seconds below 60: a leap second is spelled as the next minute
  return canonical ? text : isoInstant(parseInstant(text));
}

function checkObject<T>(value: unknown, fields: readonly FieldCheck[], what: string): T {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new RequestError('invalid_field', `${what} must be an object`);
  const record = value as Record<string, unknown>;
  const checked: Record<string, unknown> = {};
  for (const { field, kind, optional, check } of fields) {
    const fieldValue = record[field] ?? null;
    if (!(optional && fieldValue === null) && !check(fieldValue))
      throw new RequestError('invalid_field', `${what}.${field} is missing or not a valid ${kind}`);
    checked[field] = field === 'start_time' ? canonicalInstant(fieldValue as string) : fieldValue;
  }
  return checked as T;
}

const SETTLEMENT_FIELDS = compileFields(SETTLEMENT_FIELD_KINDS);
const LEASE_FIELDS = compileFields({
  entity_type: 'string',
  entity_id: 'id',
  want: 'money',
  give_back: 'money',
  need: 'money?',
  per_call: 'money?',
  answers_recall: 'boolean?',
} satisfies Record<keyof LeaseAsk, FieldKind>);

function nodeSyncRequest(body: Record<string, unknown>): NodeSyncRequest & { seq: number } {
  const { node, seq, settlements, leases } = body;
  if (typeof node !== 'string' || node.length === 0 || node.length > 255)
    throw new RequestError('invalid_field', 'node must be the node hostname');
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 1)
    throw new RequestError('invalid_field', 'seq must be a positive integer');
  if (!Array.isArray(settlements) || settlements.length > MAX_SETTLEMENTS)
    throw new RequestError('invalid_field', `settlements must be an array of at most ${MAX_SETTLEMENTS}`);
  if (!Array.isArray(leases) || leases.length > MAX_LEASE_ASKS)
    throw new RequestError('invalid_field', `leases must be an array of at most ${MAX_LEASE_ASKS}`);
  return {
    node,
    seq,
    settlements: settlements.map((item, index) => checkObject<SettlementCdr>(item, SETTLEMENT_FIELDS, `settlements[${index}]`)),
    leases: leases.map((item, index) => {
      const ask = checkObject<LeaseAsk>(item, LEASE_FIELDS, `leases[${index}]`);
      const entityType: string = ask.entity_type;
      if (entityType !== 'customer' && entityType !== 'carrier' && entityType !== 'retail')
        throw new RequestError('invalid_field', `leases[${index}].entity_type must be customer, carrier or retail`);
      return ask;
    }),
  };
}

const SEARCH_PARAMS = [
  'start_time_from',
  'start_time_to',
  'customer_account_id',
  'customer_trunk_id',
  'carrier_trunk_id',
  'sip_call_id',
  'limit',
  'offset',
];

export interface LedgerRoutesContext {
  ledger: LedgerStore;
  /** How long a node's credit leases stay valid without a money round (every node-sync answer says so). */
  leaseValidSeconds: number;
  /** Told of every answered money round (the lease reclaim's own clock). */
  nodeSilence: NodeSilence;
  /** Where refused credentials are reported (a forgery, or a node given the wrong secret). */
  log: Logger;
  /** Lease the centre wants back, told to nodes in their round answers; shared with the partner API (delete_account). */
  recalls?: LeaseRecalls;
  /** Told of each round's result and what it did (the metrics; absent: nobody). */
  onRound?: RoundObserver;
}

/** The money round's route: it reads the node's credential from the Authorization header. */
function nodeSyncRoute(handler: (request: IncomingRequest) => Promise<OutgoingResponse>): Route {
  return { ...adminRoute('POST', '/api/ledger/node-sync', 16 * 1024 * 1024, handler), readsAuthorization: true };
}

export function ledgerRoutes(context: LedgerRoutesContext): Route[] {
  const { ledger } = context;
  const recalls = context.recalls ?? new LeaseRecalls();
  return [
    nodeSyncRoute(async (request: IncomingRequest) => {
      const started = performance.now();
      const seconds = (): number => (performance.now() - started) / 1000;
      let round: NodeSyncRequest & { seq: number };
      try {
        round = nodeSyncRequest(readBody(request));
      } catch (error) {
        context.onRound?.('invalid', seconds());
        throw error;
      }
      // A round that committed is counted once, whatever happens after.
      let counted = false;
      try {
        // A resend of the last applied round, byte for byte (its answer was lost), gets that round's answer
        // again and applies nothing: the node then counts what the centre counted.
        const digest = createHash('sha256').update(request.body).digest('hex');
        // Each attempt of the transaction counts afresh (PostgreSQL runs one the server aborted again, whole).
        const tally = emptyTally();
        const reply: NodeSyncReply = await ledger.run(
          (tx) => {
            Object.assign(tally, emptyTally());
            return nodeRound(tx, round, digest, request.authorization, recalls, tally);
          },
          { unlockBeforeFlush: true },
        );
        counted = true;
        context.onRound?.(tally.resent ? 'resent' : 'ok', seconds(), round.node, tally);
        context.nodeSilence.heard(round.node);
        // Committed: lease handed back (or a recalled node's answer) refreshes the nodes waiting for it.
        recalls.roundApplied(round.node, round.leases, reply.leases);
        const recall = recalls.take(round.node);
        return json(200, {
          ...reply,
          lease_valid_seconds: context.leaseValidSeconds,
          ...(recall.length > 0 ? { recall } : {}),
        } satisfies NodeSyncReply);
      } catch (error) {
        if (!counted) context.onRound?.(error instanceof NodeSyncRefusal ? error.code : 'error', seconds());
        if (!(error instanceof NodeSyncRefusal)) throw error;
        if (error.code === 'node_unauthenticated')
          context.log.warn(
            { node: round.node, seq: round.seq, remote_address: request.remoteAddress },
            "money round refused: it does not carry the node's secret",
          );
        // A node whose journal was reset learns where to continue its round numbers.
        const lastSeq =
          error.code === 'stale_round' || error.code === 'round_out_of_sequence'
            ? await ledger.run((tx) => tx.lastRound(round.node))
            : undefined;
        return { status: statusOf(error.code), body: errorBody(error.code, error.message, { last_seq: lastSeq }) };
      }
    }),
    adminRoute('GET', '/api/cdrs/search', 0, async (request: IncomingRequest) => {
      const params = parseQuery(request.query, SEARCH_PARAMS);
      const time = (name: string): string | null => {
        const text = params.get(name);
        if (text === null) return null;
        const ms = Date.parse(text);
        if (!/^\d{4}-\d{2}-\d{2}T/.test(text) || Number.isNaN(ms))
          throw new RequestError('invalid_parameter', `${name} must be an RFC 3339 timestamp`);
        return new Date(ms).toISOString();
      };
      const sipCallId = params.get('sip_call_id');
      if (sipCallId !== null && (sipCallId === '' || sipCallId.length > 256))
        throw new RequestError('invalid_parameter', 'sip_call_id must be 1 to 256 characters');
      const rows = await ledger.searchCdrs({
        startFrom: time('start_time_from'),
        startTo: time('start_time_to'),
        customerAccountId: queryInteger(params, 'customer_account_id', 1, 999_999_999),
        customerTrunkId: queryInteger(params, 'customer_trunk_id', 1, 999_999_999),
        carrierTrunkId: queryInteger(params, 'carrier_trunk_id', 1, 999_999_999),
        sipCallId,
        limit: queryInteger(params, 'limit', 1, 1000) ?? 1000,
        offset: queryInteger(params, 'offset', 0, 999_999_999) ?? 0,
      });
      return json(
        200,
        rows.map((row) => ({ ...row, status: row.answer_time === null ? 'unanswered' : 'answered' })),
      );
    }),
  ];
}
