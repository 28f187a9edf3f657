import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { it } from 'node:test';
import { REPO } from '../../src/devkit/paths.js';

/** Every relative link in the README and docs/ leads to a file that exists. */
it('the README and docs link only to files that exist', () => {
  const pages = [
    'README.md',
    'opensips-config/README.md',
    ...readdirSync(join(REPO, 'docs'))
      .filter((name) => name.endsWith('.md'))
      .map((name) => `docs/${name}`),
  ];
  const broken: string[] = [];
  for (const page of pages) {
    for (const [, target] of readFileSync(join(REPO, page), 'utf8').matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)) {
      if (/^[a-z]+:/.test(target)) continue; // an absolute URL
      if (!existsSync(join(REPO, dirname(page), target))) broken.push(`${page} -> ${target}`);
    }
  }
  assert.deepEqual(broken, []);
  assert.ok(pages.length >= 8, `found ${pages.length} pages under ${relative(process.cwd(), REPO) || '.'}`);
});
