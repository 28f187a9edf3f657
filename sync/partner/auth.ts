import { readFileSync } from 'node:fs';
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  errors,
  jwksCache,
  jwtVerify,
  type FlattenedJWSInput,
  type JWKSCacheInput,
  type JWTVerifyGetKey,
} from 'jose';
import { JWT_BEARER_MAX, bearerToken } from '../../src/core/http/bearer.js';
import type { PartnerApiConfig } from './config.js';
import { VerifiedTokens } from './verified-tokens.js';

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

/** Verified tokens remembered (verified-tokens.ts): a few per partner app, for every tenant at once. */
const VERIFIED_TOKENS = 1024;

export interface AuthenticatorOptions {
  /** The clock, in milliseconds since the epoch (tests move it). */
  now?: () => number;
  /** The key set, instead of the configured URL or file (tests rotate keys in it). */
  keys?: JWTVerifyGetKey;
  verifiedTokens?: number;
}

export class PartnerAuthenticator {
  private readonly keys: JWTVerifyGetKey;
  /**
   * Which content of the key set answers now, or null when that is not known (the set may change under us):
   * while it is the one a cached token's key came from, the set would give that token the same key again.
   */
  private readonly keySetVersion: () => number | null;
  private readonly now: () => number;
  readonly verified: VerifiedTokens<PartnerIdentity>;

  constructor(
    private readonly config: Pick<PartnerApiConfig, 'issuer' | 'audience' | 'jwksUrl' | 'jwksFile'>,
    options: AuthenticatorOptions = {},
  ) {
    this.now = options.now ?? Date.now;
    this.verified = new VerifiedTokens(options.verifiedTokens ?? VERIFIED_TOKENS, LEEWAY_SECONDS);
    if (options.keys !== undefined) {
      this.keys = options.keys;
      this.keySetVersion = () => null;
    } else if (config.jwksUrl !== null) {
      // jose caches the set, fetches it again when a token names a kid it does not hold (at most every 30 s),
      // and times a fetch out: a token signed with a freshly rotated key verifies without a restart. It stamps
      // `uat` on the cache object it is given at each fetch: the set's content changes only then.
      const fetched: JWKSCacheInput = {};
      const remote = createRemoteJWKSet(new URL(config.jwksUrl), {
        cooldownDuration: 30_000,
        cacheMaxAge: 10 * 60_000,
        timeoutDuration: 5000,
        [jwksCache]: fetched,
      });
      this.keys = remote;
      // Past its age the set is fetched again on the next ask: unknown until then.
      this.keySetVersion = () => (remote.fresh && 'uat' in fetched ? fetched.uat : null);
    } else {
      this.keys = createLocalJWKSet(JSON.parse(readFileSync(config.jwksFile!, 'utf8')) as Parameters<typeof createLocalJWKSet>[0]);
      // Read once, at start: the set never changes in this process.
      this.keySetVersion = () => 0;
    }
  }

  /**
   * The token's identity, or a TokenRefusal. `unverified` is called first when the request carries no token
   * already verified (none at all, or one to be verified now), before anything of it is checked: the
   * per-address limit spends the attempt there, and may refuse it by throwing.
   */
  async identify(authorization: string | undefined, unverified: () => void = () => undefined): Promise<PartnerIdentity> {
    const token = bearerToken(authorization, JWT_BEARER_MAX);
    if (token === null) {
      unverified();
      throw new TokenRefusal('no Bearer token');
    }
    const nowSeconds = Math.floor(this.now() / 1000);
    const known = this.verified.find(token, nowSeconds);
    if (known !== null) {
      // The key set is asked again whenever its content may have changed since it gave the token's key (a
      // fetch, or the set's age past): a kid rotated out of the set, or one now naming another key, sends the
      // token to a full verification, which refuses it. Between fetches the set answers the same key for the
      // same header (jose keeps the imported keys), so it is not asked on every use: asking was an await and a
      // search of the set per request.
      const version = this.keySetVersion();
      if (version !== null && version === known.keySet) return known.identity;
      if ((await this.keyOf(known.header, token)) === known.key) {
        known.keySet = version;
        return known.identity;
      }
      this.verified.forget(token);
    }
    unverified();
    return this.verify(token, nowSeconds);
  }

  /** The key the set holds for this header now, or null if it holds none (or cannot be had). */
  private async keyOf(header: { alg: string; kid?: string }, token: string): Promise<unknown> {
    const [protectedHeader, payload, signature] = token.split('.');
    const input: FlattenedJWSInput = { protected: protectedHeader, payload, signature };
    try {
      return await this.keys(header, input);
    } catch {
      return null;
    }
  }

  private async verify(token: string, nowSeconds: number): Promise<PartnerIdentity> {
    // Read before the key is: a fetch during the verification leaves the entry with an older version, asked again.
    const keySet = this.keySetVersion();
    let verified;
    try {
      verified = await jwtVerify(token, this.keys, {
        algorithms: ['RS256'],
        issuer: this.config.issuer,
        audience: this.config.audience,
        clockTolerance: LEEWAY_SECONDS,
        requiredClaims: ['exp'],
        currentDate: new Date(nowSeconds * 1000),
      });
    } catch (error) {
      if (!(error instanceof errors.JOSEError) || FETCH_FAILURES.has(error.code) || error.message.startsWith('Expected 200 OK'))
        throw new KeysUnavailable(`the JWKS could not be fetched: ${error instanceof Error ? error.message : String(error)}`);
      throw new TokenRefusal(`token refused: ${error.code}`);
    }
    const { payload, protectedHeader } = verified;
    if (payload.token_use !== 'id') throw new TokenRefusal('not an ID token (token_use must be id)');
    const tenant = payload['custom:tenant_id'];
    if (typeof tenant !== 'string' || tenant === '') throw new TokenRefusal('the token carries no custom:tenant_id');
    const product = payload['custom:product_id'];
    const identity: PartnerIdentity = Object.freeze({
      tenantId: tenant,
      productId: typeof product === 'string' && product !== '' ? product : null,
      subject: typeof payload.sub === 'string' ? payload.sub : null,
    });
    // Remembered only once every check above passed: a refused token is verified in full each time.
    this.verified.remember(token, {
      identity,
      exp: payload.exp!,
      nbf: payload.nbf ?? null,
      header: { alg: protectedHeader.alg, ...(protectedHeader.kid === undefined ? {} : { kid: protectedHeader.kid }) },
      key: verified.key,
      keySet,
    });
    return identity;
  }
}
