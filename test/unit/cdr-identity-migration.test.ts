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
 * Migration 21 (a settled CDR known by its Call-ID and start) on a store that has CDRs, on both engines: SQLite
 * rebuilds the table (its UNIQUE is in the column's definition), PostgreSQL swaps the constraint. Every row,
 * id, index and the retail rows naming CDRs come through, and the new key holds.
 */
const unreachable = await postgresUnreachable();
const BEFORE = 20;
const at = '2026-12-01T10:00:00.000Z';
const later = '2026-12-01T11:00:00.000Z';
const NOW = '2026-12-01T12:00:00.000Z';

/** A CDR row as the centre stored it: the round's columns, its node, its id and its debit row's. */
function cdrRow(id: number, callId: string, start: string): Record<string, unknown> {
  return {
    ...settledCall(callId, 1, `${id}.25`),
    id,
    start_time: start,
    answer_time: start,
    end_time: start,
    node: 'node-a',
    uncovered: '0.00',
    debit_transaction_id: id,
  };
}

async function insert(handle: ConfigStoreHandle, table: string, row: Record<string, unknown>): Promise<void> {
  await handle.ledger.run(() => runSql(insertSql(table, row), ...Object.values(row)));
}

const INDEXES = {
  sqlite: "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'cdrs' ORDER BY name",
  postgres: "SELECT indexname AS name FROM pg_indexes WHERE tablename = 'cdrs' AND schemaname = current_schema() ORDER BY indexname",
};

const rowsOf = (handle: ConfigStoreHandle, sql: string) => handle.ledger.run(() => allRows<Record<string, unknown>>(sql));

for (const engine of ['sqlite', 'postgres'] as const) {
  describe(`migration 21 on ${engine}`, { skip: engine === 'postgres' ? (unreachable ?? false) : false }, () => {
    let scratch: ScratchSchema | null = null;
    let handle: ConfigStoreHandle;
    let cdrsBefore: Record<string, unknown>[];
    let retailBefore: Record<string, unknown>[];
    let indexesBefore: string[];
    const indexes = async () => (await rowsOf(handle, INDEXES[engine])).map((row) => String(row.name));

    before(async () => {
      scratch = engine === 'postgres' ? await scratchSchema('cdr_identity') : null;
      const location = scratch?.url ?? `sqlite:${join(mkdtempSync(join(tmpdir(), 'cdr-identity-')), 'config.db')}`;
      // The rows a centre of the build before held: a retail account, CDRs, one of them its call.
      const raw = await openRaw(engine, location);
      await migrateThrough(engine, raw, BEFORE, NOW);
      const put = (table: string, row: Record<string, unknown>) => raw.run(insertSql(table, row), ...Object.values(row));
      await putPartnerProduct(raw, NOW, false);
      await put('retail_accounts', {
        id: 1,
        partner_product_id: 1,
        account_code: '000000000001',
        requires_pin: 0,
        status: 'active',
        created_at: NOW,
        updated_at: NOW,
      });
      await put('cdrs', cdrRow(1, 'kept-1@carrier', at));
      await put('cdrs', cdrRow(2, 'kept-2@carrier', at));
      await put('cdrs', cdrRow(7, 'kept-3@carrier', later));
      await put('retail_call_cdrs', { cdr_id: 2, retail_account_id: 1, start_time: at });
      cdrsBefore = await raw.all('SELECT * FROM cdrs ORDER BY id');
      retailBefore = await raw.all('SELECT * FROM retail_call_cdrs ORDER BY cdr_id');
      indexesBefore = (await raw.all(INDEXES[engine])).map((row) => String(row.name));
      await raw.close();
      handle = await openConfigStore(parseStoreLocation(location));
    });

    after(async () => {
      await handle.close();
      await scratch?.drop();
    });

    it('keeps every CDR, its id and columns, the retail rows naming CDRs, and every index', async () => {
      assert.equal(await handle.schemaVersion(), MIGRATIONS[MIGRATIONS.length - 1].version);
      assert.equal(cdrsBefore.length, 3);
      // The columns the rows had (a later migration may add more).
      const columns = Object.keys(cdrsBefore[0]);
      const cdrsAfter = await rowsOf(handle, 'SELECT * FROM cdrs ORDER BY id');
      assert.deepEqual(
        cdrsAfter.map((row) => Object.fromEntries(columns.map((column) => [column, row[column]]))),
        cdrsBefore,
      );
      assert.deepEqual(await rowsOf(handle, 'SELECT * FROM retail_call_cdrs ORDER BY cdr_id'), retailBefore);
      const renamed = (names: string[], from: string, to: string) => names.map((name) => (name === from ? to : name));
      // PostgreSQL's key changes its name with its columns; SQLite's stays the table's first automatic index.
      assert.deepEqual(await indexes(), renamed(indexesBefore, 'cdrs_sip_call_id_key', 'cdrs_sip_call_id_start_time_key').sort());
      assert.ok(indexesBefore.includes('cdrs_customer_account') && indexesBefore.includes('cdrs_start'));
    });

    it('holds the new key: a Call-ID again under another start is a row of its own, under the same start refused', async () => {
      await insert(handle, 'cdrs', cdrRow(8, 'kept-1@carrier', later));
      await assert.rejects(insert(handle, 'cdrs', cdrRow(9, 'kept-1@carrier', at)), /UNIQUE|unique/);
      // The retail rows still name the table (SQLite: its foreign key follows the rebuilt one).
      await assert.rejects(
        insert(handle, 'retail_call_cdrs', { cdr_id: 99, retail_account_id: 1, start_time: at }),
        /FOREIGN KEY|foreign key/,
      );
      await insert(handle, 'retail_call_cdrs', { cdr_id: 8, retail_account_id: 1, start_time: later });
      const calls = await rowsOf(handle, "SELECT id, start_time FROM cdrs WHERE sip_call_id = 'kept-1@carrier' ORDER BY id");
      assert.deepEqual(calls, [
        { id: 1, start_time: at },
        { id: 8, start_time: later },
      ]);
    });
  });
}
