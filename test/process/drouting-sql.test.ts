import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { FakeOpensipsMi } from '../../src/devkit/fake-opensips-mi.js';
import { assertErrorResponse } from '../helpers/errors.js';
import { SidecarProcess } from '../helpers/sidecar.js';

/**
 * drouting written into OpenSIPS nodes that read it from MariaDB and PostgreSQL (the machine's real
 * servers, a scratch database each per run), beside a node on SQLite: the same rows land in all three,
 * a second sync replaces them, a database that refuses the write (a wrong password, a table without a
 * column we write, a column too narrow for a rule mid-transaction) fails that node alone with its rows
 * as they were, and the password never shows in the sync report or the control plane's log.
 */

const MARIADB = 'mysql://root@127.0.0.1:3306';
const POSTGRES = 'postgres://postgres@127.0.0.1:5432';
const suffix = randomBytes(4).toString('hex');
// Four scratch databases: the good MariaDB and PostgreSQL nodes, and the two that refuse the write.
const names = { maria: `dr_test_${suffix}_m`, pg: `dr_test_${suffix}_p`, narrow: `dr_test_${suffix}_n`, noColumn: `dr_test_${suffix}_c` };

type Row = Record<string, unknown>;
/** Columns compared: every column but the auto-increment ids, which each engine numbers its own way. */
const COLUMNS: Record<string, string> = {
  dr_gateways: 'gwid, type, address, strip, pri_prefix, attrs, probe_mode, state, socket, description',
  dr_carriers: 'carrierid, gwlist, flags, sort_alg, state, attrs, description',
  dr_rules: 'groupid, prefix, timerec, priority, routeid, gwlist, sort_alg, sort_profile, attrs, description',
  dr_groups: 'username, domain, groupid, description',
  address: 'grp, ip, mask, port, proto, pattern, context_info',
  version: 'table_name, table_version',
};

/** A table's rows as sorted JSON lines, numbers as numbers whatever the driver returned. */
function rowSet(rows: Row[]): string[] {
  return rows
    .map((row) =>
      JSON.stringify(
        Object.fromEntries(Object.entries(row).map(([key, value]) => [key, typeof value === 'bigint' ? Number(value) : value])),
      ),
    )
    .sort();
}

async function mariadb(database: string): Promise<mysql.Connection> {
  return mysql.createConnection({ uri: `${MARIADB}/${database}` });
}

async function postgres(database: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: `${POSTGRES}/${database}` });
  await client.connect();
  return client;
}

async function mariaRows(database: string, table: string): Promise<string[]> {
  const connection = await mariadb(database);
  try {
    return rowSet((await connection.query(`SELECT ${COLUMNS[table]} FROM ${table}`))[0] as Row[]);
  } finally {
    await connection.end();
  }
}

async function pgRows(database: string, table: string): Promise<string[]> {
  const client = await postgres(database);
  try {
    return rowSet((await client.query(`SELECT ${COLUMNS[table]} FROM ${table}`)).rows);
  } finally {
    await client.end();
  }
}

async function counts(read: (table: string) => Promise<string[]>): Promise<{ gateways: number; carriers: number; rules: number }> {
  return {
    gateways: (await read('dr_gateways')).length,
    carriers: (await read('dr_carriers')).length,
    rules: (await read('dr_rules')).length,
  };
}

