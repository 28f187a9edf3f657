import type { JournalOp } from './ops.js';
import { decodeOps } from './op-encoding.js';

/**
 * A record's ops as the applier writes them into money.db. A rated CDR's row keeps the op's bytes as the log
 * holds them (its `rated` column: writeRatedOp's) and five of its figures; the applier used to parse the whole
 * op (33 values, two side objects) and then write the same bytes again from it, for every CDR: a fifth of its
 * CPU. Here the op's bytes are taken from the record as they are, and only the five figures read out of them.
 * Every other op is parsed as before (decodeOps), and so is a record with no rated op.
 */
export interface RatedRow {
  op: 'ratedRow';
  id: number;
  sipCallId: string;
  accountId: number;
  chargeMicro: number;
  createdAt: number;
  /** writeRatedOp's bytes, within the record read (valid while the pass that read it applies it). */
  bytes: Uint8Array;
}

export type AppliedOp = JournalOp | RatedRow;

const RATED_OP = Buffer.from('{"op":"rated","v":[');
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;

/** Where the JSON string starting at `at` (its opening quote) ends: just past its closing quote. */
function stringEnd(bytes: Uint8Array, at: number): number {
  for (let i = at + 1; i < bytes.length; i++) {
    const byte = bytes[i];
    if (byte === BACKSLASH) i++;
    else if (byte === QUOTE) return i + 1;
  }
  throw new Error('money log record: a string runs past its end');
}

/**
 * Where the JSON value starting at `at` ends, at `depth` 0: the offset of the comma or closing bracket after
 * it. Bytes of a multi-byte UTF-8 character are all 0x80 or above, never mistaken for JSON's punctuation.
 */
function valueEnd(bytes: Uint8Array, at: number): number {
  let depth = 0;
  let i = at;
  while (i < bytes.length) {
    const byte = bytes[i];
    if (byte === QUOTE) {
      i = stringEnd(bytes, i);
      continue;
    }
    if (byte === OPEN_OBJECT || byte === OPEN_ARRAY) depth++;
    else if (byte === CLOSE_OBJECT || byte === CLOSE_ARRAY) {
      if (depth === 0) return i;
      depth--;
    } else if (byte === COMMA && depth === 0) return i;
    i++;
  }
  throw new Error('money log record: a value runs past its end');
}

/** The values of writeRatedOp's array that money.db's row needs, by their place in it (rated-cdr.ts). */
const ID = 0;
const SIP_CALL_ID = 1;
const ACCOUNT_ID = 3;
const CHARGE_MICRO = 27;
const CREATED_AT = 28;

/** A number as JSON.parse reads it: jsonNumber writes a value that is not finite as null (op-encoding.ts). */
function numberAt(bytes: Buffer, start: number, end: number): number {
  const text = bytes.toString('latin1', start, end);
  return text === 'null' ? (null as unknown as number) : Number(text);
}

function stringAt(bytes: Buffer, start: number, end: number): string {
  for (let i = start + 1; i < end - 1; i++) {
    // Escaped or beyond ASCII: JSON's own reading of it.
    if (bytes[i] === BACKSLASH || bytes[i] > 0x7e) return JSON.parse(bytes.toString('utf8', start, end)) as string;
  }
  return bytes.toString('latin1', start + 1, end - 1);
}

/**
 * The rated op at `start` (RATED_OP's bytes there) as its row; the row's bytes end where the op does. The op's
 * values are numbers, strings and nulls, none nested: one pass over its bytes, skipping strings, finds them.
 */
function ratedRowAt(payload: Buffer, start: number): RatedRow {
  const row: RatedRow = { op: 'ratedRow', id: 0, sipCallId: '', accountId: 0, chargeMicro: 0, createdAt: 0, bytes: payload };
  const length = payload.length;
  let index = 0;
  let valueStart = start + RATED_OP.length;
  for (let i = valueStart; i < length; i++) {
    const byte = payload[i];
    if (byte === QUOTE) {
      i = stringEnd(payload, i) - 1;
      continue;
    }
    if (byte !== COMMA && byte !== CLOSE_ARRAY) {
      if (byte === OPEN_ARRAY || byte === OPEN_OBJECT || byte === CLOSE_OBJECT) break;
      continue;
    }
    if (index === ID) row.id = numberAt(payload, valueStart, i);
    else if (index === SIP_CALL_ID) row.sipCallId = stringAt(payload, valueStart, i);
    else if (index === ACCOUNT_ID) row.accountId = numberAt(payload, valueStart, i);
    else if (index === CHARGE_MICRO) row.chargeMicro = numberAt(payload, valueStart, i);
    else if (index === CREATED_AT) row.createdAt = numberAt(payload, valueStart, i);
    if (byte === CLOSE_ARRAY) {
      if (index < CREATED_AT || payload[i + 1] !== CLOSE_OBJECT) break;
      row.bytes = payload.subarray(start, i + 2);
      return row;
    }
    index++;
    valueStart = i + 1;
  }
  throw new Error('money log record: a rated op is not as written');
}

/** A record's payload (writeOps's JSON array) as the ops to apply, its rated CDRs as rows (see above). */
export function decodeOpsToApply(payload: Buffer): AppliedOp[] {
  if (payload.indexOf(RATED_OP) === -1) return decodeOps(payload.toString('utf8'));
  const ops: AppliedOp[] = [];
  // The array's elements one by one: writeOps writes `[`, the ops separated by commas, `]`, nothing else. Ops
  // other than rated ones between two rated ones (a finish, a reservation) are parsed together.
  let runStart = -1;
  let runEnd = -1;
  const parseRun = (): void => {
    if (runStart === -1) return;
    for (const op of decodeOps(`[${payload.toString('utf8', runStart, runEnd)}]`)) ops.push(op);
    runStart = -1;
  };
  let at = 1;
  while (at < payload.length && payload[at] !== CLOSE_ARRAY) {
    if (payload.compare(RATED_OP, 0, RATED_OP.length, at, at + RATED_OP.length) === 0) {
      parseRun();
      const row = ratedRowAt(payload, at);
      ops.push(row);
      at += row.bytes.length;
    } else {
      if (runStart === -1) runStart = at;
      at = valueEnd(payload, at);
      runEnd = at;
    }
    if (payload[at] === COMMA) at++;
  }
  parseRun();
  return ops;
}
