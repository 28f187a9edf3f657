/**
 * JSON with its numbers kept as the text the client sent. The partner contract types amounts as JSON
 * numbers; JSON.parse would turn `0.1` or `12345678901234567.01` into the nearest double and lose the
 * exact amount before we could look at it. This parser keeps every number as its literal (validated
 * against the JSON grammar) so that money is converted from the text, never through a float.
 */
export class JsonNumber {
  constructor(readonly text: string) {}
}

export type ExactJson = null | boolean | string | JsonNumber | ExactJson[] | { [key: string]: ExactJson };

export class ExactJsonError extends Error {}

const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
/** How deep objects and arrays may nest: a partner body is flat, and deep input must not exhaust the stack. */
const MAX_DEPTH = 32;

export function parseExactJson(text: string): ExactJson {
  let at = 0;
  const space = (): void => {
    while (at < text.length && ' \t\n\r'.includes(text[at])) at++;
  };
  const fail = (what: string): never => {
    throw new ExactJsonError(`${what} at character ${at}`);
  };
  const value = (depth: number): ExactJson => {
    space();
    const c = text[at];
    if (c === '{') {
      if (depth >= MAX_DEPTH) fail('nested too deep');
      at++;
      const object: Record<string, ExactJson> = {};
      space();
      if (text[at] === '}') {
        at++;
        return object;
      }
      for (;;) {
        space();
        if (text[at] !== '"') fail('expected a key');
        const key = string();
        // A key twice is ambiguous (which one counts?): refused rather than read one way.
        if (Object.prototype.hasOwnProperty.call(object, key)) fail(`duplicate key ${JSON.stringify(key)}`);
        space();
        if (text[at] !== ':') fail('expected ":"');
        at++;
        Object.defineProperty(object, key, { value: value(depth + 1), enumerable: true, writable: true, configurable: true });
        space();
        if (text[at] === ',') {
          at++;
          continue;
        }
        if (text[at] === '}') {
          at++;
          return object;
        }
        fail('expected "," or "}"');
      }
    }
    if (c === '[') {
      if (depth >= MAX_DEPTH) fail('nested too deep');
      at++;
      const array: ExactJson[] = [];
      space();
      if (text[at] === ']') {
        at++;
        return array;
      }
      for (;;) {
        array.push(value(depth + 1));
        space();
        if (text[at] === ',') {
          at++;
          continue;
        }
        if (text[at] === ']') {
          at++;
          return array;
        }
        fail('expected "," or "]"');
      }
    }
    if (c === '"') return string();
    if (text.startsWith('true', at)) {
      at += 4;
      return true;
    }
    if (text.startsWith('false', at)) {
      at += 5;
      return false;
    }
    if (text.startsWith('null', at)) {
      at += 4;
      return null;
    }
    NUMBER.lastIndex = at;
    const match = NUMBER.exec(text);
    if (match === null) return fail('unexpected character');
    at += match[0].length;
    return new JsonNumber(match[0]);
  };
  const string = (): string => {
    // From the opening quote to the closing one, escapes included; JSON.parse decodes it by the grammar.
    const start = at;
    at++;
    while (at < text.length && text[at] !== '"') at += text[at] === '\\' ? 2 : 1;
    if (at >= text.length) fail('unterminated string');
    at++;
    try {
      return JSON.parse(text.slice(start, at)) as string;
    } catch {
      return fail('malformed string');
    }
  };
  const result = value(0);
  space();
  if (at !== text.length) fail('text after the JSON value');
  return result;
}

/**
 * The canonical text of a body: keys sorted, each number by its exact value (canonicalNumber). Two bodies are
 * "the same request" when theirs are equal: a retry whose client wrote `10.0` where it first wrote `10` is the
 * same top-up, and answered with the first one's answer, not a 409 that the client may take for "not done" and
 * send again under a new key.
 */
export function canonicalJson(value: ExactJson): string {
  if (value instanceof JsonNumber) return canonicalNumber(value.text);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object')
    return `{${Object.keys(value)
      .sort()
      .map((key) => `${JSON.stringify(key)}:${canonicalJson(value[key])}`)
      .join(',')}}`;
  return JSON.stringify(value);
}

/** Beyond this many zeros a canonical number is written with an exponent: a hostile `1e999999` stays short. */
const PLAIN_ZEROS = 40;

/**
 * A JSON number's exact value written one way (no double in between): `1`, `1.0`, `10e-1` and `0.1e1` are all
 * `1`, `-0` is `0`, `2.250` is `2.25`. Its significant digits and power of ten decide the text, so equal values
 * give equal texts and different values different ones.
 */
function canonicalNumber(text: string): string {
  const [, sign, whole, fraction = '', exponent = '0'] = /^(-?)([0-9]+)(?:\.([0-9]+))?(?:[eE]([+-]?[0-9]+))?$/.exec(text)!;
  const significant = (whole + fraction).replace(/^0+/, '');
  if (significant === '') return '0';
  const digits = significant.replace(/0+$/, '');
  const power = BigInt(exponent) - BigInt(fraction.length) + BigInt(significant.length - digits.length);
  if (power >= 0n && power <= PLAIN_ZEROS) return sign + digits + '0'.repeat(Number(power));
  if (power < 0n && -power <= PLAIN_ZEROS) {
    const point = digits.length + Number(power);
    return sign + (point > 0 ? `${digits.slice(0, point)}.${digits.slice(point)}` : `0.${'0'.repeat(-point)}${digits}`);
  }
  return `${sign}${digits}e${power}`;
}

/** An exact decimal string as a JSON number in an answer (the contract's balances are numbers). */
export class RawNumber {
  constructor(readonly text: string) {
    // Written into the answer as it is: it must be a JSON number, or the answer would not be JSON.
    if (!/^-?[0-9]+(?:\.[0-9]+)?$/.test(text)) throw new Error(`not a decimal: ${JSON.stringify(text)}`);
  }
}

/**
 * JSON.stringify, with each RawNumber written as its digits (never through a double). Written here rather than
 * through a JSON.stringify replacer that marks each RawNumber with a string and then rewrites the marks: a
 * caller's own string (external_user_id, reason, echoed back) can hold any mark, and came back a number.
 */
export function stringifyWithRawNumbers(value: unknown): string {
  if (value instanceof RawNumber) return value.text;
  if (Array.isArray(value)) return `[${value.map((item) => (item === undefined ? 'null' : stringifyWithRawNumbers(item))).join(',')}]`;
  if (value === null || typeof value !== 'object' || typeof (value as { toJSON?: unknown }).toJSON === 'function')
    return JSON.stringify(value);
  let fields = '';
  for (const key of Object.keys(value)) {
    const item = (value as Record<string, unknown>)[key];
    if (item === undefined) continue;
    fields += (fields === '' ? '"' : ',"') + escapedKey(key) + '":' + stringifyWithRawNumbers(item);
  }
  return `{${fields}}`;
}

/** A key as JSON.stringify writes it, without its quotes; the answers' keys are plain words, written as they are. */
function escapedKey(key: string): string {
  return /^[A-Za-z0-9_*]*$/.test(key) ? key : JSON.stringify(key).slice(1, -1);
}
