import { parseCidr, parseIPv4, parseIPv6 } from '../../src/core/net/ip.js';
import { contractAlgorithmName, parseDigestAlgorithm } from '../../src/core/digest/digest.js';
import { RequestError } from '../../src/core/http/errors.js';
import { moneyProblem, nanoProblem } from '../../src/core/snapshot/field-rules.js';
import { CURRENCIES } from '../../src/core/snapshot/schema.js';

/**
 * Field definitions for the admin API's records: each field's kind, bounds,
 * default and reference, from which one function validates a request body and
 * turns it into store values, and another turns a store row into the API's
 * JSON. The messages name the field.
 */
export type FieldKind =
  | 'integer'
  | 'string'
  | 'boolean'
  | 'decimal'
  | 'money'
  | 'currency'
  | 'cidr'
  | 'ip'
  | 'digits'
  | 'datetime'
  | 'hex'
  | 'hash_algorithm'
  | { enum: readonly (string | number)[] };

export interface Field {
  kind: FieldKind;
  /** Must be present when creating. */
  required?: boolean;
  /** May be null. */
  nullable?: boolean;
  /** Used when creating without the field. A function is called per record (timestamps). */
  default?: unknown;
  min?: number;
  max?: number;
  /** A decimal that must be above zero (an exchange rate); decimals are otherwise only refused below zero. */
  positive?: boolean;
  maxLength?: number;
  /** Table whose id this field must name (checked by the CRUD layer). */
  references?: string;
  /** A string with rules of its own (a portal username): why it is refused, else the form it is stored in. */
  text?: { problem: (value: string) => string | null; normalise: (value: string) => string };
}

export type Fields = Record<string, Field>;

/** The longest text a field takes: its own limit, else 255 (the admin API's and the CSV upload's rule alike). */
export function maxLengthOf(field: Field): number {
  return field.maxLength ?? 255;
}

function fail(message: string): never {
  throw new RequestError('invalid_field', message);
}

