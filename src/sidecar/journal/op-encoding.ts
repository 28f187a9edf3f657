import { embeddedJson as embedded } from '../../core/json/embedded.js';
import { jsonNumber as num, jsonNumberOrNull as numOrNull } from '../../core/json/number.js';
import { quoteJson } from '../../core/json/quote.js';
import type { JournalOp } from './ops.js';
import { decodeHeldOp, encodeHeldOp } from './held-reservation.js';
import { decodeRatedOp, encodeRatedOp } from './rated-cdr.js';

/**
 * The ops of a log record as JSON text, and back. The hot ops (a CDR, a reservation, its finish) are
 * written by templates rather than JSON.stringify's generic walk, and the fields that already hold JSON
 * text (a CDR's answer and settlement; a reservation's slice terms, and its answer in logs from before
 * 2026-12-07) go into the record as JSON values, not as strings inside it: escaping the settlement's sixty quotes again, for every
 * CDR, was most of what encoding a record cost the event loop. Reading a record turns those values back
 * into the very text they were (every such field is made by JSON.stringify or a template pinned to its
 * bytes, so JSON.stringify of the parsed value gives it again), and records written before this, with
 * those fields as strings, read as they always did. test/unit/op-encoding.test.ts pins both.
 *
 * A field embedded as JSON must be JSON, or the record would not parse and the log would end there: every
 * one is written by this process (JSON.stringify, or a template that escapes what a request supplied and
 * writes a non-finite number as null), never taken from a request as text, and `embedded`
 * writes anything not shaped like an object or array as a string instead.
 */
const str = JSON.stringify;

function encodeOp(op: JournalOp): string {
  switch (op.op) {
    case 'rated':
      return encodeRatedOp(op);
    // Written by nodes before 2026-12-07 (and by tests of reading their logs).
    case 'cdr':
      return (
        `{"op":"cdr","id":${num(op.id)},"sipCallId":${quoteJson(op.sipCallId)},"fingerprint":${str(op.fingerprint)},` +
        `"result":${embedded(op.result)},"settlement":${embedded(op.settlement)},"accountId":${num(op.accountId)},` +
        `"chargeMicro":${num(op.chargeMicro)},"createdAt":${num(op.createdAt)}}`
      );
    case 'held':
      return encodeHeldOp(op);
    case 'finish':
      return `{"op":"finish","id":${num(op.id)},"state":${quoteJson(op.state)},"at":${num(op.at)}}`;
    // Written by nodes before 2026-12-07 (and by tests of reading their logs).
    case 'reserve':
      return (
        `{"op":"reserve","id":${num(op.id)},"callId":${quoteJson(op.callId)},"entityType":${quoteJson(op.entityType)},` +
        `"entityId":${num(op.entityId)},"amountMicro":${num(op.amountMicro)},"maxDuration":${numOrNull(op.maxDuration)},` +
        `"createdAt":${num(op.createdAt)},"expiresAt":${num(op.expiresAt)},"answer":${embedded(op.answer)},` +
        `"slice":${op.slice === null ? 'null' : embedded(op.slice)}` +
        (op.trunkId === undefined ? '}' : `,"trunkId":${numOrNull(op.trunkId)}}`)
      );
    // The rest are rare (rounds, leases, counters): the generic walk is fine for them.
    case 'extend':
    case 'lease':
    case 'settledThrough':
    case 'prune':
    case 'counter':
      return str(op);
  }
}

/** The record's payload: the ops as a JSON array. */
export function encodeOps(ops: JournalOp[]): string {
  if (ops.length === 1) return `[${encodeOp(ops[0])}]`;
  let text = '[';
  for (let i = 0; i < ops.length; i++) text += i === 0 ? encodeOp(ops[i]) : `,${encodeOp(ops[i])}`;
  return `${text}]`;
}

/** An embedded field back to the JSON text it was; a string (a record from before, or `embedded`'s fallback) as it is. */
const text = (value: unknown): string => (typeof value === 'string' ? value : str(value));

/** Ops parsed from a record's payload, with their JSON-text fields as the text they were written from. */
export function decodeOps(payload: string): JournalOp[] {
  const ops = JSON.parse(payload) as JournalOp[];
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i];
    if (op.op === 'rated') ops[i] = decodeRatedOp((op as unknown as { v: unknown[] }).v);
    else if (op.op === 'held') ops[i] = decodeHeldOp((op as unknown as { v: unknown[] }).v);
    else if (op.op === 'cdr') {
      op.result = text(op.result);
      op.settlement = text(op.settlement);
    } else if (op.op === 'reserve') {
      op.answer = text(op.answer);
      if (op.slice !== null) op.slice = text(op.slice);
    }
  }
  return ops;
}
