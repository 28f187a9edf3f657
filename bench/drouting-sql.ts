/**
 * What writing a node's drouting rows into MariaDB and PostgreSQL costs (sql-writer.ts): a first write
 * into an empty scratch database (tables created), then a second one replacing every row, as each sync
 * after the first does. The target: 300k rules written and reloaded into MariaDB in under 10 s.
 * Each write is followed by the reload a sync does (sync/mi/reload.ts: dr_reload, then the gateway and
 * carrier counts confirmed, then address_reload) against the OpenSIPS MI test double over mi_http, whose
 * dr_reload reads every row of the three tables back from the node's database, as OpenSIPS loads them;
 * the write and the reload are reported apart, and the rules the double loaded are checked.
 * Needs the machine's servers (MariaDB root@127.0.0.1:3306, PostgreSQL postgres@127.0.0.1:5432).
 *
 *   node dist/bench/drouting-sql.js [--rules 300000]
 */
import { randomBytes } from 'node:crypto';
import { benchArgs } from './bench-args.js';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { parseMiAddress } from '../src/core/mi/client.js';
import { FakeOpensipsMi } from '../src/devkit/fake-opensips-mi.js';
import type { DroutingData } from '../sync/drouting/rules.js';
import { writeDroutingSql } from '../sync/drouting/sql-writer.js';
import { reloadNode } from '../sync/mi/reload.js';

const { values } = benchArgs({ options: { rules: { type: 'string', default: '300000' } } });
const ruleCount = Number(values.rules);

/** Rows shaped like the wholesale world's: 20 groups, 50 carriers of 2 gateways, numeric prefixes. */
function world(): DroutingData {
  const gateways = Array.from({ length: 100 }, (_, i) => ({
    gwid: `gw${i}`,
    type: 0,
    address: `198.51.100.${i}:5060`,
    strip: 0,
    pri_prefix: null,
    attrs: null,
    probe_mode: 0,
    state: 0,
    socket: null,
    description: `gateway ${i}`,
  }));
  const carriers = Array.from({ length: 50 }, (_, i) => ({
    carrierid: `cr${i}`,
    gwlist: `gw${2 * i},gw${2 * i + 1}`,
    flags: 0,
    sort_alg: 'N',
    state: 0,
    attrs: null,
    description: `carrier ${i}`,
  }));
  const rules = Array.from({ length: ruleCount }, (_, i) => ({
    groupid: String(i % 20),
    prefix: String(61_000_000 + i),
    timerec: null,
    priority: 0,
    routeid: null,
    gwlist: `#cr${i % 50},#cr${(i + 7) % 50},#cr${(i + 13) % 50}`,
    sort_alg: 'N',
    sort_profile: null,
    attrs: null,
    description: null,
  }));
  return { gateways, carriers, rules, groups: [], addresses: [] };
}

const seconds = (since: number): string => ((performance.now() - since) / 1000).toFixed(2);

type Counts = { gateways: number; carriers: number; rules: number };

/** What OpenSIPS's dr_reload reads: every row of the three tables (all their columns), counted. */
async function loadMysql(url: string): Promise<Counts> {
  const connection = await mysql.createConnection({ uri: url });
  try {
    const rows = async (table: string): Promise<number> => ((await connection.query(`SELECT * FROM ${table}`))[0] as unknown[]).length;
    return { gateways: await rows('dr_gateways'), carriers: await rows('dr_carriers'), rules: await rows('dr_rules') };
  } finally {
    await connection.end();
  }
}

async function loadPostgres(url: string): Promise<Counts> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const rows = async (table: string): Promise<number> => (await client.query(`SELECT * FROM ${table}`)).rowCount ?? 0;
    return { gateways: await rows('dr_gateways'), carriers: await rows('dr_carriers'), rules: await rows('dr_rules') };
  } finally {
    await client.end();
  }
}

let nodeId = 0;

/** One write then its reload, each timed; fails loudly when the node did not load every rule. */
async function writeAndReload(
  label: string,
  target: { kind: 'mysql' | 'postgres'; url: string; shown: string },
  load: () => Promise<Counts>,
): Promise<void> {
  const mi = new FakeOpensipsMi(load);
  try {
    const miAddress = parseMiAddress(await mi.startHttp());
    if (miAddress === null) throw new Error('the MI double gave an address the client does not parse');
    let started = performance.now();
    await writeDroutingSql(target, data);
    const write = seconds(started);
    started = performance.now();
    // The rows are in place: the reload's own write step has nothing to do.
    const reloaded = await reloadNode(
      { nodeId: ++nodeId, hostname: label, miAddress, droutingDb: target, loadedChecksum: null },
      { gateways: data.gateways.length, carriers: data.carriers.length, rules: data.rules.length, groups: 0 },
      `bench-${nodeId}`,
      () => Promise.resolve(),
      120_000,
    );
    const reload = seconds(started);
    if (!reloaded.success) throw new Error(`${label}: the reload failed: ${reloaded.error}`);
    if (mi.loadedRules !== ruleCount) throw new Error(`${label}: the node loaded ${mi.loadedRules} rules of ${ruleCount}`);
    const total = (Number(write) + Number(reload)).toFixed(2);
    console.log(`${label}: write ${write} s, reload ${reload} s (${mi.loadedRules} rules loaded), write + reload ${total} s`);
  } finally {
    mi.close();
  }
}

const data = world();
const name = `dr_bench_${randomBytes(4).toString('hex')}`;
const maria = await mysql.createConnection({ uri: 'mysql://root@127.0.0.1:3306/test' });
const postgres = new pg.Client({ connectionString: 'postgres://postgres@127.0.0.1:5432/test' });
await postgres.connect();
await maria.query(`CREATE DATABASE ${name}`);
await postgres.query(`CREATE DATABASE ${name}`);
try {
  const mysqlTarget = { kind: 'mysql' as const, url: `mysql://root@127.0.0.1:3306/${name}`, shown: name };
  const pgTarget = { kind: 'postgres' as const, url: `postgres://postgres@127.0.0.1:5432/${name}`, shown: name };
  await writeAndReload(`MariaDB, ${ruleCount} rules, first write`, mysqlTarget, () => loadMysql(mysqlTarget.url));
  await writeAndReload(`MariaDB, ${ruleCount} rules, replacing`, mysqlTarget, () => loadMysql(mysqlTarget.url));
  await writeAndReload(`PostgreSQL, ${ruleCount} rules, first write`, pgTarget, () => loadPostgres(pgTarget.url));
  await writeAndReload(`PostgreSQL, ${ruleCount} rules, replacing`, pgTarget, () => loadPostgres(pgTarget.url));
} finally {
  await maria.query(`DROP DATABASE IF EXISTS ${name}`);
  await postgres.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await maria.end();
  await postgres.end();
}
