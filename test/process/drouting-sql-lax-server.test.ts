import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import type { DroutingData } from '../../sync/drouting/rules.js';
import { writeDroutingSql } from '../../sync/drouting/sql-writer.js';

/**
 * A node's MariaDB configured as some are: sql_mode '' (not strict) and local_infile off (MySQL 8's default),
 * so the writer takes the batched INSERTs and the server, left to itself, stores what it cannot hold changed
 * with a warning. A private server (the machine's shared one keeps its strict mode: other tests use it).
 */

const free = (): Promise<number> =>
  new Promise((resolve) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });

describe('drouting SQL writer on a MariaDB that is not strict', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dr-lax-'));
  let server: ChildProcess | null = null;
  let url = '';

  before(async () => {
    const data = join(dir, 'data');
    const install = spawnSync('mariadb-install-db', ['--no-defaults', `--datadir=${data}`, '--auth-root-authentication-method=normal'], {
      encoding: 'utf8',
    });
    assert.equal(install.status, 0, install.stderr);
    const port = await free();
    server = spawn(
      'mariadbd',
      [
        '--no-defaults',
        `--datadir=${data}`,
        `--port=${port}`,
        '--bind-address=127.0.0.1',
        `--socket=${join(dir, 'sock')}`,
        `--pid-file=${join(dir, 'pid')}`,
        '--sql-mode=',
        '--local-infile=0',
        '--skip-grant-tables',
        '--skip-log-bin',
        '--innodb-buffer-pool-size=16M',
        ...(process.getuid?.() === 0 ? ['--user=root'] : []),
      ],
      { stdio: 'ignore' },
    );
    url = `mysql://root@127.0.0.1:${port}/drouting`;
    for (let attempt = 0; ; attempt++) {
      try {
        const admin = await mysql.createConnection({ host: '127.0.0.1', port, user: 'root' });
        await admin.query('CREATE DATABASE drouting CHARACTER SET latin1');
        await admin.end();
        break;
      } catch (error) {
        if (attempt === 100) throw error;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  });
  after(async () => {
    if (server !== null && server.exitCode === null) {
      const exited = new Promise((resolve) => server!.once('exit', resolve));
      server.kill();
      await exited; // its files are still being written until then
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses, whole, rows the database would store changed, as a strict one does', async () => {
    const rows = (grp: number, description: string): DroutingData => ({
      gateways: [
        {
          gwid: 'gw1',
          type: 0,
          address: '198.51.100.1:5060',
          strip: 0,
          pri_prefix: null,
          attrs: '1',
          probe_mode: 0,
          state: 0,
          socket: null,
          description,
        },
      ],
      carriers: [],
      rules: [],
      groups: [],
      addresses: [{ grp, ip: '203.0.113.0', mask: 24, port: 0, proto: 'any', pattern: null, context_info: '10' }],
    });
    const target = { kind: 'mysql' as const, url, shown: 'lax' };
    await writeDroutingSql(target, rows(7, 'Carrier A'));
    // address.grp is SMALLINT UNSIGNED: 70000 would be stored as 65535, another deck's group.
    await assert.rejects(writeDroutingSql(target, rows(70_000, 'Carrier A')), /grp|range/i);
    // Ω has no latin1 form: it would be stored as ?.
    await assert.rejects(writeDroutingSql(target, rows(7, 'Ωmega')), /description|incorrect string/i);
    const connection = await mysql.createConnection({ uri: url });
    try {
      const [addresses] = await connection.query('SELECT grp FROM address');
      const [gateways] = await connection.query('SELECT description FROM dr_gateways');
      assert.deepEqual([addresses, gateways], [[{ grp: 7 }], [{ description: 'Carrier A' }]]);
    } finally {
      await connection.end();
    }
  });
});
