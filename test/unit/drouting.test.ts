import assert from 'node:assert/strict';
import type { SnapshotDescription } from '../../src/core/snapshot/schema.js';
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { generateDataset, SIZES } from '../../src/devkit/dataset.js';
import { DroutingBuilder } from '../../sync/drouting/builder.js';
import { buildDroutingData, carrierId, type DroutingData } from '../../sync/drouting/rules.js';
import { DROUTING_TABLE_VERSIONS, droutingChecksum, writeDrouting } from '../../sync/drouting/writer.js';
import { routingTables } from '../fixtures/routing.js';
import { engineFor } from '../helpers/engine.js';

/** drouting's answer for a group and number: the longest rule prefix, then its carriers in order. */
function droutingCarriers(data: DroutingData, groupId: number, number: string): string[] {
  for (let length = number.length; length > 0; length--) {
    const rule = data.rules.find((candidate) => candidate.groupid === String(groupId) && candidate.prefix === number.slice(0, length));
    if (rule !== undefined) return rule.gwlist === '' ? [] : rule.gwlist.split(',').map((entry) => entry.replace(/^#/, ''));
  }
  return [];
}

function indexRules(data: DroutingData): DroutingData {
  // Same data, with rules looked up through a map (the random test asks many numbers).
  const byKey = new Map(data.rules.map((rule) => [`${rule.groupid}|${rule.prefix}`, rule]));
  return {
    ...data,
    rules: Object.assign([...data.rules], {
      find: (predicate: (rule: DroutingData['rules'][number]) => boolean) => [...byKey.values()].find(predicate),
    }),
  };
}

describe('drouting export', () => {
  const now = Date.parse('2026-11-24T12:00:00Z');

  it("routes every number of the fixture world in the sidecar's carrier order", async () => {
    const engine = engineFor(
      routingTables((description) => {
        description.block_rules = description.block_rules.filter((rule) => rule.scope !== 'carrier_trunk'); // not expressible in drouting
      }),
    );
    const data = await buildDroutingData(engine.snapshot, now);
    // 61: 21 (0.0100 USD = 0.0150) then 20 (0.0300). 614, 6113 and 6140 give the same order, so
    // drouting's fall-back to 61 already answers them; 1900 has no carrier at all: no rule.
    assert.deepEqual(
      data.rules.map((rule) => [rule.groupid, rule.prefix, rule.gwlist]),
      [['1', '61', '#cr21,#cr20']],
    );
    const carrier20 = data.carriers.find((carrier) => carrier.carrierid === 'cr20')!;
    assert.deepEqual([carrier20.gwlist, carrier20.sort_alg], ['gw201=1,gw202=3', 'W']);
    const carrier21 = data.carriers.find((carrier) => carrier.carrierid === 'cr21')!;
    assert.deepEqual([carrier21.gwlist, carrier21.sort_alg], ['gw211,gw212', 'N']);
    assert.deepEqual(data.groups, [
      { username: 'acme_trunk_01', domain: 'sip.crazytel.com.au', groupid: 1, description: 'customer trunk 10' },
    ]);
  });

  it("agrees with the sidecar's LCR on thousands of random numbers of a generated world", async () => {
    const dataset = generateDataset(SIZES.small, 7);
    const engine = engineFor(dataset.tables);
    const data = indexRules(await buildDroutingData(engine.snapshot, now));
    const trunks = engine.snapshot.customerTrunks
      .map((trunk, index) => ({ trunk, index }))
      .filter(({ trunk }) => trunk.active && trunk.sellDeck >= 0);
    let seed = 3;
    const random = (): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    let routed = 0;
    for (let i = 0; i < 3000; i++) {
      const { trunk, index } = trunks[Math.floor(random() * trunks.length)];
      const base = dataset.traffic.numbers[Math.floor(random() * dataset.traffic.numbers.length)];
      const number = random() < 0.2 ? String(Math.floor(random() * 1e11)).padStart(11, '9') : base;
      const lcr = engine.lcr.evaluate({ trunk: index, dnis: number, ani: '', triedCarrierIds: [], triedGatewayIds: [], now });
      const expected = lcr.candidates
        .filter((candidate) => candidate.status === 'ok')
        .map((candidate) => carrierId(engine.snapshot.carriers[candidate.carrier].id));
      if (expected.length > 0) routed++;
      assert.deepEqual(
        droutingCarriers(data, engine.snapshot.decks[trunk.sellDeck].id, number),
        expected,
        `trunk ${trunk.id} number ${number}`,
      );
    }
    assert.ok(routed > 1000, `only ${routed} numbers had a route: the test would prove little`);
  });

  it('gives prepaid and cut-off accounts no address rows: without the sidecar nothing holds them to their balance', async () => {
    for (const change of [
      () => undefined, // account 1 prepaid
      (description: SnapshotDescription) => {
        description.customer_accounts[0] = {
          ...description.customer_accounts[0],
          billing_mode: 'postpaid',
          credit_limit: '500.00',
          auto_cutoff_enabled: true,
        };
      },
    ]) {
      const tables = routingTables(change);
      const data = await buildDroutingData(engineFor(tables).snapshot, now, tables.trunk_ip_auth);
      assert.deepEqual(data.addresses, []);
      assert.ok(data.rules.length > 0, 'their routes are still written');
    }
  });

  it('gives trunks identified by a tech prefix no address rows: the degraded path would route and bill the prefix as dialled', async () => {
    const unlimited = (description: SnapshotDescription): void => {
      description.customer_accounts[0] = { ...description.customer_accounts[0], billing_mode: 'postpaid', credit_limit: '500.00' };
    };
    const trunksWithRows = async (change: (description: SnapshotDescription) => void): Promise<string[]> => {
      const tables = routingTables(change);
      const data = await buildDroutingData(engineFor(tables).snapshot, now, tables.trunk_ip_auth);
      return [...new Set(data.addresses.map((row) => row.context_info))].sort();
    };
    assert.deepEqual(await trunksWithRows(unlimited), ['10']);
    // The same trunks without their prefixes have rows: it is the prefix that keeps them out.
    assert.deepEqual(
      await trunksWithRows((description) => {
        unlimited(description);
        for (const trunk of description.customer_trunks) trunk.tech_prefix = null;
      }),
      ['10', '11', '14'],
    );
  });

  it("gives no address rows to a sell deck whose id is above address.grp's SMALLINT: every MySQL/PostgreSQL node would refuse its write", async () => {
    const renumbered =
      (id: number) =>
      (description: SnapshotDescription): void => {
        description.customer_accounts[0] = { ...description.customer_accounts[0], billing_mode: 'postpaid', credit_limit: '500.00' };
        for (const deck of description.rate_decks) if (deck.id === 1) deck.id = id;
        for (const rows of [description.rate_deck_rates, description.customer_trunk_rate_decks, description.rate_deck_allowlist])
          for (const row of rows) if (row.rate_deck_id === 1) row.rate_deck_id = id;
      };
    const addressGroups = async (id: number): Promise<number[]> => {
      const tables = routingTables(renumbered(id));
      const data = await buildDroutingData(engineFor(tables).snapshot, now, tables.trunk_ip_auth);
      assert.ok(
        data.rules.some((rule) => rule.groupid === String(id)),
        'its routes are still written',
      );
      return [...new Set(data.addresses.map((row) => row.grp))];
    };
    assert.deepEqual(await addressGroups(32_767), [32_767]);
    assert.deepEqual(await addressGroups(32_768), []);
  });

  it('writes the tables OpenSIPS reads, with their version rows, replacing the old rows', async () => {
    // Account 1 postpaid without a cutoff: nothing limits its spending, so its trunks route in degraded mode.
    const tables = routingTables((description) => {
      description.customer_accounts[0] = { ...description.customer_accounts[0], billing_mode: 'postpaid', credit_limit: '500.00' };
    });
    const engine = engineFor(tables);
    const data = await buildDroutingData(engine.snapshot, now, tables.trunk_ip_auth);
    const path = join(mkdtempSync(join(tmpdir(), 'drouting-')), 'opensips.sqlite');
    writeDrouting(path, data);
    writeDrouting(path, data); // a second write replaces, not appends
    const db = new Database(path, { readonly: true });
    const count = (table: string): number => (db.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n;
    assert.deepEqual(
      [count('dr_gateways'), count('dr_carriers'), count('dr_rules'), count('dr_groups'), count('address')],
      [data.gateways.length, data.carriers.length, data.rules.length, data.groups.length, data.addresses.length],
    );
    // The degraded mode's source addresses: active trunks with a sell deck of unlimited accounts, most specific
    // first; group = the sell deck, context = the trunk. Trunk 12 (suspended account) and 13 (suspended) have
    // none, nor 11 and 14 (tech prefixes 9999 and 99, which the degraded path cannot strip).
    const addresses = db.prepare('SELECT grp, ip, mask, port, proto, context_info FROM address ORDER BY id').all();
    assert.deepEqual(
      addresses,
      [
        { grp: 1, ip: '2001:db8:10::', mask: 48, port: 0, proto: 'any', context_info: '10' },
        { grp: 1, ip: '203.0.113.0', mask: 24, port: 0, proto: 'any', context_info: '10' },
      ].sort((a, b) => b.mask - a.mask),
    );
    const versions = Object.fromEntries(
      (db.prepare('SELECT table_name, table_version FROM version').all() as { table_name: string; table_version: number }[]).map((row) => [
        row.table_name,
        row.table_version,
      ]),
    );
    assert.deepEqual(versions, DROUTING_TABLE_VERSIONS);
    const rule = db.prepare("SELECT groupid, gwlist, sort_alg FROM dr_rules WHERE prefix = '61'").get() as {
      groupid: string;
      gwlist: string;
      sort_alg: string;
    };
    assert.deepEqual(rule, { groupid: '1', gwlist: '#cr21,#cr20', sort_alg: 'N' });
    const gateway = db.prepare("SELECT address FROM dr_gateways WHERE gwid = 'gw211'").get() as { address: string };
    assert.equal(gateway.address, '[2001:db8::50]:5080');
    db.close();
    assert.equal(droutingChecksum(data), droutingChecksum(await buildDroutingData(engine.snapshot, now, tables.trunk_ip_auth)));
  });

  it('builds in its worker, writes the first node and copies to the others; a copy whose source is gone writes the rows', async () => {
    const tables = routingTables();
    const expected = await buildDroutingData(engineFor(tables).snapshot, now, tables.trunk_ip_auth);
    const builder = new DroutingBuilder();
    try {
      const built = await builder.build(tables, now);
      assert.equal(built.checksum, droutingChecksum(expected));
      assert.deepEqual(built.counts, {
        gateways: expected.gateways.length,
        carriers: expected.carriers.length,
        rules: expected.rules.length,
        groups: 1,
      });
      const dir = mkdtempSync(join(tmpdir(), 'drouting-builder-'));
      const node = (n: number) => ({ kind: 'sqlite' as const, path: join(dir, `opensips-${n}.sqlite`) });
      await Promise.all([1, 2, 3].map((n) => builder.write(built.checksum, node(n))));
      for (const file of ['', '-wal', '-shm']) rmSync(`${node(1).path}${file}`, { force: true });
      await builder.write(built.checksum, node(4));
      for (const n of [2, 3, 4]) {
        const db = new Database(node(n).path, { readonly: true });
        assert.deepEqual(
          db.prepare('SELECT groupid, prefix, gwlist FROM dr_rules').all(),
          expected.rules.map((rule) => ({ groupid: rule.groupid, prefix: rule.prefix, gwlist: rule.gwlist })),
          `node ${n}`,
        );
        assert.equal((db.prepare('SELECT COUNT(*) AS n FROM address').get() as { n: number }).n, expected.addresses.length);
        db.close();
      }
      await assert.rejects(builder.write('not-the-last-build', node(5)), /not the last ones built/);
    } finally {
      await builder.close();
    }
  });

  it("refuses, whole, a write or a copy of a control plane whose lead term is older than the last that wrote the node's file", async () => {
    const tables = routingTables();
    const data = await buildDroutingData(engineFor(tables).snapshot, now, tables.trunk_ip_auth);
    const dir = mkdtempSync(join(tmpdir(), 'drouting-term-'));
    const path = join(dir, 'opensips.sqlite');
    const rules = (file: string): number => {
      const db = new Database(file, { readonly: true });
      try {
        return (db.prepare('SELECT COUNT(*) AS n FROM dr_rules').get() as { n: number }).n;
      } finally {
        db.close();
      }
    };
    writeDrouting(path, data, 3);
    assert.throws(() => writeDrouting(path, { ...data, rules: data.rules.slice(0, 1) }, 2), /later \(term 3\).*\(term 2\) no longer leads/);
    assert.equal(rules(path), data.rules.length, "the later leader's rows stay");
    writeDrouting(path, { ...data, rules: data.rules.slice(0, 1) }, 3);
    assert.equal(rules(path), 1);

    // Through the worker, the first node written and the next copied from it.
    const builder = new DroutingBuilder();
    try {
      const built = await builder.build(tables, now);
      const node = (n: number) => ({ kind: 'sqlite' as const, path: join(dir, `opensips-${n}.sqlite`) });
      await builder.write(built.checksum, node(1), 5);
      await builder.write(built.checksum, node(2), 5);
      for (const n of [1, 2]) await assert.rejects(builder.write(built.checksum, node(n), 4), /term 5/, `node ${n}`);
    } finally {
      await builder.close();
    }
  });
});
