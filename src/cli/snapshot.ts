/**
 * Snapshot tool for fixtures, demos and operators:
 *   snapshot build --in description.json --out snapshot.msgpack --version N
 *   snapshot inspect --in snapshot.msgpack
 * The description is the snapshot's tables as JSON with rate rows as objects
 * (see SnapshotDescription); the control plane produces the same format.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { decodeSnapshot, descriptionToTables, encodeSnapshot, rateRowCount } from '../core/snapshot/codec.js';
import type { SnapshotDescription } from '../core/snapshot/schema.js';
import { validateSnapshot } from '../core/snapshot/validate.js';

function fail(message: string): never {
  process.stderr.write(`${message}\n`);
  process.exit(2);
}

const [command, ...rest] = process.argv.slice(2);
const { values } = parseArgs({ args: rest, options: { in: { type: 'string' }, out: { type: 'string' }, version: { type: 'string' } } });
if (values.in === undefined)
  fail('usage: snapshot build --in FILE.json --out FILE.msgpack --version N | snapshot inspect --in FILE.msgpack');

if (command === 'build') {
  const version = Number(values.version);
  if (!Number.isSafeInteger(version) || version < 1 || values.out === undefined)
    fail('build needs --out FILE and --version N (a positive integer)');
  const tables = descriptionToTables(JSON.parse(readFileSync(values.in, 'utf8')) as SnapshotDescription);
  const valid = validateSnapshot(tables);
  if (!valid.ok) fail(`invalid description: ${valid.reason}`);
  writeFileSync(values.out, encodeSnapshot(tables, version));
  process.stdout.write(`snapshot version ${version} -> ${values.out}\n`);
} else if (command === 'inspect') {
  const decoded = decodeSnapshot(readFileSync(values.in), 0);
  if (!decoded.ok) fail(`${decoded.code}: ${decoded.reason}`);
  const { tables, ...header } = decoded.snapshot;
  const valid = validateSnapshot(tables);
  const counts = Object.fromEntries(
    Object.entries(tables).map(([name, rows]) => [name, Array.isArray(rows) ? rows.length : rateRowCount(tables.rate_deck_rates)]),
  );
  process.stdout.write(`${JSON.stringify({ ...header, valid: valid.ok ? true : valid.reason, counts }, null, 2)}\n`);
} else {
  fail(`unknown command ${String(command)}`);
}
