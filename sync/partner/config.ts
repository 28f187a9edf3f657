import type { ParsedCidr } from '../../src/core/net/ip.js';
import type { BucketLimits } from './token-buckets.js';

/** The partner API (issue 19): where it listens and whose ID tokens it takes. */
export interface PartnerApiConfig {
  host: string;
  port: number;
  /** '' or a path prefix such as '/prod' (the API Gateway stage the contract's URLs carry). */
  stagePrefix: string;
  issuer: string;
  audience: string;
  /** Exactly one of the two: an https (or loopback http) URL, or a file holding the JWKS. */
  jwksUrl: string | null;
  jwksFile: string | null;
  /** How long a write's kept answer is replayed, and an expired translation kept, before they are pruned. */
  retentionHours: number;
  /** What one caller may cost (limits.ts). */
  limits: PartnerLimitsConfig;
}

export interface PartnerLimitsConfig {
  /** Requests with a token not already verified, per client address (refused ones are not given back). */
  authFailures: BucketLimits;
  /** Requests per tenant; null: no limit. */
  tenantRate: BucketLimits | null;
  /** Peers whose X-Forwarded-For is believed (client-address.ts); none: the socket's peer is the client. */
  trustedProxies: readonly ParsedCidr[];
}
