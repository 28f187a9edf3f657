import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * SIP digest authentication (RFC 7616, RFC 2617 as RFC 3261 uses it):
 * parse the Authorization header value, recompute the response from the
 * stored HA1, compare in constant time.
 */

export type DigestAlgorithm = 'MD5' | 'SHA-256' | 'SHA-512-256';

const HASH_OF: Record<DigestAlgorithm, string> = { MD5: 'md5', 'SHA-256': 'sha256', 'SHA-512-256': 'sha512-256' };

/**
 * The contract's spelling of an algorithm (the TrunkSIPRegistration enum is lowercase `md5`/`sha256`; SHA-512-256,
 * which the enum lacks, follows the same pattern): what the admin API stores and answers.
 */
export function contractAlgorithmName(algorithm: DigestAlgorithm): string {
  return HASH_OF[algorithm];
}

/** Accepts the spellings in use: md5, MD5, sha256, SHA-256, sha512-256, SHA-512-256, sha512_256 (any case). */
export function parseDigestAlgorithm(name: string): DigestAlgorithm | null {
  const key = name.toUpperCase().replace(/[-_]/g, '');
  if (key === 'MD5') return 'MD5';
  if (key === 'SHA256') return 'SHA-256';
  if (key === 'SHA512256') return 'SHA-512-256';
  return null;
}

export interface DigestCredentials {
  username: string;
  realm: string;
  nonce: string;
  uri: string;
  response: string;
  /** As sent ("SHA-256-sess"); null when absent, which means MD5. */
  algorithm: string | null;
  qop: string | null;
  nc: string | null;
  cnonce: string | null;
  opaque: string | null;
  userhash: boolean;
}

const MAX_HEADER = 8192;
const REQUIRED = ['username', 'realm', 'nonce', 'uri', 'response'] as const;

function isTokenChar(c: number): boolean {
  // RFC 7230 tchar, plus '/' and ':' seen unquoted in the wild (uri, nonce values).
  return c > 32 && c < 127 && c !== 44 /* , */ && c !== 34 /* " */ && c !== 61 /* = */ && c !== 59; /* ; */
}

function isSpace(c: number): boolean {
  return c === 32 || c === 9 || c === 13 || c === 10;
}

/** One pass over the header value; never throws, linear time. */
export function parseDigestHeader(value: string): { ok: true; credentials: DigestCredentials } | { ok: false; reason: string } {
  if (value.length > MAX_HEADER) return { ok: false, reason: 'header too long' };
  let i = 0;
  const n = value.length;
  while (i < n && isSpace(value.charCodeAt(i))) i++;
  // The scheme must be a whole word: "Digestive x=1" is not Digest.
  if (value.slice(i, i + 6).toLowerCase() !== 'digest' || (i + 6 < n && !isSpace(value.charCodeAt(i + 6)))) {
    return { ok: false, reason: 'not a Digest header' };
  }
  i += 6;
  if (value.slice(i).trim() === '') return { ok: false, reason: 'no parameters' };
  const params = new Map<string, string>();
  for (;;) {
    while (i < n && (isSpace(value.charCodeAt(i)) || value.charCodeAt(i) === 44)) i++;
    if (i >= n) break;
    const nameStart = i;
    while (i < n && isTokenChar(value.charCodeAt(i))) i++;
    const name = value.slice(nameStart, i).toLowerCase();
    if (name === '') return { ok: false, reason: `unexpected character at ${i}` };
    while (i < n && isSpace(value.charCodeAt(i))) i++;
    if (value.charCodeAt(i) !== 61 /* = */) return { ok: false, reason: `parameter ${name.slice(0, 32)} has no value` };
    i++;
    while (i < n && isSpace(value.charCodeAt(i))) i++;
    let paramValue = '';
    if (value.charCodeAt(i) === 34 /* " */) {
      i++;
      let closed = false;
      while (i < n) {
        const c = value.charCodeAt(i);
        if (c === 92 /* \ */ && i + 1 < n) {
          paramValue += value[i + 1];
          i += 2;
        } else if (c === 34) {
          closed = true;
          i++;
          break;
        } else {
          paramValue += value[i];
          i++;
        }
      }
      if (!closed) return { ok: false, reason: `unterminated quoted value for ${name.slice(0, 32)}` };
    } else {
      const valueStart = i;
      while (i < n && isTokenChar(value.charCodeAt(i))) i++;
      paramValue = value.slice(valueStart, i);
      // A token is at least one character; "nonce=," is malformed, not an empty nonce.
      if (paramValue === '') return { ok: false, reason: `parameter ${name.slice(0, 32)} has no value` };
    }
    if (params.has(name)) return { ok: false, reason: `duplicate parameter ${name.slice(0, 32)}` };
    params.set(name, paramValue);
    while (i < n && isSpace(value.charCodeAt(i))) i++;
    if (i < n && value.charCodeAt(i) !== 44) return { ok: false, reason: `expected ',' at ${i}` };
  }
  for (const name of REQUIRED) {
    if (!params.has(name)) return { ok: false, reason: `missing ${name}` };
  }
  return {
    ok: true,
    credentials: {
      username: params.get('username')!,
      realm: params.get('realm')!,
      nonce: params.get('nonce')!,
      uri: params.get('uri')!,
      response: params.get('response')!,
      algorithm: params.get('algorithm') ?? null,
      qop: params.get('qop') ?? null,
      nc: params.get('nc') ?? null,
      cnonce: params.get('cnonce') ?? null,
      opaque: params.get('opaque') ?? null,
      userhash: (params.get('userhash') ?? '').toLowerCase() === 'true',
    },
  };
}

