/**
 * Hostile HTTP requests for the fuzz suite (test/process/fuzz.test.ts), generated from a route table so that
 * a new endpoint is fuzzed without anyone listing it. Seeded: request i of seed s is the same on every run
 * and every machine, so a failure names (seed, index) and reproduces alone.
 *
 * A route that reads (GET) may get anything. A route that may write (any other method) only ever gets a
 * request carrying at least one defect the contract must refuse, so that a run of refused requests must
 * leave the state as it found it; odd-but-valid values still ride along with that defect, to exercise the
 * validation that runs before it.
 */
import type { Method } from '../../src/core/http/server.js';

/** What the generator needs of a route: the server's own Route without its handler. */
export interface FuzzRoute {
  method: Method;
  path: string;
  maxBodyBytes: number;
}

/** What a route's well-formed body looks like, so mutations reach past the JSON envelope. */
export interface RouteSample {
  /** A body that would be accepted; each of its fields is read by the handler whatever the others hold. */
  body?: Record<string, unknown>;
  /** A non-JSON body the route takes (a snapshot's msgpack), mutated byte-wise. */
  raw?: { bytes: Uint8Array; contentType: string };
  /**
   * Fields whose accepted values make the process act outside itself (a file to write, a host to call):
   * kept at their sample's value in odd-but-valid requests, so a fuzz run never writes anywhere else.
   */
  pinned?: readonly string[];
  /** The route reads no body at all: only its size limit (413) or a bad path can refuse it. */
  ignoresBody?: boolean;
}

export interface FuzzWorld {
  sample(route: FuzzRoute): RouteSample;
  /** Values of a path parameter that name something that exists (deeper code runs for them). */
  existing(param: string): readonly string[];
}

/** How the body is framed on the wire; the two `over` framings exceed the route's limit. */
export type Framing = 'length' | 'declared-over' | 'chunked-over';

export interface FuzzRequest {
  index: number;
  /** The route as registered, 'METHOD /path/{param}'. */
  route: string;
  method: string;
  /** The raw request-target: path with parameters filled in, and a query. */
  target: string;
  headers: Record<string, string>;
  body: Buffer;
  framing: Framing;
  /** The route's body limit (the `over` framings send just past it). */
  limit: number;
  /** Built with a defect the route must refuse (4xx); false for reads, which may answer anything but 5xx. */
  mustRefuse: boolean;
  /** A method token uWebSockets.js does not know: it drops the connection before any handler runs. */
  unknownMethod: boolean;
  mode: FuzzMode;
  /** The mutations applied, for the failure message. */
  kinds: string[];
}

/** mulberry32: small, fast, and the same sequence everywhere for a seed. */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class Dice {
  constructor(readonly next: () => number) {}
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
}

/** Values no field of either API accepts (every reader checks a scalar type; array readers check items). */
const STRUCTURED: readonly unknown[] = [{}, [{}], { $ne: null }, [[[]]], { __proto__: { admin: true } }, [null, {}]];

/** Valid JSON, odd values: some are accepted by some fields, which is the point. */
const ODD_VALUES: readonly unknown[] = [
  -1,
  0,
  -0,
  1.5,
  1e308,
  -1e308,
  Number.MAX_SAFE_INTEGER + 2,
  2 ** 53,
  'NaN',
  'Infinity',
  '-1',
  '1e400',
  '0x10',
  '',
  ' ',
  '\u0000',
  '\ud83d\ude00',
  'é'.normalize('NFD'),
  '\u202e\u0661\u0662',
  '%00',
  '../../etc/passwd',
  "' OR 1=1 --",
  '<script>',
  '9'.repeat(40),
  'x'.repeat(300),
  'é'.repeat(5000),
  true,
  false,
  null,
  [],
];

const PROTOTYPE_KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf'];

const HOSTILE_SEGMENTS = [
  '0',
  '-1',
  '1.0',
  '1e3',
  '0x1',
  '01',
  'abc',
  '..',
  '.',
  '%2e%2e',
  '%2F',
  '..%2F..%2Fetc%2Fpasswd',
  '%00',
  '%',
  '%zz',
  '%E2%98%83',
  '99999999999999999999',
  '9999999999999999',
  '9007199254740993',
  '999999937',
  '1%3BDROP%20TABLE',
  'x'.repeat(2000),
  '__proto__',
  'constructor',
];

