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
}
