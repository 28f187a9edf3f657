import { RequestError } from '../../src/core/http/errors.js';
import type { ErrorCode } from '../../src/core/errors/catalogue.js';
import { ClientAddresses } from './client-address.js';
import type { PartnerLimitsConfig } from './config.js';
import { TokenBuckets } from './token-buckets.js';

/**
 * What the internet-facing partner API lets one caller cost (docs/operations.md, Partner API):
 *
 * - requests whose token is not one already verified, per client address: each spends one of the address's
 *   allowance BEFORE its token is checked, and gets it back if the token verifies. A refused token costs an
 *   RS256 verification; past the allowance an address's unverified tokens are refused unchecked, so a flood
 *   of forged ones costs a map lookup each. Spent before the check, not counted after it: tokens sent at once
 *   would all pass a count made only once their verifications answered.
 * - requests per tenant (the token's), a token bucket: one tenant's partner app cannot take every write the
 *   store can commit from the others. Off with a rate of 0.
 *
 * Both are answered 429 with Retry-After (the contract has no 429; its ErrorResponse shape, partner contract
 * note 60).
 */
export type ThrottleLimit = 'address_auth_failures' | 'tenant_rate';

/**
 * The tenant rate's default: twice the target load (500 requests a second for one tenant,
 * bench/partner-ops.ts), so that a partner at the target is never refused, with two seconds of it at once.
 */
export const DEFAULT_TENANT_RATE = { perSecond: 1000, burst: 2000 } as const;

/** The limits when no flag is given (sync/config.ts takes its defaults from here). */
export const DEFAULT_PARTNER_LIMITS: PartnerLimitsConfig = {
  authFailures: { perMinute: 60, burst: 100 },
  tenantRate: { perMinute: DEFAULT_TENANT_RATE.perSecond * 60, burst: DEFAULT_TENANT_RATE.burst },
  trustedProxies: [],
};

/** Keys each table holds at most: a spray of source addresses or tenants cannot grow memory without bound. */
export const MAX_KEYS = 10_000;

/** A request refused by a limit: the catalogue's 429, and the seconds to wait. */
export class ThrottledRequest extends RequestError {
  constructor(
    code: ErrorCode,
    readonly limit: ThrottleLimit,
    readonly retryAfterSeconds: number,
  ) {
    super(code);
  }
}

export class PartnerLimits {
  readonly addresses: ClientAddresses;
  private readonly failures: TokenBuckets;
  private readonly tenants: TokenBuckets | null;

  constructor(config: PartnerLimitsConfig, clock: () => number = Date.now) {
    this.addresses = new ClientAddresses(config.trustedProxies);
    this.failures = new TokenBuckets(config.authFailures, MAX_KEYS, clock);
    this.tenants = config.tenantRate === null ? null : new TokenBuckets(config.tenantRate, MAX_KEYS, clock);
  }

  /** A token not already verified is about to be checked for `client`: spends one of its allowance, or refuses. */
  spendAuthAttempt(client: string): void {
    const waitMs = this.failures.take(client);
    if (waitMs > 0) throw new ThrottledRequest('partner_auth_throttled', 'address_auth_failures', seconds(waitMs));
  }

  /** The token verified (or the keys could not be had: not the caller's fault): the attempt does not count. */
  authAttemptPassed(client: string): void {
    this.failures.giveBack(client);
  }

  /** One request of the tenant: taken from its bucket, or refused. */
  spendTenantRequest(tenantId: string): void {
    if (this.tenants === null) return;
    const waitMs = this.tenants.take(tenantId);
    if (waitMs > 0) throw new ThrottledRequest('partner_rate_limited', 'tenant_rate', seconds(waitMs));
  }
}

/** Retry-After is whole seconds, at least 1. */
function seconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000));
}
