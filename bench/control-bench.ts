/**
 * Control-plane figures: a routing sync of the wholesale world (2M rate rows)
 * to 3 local sidecars, with drouting written and reloaded on 3 nodes (MI test
 * doubles), end to end through the admin API; and a 150k-row CSV deck upload.
 *
 * With --load-rate N, route traffic runs against the first sidecar at N
 * requests/s (open loop, a separate process) through a second sync that
 * follows a rate change: the sync under load.
 *
 * With --engines sqlite,postgres the same world is built and measured once per
 * engine of the centre's store, one after the other in the same run, and the
 * result gives PostgreSQL's cold sync over SQLite's (issue 21's target: within
 * 1.2x). PostgreSQL's store is a database of its own on the --postgres server,
 * dropped after.
 *
 * With --csv-only the world is not built: a control plane alone on an empty store takes the CSV upload,
 * --csv-runs times (each into a new deck), with the control plane's CPU for each: seconds, not minutes.
 *
 *   node dist/bench/control-bench.js [--size wholesale] [--csv-rows 150000] [--load-rate 5000]
 *     [--engines sqlite,postgres] [--postgres postgres://postgres@127.0.0.1:5432/test] [--csv-only [--csv-runs 3]]
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchArgs } from './bench-args.js';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { openConfigStore } from '../sync/stores.js';
import { parseStoreLocation } from '../sync/store/store-location.js';
import { seedStore } from '../sync/admin/seed.js';
import { FakeOpensipsMi } from '../src/devkit/fake-opensips-mi.js';
import { generateDataset, SIZES } from '../src/devkit/dataset.js';
import { CONTROL_MAIN, SIDECAR_MAIN } from '../src/devkit/paths.js';
import { rateSheetCsv } from './rate-sheet.js';
import { reportResult } from './results.js';
import { startService, type ServiceProcess } from '../src/devkit/service-process.js';

const HERE = fileURLToPath(new URL('.', import.meta.url));

/** [user, system] CPU seconds a process has used so far. */
function cpuSeconds(pid: number): [number, number] {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return [Number(fields[11]) / 100, Number(fields[12]) / 100];
}

// The control plane's "routing sync done" line carries the sync's phase timings.
const start = (script: string, args: string[], ready: string): Promise<ServiceProcess> =>
  startService(script, args, ready, { onLine: (line) => line.includes('routing sync done') && process.stderr.write(`${line}\n`) });

interface Options {
  size: string;
  'csv-rows': string;
  'load-rate': string;
  'csv-only': boolean;
  'csv-runs': string;
}

/** A carrier's rate sheet of `rows` rows as a CSV upload into a fresh deck: the answer, and the control plane's CPU seconds. */
async function uploadCsv(
  base: string,
  controlPid: number,
  rows: number,
): Promise<{ seconds: number; count: number; status: number; cpu: number }> {
  const deck = (await (
    await fetch(`${base}/api/rate-decks`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'CSV bench', deck_type: 'carrier', currency: 'USD' }),
    })
  ).json()) as { id: number };
  const form = new FormData();
  form.append('file', new Blob([rateSheetCsv(rows)], { type: 'text/csv' }), 'deck.csv');
  const [user, system] = cpuSeconds(controlPid);
  const started = performance.now();
  const upload = await fetch(`${base}/api/rate-decks/${deck.id}/rates/csv`, { method: 'POST', body: form });
  const body = (await upload.json()) as { count: number };
  const seconds = (performance.now() - started) / 1000;
  const [userAfter, systemAfter] = cpuSeconds(controlPid);
  return { seconds, count: body.count, status: upload.status, cpu: userAfter - user + systemAfter - system };
}

/** --csv-only: a control plane alone on an empty store (`store` as for measure), the upload `runs` times. */
async function measureCsv(values: Options, store: string | null): Promise<Record<string, unknown>> {
  const dir = mkdtempSync(join(tmpdir(), 'control-bench-'));
  const control = await start(
    CONTROL_MAIN,
    ['--port', '0', '--data-dir', join(dir, 'control'), ...(store === null ? [] : ['--store', store])],
    'control plane listening',
  );
  try {
    const uploads = [];
    for (let run = 0; run < Number(values['csv-runs']); run++)
      uploads.push(await uploadCsv(`http://127.0.0.1:${control.port}`, control.child.pid!, Number(values['csv-rows'])));
    return {
      csv_rows: uploads[0].count,
      csv_status: uploads[0].status,
      csv_seconds: Math.min(...uploads.map((upload) => Math.round(upload.seconds * 100) / 100)),
      csv_seconds_each: uploads.map((upload) => Math.round(upload.seconds * 100) / 100),
      csv_control_cpu_seconds_each: uploads.map((upload) => Math.round(upload.cpu * 100) / 100),
    };
  } finally {
    await new Promise((resolve) => control.child.once('exit', resolve).kill());
    rmSync(dir, { recursive: true, force: true });
  }
}

