import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createConnection, createServer, type AddressInfo, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { buildDroutingData, type DroutingData } from '../../sync/drouting/rules.js';
import { writeDroutingSql } from '../../sync/drouting/sql-writer.js';
import { md5, PAST, routingTables } from '../fixtures/routing.js';
import { engineFor } from '../helpers/engine.js';

/**
 * The SQL writer against the machine's real MariaDB and PostgreSQL (a scratch database each, dropped
 * after): MariaDB's two ways in, LOAD DATA LOCAL and the batched INSERTs used when the server refuses
 * LOCAL (made to refuse here with the client flag a server with local_infile off amounts to), store the
 * same rows, values needing escapes included, and so does PostgreSQL; a row the database cannot hold
 * rolls the whole write back on either path.
 */

const suffix = randomBytes(4).toString('hex');
const loaded = `dr_unit_${suffix}_l`;
const inserted = `dr_unit_${suffix}_i`;
const onPostgres = `dr_unit_${suffix}_p`;
const mysqlTarget = (database: string) => ({ kind: 'mysql' as const, url: `mysql://root@127.0.0.1:3306/${database}`, shown: database });
const pgTarget = { kind: 'postgres' as const, url: `postgres://postgres@127.0.0.1:5432/${onPostgres}`, shown: onPostgres };
const NO_LOCAL_INFILE = { mysqlFlags: ['-LOCAL_FILES'] };

function data(prefix: string): DroutingData {
  const awkward = 'tab\there, new\nline, back\\slash, \\N, quote \' and "';
  return {
    gateways: [
      {
        gwid: 'gw1',
        type: 0,
        address: '198.51.100.1:5060',
        strip: 0,
        pri_prefix: null,
        attrs: null,
        probe_mode: 0,
        state: 0,
        socket: null,
        description: awkward,
      },
      {
        gwid: 'gw2',
        type: 0,
        address: '[2001:db8::2]:5080',
        strip: 2,
        pri_prefix: '00',
        attrs: 'a=1',
        probe_mode: 1,
        state: 1,
        socket: null,
        description: null,
      },
    ],
    carriers: [{ carrierid: 'cr1', gwlist: 'gw1,gw2', flags: 0, sort_alg: 'N', state: 0, attrs: null, description: awkward }],
    rules: Array.from({ length: 12_000 }, (_, i) => ({
      groupid: String(i % 3),
      prefix: `${prefix}${i}`,
      timerec: null,
      priority: i % 5,
      routeid: null,
      gwlist: '#cr1',
      sort_alg: 'N',
      sort_profile: i % 2 === 0 ? null : i,
      attrs: null,
      description: i === 7 ? awkward : `rule ${i}`,
    })),
    groups: [{ username: 'acme', domain: 'sip.example.com', groupid: 1, description: null }],
    addresses: [{ grp: 1, ip: '203.0.113.0', mask: 24, port: 0, proto: 'any', pattern: null, context_info: 'trunk 1' }],
  };
}

const COLUMNS: Record<string, string> = {
  dr_gateways: 'gwid, type, address, strip, pri_prefix, attrs, probe_mode, state, socket, description',
  dr_carriers: 'carrierid, gwlist, flags, sort_alg, state, attrs, description',
  dr_rules: 'groupid, prefix, timerec, priority, routeid, gwlist, sort_alg, sort_profile, attrs, description',
  dr_groups: 'username, domain, groupid, description',
  address: 'grp, ip, mask, port, proto, pattern, context_info',
};
const TABLE_OF: Record<string, keyof DroutingData> = {
  dr_gateways: 'gateways',
  dr_carriers: 'carriers',
  dr_rules: 'rules',
  dr_groups: 'groups',
  address: 'addresses',
};

const sorted = (rows: object[]): string[] => rows.map((row) => JSON.stringify(row)).sort();

