import { BodyReader, NUMBER_TEXT, type IntegerBounds, type StringLimit } from '../../core/http/body.js';
import { RequestError } from '../../core/http/errors.js';
import { parseMicro } from '../../core/money/micro.js';
import { parseIPv4, parseIPv6 } from '../../core/net/ip.js';
import { parseInstant } from '../../core/time/parse-instant.js';
import { MAX_NUMBER_DIGITS, normalizeNumber } from '../../core/numbers/normalize.js';
import type { DecisionEngine } from '../engine/engine.js';
import type { SnapshotService } from '../snapshot/service.js';

/**
 * Fields the sidecar's endpoints read beyond the plain types of BodyReader: addresses, telephone
 * numbers, Call-IDs, money and times, each refused with a message naming the field.
 */
const ipScratch = new Uint16Array(8);

export function isIpAddress(text: string): boolean {
  return parseIPv4(text) >= 0 || parseIPv6(text, ipScratch);
}

/** The engine serving now; 503 until the first snapshot is in service (OpenSIPS then falls back to drouting). */
export function servingEngine(snapshots: SnapshotService): DecisionEngine {
  const engine = snapshots.engine;
  if (engine === null) throw new RequestError('no_snapshot');
  return engine;
}

/** A telephone number, normalised as call/auth does; `maxDigits` refuses longer ones. */
export function numberField(reader: BodyReader, name: string, maxDigits = Number.POSITIVE_INFINITY): string {
  const digits = normalizeNumber(reader.requiredString(name, NUMBER_TEXT));
  if (digits === null || digits.length > maxDigits) {
    const bound = Number.isFinite(maxDigits) ? ` of at most ${MAX_NUMBER_DIGITS} digits` : '';
    throw new RequestError('invalid_field', `${name} must be a telephone number${bound} (digits, optional leading +, visual separators)`);
  }
  return digits;
}

const CALL_ID_TEXT: StringLimit = { maxLength: 255 };
/** RFC 3261 Call-IDs are visible ASCII (word ["@" word]); anything else is not one. */
const CALL_ID = /^[\x21-\x7e]+$/;

export function callIdField(reader: BodyReader, name: string, required: boolean): string | null {
  const text = required ? reader.requiredString(name, CALL_ID_TEXT) : reader.string(name, CALL_ID_TEXT);
  if (text === undefined) return null;
  if (!CALL_ID.test(text)) throw new RequestError('invalid_field', `${name} must be a SIP Call-ID (visible ASCII, no spaces)`);
  return text;
}

/** A money amount: a decimal string (never a JSON number), >= 0, at most 6 decimals; micro-units. */
export function moneyField(reader: BodyReader, name: string, required: boolean): number | null {
  const text = required ? reader.requiredString(name, { maxLength: 32 }) : reader.string(name, { maxLength: 32 });
  if (text === undefined) return null;
  const micro = parseMicro(text);
  if (Number.isNaN(micro))
    throw new RequestError('invalid_field', `${name} must be a decimal string such as "0.25", with at most 6 decimals`);
  if (micro < 0) throw new RequestError('invalid_field', `${name} must not be negative`);
  return micro;
}

/** An RFC 3339 timestamp, epoch ms; an optional one may be '' (not given). */
export function timeField(reader: BodyReader, name: string, required: boolean): number | null {
  const text = required ? reader.requiredString(name, { maxLength: 40 }) : reader.string(name, { maxLength: 40 });
  if (text === undefined || (!required && text === '')) return null;
  const ms = parseInstant(text);
  if (Number.isNaN(ms)) throw new RequestError('invalid_field', `${name} must be an RFC 3339 timestamp such as 2026-01-15T08:30:00Z`);
  return ms;
}

export const DURATION: IntegerBounds = { min: 0, max: 7 * 86_400 };