/** One world on one store (`store`: the centre's --store, or null for its data dir's SQLite file): its figures. */
async function measure(values: Options, store: string | null): Promise<Record<string, unknown>> {
  const dir = mkdtempSync(join(tmpdir(), 'control-bench-'));
  const storeArg = store ?? join(dir, 'control', 'config.db');
  const stores = await openConfigStore(parseStoreLocation(storeArg));
  const config = stores.config;
  let started = performance.now();
  const dataset = generateDataset(SIZES[values.size]);
  await seedStore(config, dataset.tables);
  const seedSeconds = (performance.now() - started) / 1000;
  const rateRows = dataset.tables.rate_deck_rates.prefix_end.length;

  const sidecars = await Promise.all(
    [1, 2, 3].map((n) => start(SIDECAR_MAIN, ['--port', '0', '--data-dir', join(dir, `sidecar-${n}`)], 'sidecar listening')),
  );
  const mi = [1, 2, 3].map((n) => new FakeOpensipsMi(join(dir, `opensips-${n}.sqlite`)));
  const now = new Date().toISOString();
  for (let n = 1; n <= 3; n++) {
    await config.insert('opensips_nodes', {
      hostname: `opensips-0${n}`,
      mi_socket_address: await mi[n - 1].startHttp(),
      sidecar_address: `http://127.0.0.1:${sidecars[n - 1].port}`,
      drouting_db: join(dir, `opensips-${n}.sqlite`),
      status: 'active',
      created_at: now,
      updated_at: now,
    });
  }
  await stores.close();
  // The nodes' drouting databases are in `dir`: the control plane may touch node files under its roots only.
  const control = await start(
    CONTROL_MAIN,
    ['--port', '0', '--data-dir', join(dir, 'control'), '--node-files-root', dir, '--store', storeArg],
    'control plane listening',
  );
  const base = `http://127.0.0.1:${control.port}`;

  const processes = {
    control: control.child.pid!,
    ...Object.fromEntries(sidecars.map((sidecar, n) => [`sidecar_${n + 1}`, sidecar.child.pid!])),
  };
  const cpuBefore = Object.fromEntries(Object.entries(processes).map(([name, pid]) => [name, cpuSeconds(pid)]));
  started = performance.now();
  const sync = (await (await fetch(`${base}/api/opensips/routing/sync`, { method: 'POST' })).json()) as {
    rules: number;
    sidecar_results: { success: boolean; duration_ms: number; error: string | null }[];
    reload_results: { success: boolean; duration_ms: number }[];
  };
  const syncSeconds = (performance.now() - started) / 1000;
  // Where the cold sync's CPU went, per process: [user, system] seconds.
  const syncCpu = Object.fromEntries(
    Object.entries(processes).map(([name, pid]) => {
      const [user, system] = cpuSeconds(pid);
      return [name, [Math.round((user - cpuBefore[name][0]) * 100) / 100, Math.round((system - cpuBefore[name][1]) * 100) / 100]];
    }),
  );

  // A warm sync after an everyday change, blocking a number: no rate row changes (the store's cache serves
  // the rate columns) and drouting cannot express block rules (its rows are reused, the nodes not reloaded).
  await fetch(`${base}/api/block-rules`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ scope: 'global', block_type: 'dnis', pattern: '61299999999', match_type: 'exact' }),
  });
  started = performance.now();
  await (await fetch(`${base}/api/opensips/routing/sync`, { method: 'POST' })).json();
  const warmSyncSeconds = (performance.now() - started) / 1000;

  // A sync under load: a rate changes (so the rate columns are read again and drouting rebuilt) while route
  // traffic runs against a sidecar that receives the new snapshot.
  let underLoad: Record<string, unknown> | null = null;
  const loadRate = Number(values['load-rate']);
  if (loadRate > 0) {
    const requestsFile = join(dir, 'route-requests.json');
    const { callers, numbers } = dataset.traffic;
    writeFileSync(
      requestsFile,
      JSON.stringify(
        numbers
          .slice(0, 5000)
          .map((dnis, i) => [
            '/api/opensips/call/route',
            JSON.stringify({ customer_trunk_id: callers[i % callers.length][2], ani: '61255500100', dnis, attempt: 1 }),
          ]),
      ),
    );
    const seconds = 20;
    const load = new Promise<string>((resolve, reject) => {
      const child = spawn(
        process.execPath,
        [
          join(HERE, 'load.js'),
          '--port',
          String(sidecars[0].port),
          '--rate',
          String(loadRate),
          '--seconds',
          String(seconds),
          '--connections',
          '32',
          '--requests',
          requestsFile,
        ],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      );
      let out = '';
      child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
      child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`load exited with ${code}`))));
    });
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const firstRate = (await (await fetch(`${base}/api/rate-decks/1/rates?page=1&page_size=1`)).json()) as { data: { id: number }[] };
    await fetch(`${base}/api/rate-decks/1/rates/${firstRate.data[0].id}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ rate_per_minute: '0.0199' }),
    });
    started = performance.now();
    const loadedSync = (await (await fetch(`${base}/api/opensips/routing/sync`, { method: 'POST' })).json()) as {
      sidecar_results: { success: boolean }[];
    };
    const loadedSyncSeconds = (performance.now() - started) / 1000;
    underLoad = {
      load_rate: loadRate,
      sync_seconds: Math.round(loadedSyncSeconds * 100) / 100,
      sidecars_ok: loadedSync.sidecar_results.filter((node) => node.success).length,
      route_load: JSON.parse(await load) as unknown,
    };
  }

  // A carrier's 150k-row rate sheet as a CSV upload into a fresh deck.
  const upload = await uploadCsv(base, control.child.pid!, Number(values['csv-rows']));

  await Promise.all([...sidecars, control].map(({ child }) => new Promise((resolve) => child.once('exit', resolve).kill())));
  for (const fake of mi) fake.close();
  // 1.3 GB of stores, snapshots and drouting databases per run: left behind, they fill the disk and the
  // writeback of one run's files slows the next.
  rmSync(dir, { recursive: true, force: true });
  return {
    rate_rows: rateRows,
    seed_seconds: Math.round(seedSeconds * 10) / 10,
    sync_seconds: Math.round(syncSeconds * 100) / 100,
    sync_cpu_user_system_seconds: syncCpu,
    warm_sync_seconds: Math.round(warmSyncSeconds * 100) / 100,
    drouting_rules: sync.rules,
    sidecars_ok: sync.sidecar_results.filter((node) => node.success).length,
    sidecar_push_ms: sync.sidecar_results.map((node) => node.duration_ms),
    // A push that failed timed nothing worth comparing: why, so that a run with failures is not read as a figure.
    sidecar_errors: sync.sidecar_results.filter((node) => !node.success).map((node) => node.error),
    reloads_ok: sync.reload_results.filter((node) => node.success).length,
    reload_ms: sync.reload_results.map((node) => node.duration_ms),
    csv_rows: upload.count,
    csv_status: upload.status,
    csv_seconds: Math.round(upload.seconds * 100) / 100,
    sync_under_route_load: underLoad,
  };
}

async function main(): Promise<void> {
  const { values } = benchArgs({
    options: {
      size: { type: 'string', default: 'wholesale' },
      'csv-rows': { type: 'string', default: '150000' },
      'load-rate': { type: 'string', default: '0' },
      engines: { type: 'string', default: 'sqlite' },
      postgres: { type: 'string', default: 'postgres://postgres@127.0.0.1:5432/test' },
      'csv-only': { type: 'boolean', default: false },
      'csv-runs': { type: 'string', default: '3' },
    },
  });
  const run = values['csv-only'] ? measureCsv : measure;
  const command = `node dist/bench/control-bench.js ${process.argv.slice(2).join(' ')}`.trim();
  const engines = values.engines.split(',');
  if (engines.some((engine) => engine !== 'sqlite' && engine !== 'postgres')) throw new Error(`--engines: sqlite and/or postgres`);
  // SQLite alone: the result as make bench has always kept it (docs/performance.md reads it).
  if (engines.length === 1 && engines[0] === 'sqlite') {
    reportResult(values['csv-only'] ? 'control-csv' : 'control', command, await run(values, null));
    return;
  }
  const results: Partial<Record<'sqlite' | 'postgres', Record<string, unknown>>> = {};
  for (const engine of engines) {
    if (engine === 'sqlite') {
      results.sqlite = await run(values, null);
      continue;
    }
    const name = `control_bench_${randomBytes(4).toString('hex')}`;
    const admin = new pg.Client({ connectionString: values.postgres });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${name}`);
    try {
      const url = new URL(values.postgres);
      url.pathname = `/${name}`;
      results.postgres = await run(values, url.toString());
    } finally {
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.end();
    }
  }
  const ratio = (key: string): number | null =>
    results.sqlite === undefined || results.postgres === undefined
      ? null
      : Math.round(((results.postgres[key] as number) / (results.sqlite[key] as number)) * 100) / 100;
  reportResult(values['csv-only'] ? 'control-csv-engines' : 'control-engines', command, {
    ...results,
    postgres_over_sqlite_sync: values['csv-only'] ? null : ratio('sync_seconds'),
    postgres_over_sqlite_csv: ratio('csv_seconds'),
  });
}

main().catch((error: unknown) => {
  process.stderr.write(`control bench failed: ${String(error)}\n`);
  process.exit(1);
});
