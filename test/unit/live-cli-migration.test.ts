import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { settledCall } from '../../src/devkit/ledger-world.js';
import { allRows, runSql } from '../../sync/ledger/sql-steps.js';
import { MIGRATIONS } from '../../sync/store/migrations.js';
import { parseStoreLocation } from '../../sync/store/store-location.js';
import { openConfigStore, type ConfigStoreHandle } from '../../sync/stores.js';
import { postgresUnreachable, scratchSchema, type ScratchSchema } from '../helpers/postgres.js';
import { insertSql, migrateThrough, openRaw, putPartnerProduct } from '../helpers/unmigrated-store.js';

/**
 * Migration 23 (a CLI unique among a product's live accounts only) on a store holding a deactivated and a live
 * account, on both engines: SQLite rebuilds retail_accounts (its UNIQUE is in the table's definition), PostgreSQL
 * swaps the constraint for a partial index. Every account, its id and columns, and the rows naming accounts
 * (retail_call_cdrs, call_translations) come through; a closed account's CLI is free for a new account, a live
 * one's is not.
 */
const unreachable = await postgresUnreachable();
const MIGRATION = 23;
const NOW = '2026-12-01T12:00:00.000Z';
const CLOSED_CLI = '61400000001';
const LIVE_CLI = '61400000002';

const account = (id: number, code: string, cli: string, deactivatedAt: string | null): Record<string, unknown> => ({
  id,
  partner_product_id: 1,
  account_code: code,
  external_user_id: cli,
  requires_pin: 1,
  pin_hash: `scrypt$hash-${id}`,
  status: deactivatedAt === null ? 'active' : 'deactivated',
  deactivated_at: deactivatedAt,
  deactivation_reason: deactivatedAt === null ? null : 'closure',
  created_at: NOW,
  updated_at: NOW,
});

const INDEXES = {
  sqlite: "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'retail_accounts' AND sql IS NOT NULL ORDER BY name",
  postgres:
    "SELECT indexname AS name FROM pg_indexes WHERE tablename = 'retail_accounts' AND schemaname = current_schema() ORDER BY indexname",
};

for (const engine of ['sqlite', 'postgres'] as const) {
  describe(`migration ${MIGRATION} on ${engine}`, { skip: engine === 'postgres' ? (unreachable ?? false) : false }, () => {
    let scratch: ScratchSchema | null = null;
    let handle: ConfigStoreHandle;
    const before_: Record<string, Record<string, unknown>[]> = {};
    const rows = (sql: string) => handle.ledger.run(() => allRows<Record<string, unknown>>(sql));
    // async: SQLite's run throws before it returns a promise.
    const insert = async (row: Record<string, unknown>, table = 'retail_accounts') =>
      void (await handle.ledger.run(() => runSql(insertSql(table, row), ...Object.values(row))));

    before(async () => {
      scratch = engine === 'postgres' ? await scratchSchema('live_cli') : null;
      const location = scratch?.url ?? `sqlite:${join(mkdtempSync(join(tmpdir(), 'live-cli-')), 'config.db')}`;
      // What a centre of the build before held: a closed account with its call, a live one with a translation.
      const raw = await openRaw(engine, location);
      await migrateThrough(engine, raw, MIGRATION - 1, NOW);
      const put = (table: string, row: Record<string, unknown>) => raw.run(insertSql(table, row), ...Object.values(row));
      await putPartnerProduct(raw, NOW, true);
      await put('retail_accounts', account(5, '000000000005', CLOSED_CLI, '2026-11-30T09:00:00.000Z'));
      await put('retail_accounts', account(9, '000000000009', LIVE_CLI, null));
      await put('cdrs', {
        ...settledCall('closed@carrier', 1, '1.25'),
        id: 3,
        start_time: NOW,
        answer_time: NOW,
        end_time: NOW,
        node: 'n',
      });
      await put('retail_call_cdrs', { cdr_id: 3, retail_account_id: 5, start_time: NOW });
      await put('call_translations', {
        id: 4,
        retail_account_id: 9,
        partner_product_id: 1,
        a_number: LIVE_CLI,
        access_number: '61280000000',
        b_number: '61299999999',
        created_at: NOW,
        expires_at: '2026-12-01T13:00:00.000Z',
      });
      for (const table of ['retail_accounts', 'retail_call_cdrs', 'call_translations'])
        before_[table] = await raw.all(`SELECT * FROM ${table} ORDER BY 1`);
      before_.indexes = await raw.all(INDEXES[engine]);
      await raw.close();
      handle = await openConfigStore(parseStoreLocation(location));
    });

    after(async () => {
      await handle.close();
      await scratch?.drop();
    });

    it('keeps every account, its id and columns, and the calls and translations naming accounts', async () => {
      assert.equal(await handle.schemaVersion(), MIGRATIONS[MIGRATIONS.length - 1].version);
      assert.equal(before_.retail_accounts.length, 2);
      for (const table of ['retail_accounts', 'retail_call_cdrs', 'call_translations']) {
        // The columns the rows had (a later migration may add more).
        const columns = Object.keys(before_[table][0]);
        const after_ = await rows(`SELECT * FROM ${table} ORDER BY 1`);
        assert.deepEqual(
          after_.map((row) => Object.fromEntries(columns.map((column) => [column, row[column]]))),
          before_[table],
          table,
        );
      }
      assert.deepEqual(
        (await rows(INDEXES[engine])).map((row) => row.name),
        [...before_.indexes.map((row) => row.name), 'retail_accounts_live_cli']
          .filter((name) => name !== 'retail_accounts_partner_product_id_external_user_id_key')
          .sort(),
      );
    });

    it("frees a closed account's CLI for a new account, keeps a live one's to its account, and the rows still name accounts", async () => {
      await insert(account(10, '000000000010', CLOSED_CLI, null));
      await assert.rejects(insert(account(11, '000000000011', CLOSED_CLI, null)), /UNIQUE|unique/);
      await assert.rejects(insert(account(12, '000000000012', LIVE_CLI, null)), /UNIQUE|unique/);
      // Closed again, and again a new account: any number of closed accounts may keep one CLI.
      await handle.ledger.run(() => runSql("UPDATE retail_accounts SET status = 'deactivated', deactivated_at = ? WHERE id = 10", NOW));
      await insert(account(13, '000000000013', CLOSED_CLI, null));
      await assert.rejects(insert(account(14, '000000000009', '61400000003', null)), /UNIQUE|unique/, 'account codes stay unique');
      await assert.rejects(
        insert({ ...before_.call_translations[0], id: 5, retail_account_id: 99 }, 'call_translations'),
        /FOREIGN KEY|foreign key/,
      );
      const holders = await rows(`SELECT id, status FROM retail_accounts WHERE external_user_id = '${CLOSED_CLI}' ORDER BY id`);
      assert.deepEqual(holders, [
        { id: 5, status: 'deactivated' },
        { id: 10, status: 'deactivated' },
        { id: 13, status: 'active' },
      ]);
    });
  });
}
