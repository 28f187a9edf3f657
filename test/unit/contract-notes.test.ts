import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { REPO } from '../../src/devkit/paths.js';

/**
 * docs/contract-notes.md records our choices against one version of the switch API's contract: the copy
 * in docs/contract/, whose checksum the notes name. A changed contract fails here until the notes are read
 * again and the checksum moved with them.
 */
const COPY = join(REPO, 'docs', 'contract', 'switch-api.openapi.json');
const SHARED = join(REPO, '..', 'shared', 'spec', 'switch-api.openapi.json');

const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');

describe('contract notes', () => {
  it('were written against the contract copy they name', () => {
    const pinned = /^contract-sha256: ([0-9a-f]{64})$/m.exec(readFileSync(join(REPO, 'docs', 'contract-notes.md'), 'utf8'));
    assert.ok(pinned !== null, 'docs/contract-notes.md names no contract-sha256');
    assert.equal(sha256(readFileSync(COPY)), pinned[1], 'the contract copy changed: read the notes again, then update contract-sha256');
    assert.doesNotThrow(() => JSON.parse(readFileSync(COPY, 'utf8')) as unknown);
  });

  it('name the shared contract as it is now', { skip: existsSync(SHARED) ? false : `no ${SHARED} on this machine` }, () => {
    assert.equal(
      sha256(readFileSync(SHARED)),
      sha256(readFileSync(COPY)),
      `${SHARED} differs from docs/contract/: copy it over and read the notes again`,
    );
  });
});
