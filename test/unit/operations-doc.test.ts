import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { OptionTable } from '../../src/core/config/options.js';
import { REPO } from '../../src/devkit/paths.js';
import { SIDECAR_OPTIONS } from '../../src/sidecar/config.js';
import { CONTROL_OPTIONS } from '../../sync/config.js';

/** docs/operations.md explains every option of both processes, as the code's option tables have them. */
function documentedOptions(heading: string): Map<string, { env: string; shownDefault: string }> {
  const doc = readFileSync(join(REPO, 'docs', 'operations.md'), 'utf8');
  const start = doc.indexOf(`\n### ${heading}\n`);
  assert.ok(start >= 0, `docs/operations.md has no "### ${heading}" section`);
  const section = doc.slice(start + 1).split(/\n#{2,3} /)[0];
  const rows = new Map<string, { env: string; shownDefault: string }>();
  for (const line of section.split('\n')) {
    const row = /^\| `--([a-z-]+)` \| `([A-Z_]+)` \| ([^|]+) \|/.exec(line);
    if (row !== null) rows.set(row[1], { env: row[2], shownDefault: row[3].trim().replace(/^`(.*)`$/, '$1') });
  }
  return rows;
}

function check(table: OptionTable, heading: string): void {
  const documented = documentedOptions(heading);
  for (const [flag, option] of Object.entries(table)) {
    const row = documented.get(flag);
    assert.ok(row !== undefined, `--${flag} is not documented under "${heading}"`);
    assert.deepEqual(
      row,
      { env: option.env, shownDefault: option.shownDefault ?? option.fallback },
      `docs/operations.md disagrees on --${flag}`,
    );
  }
  assert.deepEqual(
    [...documented.keys()].filter((flag) => !(flag in table)),
    [],
    `"${heading}" documents options the code does not have`,
  );
}

describe('operations doc', () => {
  it('documents every sidecar option with its environment variable and default', () => check(SIDECAR_OPTIONS, 'Sidecar options'));
  it('documents every control plane option with its environment variable and default', () =>
    check(CONTROL_OPTIONS, 'Control plane options'));
});
