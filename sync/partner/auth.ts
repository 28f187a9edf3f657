import { readFileSync } from 'node:fs';
import { createLocalJWKSet, createRemoteJWKSet, errors, jwtVerify, type JWTVerifyGetKey } from 'jose';
import { JWT_BEARER_MAX, bearerToken } from '../../src/core/http/bearer.js';
import type { PartnerApiConfig } from './config.js';

/**
 * A partner's credential, checked as API Gateway's Cognito authorizer checks an ID token: `Authorization:
 * Bearer <JWT>`, RS256 only (so `alg: none` and an HS256 token "signed" with the public key are refused by
 * the algorithm list before any key is used), a key from the configured JWKS, the configured issuer and
 * audience (the app client id), `token_use` = `id`, `exp` and `nbf` with a small leeway, and a
 * `custom:tenant_id`. jose does the cryptography; nothing here is hand-rolled.
 */
export interface PartnerIdentity {
  tenantId: string;
  /** `custom:product_id`, when the token carries the product context. */
  productId: string | null;
  subject: string | null;
}

/** Why a token was refused: logged, and named in the 403's message (never which key or claim value we expected). */
export class TokenRefusal extends Error {}

/**
 * The keys could not be had (the JWKS URL unreachable, timed out, not 200, not a key set): not the caller's
 * fault, so not a 403 they might act on; answered 503 and logged for the operator.
 */
export class KeysUnavailable extends Error {}

/** JOSE errors that say the key set could not be fetched, not that the token is bad. */
const FETCH_FAILURES = new Set(['ERR_JWKS_TIMEOUT', 'ERR_JWKS_INVALID']);

/** Clocks of the issuer and this box may differ by this much. */
const LEEWAY_SECONDS = 30;

export class PartnerAuthenticator {
  private readonly keys: JWTVerifyGetKey;

  constructor(private readonly config: Pick<PartnerApiConfig, 'issuer' | 'audience' | 'jwksUrl' | 'jwksFile'>) {
    if (config.jwksUrl !== null) {
      // jose caches the set, fetches it again when a token names a kid it does not hold (at most every 30 s),
      // and times a fetch out: a token signed with a freshly rotated key verifies without a restart.
      this.keys = createRemoteJWKSet(new URL(config.jwksUrl), {
        cooldownDuration: 30_000,
        cacheMaxAge: 10 * 60_000,
        timeoutDuration: 5000,
      });
    } else {
      this.keys = createLocalJWKSet(JSON.parse(readFileSync(config.jwksFile!, 'utf8')) as Parameters<typeof createLocalJWKSet>[0]);
    }
  }

  async identify(authorization: string | undefined): Promise<PartnerIdentity> {
    const token = bearerToken(authorization, JWT_BEARER_MAX);
    if (token === null) throw new TokenRefusal('no Bearer token');
    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(token, this.keys, {
        algorithms: ['RS256'],
        issuer: this.config.issuer,
        audience: this.config.audience,
        clockTolerance: LEEWAY_SECONDS,
        requiredClaims: ['exp'],
      }));
    } catch (error) {
      if (!(error instanceof errors.JOSEError) || FETCH_FAILURES.has(error.code) || error.message.startsWith('Expected 200 OK'))
        throw new KeysUnavailable(`the JWKS could not be fetched: ${error instanceof Error ? error.message : String(error)}`);
      throw new TokenRefusal(`token refused: ${error.code}`);
    }
    if (payload.token_use !== 'id') throw new TokenRefusal('not an ID token (token_use must be id)');
    const tenant = payload['custom:tenant_id'];
    if (typeof tenant !== 'string' || tenant === '') throw new TokenRefusal('the token carries no custom:tenant_id');
    const product = payload['custom:product_id'];
    return {
      tenantId: tenant,
      productId: typeof product === 'string' && product !== '' ? product : null,
      subject: typeof payload.sub === 'string' ? payload.sub : null,
    };
  }
}
