import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { CATALOGUE, type CatalogueEntry } from '../../src/core/errors/catalogue.js';
import { STATUS_TEXT } from '../../src/core/http/errors.js';
import { REPO } from '../../src/devkit/paths.js';

/** docs/errors.md and the catalogue say the same thing, code by code (as fastify checks its errors against its docs). */
function documentedCodes(): Map<string, { http: number | null; sip: number | null; reason: string }> {
  const rows = new Map<string, { http: number | null; sip: number | null; reason: string }>();
  for (const line of readFileSync(join(REPO, 'docs', 'errors.md'), 'utf8').split('\n')) {
    const cells = /^\| `([a-z_]+)` \|(.*)\|$/.exec(line);
    if (cells === null) continue;
    const [http, sip, reason] = cells[2].split('|').map((cell) => cell.trim());
    assert.ok(!rows.has(cells[1]), `${cells[1]} is documented twice`);
    rows.set(cells[1], { http: http === '' ? null : Number(http), sip: sip === '' ? null : Number(sip), reason });
  }
  return rows;
}

describe('error catalogue', () => {
  const documented = documentedCodes();
  const catalogue = CATALOGUE as Record<string, CatalogueEntry>;

  it('documents every code with its HTTP status, SIP code and reason', () => {
    for (const [code, entry] of Object.entries(catalogue)) {
      const row = documented.get(code);
      assert.ok(row !== undefined, `${code} is not documented in docs/errors.md`);
      assert.deepEqual(
        row,
        { http: entry.http, sip: entry.sip, reason: entry.reason },
        `docs/errors.md disagrees with the catalogue on ${code}`,
      );
    }
  });

  it('documents no code the catalogue does not have', () => {
    assert.deepEqual(
      [...documented.keys()].filter((code) => !(code in catalogue)),
      [],
    );
  });

  it('gives every code a way to be answered, with a status the server can write', () => {
    for (const [code, entry] of Object.entries(catalogue)) {
      assert.ok(entry.http !== null || entry.sip !== null, `${code} is neither an error nor a refusal`);
      if (entry.http !== null) assert.ok(entry.http in STATUS_TEXT, `${code}: HTTP ${entry.http} has no status line`);
      if (entry.sip !== null) assert.ok(entry.sip >= 400 && entry.sip <= 699, `${code}: SIP ${entry.sip} is not a final refusal`);
      assert.match(code, /^[a-z][a-z0-9_]*$/);
    }
  });
});