async function mariaTables(database: string): Promise<Record<string, string[]>> {
  const connection = await mysql.createConnection({ uri: `mysql://root@127.0.0.1:3306/${database}` });
  try {
    const tables: Record<string, string[]> = {};
    for (const [table, columns] of Object.entries(COLUMNS))
      tables[table] = sorted((await connection.query(`SELECT ${columns} FROM ${table}`))[0] as object[]);
    return tables;
  } finally {
    await connection.end();
  }
}

async function pgTables(): Promise<Record<string, string[]>> {
  const client = new pg.Client({ connectionString: pgTarget.url });
  await client.connect();
  try {
    const tables: Record<string, string[]> = {};
    for (const [table, columns] of Object.entries(COLUMNS))
      tables[table] = sorted((await client.query(`SELECT ${columns} FROM ${table}`)).rows);
    return tables;
  } finally {
    await client.end();
  }
}

/**
 * A TCP relay to a real database that goes silent, as a host behind a network dropping packets does, from the
 * moment the client sends `silentFrom` (plain text in both protocols): nothing more reaches either side.
 */
async function silencingRelay(port: number, silentFrom: string): Promise<{ port: number; close(): void }> {
  const sockets: Socket[] = [];
  const server = createServer((client) => {
    const upstream = createConnection({ host: '127.0.0.1', port });
    sockets.push(client, upstream);
    let silent = false;
    client.on('data', (chunk) => {
      silent ||= chunk.includes(silentFrom);
      if (!silent) upstream.write(chunk);
    });
    upstream.on('data', (chunk) => {
      if (!silent) client.write(chunk);
    });
    client.on('error', () => undefined);
    upstream.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () => {
      for (const socket of sockets) socket.destroy();
      server.close();
    },
  };
}

const expected = (rows: DroutingData): Record<string, string[]> =>
  Object.fromEntries(Object.entries(TABLE_OF).map(([table, key]) => [table, sorted(rows[key])]));

describe('drouting SQL writer on real MariaDB and PostgreSQL', () => {
  before(async () => {
    const admin = await mysql.createConnection({ uri: 'mysql://root@127.0.0.1:3306/test' });
    for (const name of [loaded, inserted]) await admin.query(`CREATE DATABASE ${name}`);
    await admin.end();
    const pgAdmin = new pg.Client({ connectionString: 'postgres://postgres@127.0.0.1:5432/test' });
    await pgAdmin.connect();
    await pgAdmin.query(`CREATE DATABASE ${onPostgres}`);
    await pgAdmin.end();
  });
  after(async () => {
    const admin = await mysql.createConnection({ uri: 'mysql://root@127.0.0.1:3306/test' });
    for (const name of [loaded, inserted]) await admin.query(`DROP DATABASE IF EXISTS ${name}`);
    await admin.end();
    const pgAdmin = new pg.Client({ connectionString: 'postgres://postgres@127.0.0.1:5432/test' });
    await pgAdmin.connect();
    await pgAdmin.query(`DROP DATABASE IF EXISTS ${onPostgres} WITH (FORCE)`);
    await pgAdmin.end();
  });

  it('stores exactly the rows given, by LOAD DATA, by batched INSERT and on PostgreSQL, and replaces them', async () => {
    for (const prefix of ['61', '44']) {
      const rows = data(prefix);
      await writeDroutingSql(mysqlTarget(loaded), rows);
      await writeDroutingSql(mysqlTarget(inserted), rows, NO_LOCAL_INFILE);
      await writeDroutingSql(pgTarget, rows);
      const want = expected(rows);
      assert.deepEqual(await mariaTables(loaded), want, `LOAD DATA, prefix ${prefix}`);
      assert.deepEqual(await mariaTables(inserted), want, `INSERT, prefix ${prefix}`);
      assert.deepEqual(await pgTables(), want, `PostgreSQL, prefix ${prefix}`);
    }
  });

  it('rolls the whole write back when a row does not fit, on either MariaDB path and on PostgreSQL', async () => {
    const before = { loaded: await mariaTables(loaded), inserted: await mariaTables(inserted), pg: await pgTables() };
    const bad = data('33');
    bad.rules[9_000].prefix = '9'.repeat(65); // dr_rules.prefix is CHAR(64)/VARCHAR(64)
    await assert.rejects(writeDroutingSql(mysqlTarget(loaded), bad), /dr_rules|prefix/);
    await assert.rejects(writeDroutingSql(mysqlTarget(inserted), bad, NO_LOCAL_INFILE), /prefix|too long/i);
    await assert.rejects(writeDroutingSql(pgTarget, bad), /too long/);
    assert.deepEqual(await mariaTables(loaded), before.loaded);
    assert.deepEqual(await mariaTables(inserted), before.inserted);
    assert.deepEqual(await pgTables(), before.pg);
  });

  /**
   * Two control planes on one store: one lost the sync lead mid-sync (its lock connection cut, or stalled while the
   * other took over) and writes after the new leader, with rows built from what it read before. The node's
   * database refuses it, whole, by the fence row in `version`; the new leader's later syncs go on.
   */
  it("refuses the write of a control plane whose lead term is older than the last that wrote the node's database", async () => {
    const leader = data('61');
    const deposed = data('44');
    const writes = [
      { name: 'LOAD DATA', write: (rows: DroutingData, term: number) => writeDroutingSql(mysqlTarget(loaded), rows, { term }) },
      {
        name: 'INSERT',
        write: (rows: DroutingData, term: number) => writeDroutingSql(mysqlTarget(inserted), rows, { ...NO_LOCAL_INFILE, term }),
      },
      { name: 'PostgreSQL', write: (rows: DroutingData, term: number) => writeDroutingSql(pgTarget, rows, { term }) },
    ];
    const tables = [() => mariaTables(loaded), () => mariaTables(inserted), () => pgTables()];
    for (const [i, { name, write }] of writes.entries()) {
      await write(leader, 7);
      await assert.rejects(write(deposed, 6), /later \(term 7\).*this one \(term 6\) no longer leads/, name);
      assert.deepEqual(await tables[i](), expected(leader), `${name}: the leader's rows stay`);
      // The same term again (the leader's next sync) and a later one are written.
      await write(deposed, 7);
      assert.deepEqual(await tables[i](), expected(deposed), name);
      await write(leader, 9);
      await assert.rejects(write(deposed, 8), /term 9/, name);
      assert.deepEqual(await tables[i](), expected(leader), name);
    }
  });

  /**
   * The admin API takes names and SIP usernames of 255 characters; OpenSIPS's columns are narrower (description
   * 128, gwlist 255, username 64). Rows built from such a world are stored
   * whole by every engine, where one long carrier name used to fail every MySQL/PostgreSQL node's write.
   */
  it('builds rows that fit OpenSIPS’s columns from names and lists longer than they hold', async () => {
    const longName = 'Ω'.repeat(200) + 'x'.repeat(55); // 255 characters, 455 bytes in UTF-8
    const many = Array.from({ length: 60 }, (_, i) => 1000 + i); // 60 carriers: "#cr1000," x 60 is 480 characters
    const tables = routingTables((description) => {
      description.rate_decks[0].name = longName;
      description.carrier_trunks[0].name = longName;
      for (const id of many) {
        description.carrier_trunks.push({ ...description.carrier_trunks[0], id, name: `Carrier ${id}` });
        description.carrier_trunk_rate_decks.push({ id, carrier_trunk_id: id, rate_deck_id: 101, is_active: true, assigned_at: PAST });
        description.rate_deck_allowlist.push({ id, rate_deck_id: 1, carrier_trunk_id: id });
        description.carrier_gateways.push({
          id: id * 10,
          carrier_trunk_id: id,
          ip_address: '192.0.2.99',
          port: 5060,
          weight: 1,
          priority: 1,
          status: 'active',
        });
      }
      // Carrier 20 (load-balanced) with 40 gateways: "gw20000=1," x 40 is 400 characters.
      for (let i = 0; i < 40; i++)
        description.carrier_gateways.push({
          id: 20_000 + i,
          carrier_trunk_id: 20,
          ip_address: '203.0.113.52',
          port: 5060,
          weight: 1,
          priority: 3,
          status: 'active',
        });
      const username = 'u'.repeat(70);
      description.sip_registrations.push({
        ...description.sip_registrations[0],
        id: 3,
        username,
        password_hash: md5(`${username}:sip.crazytel.com.au:s3cret`),
      });
    });
    const rows = await buildDroutingData(engineFor(tables).snapshot, Date.parse('2026-11-24T12:00:00Z'), tables.trunk_ip_auth);
    const rule61 = rows.rules.find((rule) => rule.prefix === '61')!;
    const cr20 = rows.carriers.find((carrier) => carrier.carrierid === 'cr20')!;
    // The lists keep their first entries, whole: the cheapest carriers, the gateways in priority order.
    assert.match(rule61.gwlist, /^#cr21,#cr20,#cr1000,(#cr\d+,)+#cr\d+$/);
    assert.ok(rule61.gwlist.length <= 255 && rule61.gwlist.length > 240, rule61.gwlist);
    assert.match(cr20.gwlist, /^gw201=1,gw202=3,(gw\d+=1,)+gw\d+=1$/);
    assert.ok(cr20.gwlist.length <= 255 && cr20.gwlist.length > 240, cr20.gwlist);
    assert.deepEqual([...rows.carriers.find((carrier) => carrier.carrierid === 'cr20')!.description!].length, 128);
    assert.deepEqual([...rule61.description!].length, 128);
    assert.deepEqual(
      rows.groups.map((group) => group.username),
      ['acme_trunk_01'],
    );
    await writeDroutingSql(mysqlTarget(loaded), rows);
    await writeDroutingSql(mysqlTarget(inserted), rows, NO_LOCAL_INFILE);
    await writeDroutingSql(pgTarget, rows);
    const want = expected(rows);
    assert.deepEqual(await mariaTables(loaded), want);
    assert.deepEqual(await mariaTables(inserted), want);
    assert.deepEqual(await pgTables(), want);
  });

  /**
   * A node database that stops answering mid-write (its host behind a network that drops packets): the write
   * gives up after a bounded time, where it used to wait for the kernel to give up on the connection (a quarter
   * of an hour) with every other node's write queued behind it in the drouting worker; nothing is half-written.
   */
  it('gives up on a node database that stops answering mid-write, and leaves its rows as they were', { timeout: 120_000 }, async () => {
    const written = data('47');
    await writeDroutingSql(mysqlTarget(loaded), written);
    await writeDroutingSql(mysqlTarget(inserted), written, NO_LOCAL_INFILE);
    await writeDroutingSql(pgTarget, written);
    const rows = data('49');
    const cases = [
      { name: 'LOAD DATA', port: 3306, url: (port: number) => `mysql://root@127.0.0.1:${port}/${loaded}`, options: {} },
      { name: 'INSERT', port: 3306, url: (port: number) => `mysql://root@127.0.0.1:${port}/${inserted}`, options: NO_LOCAL_INFILE },
      { name: 'PostgreSQL', port: 5432, url: (port: number) => `postgres://postgres@127.0.0.1:${port}/${onPostgres}`, options: {} },
    ];
    for (const { name, port, url, options } of cases) {
      for (const silentFrom of ['DELETE FROM dr_rules', 'COMMIT']) {
        const relay = await silencingRelay(port, silentFrom);
        try {
          const kind = port === 5432 ? ('postgres' as const) : ('mysql' as const);
          await assert.rejects(
            writeDroutingSql({ kind, url: url(relay.port), shown: name }, rows, { ...options, statementTimeoutMs: 1_000 }),
            /timeout/i,
            `${name}, silent from ${silentFrom}`,
          );
        } finally {
          relay.close(); // the server sees the connection go, and rolls back
        }
      }
    }
    const want = expected(written);
    assert.deepEqual(await mariaTables(loaded), want);
    assert.deepEqual(await mariaTables(inserted), want);
    assert.deepEqual(await pgTables(), want);
  });
});
