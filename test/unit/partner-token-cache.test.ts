import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { describe, it, mock } from 'node:test';
import { createLocalJWKSet, type JWK, type JWTVerifyGetKey } from 'jose';
import { PARTNER_AUDIENCE, PARTNER_ISSUER, makePartnerKey, partnerToken, type PartnerKey } from '../../src/devkit/partner-tokens.js';
import { PartnerAuthenticator, TokenRefusal } from '../../sync/partner/auth.js';

/**
 * The verified-token cache (sync/partner/verified-tokens.ts) behind PartnerAuthenticator: a remembered token
 * skips the signature check, and must never be accepted where a full verification would refuse it.
 */
const CONFIG = { issuer: PARTNER_ISSUER, audience: PARTNER_AUDIENCE, jwksUrl: null, jwksFile: null };

/** A key set the test rotates, as a remote JWKS is after jose fetches it again. */
function rotatingKeys(jwks: JWK[]): { keys: JWTVerifyGetKey; publish: (jwks: JWK[]) => void } {
  let current = createLocalJWKSet({ keys: jwks });
  return {
    keys: (header, token) => current(header, token),
    publish: (next) => {
      current = createLocalJWKSet({ keys: next });
    },
  };
}

async function setUp(options: { capacity?: number } = {}) {
  const key = await makePartnerKey('k1');
  const set = rotatingKeys([key.jwk]);
  const clock = { ms: Date.now() };
  const auth = new PartnerAuthenticator(CONFIG, { keys: set.keys, now: () => clock.ms, verifiedTokens: options.capacity });
  return { key, set, clock, auth };
}

const refusal = (code: string) => (error: unknown) => error instanceof TokenRefusal && error.message.includes(code);

/** The token with one character of its `part` (0 header, 1 payload, 2 signature) changed. */
function tampered(token: string, part: number): string {
  const parts = token.split('.');
  const middle = Math.floor(parts[part].length / 2);
  const replaced = parts[part][middle] === 'A' ? 'B' : 'A';
  parts[part] = parts[part].slice(0, middle) + replaced + parts[part].slice(middle + 1);
  return parts.join('.');
}

