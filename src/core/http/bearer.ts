/**
 * The token of an `Authorization: Bearer <token>` header, one reading for every caller that presents one
 * (nodes, portal users, partners). RFC 7235 §2.1: the scheme is case-insensitive and followed by one or
 * more spaces; RFC 6750 §2.1: the token is token68 (a JWT and a base64url secret both are). Anything else
 * (another scheme, a comma-separated list, characters outside token68, more than `maxLength` characters)
 * is no token: the caller answers as for a missing one, so a malformed header never reaches a verifier.
 */
const BEARER = /^Bearer +([A-Za-z0-9._~+/-]+=*) *$/i;

/** Secrets we issue are 43 characters; 512 leaves room for rotation to longer ones. */
export const SECRET_BEARER_MAX = 512;
/** Cognito ID tokens run to 1–2 KB with custom claims; 8 KiB bounds the work a hostile header can cause. */
export const JWT_BEARER_MAX = 8192;

export function bearerToken(header: string | undefined, maxLength = SECRET_BEARER_MAX): string | null {
  if (header === undefined || header.length > maxLength + 16) return null;
  const match = BEARER.exec(header);
  return match === null || match[1].length > maxLength ? null : match[1];
}
