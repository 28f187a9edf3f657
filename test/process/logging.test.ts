import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { createLogger } from '../../src/core/logger.js';
import { routingSnapshotBytes } from '../fixtures/routing.js';
import { SidecarProcess } from '../helpers/sidecar.js';

/** A log destination that keeps each line written to it. */
function captured(): { lines: string[]; sink: Writable } {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  return { lines, sink };
}

describe('logs keep secrets out', () => {
  it('redacts password hashes, digest responses, authorization headers and tokens wherever they sit', () => {
    const { lines, sink } = captured();
    const log = createLogger('info', 'test', sink);
    log.info(
      {
        password_hash: 'ha1secret',
        registration: { password_hash: 'ha1secret2', username: 'alice' },
        auth_response: 'Digest response="abc"',
        token: 't0k',
        request: { authorization: 'Bearer t0k2' },
      },
      'something',
    );
    const entry = JSON.parse(lines[0]) as Record<string, any>;
    assert.deepEqual(
      [
        entry.password_hash,
        entry.registration.password_hash,
        entry.registration.username,
        entry.auth_response,
        entry.token,
        entry.request.authorization,
      ],
      ['[redacted]', '[redacted]', 'alice', '[redacted]', '[redacted]', '[redacted]'],
    );
    assert.doesNotMatch(lines[0], /ha1secret|t0k|abc/);
  });

  it("redacts a child logger's bindings and an error's fields, and leaves the logged objects as they were", () => {
    const { lines, sink } = captured();
    const failure = Object.assign(new Error('refused'), { secret: 'n0de' });
    const registration = { password_hash: 'ha1secret', username: 'alice' };
    const child = createLogger('info', 'test', sink)
      .child({ api: 'partner', secret: 'b1nding' })
      .child({ node: { node_secret: 'deeper' } });
    child.error({ err: failure, registration }, 'failed');
    const entry = JSON.parse(lines[0]) as Record<string, any>;
    assert.deepEqual(
      [entry.api, entry.secret, entry.node.node_secret, entry.err.message, entry.err.type, entry.err.secret, entry.registration.username],
      ['partner', '[redacted]', '[redacted]', 'refused', 'Error', '[redacted]', 'alice'],
    );
    assert.doesNotMatch(lines[0], /n0de|b1nding|deeper|ha1secret/);
    // The caller's objects are not changed: what is censored is a copy.
    assert.equal(failure.secret, 'n0de');
    assert.equal(registration.password_hash, 'ha1secret');
  });

  describe('a refused REGISTER on the real sidecar', () => {
    let sidecar: SidecarProcess;
    before(async () => {
      sidecar = await SidecarProcess.start();
      await sidecar.putSnapshot(routingSnapshotBytes(1));
    });
    after(() => sidecar.kill());

    it('is logged with who and why, never the response or the stored HA1', async () => {
      const response = createHash('md5').update('a-very-recognisable-wrong-response').digest('hex');
      const answer = await sidecar.post('/api/opensips/register/auth', {
        source_ip: '203.0.113.10',
        username: 'acme_trunk_01',
        realm: 'sip.crazytel.com.au',
        method: 'REGISTER',
        uri: 'sip:sip.crazytel.com.au',
        auth_response: `Digest username="acme_trunk_01", realm="sip.crazytel.com.au", nonce="n1", uri="sip:sip.crazytel.com.au", response="${response}"`,
      });
      assert.deepEqual(answer.body, {
        allowed: false,
        reject_code: 403,
        reject_reason: 'invalid credentials',
        reason_code: 'invalid_credentials',
      });
      const refused = await sidecar.waitForLog((line) => line.includes('register refused'));
      assert.match(refused, /"username":"acme_trunk_01"/);
      assert.match(refused, /"outcome":"bad_response"/);
      const stored = createHash('md5').update('acme_trunk_01:sip.crazytel.com.au:s3cret').digest('hex');
      for (const line of sidecar.logs) {
        assert.ok(!line.includes(response), 'digest response in the logs');
        assert.ok(!line.includes(stored), 'stored HA1 in the logs');
      }
    });
  });
});
