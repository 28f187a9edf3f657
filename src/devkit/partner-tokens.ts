import { SignJWT, exportJWK, generateKeyPair, type JWK, type KeyLike } from 'jose';

/**
 * Partner API tokens as Cognito issues them, made by a test or a bench: an RS256 key pair with its JWK (served by the
 * test, or written to a JWKS file), and ID tokens signed with it.
 */
export const PARTNER_ISSUER = 'https://cognito-idp.eu-west-2.amazonaws.com/eu-west-2_test';
export const PARTNER_AUDIENCE = 'partner-app-client';

export interface PartnerKey {
  privateKey: KeyLike;
  publicKey: KeyLike;
  jwk: JWK;
}

export async function makePartnerKey(kid: string): Promise<PartnerKey> {
  const { privateKey, publicKey } = await generateKeyPair('RS256');
  const jwk = { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' };
  return { privateKey, publicKey, jwk };
}

export interface TokenShape {
  /** custom:tenant_id; null: the claim is left out. */
  tenant?: string | null;
  /** custom:product_id (the product context a token may carry); absent unless given. */
  product?: string;
  kid?: string;
  issuer?: string;
  audience?: string;
  tokenUse?: string;
  expiresIn?: number;
  notBefore?: number;
}

export async function partnerToken(key: PartnerKey, shape: TokenShape = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const claims: Record<string, unknown> = { token_use: shape.tokenUse ?? 'id', 'cognito:username': 'partner-user' };
  if (shape.tenant !== null) claims['custom:tenant_id'] = shape.tenant ?? 'acme';
  if (shape.product !== undefined) claims['custom:product_id'] = shape.product;
  const jwt = new SignJWT(claims)
    .setProtectedHeader({ alg: 'RS256', kid: shape.kid ?? key.jwk.kid! })
    .setIssuer(shape.issuer ?? PARTNER_ISSUER)
    .setAudience(shape.audience ?? PARTNER_AUDIENCE)
    .setSubject('partner-user')
    .setIssuedAt(now - 10)
    .setExpirationTime(now + (shape.expiresIn ?? 3600));
  if (shape.notBefore !== undefined) jwt.setNotBefore(now + shape.notBefore);
  return jwt.sign(key.privateKey);
}

/** The partner API's flags for a control plane that reads its keys from `jwksFile`. */
export function partnerControlArgs(jwksFile: string): string[] {
  return [
    '--partner-port',
    '0',
    '--partner-jwt-issuer',
    PARTNER_ISSUER,
    '--partner-jwt-audience',
    PARTNER_AUDIENCE,
    '--partner-jwks-file',
    jwksFile,
  ];
}

/** Where the control plane's partner API listens, from its start-up log line. */
export function partnerUrlOf(logs: string[], stagePrefix = ''): string {
  const line = logs.find((entry) => entry.includes('partner API listening'));
  if (line === undefined) throw new Error('the control plane logged no partner API listener');
  return `http://127.0.0.1:${(JSON.parse(line) as { port: number }).port}${stagePrefix}`;
}

export interface PartnerAnswer<Body = unknown> {
  status: number;
  body: Body;
  text: string;
}

/** A partner app's POST: a fresh token and a fresh Idempotency-Key each time. */
export function partnerCaller(
  baseUrl: string,
  key: PartnerKey,
): (operation: string, body: Record<string, unknown>) => Promise<PartnerAnswer> {
  let counter = 0;
  return async (operation, body) => {
    const response = await fetch(`${baseUrl}/${operation}`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        authorization: `Bearer ${await partnerToken(key)}`,
        'idempotency-key': `caller-${process.pid}-${++counter}`,
      },
      body: JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, body: JSON.parse(text) as unknown, text };
  };
}