const ODD_QUERY_VALUES = [
  '',
  '-1',
  '0',
  '1e309',
  'NaN',
  '%00',
  '%',
  '%zz',
  '%E2%98%83',
  'true',
  'null',
  '99999999999999999999',
  'x'.repeat(3000),
];

/** The methods uWebSockets.js parses; it closes the connection on any other token (lowercase too), answering nothing. */
const KNOWN_METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD', 'CONNECT', 'TRACE'];

/** Content types that are not JSON. */
const WRONG_TYPES = [
  'text/plain',
  'application/xml',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=fuzz',
  'application/msgpack',
];

function nested(depth: number): string {
  return '['.repeat(depth) + ']'.repeat(depth);
}

/** Bodies that are not a JSON object at all, or not valid JSON. */
function brokenEnvelope(dice: Dice, sample: Record<string, unknown>): { text: Buffer; kind: string } {
  const json = JSON.stringify(sample);
  const choices: (() => { text: Buffer; kind: string })[] = [
    () => ({ text: Buffer.from(json.slice(0, Math.max(1, dice.int(json.length)))), kind: 'truncated-json' }),
    () => ({ text: Buffer.from(`${json},`), kind: 'trailing-garbage' }),
    () => ({ text: Buffer.from('{"a": NaN}'), kind: 'nan-literal' }),
    () => ({ text: Buffer.from("{'single': 'quotes'}"), kind: 'single-quotes' }),
    () => ({ text: Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d]), kind: 'invalid-utf8' }),
    // One byte order mark may be ignored (RFC 8259 section 8.1); a second is a character outside any value.
    () => ({ text: Buffer.from(`\ufeff\ufeff${json}`), kind: 'two-byte-order-marks' }),
    () => ({ text: Buffer.from(dice.pick(['[]', '"x"', '1', 'null', 'true', `[${json}]`])), kind: 'not-an-object' }),
    () => ({ text: Buffer.from(nested(20_000)), kind: 'deep-array' }),
    () => ({ text: Buffer.from('{"a":'.repeat(5000)), kind: 'deep-unclosed' }),
    () => ({ text: Buffer.from([0, 1, 2, 3, 0xc0, 0x80]), kind: 'binary' }),
  ];
  return dice.pick(choices)();
}

/** A copy of `sample` with odd values and keys; may be accepted. */
function oddFields(dice: Dice, sample: Record<string, unknown>, pinned: readonly string[], kinds: string[]): Record<string, unknown> {
  const body: Record<string, unknown> = { ...sample };
  const names = Object.keys(body).filter((name) => !pinned.includes(name));
  const rounds = 1 + dice.int(3);
  for (let i = 0; i < rounds; i++) {
    const roll = dice.int(4);
    if (roll === 0 && names.length > 0) {
      const name = dice.pick(names);
      body[name] = dice.pick(ODD_VALUES);
      kinds.push(`odd:${name}`);
    } else if (roll === 1) {
      const key = dice.pick(PROTOTYPE_KEYS);
      // Defined as own properties: `body[key] = ...` would set the prototype, not a key.
      Object.defineProperty(body, key, { value: { polluted: true }, enumerable: true, configurable: true, writable: true });
      kinds.push(`key:${key}`);
    } else if (roll === 2) {
      body[`extra_${dice.int(1000)}`] = dice.pick(ODD_VALUES);
      kinds.push('unknown-key');
    } else if (names.length > 0) {
      delete body[dice.pick(names)];
      kinds.push('missing-field');
    }
  }
  return body;
}

/** Serialises with one key given twice (JSON.parse keeps the last): the first valid, the last `last`. */
function withDuplicate(body: Record<string, unknown>, name: string, last: unknown): string {
  const json = JSON.stringify(body);
  const tail = `${JSON.stringify(name)}:${JSON.stringify(last)}`;
  return json === '{}' ? `{${tail}}` : `${json.slice(0, -1)},${tail}}`;
}

function fillPath(dice: Dice, world: FuzzWorld, path: string, hostile: boolean, kinds: string[]): string {
  const params = [...path.matchAll(/\{([^}]+)\}/g)].map((match) => match[1]);
  const spoiled = hostile ? dice.pick(params) : null;
  return path.replace(/\{([^}]+)\}/g, (_, name: string) => {
    if (name === spoiled) {
      kinds.push(`path:${name}`);
      return dice.pick(HOSTILE_SEGMENTS);
    }
    const existing = world.existing(name);
    if (existing.length === 0 || dice.chance(0.1)) {
      kinds.push(`path:${name}`);
      return dice.pick(HOSTILE_SEGMENTS);
    }
    return dice.pick(existing);
  });
}

