// Type-aware lint: catches the slips the compiler lets through
// (always-true/false conditions, floating promises, unused results),
// and holds the tiers of the tree apart (the `tiers/imports` rule below).
import { dirname, relative, resolve, sep } from 'node:path';
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const ROOT = import.meta.dirname;

/**
 * The tiers, by folder. What both processes share (src/core) imports nothing of ours but itself; the
 * sidecar (src/sidecar), the control plane (sync) and the operator's commands (src/cli) import the core
 * and themselves; the development kit (src/devkit: process starters, the dataset generator, the OpenSIPS
 * MI double, the demo `make run` starts) may use any of them and is used only by tests and benches;
 * tests and benches do not import each other.
 */
const TIERS = [
  { tier: 'core', folder: 'src/core/', may: ['core'], says: 'src/core/ is what both processes share: it imports only itself' },
  { tier: 'sidecar', folder: 'src/sidecar/', may: ['core', 'sidecar'], says: 'the sidecar imports src/core/ and itself' },
  { tier: 'cli', folder: 'src/cli/', may: ['core', 'cli'], says: "the operator's commands import src/core/ and themselves" },
  {
    tier: 'devkit',
    folder: 'src/devkit/',
    may: ['core', 'sidecar', 'centre', 'cli', 'devkit'],
    says: 'the devkit is for tests, benches and the demo',
  },
  { tier: 'centre', folder: 'sync/', may: ['core', 'centre'], says: 'the control plane (sync/) imports only src/core/ of src/' },
  {
    tier: 'test',
    folder: 'test/',
    may: ['core', 'sidecar', 'cli', 'devkit', 'centre', 'test'],
    says: 'tests take shared helpers from src/devkit/, not from bench/',
  },
  {
    tier: 'bench',
    folder: 'bench/',
    may: ['core', 'sidecar', 'cli', 'devkit', 'centre', 'bench'],
    says: 'benches take shared helpers from src/devkit/, not from test/',
  },
];

function tierOf(path) {
  const inRepo = relative(ROOT, path).split(sep).join('/');
  return (
    TIERS.find((entry) => inRepo.startsWith(entry.folder)) ??
    (inRepo.startsWith('src/')
      ? { tier: 'unplaced', may: [], says: 'every file under src/ belongs to core, sidecar, cli or devkit' }
      : null)
  );
}

// uWebSockets.js lives behind one module: moving off it changes that file alone.
const UWS_ONLY_IN_SERVER = { name: 'uWebSockets.js', message: 'only src/core/http/server.ts talks to uWebSockets.js' };
// Money has one decimal type, configured once.
const ONE_DECIMAL_TYPE = { name: 'decimal.js', message: 'use Decimal from src/core/money/decimal.ts' };

const tiersPlugin = {
  rules: {
    imports: {
      meta: { type: 'problem', docs: { description: 'imports follow the tiers of the tree' }, schema: [] },
      create(context) {
        const from = tierOf(context.physicalFilename);
        if (from === null) return {};
        const check = (node) => {
          const source = node.source;
          if (source?.type !== 'Literal' || typeof source.value !== 'string') return;
          if (from.tier === 'unplaced') {
            context.report({ node: source, message: `${relative(ROOT, context.physicalFilename)}: ${from.says}` });
            return;
          }
          if (!source.value.startsWith('.')) return;
          const to = tierOf(resolve(dirname(context.physicalFilename), source.value));
          if (to === null || from.may.includes(to.tier)) return;
          context.report({ node: source, message: `${from.tier} may not import ${to.tier} (${source.value}): ${from.says}` });
        };
        return { ImportDeclaration: check, ExportNamedDeclaration: check, ExportAllDeclaration: check, ImportExpression: check };
      },
    },
  },
};

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'data/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: ROOT },
    },
    plugins: { tiers: tiersPlugin },
    rules: {
      'tiers/imports': 'error',
      '@typescript-eslint/no-floating-promises': [
        'error',
        // node:test's describe/it return promises the runner itself tracks.
        { allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['describe', 'it', 'test', 'before', 'after'] }] },
      ],
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/no-unnecessary-condition': 'error',
      '@typescript-eslint/no-unused-expressions': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      '@typescript-eslint/switch-exhaustiveness-check': 'error',
      'no-self-compare': 'error',
      'no-constant-binary-expression': 'error',
      eqeqeq: ['error', 'always'],
      'no-restricted-imports': ['error', { paths: [UWS_ONLY_IN_SERVER, ONE_DECIMAL_TYPE] }],
    },
  },
  // The floor the benchmark compares against, and the trivial sidecar OpenSIPS is measured against, are bare
  // uWebSockets.js servers by design.
  {
    files: ['src/core/http/server.ts', 'bench/floor-server.ts', 'bench/trivial-sidecar.ts', 'bench/uws-answer.ts'],
    rules: { 'no-restricted-imports': ['error', { paths: [ONE_DECIMAL_TYPE] }] },
  },
  { files: ['src/core/money/decimal.ts'], rules: { 'no-restricted-imports': ['error', { paths: [UWS_ONLY_IN_SERVER] }] } },
  {
    // Tests read JSON answers from the wire: untyped by nature.
    files: ['test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
    },
  },
  { files: ['**/*.js'], ...tseslint.configs.disableTypeChecked },
);

export { tiersPlugin };