export interface StoredDigestSecret {
  /** Hex H(username:realm:password), as the registration stores it. */
  ha1: string;
  algorithm: DigestAlgorithm;
}

export type DigestVerdict = { ok: true } | { ok: false; reason: string };

function hash(algorithm: DigestAlgorithm, text: string): string {
  return createHash(HASH_OF[algorithm]).update(text).digest('hex');
}

/** Recomputes the expected response from the stored HA1 and compares it in constant time. */
export function verifyDigest(credentials: DigestCredentials, method: string, secret: StoredDigestSecret): DigestVerdict {
  // With userhash the username is H(user:realm); we key registrations by the plain name.
  if (credentials.userhash) return { ok: false, reason: 'userhash not supported' };
  const sent = credentials.algorithm ?? 'MD5';
  const session = /-sess$/i.test(sent);
  const algorithm = parseDigestAlgorithm(session ? sent.slice(0, -5) : sent);
  if (algorithm === null) return { ok: false, reason: `unknown algorithm ${sent.slice(0, 32)}` };
  if (algorithm !== secret.algorithm) return { ok: false, reason: 'algorithm mismatch' };

  // Hex is case-insensitive; the UA hashed the lower-case form.
  let ha1 = secret.ha1.toLowerCase();
  // Dispatch on qop case-insensitively, but hash it exactly as sent: that is what the UA hashed.
  const qop = credentials.qop;
  const qopKey = qop?.toLowerCase() ?? null;
  if (qopKey !== null && qopKey !== 'auth') {
    return { ok: false, reason: qopKey === 'auth-int' ? 'qop auth-int not supported' : `unknown qop ${qopKey.slice(0, 32)}` };
  }
  if ((qop !== null || session) && (credentials.cnonce === null || credentials.cnonce === ''))
    return { ok: false, reason: 'cnonce required' };
  if (qop !== null && (credentials.nc === null || credentials.nc === '')) return { ok: false, reason: 'nc required' };
  // -sess (RFC 7616 3.4.2): the session key binds the stored HA1 to this nonce and cnonce.
  if (session) ha1 = hash(algorithm, `${ha1}:${credentials.nonce}:${credentials.cnonce}`);
  const ha2 = hash(algorithm, `${method}:${credentials.uri}`);
  const expected =
    qop === null
      ? hash(algorithm, `${ha1}:${credentials.nonce}:${ha2}`)
      : hash(algorithm, `${ha1}:${credentials.nonce}:${credentials.nc}:${credentials.cnonce}:${qop}:${ha2}`);
  const given = Buffer.from(credentials.response.toLowerCase());
  const wanted = Buffer.from(expected);
  // Lengths are public (they follow from the algorithm); the contents are compared in constant time.
  if (given.length !== wanted.length) return { ok: false, reason: 'wrong response' };
  return timingSafeEqual(given, wanted) ? { ok: true } : { ok: false, reason: 'wrong response' };
}
