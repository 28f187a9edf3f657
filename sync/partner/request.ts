import { randomUUID } from 'node:crypto';
import { RequestError } from '../../src/core/http/errors.js';
import { ExactJsonError, JsonNumber, parseExactJson, type ExactJson } from './exact-json.js';

/**
 * What every partner request carries besides its token: a JSON object body whose fields are exactly the
 * contract's (additionalProperties: false), no `tenant_id` (the token says whose it is), an
 * `Idempotency-Key` on writes, and an `X-Correlation-Id` (ours when the caller gives none).
 */
export type Body = Partial<Record<string, ExactJson>>;

const decoder = new TextDecoder('utf-8', { fatal: true });

export function partnerBody(bytes: Uint8Array, allowed: readonly string[]): Body {
  let value: ExactJson;
  try {
    value = parseExactJson(decoder.decode(bytes));
  } catch (error) {
    if (error instanceof ExactJsonError || error instanceof TypeError)
      throw new RequestError('invalid_json', `the body is not JSON: ${error.message}`);
    throw error;
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value) || value instanceof JsonNumber)
    throw new RequestError('invalid_json', 'the body must be a JSON object');
  // The contract: tenant scope comes from the credential; a body naming a tenant is refused, not ignored.
  if ('tenant_id' in value) throw new RequestError('tenant_id_in_body', 'tenant_id is not accepted in a body: the token names the tenant');
  const unknown = Object.keys(value).filter((key) => !allowed.includes(key));
  if (unknown.length > 0)
    throw new RequestError('unknown_field', `unknown field${unknown.length > 1 ? 's' : ''}: ${unknown.slice(0, 5).join(', ')}`);
  return value;
}

/** A 12-digit account code: 1 to 12 digits, left-padded with zeros; anything else is refused. */
export function accountCode(name: string, value: ExactJson | undefined): string {
  const text = typeof value === 'string' ? value : null;
  if (text === null || !/^[0-9]{1,12}$/.test(text))
    throw new RequestError('invalid_account_code', `${name} must be a string of 1 to 12 digits`);
  return text.padStart(12, '0');
}

export function optionalString(body: Body, name: string, maxLength: number, nullable = false): string | null {
  const value = body[name];
  if (value === undefined || (nullable && value === null)) return null;
  if (typeof value !== 'string' || value.length > maxLength)
    throw new RequestError('invalid_field', `${name} must be a string of at most ${maxLength} characters`);
  return value;
}

export function optionalBoolean(body: Body, name: string): boolean | null {
  const value = body[name];
  if (value === undefined) return null;
  if (typeof value !== 'boolean') throw new RequestError('invalid_field', `${name} must be true or false`);
  return value;
}

export function optionalCurrency(body: Body): string | null {
  const value = optionalString(body, 'currency', 3);
  if (value !== null && !/^[A-Z]{3}$/.test(value)) throw new RequestError('invalid_field', 'currency must be three capital letters');
  return value;
}

/** The contract's IdempotencyKey: 1 to 128 printable ASCII characters. */
export function idempotencyKey(header: string | undefined): string {
  const key = header ?? '';
  if (!/^[\x20-\x7E]{1,128}$/.test(key))
    throw new RequestError('idempotency_key_invalid', 'Idempotency-Key is required on writes: 1 to 128 printable ASCII characters');
  return key;
}

/** The caller's correlation id when it is one we can echo (at most 128 printable characters), else a new one. */
export function correlationId(header: string | undefined): string {
  return header !== undefined && /^[\x21-\x7E][\x20-\x7E]{0,127}$/.test(header) ? header : randomUUID();
}
