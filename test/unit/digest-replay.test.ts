import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { authorizeRegister, type RegisterAuthRequest } from '../../src/sidecar/auth/register-auth.js';
import { CREDENTIAL_MEMORY_MS, DigestReplayGuard } from '../../src/sidecar/auth/digest-replay.js';
import { md5, routingTables } from '../fixtures/routing.js';
import { engineFor } from '../helpers/engine.js';

/**
 * Digest credentials are good once. OpenSIPS's one-use nonce check runs only after the password it was given
 * verifies, and the script gives it a placeholder: without the sidecar's own check, a header seen on the wire
 * could be sent again (for the nonce's 30 s) to place calls as the trunk, or to register in its place.
 */
const engine = engineFor(routingTables());
const [USER, REALM, PASSWORD, URI] = ['acme_trunk_01', 'sip.crazytel.com.au', 's3cret', 'sip:61400123456@203.0.113.5'];

/** The UA's Proxy-Authorization for an INVITE: qop=auth with this nonce count (a UA counts up on one nonce). */
function request(nc: string, { nonce = 'bm9uY2U', response }: { nonce?: string; response?: string } = {}): RegisterAuthRequest {
  const cnonce = 'c0ffee';
  const computed = md5(`${md5(`${USER}:${REALM}:${PASSWORD}`)}:${nonce}:${nc}:${cnonce}:auth:${md5(`INVITE:${URI}`)}`);
  return {
    source_ip: '198.18.0.1',
    username: USER,
    realm: REALM,
    auth_response: `Digest username="${USER}", realm="${REALM}", nonce="${nonce}", uri="${URI}", response="${response ?? computed}", algorithm=MD5, cnonce="${cnonce}", qop=auth, nc=${nc}`,
    method: 'INVITE',
    uri: URI,
  };
}

const T0 = Date.parse('2026-12-07T12:00:00Z');

describe('digest credentials are good once', () => {
  it('refuses the same credentials a second time, and takes the UA’s next nonce count', () => {
    const replays = new DigestReplayGuard();
    assert.deepEqual(authorizeRegister(engine, request('00000001'), replays, T0).decision, { allowed: true, customer_trunk_id: 10 });
    const again = authorizeRegister(engine, request('00000001'), replays, T0 + 1000);
    assert.equal(again.outcome, 'reused');
    assert.deepEqual(again.decision, {
      allowed: false,
      reject_code: 403,
      reject_reason: 'credentials already used',
      reason_code: 'credentials_reused',
    });
    // The same nonce with the next count is the UA's own next request (its response differs): taken.
    assert.equal(authorizeRegister(engine, request('00000002'), replays, T0 + 2000).decision.allowed, true);
  });

  it('remembers only verified credentials: a wrong response neither passes nor spends the real one', () => {
    const replays = new DigestReplayGuard();
    const wrong = request('00000001', { response: '0'.repeat(32) });
    assert.equal(authorizeRegister(engine, wrong, replays, T0).outcome, 'bad_response');
    assert.equal(authorizeRegister(engine, wrong, replays, T0).outcome, 'bad_response');
    assert.equal(replays.size, 0);
    assert.equal(authorizeRegister(engine, request('00000001'), replays, T0).decision.allowed, true);
  });

  it('forgets credentials once their nonce is long stale, and holds to its size by forgetting the oldest', () => {
    const replays = new DigestReplayGuard(CREDENTIAL_MEMORY_MS, 2);
    assert.equal(authorizeRegister(engine, request('00000001'), replays, T0).decision.allowed, true);
    assert.equal(authorizeRegister(engine, request('00000001'), replays, T0 + CREDENTIAL_MEMORY_MS - 1).outcome, 'reused');
    // Past the memory OpenSIPS refuses the nonce as stale before the sidecar is asked; the entry goes.
    assert.equal(authorizeRegister(engine, request('00000001'), replays, T0 + CREDENTIAL_MEMORY_MS).decision.allowed, true);
    assert.equal(replays.size, 1);
    const at = T0 + CREDENTIAL_MEMORY_MS + 1;
    assert.equal(authorizeRegister(engine, request('00000002'), replays, at).decision.allowed, true);
    assert.equal(authorizeRegister(engine, request('00000003'), replays, at).decision.allowed, true);
    assert.equal(replays.size, 2, 'never more than its size');
    assert.equal(authorizeRegister(engine, request('00000003'), replays, at).outcome, 'reused', 'the newest are kept');
  });
});
