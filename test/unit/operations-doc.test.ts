import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { OptionTable } from '../../src/core/config/options.js';
import { REPO } from '../../src/devkit/paths.js';
import { SIDECAR_OPTIONS } from '../../src/sidecar/config.js';
import { SidecarMetrics } from '../../src/sidecar/metrics/metrics.js';
import { CONTROL_OPTIONS } from '../../sync/config.js';
import { ControlPlaneMetrics } from '../../sync/metrics/control-plane-metrics.js';
import { parseExposition } from '../helpers/exposition.js';

const DOC = (): string => readFileSync(join(REPO, 'docs', 'operations.md'), 'utf8');

/** The metric names in the first table after `intro` in docs/operations.md (the first column's `names`). */
function documentedMetrics(intro: string): Set<string> {
  const doc = DOC();
  const start = doc.indexOf(intro);
  assert.ok(start >= 0, `docs/operations.md has no "${intro}"`);
  const lines = doc.slice(start).split('\n');
  const first = lines.findIndex((line) => line.startsWith('| metric |'));
  const names = new Set<string>();
  for (const line of lines.slice(first + 2)) {
    if (!line.startsWith('|')) break;
    for (const [, name] of line.split(' | ')[0].matchAll(/`([a-z0-9_:]+)`/g)) names.add(name);
  }
  return names;
}

/** Every metric a process renders has its row, and the table names no metric it does not render. */
function checkMetrics(rendered: string, intro: string): void {
  const names = [...parseExposition(rendered).types.keys()];
  const documented = documentedMetrics(intro);
  assert.deepEqual(
    names.filter((name) => !documented.has(name)),
    [],
    `metrics missing from the table after "${intro}"`,
  );
  assert.deepEqual(
    [...documented].filter((name) => !names.includes(name)),
    [],
    `the table after "${intro}" names metrics not rendered`,
  );
}

/** docs/operations.md explains every option of both processes, as the code's option tables have them. */
function documentedOptions(heading: string): Map<string, { env: string; shownDefault: string }> {
  const doc = DOC();
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

  it('lists every metric the sidecar serves on /metrics', () => {
    const metrics = new SidecarMetrics();
    after(() => metrics.process.stop());
    checkMetrics(metrics.render(), '`GET /metrics` on the sidecar');
  });
  it('lists every metric the control plane serves on /metrics', async () => {
    const metrics = new ControlPlaneMetrics('sqlite');
    after(() => metrics.process.stop());
    checkMetrics(await metrics.render(), '`GET /metrics` on the control plane');
  });
});
