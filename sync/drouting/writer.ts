import Database from 'better-sqlite3';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { DroutingData } from './rules.js';

/**
 * Writes drouting rows, and the permissions `address` rows that give a
 * source address its drouting group, into a node's OpenSIPS database
 * (SQLite), replacing the previous rows in one transaction: OpenSIPS reading
 * the tables sees the old set or the new one. The tables and their `version` rows are created as
 * OpenSIPS's own scripts/sqlite/drouting-create.sql does when missing, so a
 * fresh node database works.
 */

/** The table versions OpenSIPS 3.x checks on start (identical in 3.4 to 4.0; `address` from 3.6's permissions-create.sql). */
export const DROUTING_TABLE_VERSIONS: Record<string, number> = {
  dr_gateways: 6,
  dr_rules: 4,
  dr_carriers: 3,
  dr_groups: 2,
  dr_partitions: 1,
  address: 5,
};

/**
 * The fence against a control plane that no longer leads (issue 21): a row of the node's `version` table (which
 * OpenSIPS reads by table name only) holding the highest sync lead term (store/pg-sync-lock.ts) that has written
 * this node. A write raises it to its own term first, in its transaction, and is refused, with nothing changed,
 * when it holds a higher one: a centre that lost the lead mid-sync (its lock connection dropped, or it stalled
 * while another took over) cannot overwrite what the new leader wrote with rows built from what it read before.
 * Its dr_reload after a refused write is not sent; one sent anyway loads what the new leader wrote.
 */
export const SYNC_TERM_ROW = 'drouting_writer_term';

const CREATE_TABLES = `
CREATE TABLE IF NOT EXISTS version (table_name CHAR(32) NOT NULL, table_version INTEGER DEFAULT 0 NOT NULL, CONSTRAINT version_t_name_idx UNIQUE (table_name));
CREATE TABLE IF NOT EXISTS dr_gateways (
  id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, gwid CHAR(64) NOT NULL, type INTEGER DEFAULT 0 NOT NULL, address CHAR(128) NOT NULL,
  strip INTEGER DEFAULT 0 NOT NULL, pri_prefix CHAR(16) DEFAULT NULL, attrs CHAR(255) DEFAULT NULL, probe_mode INTEGER DEFAULT 0 NOT NULL,
  state INTEGER DEFAULT 0 NOT NULL, socket CHAR(128) DEFAULT NULL, description CHAR(128) DEFAULT NULL, CONSTRAINT dr_gateways_dr_gw_idx UNIQUE (gwid));
CREATE TABLE IF NOT EXISTS dr_rules (
  ruleid INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, groupid CHAR(255) NOT NULL, prefix CHAR(64) NOT NULL, timerec CHAR(255) DEFAULT NULL,
  priority INTEGER DEFAULT 0 NOT NULL, routeid CHAR(255) DEFAULT NULL, gwlist CHAR(255), sort_alg CHAR(1) DEFAULT 'N' NOT NULL,
  sort_profile INTEGER DEFAULT NULL, attrs CHAR(255) DEFAULT NULL, description CHAR(128) DEFAULT NULL);
CREATE TABLE IF NOT EXISTS dr_carriers (
  id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, carrierid CHAR(64) NOT NULL, gwlist CHAR(255) NOT NULL, flags INTEGER DEFAULT 0 NOT NULL,
  sort_alg CHAR(1) DEFAULT 'N' NOT NULL, state INTEGER DEFAULT 0 NOT NULL, attrs CHAR(255) DEFAULT NULL, description CHAR(128) DEFAULT NULL,
  CONSTRAINT dr_carriers_dr_carrier_idx UNIQUE (carrierid));
CREATE TABLE IF NOT EXISTS dr_groups (
  id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, username CHAR(64) NOT NULL, domain CHAR(128) DEFAULT NULL, groupid INTEGER DEFAULT 0 NOT NULL,
  description CHAR(128) DEFAULT NULL);
CREATE TABLE IF NOT EXISTS dr_partitions (
  id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, partition_name CHAR(255) NOT NULL, db_url CHAR(255) NOT NULL, drd_table CHAR(255),
  drr_table CHAR(255), drg_table CHAR(255), drc_table CHAR(255), ruri_avp CHAR(255), gw_id_avp CHAR(255), gw_priprefix_avp CHAR(255),
  gw_sock_avp CHAR(255), rule_id_avp CHAR(255), rule_prefix_avp CHAR(255), carrier_id_avp CHAR(255));
CREATE TABLE IF NOT EXISTS address (
  id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, grp SMALLINT(5) DEFAULT 0 NOT NULL, ip CHAR(50) NOT NULL, mask SMALLINT DEFAULT 32 NOT NULL,
  port SMALLINT(5) DEFAULT 0 NOT NULL, proto CHAR(4) DEFAULT 'any' NOT NULL, pattern CHAR(64) DEFAULT NULL, context_info CHAR(32) DEFAULT NULL);
`;

/**
 * A digest of the rows: equal digests mean the node already has this data (its reload can be skipped).
 * The rules, hundreds of thousands, go in as tab-separated lines a batch at a time (JSON for 312k rules
 * took 0.75 s); the other tables, small, as JSON. A null column and an empty one hash alike, which no
 * column here needs to tell apart.
 */