describe('drouting into MariaDB and PostgreSQL node databases', () => {
  const nodeDir = mkdtempSync(join(tmpdir(), 'drouting-sql-'));
  const sqliteDb = join(nodeDir, 'opensips.sqlite');
  const sqliteRows = (table: string): string[] => {
    const db = new Database(sqliteDb, { readonly: true });
    try {
      return rowSet(db.prepare(`SELECT ${COLUMNS[table]} FROM ${table}`).all() as Row[]);
    } finally {
      db.close();
    }
  };
  // Each node's OpenSIPS, counting what it loads from its own database when told dr_reload.
  const mi = {
    sqlite: new FakeOpensipsMi(sqliteDb),
    maria: new FakeOpensipsMi(() => counts((table) => mariaRows(names.maria, table))),
    pg: new FakeOpensipsMi(() => counts((table) => pgRows(names.pg, table))),
    badPassword: new FakeOpensipsMi(null),
    narrow: new FakeOpensipsMi(() => counts((table) => mariaRows(names.narrow, table))),
    noColumn: new FakeOpensipsMi(() => counts((table) => pgRows(names.noColumn, table))),
  };
  const miUrl: Record<string, string> = {};
  let control: SidecarProcess;
  let carrierId = 0;
  let sellDeck = 0;

  before(async () => {
    const admin = await mariadb('test');
    for (const name of [names.maria, names.narrow]) await admin.query(`CREATE DATABASE ${name}`);
    await admin.end();
    const pgAdmin = await postgres('test');
    for (const name of [names.pg, names.noColumn]) await pgAdmin.query(`CREATE DATABASE ${name}`);
    await pgAdmin.end();
    // A node database whose rules table cannot take a real prefix (one character): the write fails after
    // it has already emptied the tables and inserted the gateways, inside the transaction.
    const narrow = await mariadb(names.narrow);
    await narrow.query(
      "CREATE TABLE dr_rules (ruleid INT UNSIGNED AUTO_INCREMENT PRIMARY KEY, groupid CHAR(255) NOT NULL, prefix CHAR(1) NOT NULL, timerec CHAR(255), priority INT DEFAULT 0 NOT NULL, routeid CHAR(255), gwlist CHAR(255), sort_alg CHAR(1) DEFAULT 'N' NOT NULL, sort_profile INT UNSIGNED, attrs CHAR(255), description CHAR(128)) ENGINE=InnoDB",
    );
    await narrow.end();
    // A node database whose dr_rules lacks a column we write (an older or hand-made schema).
    const noColumn = await postgres(names.noColumn);
    await noColumn.query(
      "CREATE TABLE dr_rules (ruleid SERIAL PRIMARY KEY, groupid VARCHAR(255) NOT NULL, prefix VARCHAR(64) NOT NULL, timerec VARCHAR(255), priority INTEGER DEFAULT 0 NOT NULL, routeid VARCHAR(255), gwlist VARCHAR(255), sort_alg VARCHAR(1) DEFAULT 'N' NOT NULL, attrs VARCHAR(255), description VARCHAR(128))",
    );
    await noColumn.end();
    for (const [name, fake] of Object.entries(mi)) miUrl[name] = await fake.startHttp();
    control = await SidecarProcess.startControlPlane({
      // drouting follows live changes only at syncs here: the test counts each node's reloads.
      args: ['--mi-timeout-ms', '5000', '--node-files-root', nodeDir, '--node-hosts', '127.0.0.1', '--drouting-follow-seconds', '0'],
    });
  });

  after(async () => {
    for (const fake of Object.values(mi)) fake.close();
    await control.kill();
    const admin = await mariadb('test');
    for (const name of [names.maria, names.narrow]) await admin.query(`DROP DATABASE IF EXISTS ${name}`);
    await admin.end();
    const pgAdmin = await postgres('test');
    for (const name of [names.pg, names.noColumn]) await pgAdmin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await pgAdmin.end();
  });

  const created = async (path: string, body: unknown): Promise<any> => {
    const response = await control.send('POST', path, body);
    assert.equal(response.status, 201, `${path}: ${JSON.stringify(response.body)}`);
    return response.body;
  };
  const sync = async (): Promise<any> => {
    const response = await control.send('POST', '/api/opensips/routing/sync');
    assert.equal(response.status, 200, JSON.stringify(response.body));
    return response.body;
  };
  const results = (report: any): Record<string, [boolean, string | null]> =>
    Object.fromEntries(
      report.reload_results.map((result: { hostname: string; success: boolean; error: string | null }) => [
        result.hostname,
        [result.success, result.error],
      ]),
    );

  it('refuses a database URL to a host outside --node-hosts at the admin API', async () => {
    for (const url of ['mysql://root:secret@127.0.0.2:3306/opensips', 'postgres://opensips@10.0.0.1:5432/opensips']) {
      const response = await control.send('POST', '/api/opensips-nodes', {
        hostname: 'elsewhere',
        mi_socket_address: miUrl.sqlite,
        drouting_db: url,
      });
      assertErrorResponse(response, 422, /drouting_db host .* is not one of the node hosts/);
      assert.equal(response.body.reason_code, 'node_target_not_allowed');
      assert.doesNotMatch(JSON.stringify(response.body), /secret/);
    }
    const other = await control.send('POST', '/api/opensips-nodes', {
      hostname: 'odd',
      mi_socket_address: miUrl.sqlite,
      drouting_db: 'redis://127.0.0.1:6379/0',
    });
    assertErrorResponse(other, 400);
    assert.equal(other.body.reason_code, 'invalid_field');
  });

  it('writes the same rows into MariaDB and PostgreSQL as into SQLite, and a refusing database fails its node alone', async () => {
    const account = await created('/api/customer-accounts', {
      name: 'Acme',
      currency: 'AUD',
      billing_mode: 'postpaid',
      username: 'acme',
      password: 'acme-pass-1',
    });
    const trunk = await created('/api/customer-trunks', {
      customer_account_id: account.id,
      name: 'Acme Primary',
      currency: 'AUD',
      // No tech prefix: a trunk known by one gets no address rows (OpenSIPS's degraded path cannot strip it).
    });
    // A registration: its user is a dr_groups row.
    await created('/api/sip-registrations', {
      customer_trunk_id: trunk.id,
      username: 'acme_trunk_01',
      domain: 'sip.example.com',
      password_hash: createHash('md5').update('acme_trunk_01:sip.example.com:s3cret').digest('hex').toUpperCase(),
      hash_algorithm: 'md5',
    });
    await created('/api/trunk-ip-auth', { trunk_type: 'customer', trunk_id: trunk.id, cidr: '203.0.113.0/24' });
    const sell = await created('/api/rate-decks', { name: 'Sell', deck_type: 'customer', currency: 'AUD' });
    const cost = await created('/api/rate-decks', { name: 'Cost', deck_type: 'carrier', currency: 'AUD' });
    sellDeck = sell.id;
    for (const [prefix, rate] of [
      ['614', '0.0250'],
      ['612', '0.0300'],
    ])
      await created(`/api/rate-decks/${sell.id}/rates`, {
        prefix,
        destination_name: 'AU',
        rate_per_minute: rate,
        effective_at: '2025-01-01T00:00:00Z',
      });
    await created(`/api/rate-decks/${cost.id}/rates`, {
      prefix: '61',
      destination_name: 'AU',
      rate_per_minute: '0.0100',
      effective_at: '2025-01-01T00:00:00Z',
    });
    // A name with what LOAD DATA and SQL would misread if not escaped: a backslash, a literal \\N, a quote.
    const carrier = await created('/api/carrier-trunks', {
      name: 'Carrier B \\N O\'Brien \\ "tab"',
      currency: 'AUD',
      multi_ip_mode: 'failover',
    });
    carrierId = carrier.id;
    await created(`/api/carrier-trunks/${carrier.id}/ips`, { ip_address: '198.51.100.50', port: 5060 });
    await created(`/api/carrier-trunks/${carrier.id}/ips`, { ip_address: '198.51.100.51', port: 5080 });
    assert.equal((await control.send('PUT', `/api/customer-trunks/${trunk.id}/rate-deck`, { rate_deck_id: sell.id })).status, 200);
    assert.equal((await control.send('PUT', `/api/carrier-trunks/${carrier.id}/rate-deck`, { rate_deck_id: cost.id })).status, 200);
    await created(`/api/rate-decks/${sell.id}/allowlist`, { carrier_trunk_id: carrier.id });

    const node = (hostname: string, mi: string, droutingDb: string): Promise<unknown> =>
      created('/api/opensips-nodes', { hostname, mi_socket_address: mi, drouting_db: droutingDb });
    await node('on-sqlite', miUrl.sqlite, sqliteDb);
    await node('on-mariadb', miUrl.maria, `mysql://root@127.0.0.1:3306/${names.maria}`);
    await node('on-postgres', miUrl.pg, `postgres://postgres@127.0.0.1:5432/${names.pg}`);
    await node('bad-password', miUrl.badPassword, `mysql://root:hunter2-wrong@127.0.0.1:3306/${names.maria}`);
    await node('narrow-column', miUrl.narrow, `mysql://root@127.0.0.1:3306/${names.narrow}`);
    await node('missing-column', miUrl.noColumn, `postgres://postgres:pg-secret-9@127.0.0.1:5432/${names.noColumn}`);

    const report = await sync();
    const byNode = results(report);
    for (const good of ['on-sqlite', 'on-mariadb', 'on-postgres']) assert.deepEqual(byNode[good], [true, null], good);
    assert.equal(byNode['bad-password'][0], false);
    assert.match(byNode['bad-password'][1]!, /cannot write drouting tables to mysql:\/\/root:\*\*\*@127\.0\.0\.1:3306\/.*Access denied/);
    assert.equal(byNode['narrow-column'][0], false);
    assert.match(byNode['narrow-column'][1]!, /cannot write drouting tables.*prefix/i);
    assert.equal(byNode['missing-column'][0], false);
    assert.match(byNode['missing-column'][1]!, /table dr_rules has no column sort_profile/);
    // Nothing of a refusing database's write was left behind: its transaction never committed.
    assert.deepEqual(await counts((table) => mariaRows(names.narrow, table)), { gateways: 0, carriers: 0, rules: 0 });
    const noColumn = await postgres(names.noColumn);
    try {
      assert.deepEqual((await noColumn.query('SELECT count(*)::integer AS n FROM dr_rules')).rows, [{ n: 0 }]);
    } finally {
      await noColumn.end();
    }
    assert.equal(mi.badPassword.reloads + mi.narrow.reloads + mi.noColumn.reloads, 0, 'a node whose write failed is not reloaded');
    assert.deepEqual([mi.sqlite.reloads, mi.maria.reloads, mi.pg.reloads], [1, 1, 1]);
    assert.equal(report.rules, 2);

    for (const table of Object.keys(COLUMNS)) {
      const expected = sqliteRows(table);
      assert.ok(expected.length > 0, `${table} has rows`);
      assert.deepEqual(await mariaRows(names.maria, table), expected, `MariaDB ${table}`);
      assert.deepEqual(await pgRows(names.pg, table), expected, `PostgreSQL ${table}`);
    }
    // The passwords are the operator's: not in the report, not in the control plane's log.
    for (const secret of ['hunter2-wrong', 'pg-secret-9']) {
      assert.doesNotMatch(JSON.stringify(report), new RegExp(secret));
      assert.ok(!control.logs.some((line) => line.includes(secret)), `${secret} logged`);
    }
  });

  it("shows a node database URL's password to no admin answer but a read that asks for it, and keeps it through an update that sends the URL as shown", async () => {
    const url = `mysql://root:kept-secret-4@127.0.0.1:3306/${names.maria}`;
    const shown = `mysql://root:***@127.0.0.1:3306/${names.maria}`;
    const node = await created('/api/opensips-nodes', { hostname: 'shown-node', mi_socket_address: miUrl.maria, drouting_db: url });
    assert.equal(node.drouting_db, shown, 'the create answer');
    assert.equal((await control.send('GET', `/api/opensips-nodes/${node.id}`)).body.drouting_db, shown);
    const list = await control.send('GET', '/api/opensips-nodes?limit=1000');
    assert.doesNotMatch(JSON.stringify(list.body), /kept-secret-4|hunter2-wrong|pg-secret-9/);
    // The record as read, sent back with a change (a console form, a script): the password stays the stored one.
    const updated = await control.send('PUT', `/api/opensips-nodes/${node.id}`, {
      mi_socket_address: node.mi_socket_address,
      drouting_db: node.drouting_db,
      status: 'suspended',
    });
    assert.equal(updated.status, 200, JSON.stringify(updated.body));
    assert.equal(updated.body.drouting_db, shown);
    const asked = await control.send('GET', `/api/opensips-nodes/${node.id}?include=drouting_db`);
    assert.equal(asked.body.drouting_db, url, 'asked for by name');
    assert.equal((await control.send('DELETE', `/api/opensips-nodes/${node.id}`)).status, 204);
  });

  it('a second sync replaces the rows, and a refused write leaves the rows already there', async () => {
    // What the refusing databases held before: now they must keep it through the failing write.
    const narrow = await mariadb(names.narrow);
    try {
      await narrow.query("INSERT INTO dr_gateways (gwid, address) VALUES ('old-gw', '192.0.2.1')");
      await narrow.query("INSERT INTO dr_rules (groupid, prefix, gwlist) VALUES ('1', '9', 'old-gw')");
    } finally {
      await narrow.end();
    }
    const before = await counts((table) => mariaRows(names.narrow, table));
    await created(`/api/rate-decks/${sellDeck}/rates`, {
      prefix: '6141',
      destination_name: 'AU mobile',
      rate_per_minute: '0.0090',
      effective_at: '2025-01-01T00:00:00Z',
    });
    await created(`/api/carrier-trunks/${carrierId}/ips`, { ip_address: '198.51.100.52', port: 5060 });

    const report = await sync();
    const byNode = results(report);
    for (const good of ['on-sqlite', 'on-mariadb', 'on-postgres']) assert.deepEqual(byNode[good], [true, null], good);
    assert.equal(byNode['narrow-column'][0], false);
    assert.deepEqual(await counts((table) => mariaRows(names.narrow, table)), before);
    assert.deepEqual(await mariaRows(names.narrow, 'dr_gateways'), [
      JSON.stringify({
        gwid: 'old-gw',
        type: 0,
        address: '192.0.2.1',
        strip: 0,
        pri_prefix: null,
        attrs: null,
        probe_mode: 0,
        state: 0,
        socket: null,
        description: null,
      }),
    ]);

    const gateways = sqliteRows('dr_gateways');
    assert.equal(gateways.length, 3);
    assert.ok(sqliteRows('dr_rules').some((row) => row.includes('"prefix":"6141"')));
    for (const table of Object.keys(COLUMNS)) {
      const expected = sqliteRows(table);
      assert.deepEqual(await mariaRows(names.maria, table), expected, `MariaDB ${table}`);
      assert.deepEqual(await pgRows(names.pg, table), expected, `PostgreSQL ${table}`);
    }
    assert.deepEqual([mi.maria.loadedRules, mi.pg.loadedRules], [mi.sqlite.loadedRules, mi.sqlite.loadedRules]);
  });
});
