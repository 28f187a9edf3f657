/**
 * The 150k-row CSV upload's parts, one at a time in this process (issue 21): the multipart form's read, the
 * bytes to text, csv-parse alone, the whole of parseRateCsv (csv-parse plus the checks and dates), and
 * importRates on both engines into a new deck and again over it. Each part with this process's CPU and, on
 * PostgreSQL, the server backends' (as bench/pg-store.ts): on a loaded machine the CPU is the figure to
 * compare. What is left of the HTTP upload's time (control-bench --csv-only) is the body's receipt and the answer.
 *
 *   node dist/bench/rate-import-phases.js [--rows 150000] [--rounds 3]
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { benchArgs } from './bench-args.js';
import { parse } from 'csv-parse/sync';
import pg from 'pg';
import { eachCsvRecord } from '../sync/admin/csv-records.js';
import { parseRateCsv, readMultipart } from '../sync/admin/rate-import.js';
import { parseStoreLocation } from '../sync/store/store-location.js';
import { openConfigStore } from '../sync/stores.js';
import { rateSheetCsv } from './rate-sheet.js';
import { backendCpu, newRateDeck } from './pg-bench.js';

const { values } = benchArgs({ options: { rows: { type: 'string', default: '150000' }, rounds: { type: 'string', default: '3' } } });
const SERVER = 'postgres://postgres@127.0.0.1:5432/test';
const APPLICATION = `rate-import-phases-${process.pid}`;

const totals = new Map<string, { wall: number[]; node: number[]; server: number[] }>();
async function phase<T>(admin: pg.Client, name: string, work: () => T | Promise<T>): Promise<T> {
  const server = await backendCpu(admin, APPLICATION);
  const cpu = process.cpuUsage();
  const started = performance.now();
  const result = await work();
  const wall = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  const entry = totals.get(name) ?? { wall: [], node: [], server: [] };
  entry.wall.push(wall);
  entry.node.push((used.user + used.system) / 1e6);
  entry.server.push((await backendCpu(admin, APPLICATION)) - server);
  totals.set(name, entry);
  return result;
}

const schema = `bench_${randomBytes(4).toString('hex')}`;
const admin = new pg.Client({ connectionString: SERVER });
await admin.connect();
await admin.query(`CREATE SCHEMA ${schema}`);
const dir = mkdtempSync(join(tmpdir(), 'rate-import-phases-'));
try {
  const engines = {
    sqlite: await openConfigStore(parseStoreLocation(join(dir, 'config.db'))),
    postgres: await openConfigStore(
      parseStoreLocation(`${SERVER}?options=${encodeURIComponent(`-c search_path=${schema}`)}&application_name=${APPLICATION}`),
    ),
  };
  const form = new FormData();
  form.append('file', new Blob([rateSheetCsv(Number(values.rows))], { type: 'text/csv' }), 'deck.csv');
  const request = new Request('http://bench/', { method: 'POST', body: form });
  const contentType = request.headers.get('content-type')!;
  const body = new Uint8Array(await request.arrayBuffer());
  const now = new Date().toISOString();
  for (let round = 0; round < Number(values.rounds); round++) {
    const { file } = await phase(admin, 'multipart', () => readMultipart({ contentType, body }));
    const text = await phase(admin, 'utf8', () => file!.toString('utf8'));
    await phase(admin, 'csv-parse alone', (): unknown =>
      parse(text, { bom: true, relax_column_count: true, skip_empty_lines: true, trim: true }),
    );
    await phase(admin, 'eachCsvRecord', () =>
      eachCsvRecord(
        text,
        () => undefined,
        () => undefined,
      ),
    );
    const { rows, errors } = await phase(admin, 'parseRateCsv', () => parseRateCsv(text, now));
    if (errors.length > 0) throw new Error(errors[0]);
    for (const [engine, handle] of Object.entries(engines)) {
      const deck = await newRateDeck(handle.config, 'USD');
      await phase(admin, `${engine} importRates new deck`, () => handle.config.importRates(deck, rows, 'error'));
      await phase(admin, `${engine} importRates overwrite`, () => handle.config.importRates(deck, rows, 'overwrite'));
    }
  }
  const median = (list: number[]): string => [...list].sort((a, b) => a - b)[Math.floor(list.length / 2)].toFixed(2);
  for (const [name, { wall, node, server }] of totals)
    console.log(
      `${name.padEnd(34)} wall ${median(wall)} s  CPU node ${median(node)} s  server ${median(server)} s  (median of ${wall.length})`,
    );
  for (const handle of Object.values(engines)) await handle.close();
} finally {
  await admin.query(`DROP SCHEMA ${schema} CASCADE`);
  await admin.end();
  rmSync(dir, { recursive: true, force: true });
}
