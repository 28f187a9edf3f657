import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { PartnerStore } from '../../sync/partner/store.js';
import { openDatabase } from '../../sync/store/database.js';

/** The partner API's retention: kept answers and ended translations older than it go; nothing younger does. */
describe('partner pruning', () => {
  it('forgets kept answers written, and translations ended, before the cut-off, and keeps the rest', () => {
    const db = openDatabase(join(mkdtempSync(join(tmpdir(), 'partner-prune-')), 'config.db'));
    try {
      const partner = new PartnerStore(db);
      const now = new Date().toISOString();
      db.prepare(
        "INSERT INTO partner_tenants (id, tenant_id, name, status, operations, created_at, updated_at) VALUES (1, 'acme', 'Acme', 'active', 'topup', ?, ?)",
      ).run(now, now);
      db.prepare(
        "INSERT INTO partner_products (id, partner_tenant_id, product_id, currency, requires_pin, status, created_at, updated_at) VALUES (1, 1, 'p', 'AUD', 0, 'active', ?, ?)",
      ).run(now, now);
      const account = partner.createAccount(1, '000000000001', null, null);
      const row = partner.account(1, '000000000001')!;
      assert.equal(row.id, account);
      const answer = { request_digest: 'd', status: 200, body: '{}', transaction_id: 'k' };
      partner.keep('acme', 'topup', 'k1', answer);
      partner.addTranslation(row, '61400111222', '61280000000', '61298765432', now, '2026-01-01T00:00:00.000Z');
      partner.addTranslation(row, '61400111333', '61280000000', '61298765432', now, '2999-01-01T00:00:00.000Z');

      assert.deepEqual(partner.prune('2025-01-01T00:00:00.000Z'), { kept: 0, translations: 0 });
      const later = new Date(Date.now() + 60_000).toISOString();
      assert.deepEqual(partner.prune(later), { kept: 1, translations: 1 });
      assert.equal(partner.kept('acme', 'topup', 'k1'), null);
      const left = db.prepare('SELECT a_number FROM call_translations').all() as { a_number: string }[];
      assert.deepEqual(left, [{ a_number: '61400111333' }], 'a translation still live is never pruned');
    } finally {
      db.close();
    }
  });
});
