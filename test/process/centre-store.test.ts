import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { MIGRATIONS } from '../../sync/store/migrations.js';
import { SYNC_LOCK_CLASS } from '../../sync/store/pg-sync-lock.js';
import { SidecarProcess } from '../helpers/sidecar.js';
import { postgresUnreachable, scratchSchema, type ScratchSchema } from '../helpers/postgres.js';

/**
 * The control plane's commands on a PostgreSQL store, as an operator runs them: `migrate` creates the
 * schema (and is a no-op the second time), `sync-run` works on it (one at a time), and `serve` answers the
 * admin API from it, never showing the password.
 */
const LATEST = MIGRATIONS[MIGRATIONS.length - 1].version;
const MAIN = join(import.meta.dirname, '../../sync/main.js');
const LOCK_MODULE = join(import.meta.dirname, '../../sync/store/pg-sync-lock.js');
const unreachable = await postgresUnreachable();

function control(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const dataDir = mkdtempSync(join(tmpdir(), 'centre-store-'));
  const result = spawnSync(process.execPath, [MAIN, ...args, '--data-dir', dataDir, '--log-level', 'silent'], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH },
    timeout: 60_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('the centre on a PostgreSQL store', { skip: unreachable ?? false }, () => {
  let scratch: ScratchSchema;
  /** The scratch schema's URL with a password in it (trust auth ignores it), to see that it is never shown. */
  let url: string;
  before(async () => {
    scratch = await scratchSchema('centre');
    const withPassword = new URL(scratch.url);
    withPassword.password = 'hunter2';
    url = withPassword.toString();
  });
  after(() => scratch.drop());

  it('migrate creates the schema once, and again changes nothing', async () => {
    const first = control(['migrate', '--store', url]);
    assert.equal(first.status, 0, first.stderr);
    const shown = JSON.parse(first.stdout) as { store: string; schema_version: number };
    assert.equal(shown.schema_version, LATEST);
    assert.ok(!shown.store.includes('hunter2'));
    const client = new pg.Client({ connectionString: scratch.url });
    await client.connect();
    const applied = async (): Promise<string[]> =>
      (await client.query<{ applied_at: string }>('SELECT applied_at FROM schema_migrations ORDER BY version')).rows.map(
        (r) => r.applied_at,
      );
    const before = await applied();
    assert.equal(before.length, MIGRATIONS.length);
    const second = control(['migrate', '--store', url]);
    assert.equal(second.status, 0, second.stderr);
    assert.deepEqual(await applied(), before);
    await client.end();
  });

  it('sync-run builds and records a snapshot from the PostgreSQL store', () => {
    const run = control(['sync-run', '--store', url]);
    assert.equal(run.status, 0, run.stderr);
    const report = JSON.parse(run.stdout) as { snapshot_version: number };
    assert.ok(report.snapshot_version >= 1);
  });

  it('runs one sync at a time on a shared store: refused while another control plane holds the sync lock, run once it is killed', async () => {
    // The holder: another process that took the lock as a sync-run does, then hangs.
    const holder = spawn(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `import { PgSyncLock } from ${JSON.stringify(pathToFileURL(LOCK_MODULE).href)};
         const lock = await PgSyncLock.tryTake(${JSON.stringify(scratch.url)});
         console.log(lock === null ? 'refused' : 'held');
         setInterval(() => {}, 60_000);`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const [said] = (await once(holder.stdout, 'data')) as [Buffer];
    assert.equal(said.toString().trim(), 'held');
    const refused = control(['sync-run', '--store', url]);
    assert.equal(refused.status, 1);
    assert.match(refused.stderr, /another control plane is running the sync .* nothing done/);
    assert.ok(!refused.stderr.includes('hunter2'));
    const watcher = new pg.Client({ connectionString: scratch.url });
    await watcher.connect();
    const held = async (): Promise<boolean> =>
      (
        await watcher.query(
          "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND classid = $1::oid AND objid::int8 = (hashtext(current_schema())::int8 & 4294967295)",
          [SYNC_LOCK_CLASS],
        )
      ).rows.length > 0;
    assert.equal(await held(), true, 'the holder holds it, as pg_locks shows');
    // kill -9: the server sees the connection close and frees the lock; waited for, then the next sync runs.
    holder.kill('SIGKILL');
    await once(holder, 'exit');
    for (let tries = 0; await held(); tries++) {
      assert.ok(tries < 200, 'the lock of a killed holder is freed within seconds');
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    await watcher.end();
    const run = control(['sync-run', '--store', url]);
    assert.equal(run.status, 0, run.stderr);
  });

  it('serves on PostgreSQL, its log naming the store without its password', async () => {
    const centre = await SidecarProcess.startControlPlane({ args: ['--store', url] });
    try {
      assert.equal((await centre.get('/api/health')).status, 200);
      const listening = await centre.waitForLog((line) => line.includes('control plane listening'));
      assert.equal((JSON.parse(listening) as { schema_version: number }).schema_version, LATEST);
      assert.ok(!centre.logs.join('\n').includes('hunter2'));
      // The admin API is answered from the PostgreSQL store.
      const rule = await centre.post('/api/block-rules', {
        scope: 'global',
        block_type: 'dnis',
        pattern: '61400777',
        match_type: 'prefix',
      });
      assert.equal(rule.status, 201, JSON.stringify(rule.body));
      const client = new pg.Client({ connectionString: scratch.url });
      await client.connect();
      const stored = await client.query("SELECT 1 FROM block_rules WHERE pattern = '61400777'");
      await client.end();
      assert.equal(stored.rows.length, 1);
    } finally {
      await centre.kill();
    }
  });
});

describe('the centre given a store it cannot use', () => {
  it('refuses a URL of another engine at start', () => {
    const run = control(['migrate', '--store', 'mysql://root:pw@127.0.0.1:3306/test']);
    assert.equal(run.status, 1);
    assert.match(run.stderr, /is neither a file path, sqlite:<path> nor postgres/);
    assert.ok(!run.stderr.includes(':pw@'));
  });
});