export function droutingChecksum(data: DroutingData): string {
  const hash = createHash('sha256');
  hash.update(JSON.stringify({ gateways: data.gateways, carriers: data.carriers, groups: data.groups, addresses: data.addresses }));
  const { rules } = data;
  for (let start = 0; start < rules.length; start += 10_000) {
    let lines = '';
    for (const rule of rules.slice(start, start + 10_000)) {
      lines += `\n${rule.groupid}\t${rule.prefix}\t${rule.timerec ?? ''}\t${rule.priority}\t${rule.routeid ?? ''}\t${rule.gwlist}\t${rule.sort_alg}\t${rule.sort_profile ?? ''}\t${rule.attrs ?? ''}\t${rule.description ?? ''}`;
    }
    hash.update(lines);
  }
  return hash.digest('hex');
}

function openNodeDatabase(path: string): Database.Database {
  mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.exec(CREATE_TABLES);
  const setVersion = db.prepare(
    'INSERT INTO version (table_name, table_version) VALUES (?, ?) ON CONFLICT (table_name) DO UPDATE SET table_version = excluded.table_version',
  );
  for (const [table, version] of Object.entries(DROUTING_TABLE_VERSIONS)) setVersion.run(table, version);
  return db;
}

const DR_TABLES = ['dr_gateways', 'dr_carriers', 'dr_rules', 'dr_groups', 'address'] as const;

/**
 * Copies the drouting rows of one node's database into another's, inside
 * SQLite (ATTACH + INSERT ... SELECT): the same rows for every node without
 * paying for JS inserts again.
 */
export function copyDrouting(fromPath: string, toPath: string, term: number | null = null): void {
  // ATTACH would create a missing source as an empty database.
  if (!existsSync(fromPath)) throw new Error(`${fromPath} does not exist`);
  const db = openNodeDatabase(toPath);
  try {
    db.prepare('ATTACH DATABASE ? AS source').run(fromPath);
    db.transaction(() => {
      fence(db, term);
      for (const table of DR_TABLES) {
        db.exec(`DELETE FROM main.${table}`);
        db.exec(`INSERT INTO main.${table} SELECT * FROM source.${table}`);
      }
    })();
    db.exec('DETACH DATABASE source');
  } finally {
    db.close();
  }
}

/** SQLite's side of the fence (SYNC_TERM_ROW), inside the write's immediate transaction. */
function fence(db: Database.Database, term: number | null): void {
  if (term === null) return;
  db.prepare(
    'INSERT INTO version (table_name, table_version) VALUES (?, ?) ON CONFLICT (table_name) DO UPDATE SET table_version = max(table_version, excluded.table_version)',
  ).run(SYNC_TERM_ROW, term);
  const current = (db.prepare('SELECT table_version FROM version WHERE table_name = ?').get(SYNC_TERM_ROW) as { table_version: number })
    .table_version;
  if (current > term)
    throw new Error(
      `a control plane that took the sync lead later (term ${current}) has written this node's drouting; ` +
        `this one (term ${term}) no longer leads: nothing written`,
    );
}

export function writeDrouting(path: string, data: DroutingData, term: number | null = null): void {
  const db = openNodeDatabase(path);
  try {
    const insertGateway = db.prepare(
      'INSERT INTO dr_gateways (gwid, type, address, strip, pri_prefix, attrs, probe_mode, state, socket, description) VALUES (@gwid, @type, @address, @strip, @pri_prefix, @attrs, @probe_mode, @state, @socket, @description)',
    );
    const insertCarrier = db.prepare(
      'INSERT INTO dr_carriers (carrierid, gwlist, flags, sort_alg, state, attrs, description) VALUES (@carrierid, @gwlist, @flags, @sort_alg, @state, @attrs, @description)',
    );
    // Positional: binding by name from an object costs more, and there are hundreds of thousands of rules.
    const insertRule = db.prepare(
      'INSERT INTO dr_rules (groupid, prefix, timerec, priority, routeid, gwlist, sort_alg, sort_profile, attrs, description) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
    );
    const insertGroup = db.prepare(
      'INSERT INTO dr_groups (username, domain, groupid, description) VALUES (@username, @domain, @groupid, @description)',
    );
    const insertAddress = db.prepare(
      'INSERT INTO address (grp, ip, mask, port, proto, pattern, context_info) VALUES (?, ?, ?, ?, ?, ?, ?)',
    );
    db.transaction(() => {
      fence(db, term);
      for (const table of DR_TABLES) db.exec(`DELETE FROM ${table}`);
      for (const row of data.gateways) insertGateway.run(row);
      for (const row of data.carriers) insertCarrier.run(row);
      for (const rule of data.rules) {
        insertRule.run(
          rule.groupid,
          rule.prefix,
          rule.timerec,
          rule.priority,
          rule.routeid,
          rule.gwlist,
          rule.sort_alg,
          rule.sort_profile,
          rule.attrs,
          rule.description,
        );
      }
      for (const row of data.groups) insertGroup.run(row);
      for (const row of data.addresses) insertAddress.run(row.grp, row.ip, row.mask, row.port, row.proto, row.pattern, row.context_info);
    })();
  } finally {
    db.close();
  }
}
