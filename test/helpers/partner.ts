import { partnerToken, type PartnerKey } from '../../src/devkit/partner-tokens.js';

// The partner API's test keys and tokens live in the devkit, shared with the benches.
export * from '../../src/devkit/partner-tokens.js';

/** A partner app's POST: a fresh token and a fresh Idempotency-Key each time. */
export function partnerCaller(
  baseUrl: string,
  key: PartnerKey,
): (operation: string, body: Record<string, unknown>) => Promise<{ status: number; body: any; text: string }> {
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
    return { status: response.status, body: JSON.parse(text), text };
  };
}
