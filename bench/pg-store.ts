/**
 * The configuration store on PostgreSQL against SQLite, in the same run (issue 21's targets): a CSV-sized
 * rate import (150k rows, importRates) and the snapshot's read of every rate row (2M rows, readRoutingData).
 * For the import, PostgreSQL's COPY is timed too, as psql's \copy of the same rows into a copy of the table
 * (no conflict check: the floor any COPY-based import would stand on). Needs the machine's PostgreSQL
 * (postgres@127.0.0.1:5432, database test; a scratch schema, dropped after) and psql.
 *
 * Each timing comes with the CPU it took: this process's, and for PostgreSQL the store's server backends'
 * (their /proc times, so the server must be on this machine): on a shared machine the wall clock moves with
 * the load and the CPU much less. `--read-rows 0` leaves the read out; `--repeat n` imports n times over.
 *
 *   node dist/bench/pg-store.js [--import-rows 150000] [--read-rows 2000000] [--repeat 1]
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { benchArgs } from './bench-args.js';
import pg from 'pg';
import type { ImportedRate } from '../sync/store/config-store.js';
import { parseStoreLocation } from '../sync/store/store-location.js';
import { openConfigStore } from '../sync/stores.js';
import { backendCpu, newRateDeck } from './pg-bench.js';

const { values } = benchArgs({
  options: {
    'import-rows': { type: 'string', default: '150000' },
    'read-rows': { type: 'string', default: '2000000' },
    repeat: { type: 'string', default: '1' },
  },
});
const importRows = Number(values['import-rows']);
const readRows = Number(values['read-rows']);
const repeat = Number(values.repeat);
const SERVER = 'postgres://postgres@127.0.0.1:5432/test';
/** The store's connections name themselves, so that their server backends' CPU can be found. */
const APPLICATION = `pg-store-bench-${process.pid}`;

function rates(count: number, base: number): ImportedRate[] {
  return Array.from({ length: count }, (_, i) => ({
    prefix: String(base + i),
    destination_name: `Destination ${i % 2000}`,
    rate_per_minute: `0.${String(1000 + (i % 9000)).padStart(4, '0')}`,
    rate_type: 'per_minute',
    billing_increment_initial: i % 3 === 0 ? 60 : null,
    billing_increment_step: i % 3 === 0 ? 60 : null,
    effective_at: '2026-01-01T00:00:00.000Z',
  }));
}

/** CPU seconds (user + system) the store's server backends have used so far: 0 where none is connected. */
interface Timing {
  seconds: number;
  /** This process's CPU seconds. */
  client: number;
  /** The store's server backends' CPU seconds (PostgreSQL only). */
  server: number;
}

const show = (t: Timing): string => `${t.seconds.toFixed(2)} s (CPU: node ${t.client.toFixed(2)} s, server ${t.server.toFixed(2)} s)`;

async function timed<T>(admin: pg.Client, work: () => Promise<T>): Promise<[Timing, T]> {
  const serverBefore = await backendCpu(admin, APPLICATION);
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  const result = await work();
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  return [{ seconds, client: (cpu.user + cpu.system) / 1e6, server: (await backendCpu(admin, APPLICATION)) - serverBefore }, result];
}

const schema = `bench_${randomBytes(4).toString('hex')}`;
const admin = new pg.Client({ connectionString: SERVER });
await admin.connect();
await admin.query(`CREATE SCHEMA ${schema}`);
const dir = mkdtempSync(join(tmpdir(), 'pg-store-bench-'));
const pgUrl = `${SERVER}?options=${encodeURIComponent(`-c search_path=${schema}`)}&application_name=${APPLICATION}`;
try {
  const engines = {
    sqlite: await openConfigStore(parseStoreLocation(join(dir, 'config.db'))),
    postgres: await openConfigStore(parseStoreLocation(pgUrl)),
  };
  const imported = rates(importRows, 100_000_000);
  for (let round = 0; round < repeat; round++) {
    for (const [engine, handle] of Object.entries(engines)) {
      const deck = await newRateDeck(handle.config, 'AUD');
      const [first, counts] = await timed(admin, () => handle.config.importRates(deck, imported, 'error'));
      console.log(`${engine} importRates ${importRows} rows (new deck): ${show(first)} ${JSON.stringify(counts)}`);
      const [again] = await timed(admin, () => handle.config.importRates(deck, imported, 'overwrite'));
      console.log(`${engine} importRates ${importRows} rows again, overwrite: ${show(again)}`);
    }
  }
  // COPY's floor: the same rows as text, into a table like rate_deck_rates, by psql.
  const tsv = join(dir, 'rates.tsv');
  const now = new Date().toISOString();
  writeFileSync(
    tsv,
    imported
      .map((r) =>
        [
          1,
          r.prefix,
          r.destination_name,
          r.rate_per_minute,
          r.rate_type,
          r.billing_increment_initial ?? '\\N',
          r.billing_increment_step ?? '\\N',
          r.effective_at,
          now,
          now,
        ].join('\t'),
      )
      .join('\n') + '\n',
  );
  await admin.query(`CREATE TABLE ${schema}.copy_target (LIKE ${schema}.rate_deck_rates INCLUDING ALL)`);
  const [copy] = await timed(admin, () => {
    execFileSync('psql', [
      SERVER,
      '-q',
      '-c',
      `\\copy ${schema}.copy_target (rate_deck_id, prefix, destination_name, rate_per_minute, rate_type, billing_increment_initial, billing_increment_step, effective_at, created_at, updated_at) FROM '${tsv}'`,
    ]);
    return Promise.resolve();
  });
  console.log(`postgres COPY (psql \\copy) ${importRows} rows: ${copy.seconds.toFixed(2)} s`);

  // The snapshot's read: fill both stores to readRows rows, then read every row three times.
  for (const [engine, handle] of readRows > 0 ? Object.entries(engines) : []) {
    const have = (await handle.config.list('rate_deck_rates', { where: {}, limit: 0, offset: 0 })).total;
    const deck = await newRateDeck(handle.config, 'AUD');
    for (let done = have; done < readRows; done += 200_000)
      await handle.config.importRates(deck, rates(Math.min(200_000, readRows - done), 200_000_000 + done), 'error');
    const times: string[] = [];
    let rows = 0;
    for (let i = 0; i < 3; i++) {
      // SQLite would answer from its cache: dropped, so both engines read every row.
      (handle.config as { ratesWrittenElsewhere?: () => void }).ratesWrittenElsewhere?.();
      const [time, data] = await timed(admin, () => handle.config.readRoutingData([]));
      rows = data.rates.prefix_end.length;
      times.push(show(time));
    }
    console.log(`${engine} readRoutingData, ${rows} rate rows (cache dropped each time): ${times.join(', ')} s`);
  }
  for (const handle of Object.values(engines)) await handle.close();
} finally {
  await admin.query(`DROP SCHEMA ${schema} CASCADE`);
  await admin.end();
  rmSync(dir, { recursive: true, force: true });
}
