/**
 * What writing a node's drouting rows into MariaDB and PostgreSQL costs (sql-writer.ts): a first write
 * into an empty scratch database (tables created), then a second one replacing every row, as each sync
 * after the first does. The target: 300k rules written and reloaded into MariaDB in under 10 s.
 * Needs the machine's servers (MariaDB root@127.0.0.1:3306, PostgreSQL postgres@127.0.0.1:5432).
 *
 *   node dist/bench/drouting-sql.js [--rules 300000]
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import mysql from 'mysql2/promise';
import pg from 'pg';
import type { DroutingData } from '../sync/drouting/rules.js';
import { writeDroutingSql } from '../sync/drouting/sql-writer.js';

const { values } = parseArgs({ options: { rules: { type: 'string', default: '300000' } } });
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

async function timed(label: string, write: () => Promise<void>): Promise<void> {
  const started = performance.now();
  await write();
  console.log(`${label}: ${((performance.now() - started) / 1000).toFixed(2)} s`);
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
  await timed(`MariaDB, ${ruleCount} rules, first write`, () => writeDroutingSql(mysqlTarget, data));
  await timed(`MariaDB, ${ruleCount} rules, replacing`, () => writeDroutingSql(mysqlTarget, data));
  await timed(`PostgreSQL, ${ruleCount} rules, first write`, () => writeDroutingSql(pgTarget, data));
  await timed(`PostgreSQL, ${ruleCount} rules, replacing`, () => writeDroutingSql(pgTarget, data));
} finally {
  await maria.query(`DROP DATABASE IF EXISTS ${name}`);
  await postgres.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await maria.end();
  await postgres.end();
}
