import { embeddedJson as embedded } from '../../core/json/embedded.js';
import { jsonNumber as num, jsonNumberOrNull as numOrNull } from '../../core/json/number.js';
import { quoteJson } from '../../core/json/quote.js';
import type { JournalOp } from './ops.js';
import { COMMA, JsonBytes } from '../../core/json/json-bytes.js';
import { decodeHeldOp, writeHeldOp } from './held-reservation.js';
import { decodeRatedOp, writeRatedOp } from './rated-cdr.js';

/**
 * The ops of a log record as JSON text, and back. The hot ops are not written by JSON.stringify's generic
 * walk: a CDR, a reservation and a finish (one of each per call) straight into the record's bytes
 * (JsonBytes: no string is made of them). The fields that already hold JSON
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

/** An op that is not written straight into bytes (writeOp), as text. */
function encodeOp(op: Exclude<JournalOp, { op: 'held' | 'finish' | 'rated' }>): string {
  switch (op.op) {
    // Written by nodes before 2026-12-07 (and by tests of reading their logs).
    case 'cdr':
      return (
        `{"op":"cdr","id":${num(op.id)},"sipCallId":${quoteJson(op.sipCallId)},"fingerprint":${str(op.fingerprint)},` +
        `"result":${embedded(op.result)},"settlement":${embedded(op.settlement)},"accountId":${num(op.accountId)},` +
        `"chargeMicro":${num(op.chargeMicro)},"createdAt":${num(op.createdAt)}}`
      );
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

/** One op into the record: a CDR, a reservation and a finish (one of each per call) straight as bytes, the rest as text. */
function writeOp(out: JsonBytes, op: JournalOp): void {
  if (op.op === 'rated') return writeRatedOp(out, op);
  if (op.op === 'held') return writeHeldOp(out, op);
  if (op.op === 'finish') {
    out.raw('{"op":"finish","id":');
    out.number(op.id);
    out.raw(',"state":');
    out.string(op.state);
    out.raw(',"at":');
    out.number(op.at);
    out.raw('}');
    return;
  }
  out.raw(encodeOp(op));
}

/** The record's payload: the ops as a JSON array, appended to `out`. */
export function writeOps(out: JsonBytes, ops: JournalOp[]): void {
  out.raw('[');
  for (let i = 0; i < ops.length; i++) {
    if (i > 0) out.char(COMMA);
    writeOp(out, ops[i]);
  }
  out.raw(']');
}

/** writeOps's payload as text (tests, and what reads it back). */
export function encodeOps(ops: JournalOp[]): string {
  const out = new JsonBytes(1024);
  writeOps(out, ops);
  return out.bytes.toString('utf8', 0, out.length);
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