function oddQuery(dice: Dice, sample: Record<string, unknown>, kinds: string[]): string {
  const keys = [...Object.keys(sample), 'page', 'page_size', 'limit', 'offset', 'active_only', 'trunk_id', 'trunk_type', 'from_currency'];
  const parts: string[] = [];
  const count = 1 + dice.int(4);
  for (let i = 0; i < count; i++) {
    const roll = dice.int(5);
    if (roll === 0) parts.push(`${dice.pick(['__proto__', 'constructor', '%00', '', 'x'.repeat(500)])}=${dice.pick(ODD_QUERY_VALUES)}`);
    else if (roll === 1) parts.push(dice.pick(['&&&', '=', '==', '&=&', '%', 'a=1&a=2', '?']));
    else parts.push(`${dice.pick(keys)}=${dice.pick(ODD_QUERY_VALUES)}`);
  }
  kinds.push('odd-query');
  return `?${parts.join('&')}`;
}

/** Body size that is just past the limit, with framing the sender understands. */
function oversized(route: FuzzRoute, dice: Dice, kinds: string[]): { framing: Framing; body: Buffer } {
  // Streaming past a limit of hundreds of MB costs seconds per request; announcing it is enough there.
  const chunked = route.maxBodyBytes <= 4 * 1024 * 1024 && dice.chance(0.5);
  kinds.push(chunked ? 'oversized-chunked' : 'oversized-declared');
  return chunked
    ? { framing: 'chunked-over', body: Buffer.alloc(route.maxBodyBytes + 1, 0x20) }
    : { framing: 'declared-over', body: Buffer.from('{"padding":"') };
}

/**
 * 'refused': a route that may write gets only requests it must refuse (the state must not move).
 * 'open': every route is fuzzed as a read is, odd-but-valid requests included, so they reach the decisions
 * behind the validation; some are accepted and write.
 */
export type FuzzMode = 'refused' | 'open';

