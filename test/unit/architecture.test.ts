import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, it } from 'node:test';
import { Linter, type ESLint } from 'eslint';
import tseslint from 'typescript-eslint';
import { REPO } from '../../src/devkit/paths.js';

/**
 * The tree's architecture as checks: the lint rule that keeps the tiers apart really refuses what it
 * should, and no two folders of src/ or sync/ import each other.
 */

async function tiersRule(): Promise<ESLint.Plugin> {
  const config = (await import(pathToFileURL(join(REPO, 'eslint.config.js')).href)) as { tiersPlugin: ESLint.Plugin };
  return config.tiersPlugin;
}

async function lintImport(file: string, specifier: string): Promise<string[]> {
  const linter = new Linter({ configType: 'flat' });
  const messages = linter.verify(
    `import { x } from '${specifier}';\nexport const y = x;\n`,
    [
      {
        files: ['**/*.ts'],
        languageOptions: { parser: tseslint.parser },
        plugins: { tiers: await tiersRule() },
        rules: { 'tiers/imports': 'error' },
      },
    ],
    { filename: join(REPO, file) },
  );
  return messages.map((message) => message.message);
}

describe('architecture', () => {
  it('refuses an import from the control plane into the sidecar, and lets it use the core', async () => {
    const refused = await lintImport('sync/ledger/example.ts', '../../src/sidecar/credit/node-credit.js');
    assert.equal(refused.length, 1);
    assert.match(refused[0], /centre may not import sidecar/);
    assert.deepEqual(await lintImport('sync/ledger/example.ts', '../../src/core/money/micro.js'), []);
  });

  it('keeps the core free of the processes that use it, and tests and benches apart', async () => {
    assert.match((await lintImport('src/core/lcr/example.ts', '../../sidecar/engine/engine.js'))[0], /core may not import sidecar/);
    assert.match((await lintImport('src/core/lcr/example.ts', '../../../sync/stores.js'))[0], /core may not import centre/);
    assert.match((await lintImport('src/sidecar/example.ts', '../devkit/paths.js'))[0], /sidecar may not import devkit/);
    assert.match((await lintImport('test/unit/example.ts', '../../bench/load.js'))[0], /test may not import bench/);
    assert.match((await lintImport('bench/example.ts', '../test/helpers/sidecar.js'))[0], /bench may not import test/);
    assert.deepEqual(await lintImport('src/sidecar/example.ts', '../core/money/micro.js'), []);
  });

  it('places every file under src/ in a tier', async () => {
    assert.match((await lintImport('src/example.ts', './core/money/micro.js'))[0], /belongs to core, sidecar, cli or devkit/);
  });

  it('has no import loop between folders', () => {
    const edges = new Map<string, Set<string>>();
    const sources = [join(REPO, 'src'), join(REPO, 'sync')].flatMap((root) =>
      readdirSync(root, { recursive: true, encoding: 'utf8' })
        .filter((name) => name.endsWith('.ts'))
        .map((name) => join(root, name)),
    );
    for (const file of sources) {
      const from = relative(REPO, dirname(file));
      for (const [, specifier] of readFileSync(file, 'utf8').matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)) {
        const to = relative(REPO, dirname(resolve(dirname(file), specifier)));
        if (to !== from) edges.set(from, (edges.get(from) ?? new Set()).add(to));
      }
    }
    // Depth-first search; a folder met again on the current path closes a loop.
    const loops: string[] = [];
    const state = new Map<string, 'open' | 'done'>();
    const visit = (folder: string, path: string[]): void => {
      state.set(folder, 'open');
      for (const next of edges.get(folder) ?? []) {
        if (state.get(next) === 'open')
          loops.push([...path, folder, next].slice(path.indexOf(next) >= 0 ? path.indexOf(next) : path.length).join(' -> '));
        else if (state.get(next) === undefined) visit(next, [...path, folder]);
      }
      state.set(folder, 'done');
    };
    for (const folder of [...edges.keys()].sort()) if (state.get(folder) === undefined) visit(folder, []);
    assert.deepEqual(loops, []);
    assert.ok(edges.size > 20, 'the scan found the folders');
  });
});