/** One value, validated and normalised for the store; throws a 400 naming the field. */
export function storeValue(name: string, field: Field, value: unknown): unknown {
  if (value === null) {
    if (field.nullable === true) return null;
    fail(`${name} must not be null`);
  }
  const kind = field.kind;
  if (typeof kind === 'object') {
    if (!kind.enum.includes(value as string | number)) fail(`${name} must be one of ${kind.enum.join(', ')}`);
    return value;
  }
  switch (kind) {
    case 'integer': {
      if (typeof value !== 'number' || !Number.isSafeInteger(value)) fail(`${name} must be an integer`);
      if ((field.min !== undefined && value < field.min) || (field.max !== undefined && value > field.max)) {
        fail(`${name} must be between ${field.min ?? '-∞'} and ${field.max ?? '∞'}`);
      }
      return value;
    }
    case 'boolean':
      if (typeof value !== 'boolean') fail(`${name} must be true or false`);
      return value ? 1 : 0;
    case 'string':
    case 'hex':
    case 'digits':
    case 'datetime':
    case 'decimal':
    case 'money':
    case 'currency':
    case 'cidr':
    case 'ip':
    case 'hash_algorithm':
      break;
  }
  if (typeof value !== 'string') fail(`${name} must be a string`);
  // PostgreSQL's text cannot hold U+0000: refused here on either engine, not a 500 from one of them.
  if (value.includes('\u0000')) fail(`${name} must not contain the NUL character`);
  const maxLength = maxLengthOf(field);
  if (value.length > maxLength) fail(`${name} is longer than ${maxLength} characters`);
  switch (kind) {
    case 'string': {
      if (field.required === true && value.trim() === '') fail(`${name} must not be empty`);
      if (field.text === undefined) return value;
      const problem = field.text.problem(value);
      if (problem !== null) fail(`${name} ${problem}`);
      return field.text.normalise(value);
    }
    case 'hex':
      // The length depends on the algorithm, a second field: checked on the whole record (crud.ts).
      if (!/^[0-9a-fA-F]{1,128}$/.test(value)) fail(`${name} must be a hex digest`);
      return value.toLowerCase();
    case 'digits':
      if (value === '' && field.nullable === true) return null;
      if (!/^[0-9]{1,32}$/.test(value)) fail(`${name} must be digits only`);
      return value;
    case 'datetime': {
      const time = Date.parse(value);
      if (Number.isNaN(time) || !/^\d{4}-\d{2}-\d{2}/.test(value)) fail(`${name} must be an RFC 3339 timestamp`);
      return new Date(time).toISOString();
    }
    // The rules the snapshot validation applies too (src/core/snapshot/field-rules.ts): what is accepted here syncs.
    case 'decimal': {
      const problem = nanoProblem(value, field.positive === true ? 'positive' : 'non_negative');
      if (problem !== null) fail(`${name} ${problem}`);
      return value;
    }
    case 'money': {
      const problem = moneyProblem(value);
      if (problem !== null) fail(`${name} ${problem}`);
      return value;
    }
    case 'currency':
      if (!(CURRENCIES as readonly string[]).includes(value)) fail(`${name} must be one of ${CURRENCIES.join(', ')}`);
      return value;
    case 'cidr': {
      const cidr = parseCidr(value);
      if (cidr === null) fail(`${name} must be an IPv4 or IPv6 CIDR (e.g. 203.0.113.0/24)`);
      return cidr.canonical;
    }
    case 'ip': {
      const groups = new Uint16Array(8);
      if (parseIPv4(value) < 0 && (value.startsWith('[') || !parseIPv6(value, groups))) fail(`${name} must be an IPv4 or IPv6 address`);
      return value.toLowerCase();
    }
    case 'hash_algorithm': {
      const algorithm = parseDigestAlgorithm(value);
      if (algorithm === null) fail(`${name} must be md5, sha256 or sha512-256`);
      // Stored (and so answered) as the schema spells it; any spelling is accepted (contract notes 3, 45).
      return contractAlgorithmName(algorithm);
    }
  }
}

/** Validates a create (defaults applied, required enforced) or an update (only the fields given). */
/**
 * `keptElsewhere`: body fields the caller stores apart from the record (an account's portal password): an update
 * naming only those is an update.
 */
export function storeValues(
  fields: Fields,
  body: Record<string, unknown>,
  mode: 'create' | 'update',
  keptElsewhere: readonly string[] = [],
): Record<string, unknown> {
  const values: Record<string, unknown> = {};
  for (const [name, field] of Object.entries(fields)) {
    const given = Object.hasOwn(body, name) ? body[name] : undefined;
    if (given === undefined) {
      if (mode === 'update') continue;
      if (field.required === true) fail(`${name} is required`);
      const fallback = typeof field.default === 'function' ? (field.default as () => unknown)() : field.default;
      values[name] = fallback === undefined ? null : storeValue(name, { ...field, nullable: true }, fallback);
      continue;
    }
    values[name] = storeValue(name, field, given);
  }
  // An update naming none of the fields is a mistake (a misspelt field, the wrong resource), not an update of
  // nothing: writing it would bump updated_at and mark the snapshot stale for no change.
  if (mode === 'update' && Object.keys(values).length === 0 && !keptElsewhere.some((name) => Object.hasOwn(body, name)))
    fail(`the body names none of the fields: ${Object.keys(fields).join(', ')}`);
  return values;
}

/** A store row as the API shows it: booleans as booleans. */
export function apiRecord(fields: Fields, row: Record<string, unknown>): Record<string, unknown> {
  const record: Record<string, unknown> = { ...row };
  for (const [name, field] of Object.entries(fields)) {
    if (field.kind === 'boolean' && name in record && record[name] !== null) record[name] = record[name] === 1 || record[name] === true;
  }
  return record;
}