describe('the verified-token cache', () => {
  it('answers a token seen before from the cache, with the identity its verification gave', async () => {
    const { key, auth } = await setUp();
    const token = await partnerToken(key, { tenant: 'acme' });
    const first = await auth.identify(`Bearer ${token}`);
    const second = await auth.identify(`Bearer ${token}`);
    assert.equal(first.tenantId, 'acme');
    // The very object the first verification built: the second call did not verify again.
    assert.equal(second, first);
    assert.equal(auth.verified.size, 1);
  });

  it('refuses a cached token once it is past exp plus the leeway, and accepts it until then', async () => {
    const { key, clock, auth } = await setUp();
    const token = await partnerToken(key, { expiresIn: 60 });
    const issued = clock.ms;
    const identity = await auth.identify(`Bearer ${token}`);
    clock.ms = issued + (60 + 29) * 1000;
    assert.equal(await auth.identify(`Bearer ${token}`), identity);
    clock.ms = issued + (60 + 31) * 1000;
    await assert.rejects(auth.identify(`Bearer ${token}`), refusal('ERR_JWT_EXPIRED'));
    assert.equal(auth.verified.size, 0);
  });

  it('refuses a cached token at once when its kid leaves the key set, or names another key', async () => {
    const { key, set, auth } = await setUp();
    const other: PartnerKey = await makePartnerKey('k2');
    const token = await partnerToken(key);
    await auth.identify(`Bearer ${token}`);
    set.publish([other.jwk]);
    await assert.rejects(auth.identify(`Bearer ${token}`), refusal('ERR_JWKS_NO_MATCHING_KEY'));

    // Back in the set: verified again and cached again; then the kid is reused for a new key pair.
    set.publish([key.jwk, other.jwk]);
    await auth.identify(`Bearer ${token}`);
    const reissued = await makePartnerKey('k1');
    set.publish([reissued.jwk]);
    await assert.rejects(auth.identify(`Bearer ${token}`), refusal('ERR_JWS_SIGNATURE_VERIFICATION_FAILED'));
    assert.equal(auth.verified.size, 0);
  });

  it('never answers a tampered token from the cache: any changed character is a full verification that refuses it', async () => {
    const { key, auth } = await setUp();
    const token = await partnerToken(key, { tenant: 'acme' });
    await auth.identify(`Bearer ${token}`);
    for (const part of [0, 1, 2]) await assert.rejects(auth.identify(`Bearer ${tampered(token, part)}`), TokenRefusal);
    // Another tenant's claims under the original signature.
    const [header, , signature] = token.split('.');
    const claims = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()) as Record<string, unknown>;
    const forged = `${header}.${Buffer.from(JSON.stringify({ ...claims, 'custom:tenant_id': 'globex' })).toString('base64url')}.${signature}`;
    await assert.rejects(auth.identify(`Bearer ${forged}`), refusal('ERR_JWS_SIGNATURE_VERIFICATION_FAILED'));
    assert.equal(auth.verified.size, 1);
  });

  it('remembers no token it refused (not yet valid, not an ID token, no tenant)', async () => {
    const { key, auth } = await setUp();
    for (const shape of [{ notBefore: 120 }, { tokenUse: 'access' }, { tenant: null }]) {
      const token = await partnerToken(key, shape);
      await assert.rejects(auth.identify(`Bearer ${token}`), TokenRefusal);
      await assert.rejects(auth.identify(`Bearer ${token}`), TokenRefusal);
    }
    assert.equal(auth.verified.size, 0);
  });

  it('holds at most its capacity, making room by the token used least recently', async () => {
    const { key, auth } = await setUp({ capacity: 3 });
    const tokens = await Promise.all(['t1', 't2', 't3', 't4'].map((tenant) => partnerToken(key, { tenant })));
    const identities = [];
    for (const token of tokens.slice(0, 3)) identities.push(await auth.identify(`Bearer ${token}`));
    // t1 used again: t2 is now the least recently used, and makes room for t4.
    assert.equal(await auth.identify(`Bearer ${tokens[0]}`), identities[0]);
    await auth.identify(`Bearer ${tokens[3]}`);
    assert.equal(auth.verified.size, 3);
    assert.equal(await auth.identify(`Bearer ${tokens[0]}`), identities[0]);
    assert.equal(await auth.identify(`Bearer ${tokens[2]}`), identities[2]);
    const again = await auth.identify(`Bearer ${tokens[1]}`);
    assert.notEqual(again, identities[1]);
    assert.equal(again.tenantId, 't2');
    assert.equal(auth.verified.size, 3);
  });

  it('asks a remote key set again only once it was fetched anew or grew old, and then refuses a token whose kid left it', async () => {
    const key = await makePartnerKey('k1');
    const next = await makePartnerKey('k2');
    let published: JWK[] = [key.jwk];
    let fetches = 0;
    const server = createServer((_request, response) => {
      fetches += 1;
      response.setHeader('content-type', 'application/json');
      response.end(JSON.stringify({ keys: published }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    // jose times its refetch cooldown and the set's age by Date: moved by the test (its timers are left alone).
    mock.timers.enable({ apis: ['Date'], now: Date.now() });
    try {
      const jwksUrl = `http://127.0.0.1:${(server.address() as { port: number }).port}/jwks.json`;
      const auth = new PartnerAuthenticator({ ...CONFIG, jwksUrl });
      const token = await partnerToken(key);
      const identity = await auth.identify(`Bearer ${token}`);
      assert.equal(await auth.identify(`Bearer ${token}`), identity);
      assert.equal(fetches, 1);

      // Past its age (10 minutes) the set is fetched again before the cached token is answered; the kid is still
      // there (the key imported anew, so the token is verified again, and accepted).
      mock.timers.tick(11 * 60_000);
      assert.deepEqual(await auth.identify(`Bearer ${token}`), identity);
      assert.equal(fetches, 2);

      // Rotated: a token with the new kid makes jose fetch the set (past its 30 s cooldown), and the cached
      // token, whose kid the new set lacks, is verified again and refused.
      published = [next.jwk];
      mock.timers.tick(31_000);
      await auth.identify(`Bearer ${await partnerToken(next)}`);
      assert.equal(fetches, 3);
      await assert.rejects(auth.identify(`Bearer ${token}`), refusal('ERR_JWKS_NO_MATCHING_KEY'));
      assert.equal(auth.verified.size, 1);
    } finally {
      mock.timers.reset();
      server.close();
    }
  });
});
