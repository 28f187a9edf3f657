import { RequestError } from './errors.js';

/**
 * Validation at the boundary: parse the JSON body once, read each field with
 * its type and bounds, and refuse with a message that names the field.
 * Handlers get typed values and never see raw input.
 */

const MAX_STRING = 1024;
const MAX_ARRAY = 64;
const decoder = new TextDecoder('utf-8', { fatal: true });

export function parseJsonObject(body: Uint8Array, contentType: string): Record<string, unknown> {
  if (contentType !== '' && !contentType.toLowerCase().startsWith('application/json')) {
    throw new RequestError(415, `content-type must be application/json, got ${contentType.slice(0, 64)}`);
  }
  if (body.byteLength === 0) throw new RequestError(400, 'request body is empty; expected a JSON object');
  let value: unknown;
  try {
    value = JSON.parse(decoder.decode(body));
  } catch {
    throw new RequestError(400, 'request body is not valid JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new RequestError(400, 'request body must be a JSON object');
  }
  return value as Record<string, unknown>;
}

interface Presence {
  required?: boolean;
}

export class BodyReader {
  constructor(
    private readonly fields: Record<string, unknown>,
    /** 400 for most endpoints; 422 where the contract says validation failures are 422. */
    private readonly status = 400,
  ) {}

  private fail(message: string): never {
    throw new RequestError(this.status, message);
  }

  private present(name: string, options: Presence): unknown {
    const value = this.fields[name];
    if (value === undefined || value === null) {
      if (options.required === true) this.fail(`${name} is required`);
      return undefined;
    }
    return value;
  }

  integer(name: string, options: Presence & { min?: number; max?: number } = {}): number | undefined {
    const value = this.present(name, options);
    if (value === undefined) return undefined;
    if (typeof value !== 'number' || !Number.isSafeInteger(value)) this.fail(`${name} must be an integer`);
    const min = options.min ?? Number.MIN_SAFE_INTEGER;
    const max = options.max ?? Number.MAX_SAFE_INTEGER;
    if (value < min || value > max) this.fail(`${name} must be between ${min} and ${max}`);
    return value;
  }

  requiredInteger(name: string, options: { min?: number; max?: number } = {}): number {
    return this.integer(name, { ...options, required: true })!;
  }

  string(name: string, options: Presence & { maxLength?: number } = {}): string | undefined {
    const value = this.present(name, options);
    if (value === undefined) return undefined;
    if (typeof value !== 'string') this.fail(`${name} must be a string`);
    const maxLength = options.maxLength ?? MAX_STRING;
    if (value.length > maxLength) this.fail(`${name} is longer than ${maxLength} characters`);
    return value;
  }

  requiredString(name: string, options: { maxLength?: number } = {}): string {
    const value = this.string(name, { ...options, required: true })!;
    if (value.length === 0) this.fail(`${name} must not be empty`);
    return value;
  }

  integerArray(name: string, options: { maxItems?: number } = {}): number[] {
    const value = this.present(name, {});
    if (value === undefined) return [];
    const maxItems = options.maxItems ?? MAX_ARRAY;
    if (!Array.isArray(value)) this.fail(`${name} must be an array of integers`);
    if (value.length > maxItems) this.fail(`${name} has more than ${maxItems} items`);
    for (const item of value) {
      if (typeof item !== 'number' || !Number.isSafeInteger(item)) this.fail(`${name} must be an array of integers`);
    }
    return value as number[];
  }
}

/** Positive database id (int64 in the contract; ids beyond 2^31 do not exist in a snapshot). */
export const ID = { min: 1, max: Number.MAX_SAFE_INTEGER } as const;