/** Request `index` for `route`: always the same for the same seed and mode. */
export function fuzzRequest(seed: number, index: number, route: FuzzRoute, world: FuzzWorld, mode: FuzzMode = 'refused'): FuzzRequest {
  const dice = new Dice(mulberry32((seed ^ Math.imul(index + 1, 0x9e3779b9) ^ (mode === 'open' ? 0x5bd1e995 : 0)) >>> 0));
  const writes = mode === 'refused' && route.method !== 'GET';
  const sample = world.sample(route);
  const fields = sample.body ?? {};
  const hasParams = route.path.includes('{');
  const kinds: string[] = [];
  let method: string = route.method;
  let contentType = sample.raw?.contentType ?? 'application/json';
  let body: Buffer = Buffer.alloc(0);
  let framing: Framing = 'length';
  let hostilePath = false;
  let query = '';

  // What this request's defect is; a read may also get none (odd but valid values only).
  const defects = [
    'envelope',
    'content-type',
    'structured-field',
    'duplicate-key',
    'oversized',
    ...(hasParams ? ['path'] : []),
    ...(sample.raw !== undefined ? ['raw-bytes'] : []),
    // An update names what it changes: a PUT naming none of its record's fields is refused, not an empty write.
    ...(route.method === 'PUT' && sample.body !== undefined ? ['no-known-field'] : []),
    ...(writes ? [] : ['none', 'none', 'query', 'odd-method']),
  ];
  let defect = dice.pick(defects);
  // A route that reads no body (DELETE never has one) refuses nothing in it: only its size or a bad path are defects there.
  const ignoresBody = sample.ignoresBody === true || route.method === 'DELETE';
  if (writes && ignoresBody && !['oversized', 'path'].includes(defect)) defect = hasParams && dice.chance(0.5) ? 'path' : 'oversized';
  // Field-level defects need fields; without a sample, break the envelope instead.
  if (Object.keys(fields).length === 0 && (defect === 'structured-field' || defect === 'duplicate-key')) defect = 'envelope';

  const odd = dice.chance(0.7) ? oddFields(dice, fields, sample.pinned ?? [], kinds) : { ...fields };
  switch (defect) {
    case 'envelope': {
      const broken = brokenEnvelope(dice, odd);
      body = broken.text;
      kinds.push(broken.kind);
      break;
    }
    case 'content-type':
      contentType = dice.pick(WRONG_TYPES.filter((type) => type !== sample.raw?.contentType));
      body = Buffer.from(JSON.stringify(odd));
      kinds.push(`content-type:${contentType}`);
      break;
    case 'structured-field': {
      const name = dice.pick(Object.keys(fields));
      odd[name] = dice.pick(STRUCTURED);
      body = Buffer.from(JSON.stringify(odd));
      kinds.push(`structured:${name}`);
      break;
    }
    case 'duplicate-key': {
      const name = dice.pick(Object.keys(fields));
      body = Buffer.from(withDuplicate(odd, name, dice.pick(STRUCTURED)));
      kinds.push(`duplicate:${name}`);
      break;
    }
    case 'oversized': {
      const over = oversized(route, dice, kinds);
      framing = over.framing;
      body = over.body;
      break;
    }
    case 'no-known-field': {
      const unknown: Record<string, unknown> = {};
      for (const [key, value] of Object.entries(odd))
        if (!Object.hasOwn(fields, key)) Object.defineProperty(unknown, key, { value, enumerable: true });
      body = Buffer.from(JSON.stringify(unknown));
      kinds.push(`no-known-field:${Object.keys(unknown).join('|')}`);
      break;
    }
    case 'path':
      hostilePath = true;
      body = Buffer.from(JSON.stringify(odd));
      break;
    case 'raw-bytes': {
      const bytes = Buffer.from(sample.raw!.bytes);
      if (dice.chance(0.5)) {
        for (let i = 0; i < 1 + dice.int(8); i++) bytes[dice.int(bytes.length)] ^= 1 + dice.int(255);
        kinds.push('flipped-bytes');
        body = bytes;
      } else {
        body = bytes.subarray(0, dice.int(bytes.length));
        kinds.push('truncated-bytes');
      }
      break;
    }
    case 'query':
      query = oddQuery(dice, fields, kinds);
      break;
    case 'odd-method':
      // Not DELETE: on a path that also reads, it would delete an existing record. POST and PUT go without a body.
      method = dice.pick(['PATCH', 'OPTIONS', 'get', 'HEAD', 'PUT', 'POST', 'X-FUZZ']);
      kinds.push(`method:${method}`);
      break;
    default:
      if (route.method === 'GET') body = Buffer.alloc(0);
      else if (sample.raw !== undefined) body = Buffer.from(sample.raw.bytes);
      else body = Buffer.from(JSON.stringify(odd));
      kinds.push('odd-values-only');
  }
  if (route.method === 'GET' && query === '' && dice.chance(0.3)) query = oddQuery(dice, fields, kinds);
  const target = fillPath(dice, world, route.path, hostilePath, kinds) + query;
  const headers: Record<string, string> = body.byteLength > 0 || framing !== 'length' ? { 'Content-Type': contentType } : {};
  return {
    index,
    mode,
    route: `${route.method} ${route.path}`,
    method,
    target,
    headers,
    body,
    framing,
    limit: route.maxBodyBytes,
    mustRefuse: writes && route.method !== 'GET' && method === route.method,
    unknownMethod: !KNOWN_METHODS.includes(method),
    kinds: [defect, ...kinds],
  };
}

/** `count` requests spread evenly over `routes` (each route gets its turn in order), for one seed. */
export function fuzzRequests(
  seed: number,
  count: number,
  routes: readonly FuzzRoute[],
  world: FuzzWorld,
  mode: FuzzMode = 'refused',
): FuzzRequest[] {
  return Array.from({ length: count }, (_, index) => fuzzRequest(seed, index, routes[index % routes.length], world, mode));
}

/** How to run the same requests again: the seed and index of one, and what it was. */
export function describe(seed: number, request: FuzzRequest): string {
  const preview = request.body.subarray(0, 200).toString('latin1');
  return (
    `FUZZ_SEED=${seed} ${request.mode} index ${request.index}: ${request.method} ${request.target.slice(0, 200)} (route ${request.route}; ` +
    `${request.kinds.join(', ')}; ${request.framing}, ${request.body.byteLength} bytes: ${JSON.stringify(preview)})`
  );
}
