import assert from 'node:assert/strict';
import { mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { matchesDigest, newNodeSecret, secretDigest, snapshotPushToken } from '../../src/core/protocol/node-credential.js';
import { CentreCredential } from '../../src/sidecar/centre/credential.js';
import { loadConfig } from '../../src/sidecar/config.js';

/** The node's credential: what is issued, what is kept, how a header is read, and how the sidecar holds it. */
describe('node credential', () => {
  it('issues 32 random bytes as base64url, and recognises a secret only by its digest', () => {
    const secret = newNodeSecret();
    assert.match(secret, /^[A-Za-z0-9_-]{43}$/);
    assert.notEqual(newNodeSecret(), secret);
    const digest = secretDigest(secret);
    assert.ok(matchesDigest(secret, digest));
    assert.ok(!matchesDigest(`${secret}x`, digest));
    assert.ok(!matchesDigest(secret, 'not hex'));
    assert.notEqual(snapshotPushToken(secret), secret);
    assert.equal(snapshotPushToken(secret), snapshotPushToken(secret));
  });

  it('takes the secret from the file before CENTRE_SECRET, and re-reads the file when it changes', () => {
    const dir = mkdtempSync(join(tmpdir(), 'credential-'));
    const file = join(dir, 'centre.secret');
    const [first, second] = [newNodeSecret(), newNodeSecret()];
    writeFileSync(file, `${first}\n`);
    const config = loadConfig(['--centre-secret-file', file], { CENTRE_SECRET: second });
    assert.deepEqual(config.centreSecret, { file });
    assert.deepEqual(loadConfig([], { CENTRE_SECRET: ` ${second}\n` }).centreSecret, { value: second });
    assert.equal(loadConfig([], {}).centreSecret, null);

    const credential = new CentreCredential({ file });
    assert.equal(credential.authorization(), `Bearer ${first}`);
    assert.ok(credential.admitsPush(`Bearer ${snapshotPushToken(first)}`));
    assert.ok(!credential.admitsPush(`Bearer ${first}`));
    assert.ok(!credential.admitsPush(undefined));
    // A rotation: the new secret replaces the file whole (written beside it, renamed over it).
    writeFileSync(join(dir, 'centre.secret.new'), `${second}\n`);
    renameSync(join(dir, 'centre.secret.new'), file);
    const later = Date.now() + 60_000; // past the once-a-second recheck, without waiting for it
    assert.equal(credential.secret(later), second);
    assert.ok(credential.admitsPush(`Bearer ${snapshotPushToken(second)}`));
    assert.ok(!credential.admitsPush(`Bearer ${snapshotPushToken(first)}`));
    // A file emptied by mistake keeps the secret in use rather than none.
    writeFileSync(file, '');
    assert.equal(credential.secret(later + 60_000), second);
  });

  it('refuses at start a file or variable that holds no secret', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'credential-')), 'centre.secret');
    writeFileSync(file, 'hunter2\n');
    assert.throws(() => new CentreCredential({ file }), /does not hold a node secret/);
    assert.throws(() => new CentreCredential({ value: 'short' }), /CENTRE_SECRET does not hold a node secret/);
  });
});
