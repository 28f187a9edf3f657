import type { ErrorCode } from '../errors/catalogue.js';
import { RequestError } from './errors.js';

/**
 * Validation at the boundary: parse the JSON body once, read each field with
 * its type and bounds, and refuse with a message that names the field.
 * Handlers get typed values and never see raw input.
 */

const MAX_STRING = 1024;
const MAX_ARRAY = 64;
const decoder = new TextDecoder('utf-8', { fatal: true });

/** The media type of a Content-Type, without its parameters (`; charset=utf-8`), lower-cased. */
export function mediaType(contentType: string): string {
  const semicolon = contentType.indexOf(';');
  return (semicolon < 0 ? contentType : contentType.slice(0, semicolon)).trim().toLowerCase();
}

export function parseJsonObject(body: Uint8Array, contentType: string): Record<string, unknown> {
  // The exact type: a prefix test let application/jsonx (or application/json-seq) through as JSON.
  if (contentType !== '' && contentType !== 'application/json' && mediaType(contentType) !== 'application/json') {
    throw new RequestError('unsupported_media_type', `content-type must be application/json, got ${contentType.slice(0, 64)}`);
  }
  if (body.byteLength === 0) throw new RequestError('invalid_json', 'request body is empty; expected a JSON object');
  let value: unknown;
  try {
    value = JSON.parse(decoder.decode(body));
  } catch {
    throw new RequestError('invalid_json', 'request body is not valid JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new RequestError('invalid_json', 'request body must be a JSON object');
  }
  return value as Record<string, unknown>;
}

export interface IntegerBounds {
  min: number;
  max: number;
}

export interface StringLimit {
  maxLength: number;
}

const ANY_INTEGER: IntegerBounds = { min: Number.MIN_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER };
const ANY_STRING: StringLimit = { maxLength: MAX_STRING };

export class BodyReader {
  constructor(
    private readonly fields: Record<string, unknown>,
    /** invalid_field (400) for most endpoints; validation_failed (422) where the contract says validation failures are 422. */
    private readonly code: ErrorCode = 'invalid_field',
  ) {}

  private fail(message: string): never {
    throw new RequestError(this.code, message);
  }

  /** An optional integer: undefined when absent or null. */
  integer(name: string, bounds: IntegerBounds = ANY_INTEGER): number | undefined {
    const value = this.fields[name];
    if (value === undefined || value === null) return undefined;
    if (typeof value !== 'number' || !Number.isSafeInteger(value)) this.fail(`${name} must be an integer`);
    if (value < bounds.min || value > bounds.max) this.fail(`${name} must be between ${bounds.min} and ${bounds.max}`);
    return value;
  }

  requiredInteger(name: string, bounds: IntegerBounds = ANY_INTEGER): number {
    const value = this.integer(name, bounds);
    if (value === undefined) this.fail(`${name} is required`);
    return value;
  }

  /** An optional string: undefined when absent or null. */
  string(name: string, limit: StringLimit = ANY_STRING): string | undefined {
    const value = this.fields[name];
    if (value === undefined || value === null) return undefined;
    if (typeof value !== 'string') this.fail(`${name} must be a string`);
    if (value.length > limit.maxLength) this.fail(`${name} is longer than ${limit.maxLength} characters`);
    return value;
  }

  requiredString(name: string, limit: StringLimit = ANY_STRING): string {
    const value = this.string(name, limit);
    if (value === undefined) this.fail(`${name} is required`);
    if (value.length === 0) this.fail(`${name} must not be empty`);
    return value;
  }

  integerArray(name: string, maxItems = MAX_ARRAY): readonly number[] {
    const value = this.fields[name];
    if (value === undefined || value === null) return EMPTY;
    if (!Array.isArray(value)) this.fail(`${name} must be an array of integers`);
    if (value.length > maxItems) this.fail(`${name} has more than ${maxItems} items`);
    for (const item of value) {
      if (typeof item !== 'number' || !Number.isSafeInteger(item)) this.fail(`${name} must be an array of integers`);
    }
    return value as number[];
  }
}

const EMPTY: readonly number[] = Object.freeze([]);

/** Bounds and limits the handlers use, allocated once. */
export const ID: IntegerBounds = { min: 1, max: Number.MAX_SAFE_INTEGER };
export const SIP_CODE: IntegerBounds = { min: 100, max: 699 };
export const ATTEMPT: IntegerBounds = { min: 1, max: 100 };
export const NUMBER_TEXT: StringLimit = { maxLength: 256 };
export const ADDRESS_TEXT: StringLimit = { maxLength: 64 };
export const URI_TEXT: StringLimit = { maxLength: 1024 };
