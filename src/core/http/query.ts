import { RequestError } from './errors.js';

/** A query string's parameters; any not in `allowed` is refused (a typo must not read as "no filter"). */
export function parseQuery(query: string, allowed: readonly string[]): URLSearchParams {
  const params = new URLSearchParams(query);
  for (const key of params.keys()) {
    if (!allowed.includes(key)) throw new RequestError('invalid_parameter', `unknown query parameter ${key.slice(0, 64)}`);
  }
  return params;
}

/** A whole-number query parameter within bounds; null when absent. */
export function queryInteger(params: URLSearchParams, name: string, min: number, max: number): number | null {
  const text = params.get(name);
  if (text === null) return null;
  if (!/^[0-9]{1,15}$/.test(text) || Number(text) < min || Number(text) > max)
    throw new RequestError('invalid_parameter', `${name} must be an integer from ${min} to ${max}`);
  return Number(text);
}

/** A yes/no query parameter (`force=1`): `1` or `true` is yes, `0` or `false` or absent is no, anything else is refused. */
export function queryFlag(params: URLSearchParams, name: string): boolean {
  const text = params.get(name);
  if (text === null || text === '0' || text === 'false') return false;
  if (text === '1' || text === 'true') return true;
  throw new RequestError('invalid_parameter', `${name} must be 1 or 0`);
}
