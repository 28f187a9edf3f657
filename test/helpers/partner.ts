import { partnerCaller as devkitCaller, type PartnerAnswer, type PartnerKey } from '../../src/devkit/partner-tokens.js';

// The partner API's test keys, tokens and calls live in the devkit, shared with the benches.
export * from '../../src/devkit/partner-tokens.js';

/** devkit's partnerCaller, its answers' bodies untyped as tests read them. */
export function partnerCaller(
  baseUrl: string,
  key: PartnerKey,
): (operation: string, body: Record<string, unknown>) => Promise<PartnerAnswer<any>> {
  return devkitCaller(baseUrl, key);
}
