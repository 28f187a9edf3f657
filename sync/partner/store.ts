import type Database from 'better-sqlite3';
import type { ChangeLog } from '../store/config-store.js';

/**
 * The partner API's tables (migration 11): tenants and products as the admin API wrote them, retail
 * accounts, and the answers kept for idempotent writes. Every method is synchronous so that a write's
 * checks, its change and its kept answer run inside one ledger transaction (LedgerStore.transaction, the
 * same database connection): nothing can interleave, and a crash leaves all of it or none.
 *
 * A translation set up or ended is a live change (issue 18): its delta is appended in that same transaction,
 * and the caller calls committed() after the commit, which wakes the nodes' waiting asks, so a node can route
 * through it within a round trip of the answer, without a sync.
 */
export interface PartnerTenant {
  id: number;
  tenant_id: string;
  status: string;
  operations: string;
}

export interface PartnerProduct {
  id: number;
  partner_tenant_id: number;
  product_id: string;
  currency: string;
  requires_pin: number;
  status: string;
  /** Comma list of digits (the admin API drops a leading +), or null. */
  access_numbers: string | null;
}

export interface RetailAccount {
  id: number;
  partner_product_id: number;
  account_code: string;
  external_user_id: string | null;
  requires_pin: number;
  status: string;
  deactivated_at: string | null;
  deactivation_reason: string | null;
}

/** One billed call of a retail account, as call_history shows it. */
export interface RetailCall {
  dnis: string;
  billable_duration_customer: number;
  account_charge: string;
}

export interface KeptAnswer {
  request_digest: string;
  status: number;
  body: string;
  transaction_id: string;
}

export class PartnerStore {
  private readonly sql;
  /** Deltas appended since the last committed(): only then is there anything to wake the nodes for. */
  private appended = false;

  constructor(
    db: Database.Database,
    /** The delta log (sync/deltas/log.ts); null: no live changes (a store opened for a one-off job). */
    private readonly deltas: ChangeLog | null = null,
  ) {
    this.sql = {
      tenant: db.prepare('SELECT id, tenant_id, status, operations FROM partner_tenants WHERE tenant_id = ?'),
      product: db.prepare(
        'SELECT id, partner_tenant_id, product_id, currency, requires_pin, status, access_numbers FROM partner_products WHERE partner_tenant_id = ? AND product_id = ?',
      ),
      activeProducts: db.prepare(
        "SELECT id, partner_tenant_id, product_id, currency, requires_pin, status, access_numbers FROM partner_products WHERE partner_tenant_id = ? AND status = 'active'",
      ),
      account: db.prepare('SELECT * FROM retail_accounts WHERE partner_product_id = ? AND account_code = ?'),
      codeTaken: db.prepare('SELECT 1 FROM retail_accounts WHERE account_code = ?'),
      holderOf: db.prepare('SELECT id FROM retail_accounts WHERE partner_product_id = ? AND external_user_id = ?'),
      insertAccount: db.prepare(
        `INSERT INTO retail_accounts (partner_product_id, account_code, external_user_id, requires_pin, pin_hash, status, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, 'active', ?, ?)`,
      ),
      deactivate: db.prepare(
        "UPDATE retail_accounts SET status = 'deactivated', deactivated_at = ?, deactivation_reason = ?, updated_at = ? WHERE id = ?",
      ),
      changeCli: db.prepare('UPDATE retail_accounts SET external_user_id = ?, updated_at = ? WHERE id = ?'),
      // The account's answered calls since `since`, newest first (retail_call_cdrs is indexed by account and start).
      calls: db.prepare(
        `SELECT c.dnis, c.billable_duration_customer, c.account_charge FROM retail_call_cdrs r JOIN cdrs c ON c.id = r.cdr_id
         WHERE r.retail_account_id = ? AND r.start_time >= ? AND c.answer_time IS NOT NULL
         ORDER BY r.start_time DESC, r.cdr_id DESC LIMIT ?`,
      ),
      insertTranslation: db.prepare(
        `INSERT INTO call_translations (retail_account_id, partner_product_id, a_number, access_number, b_number, created_at, expires_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)`,
      ),
      translation: db.prepare('SELECT * FROM call_translations WHERE id = ?'),
      // One translation per caller and access number (partner contract note 57): a new one ends those before it.
      supersede: db.prepare('UPDATE call_translations SET expires_at = ? WHERE a_number = ? AND access_number = ? AND expires_at > ?'),
      endTranslations: db.prepare('UPDATE call_translations SET expires_at = ? WHERE retail_account_id = ? AND expires_at > ? RETURNING *'),
      pruneTranslations: db.prepare('DELETE FROM call_translations WHERE expires_at < ?'),
      pruneKept: db.prepare('DELETE FROM partner_idempotency WHERE created_at < ?'),
      kept: db.prepare(
        'SELECT request_digest, status, body, transaction_id FROM partner_idempotency WHERE tenant_id = ? AND operation = ? AND idempotency_key = ?',
      ),
      keep: db.prepare(
        `INSERT INTO partner_idempotency (tenant_id, operation, idempotency_key, request_digest, status, body, transaction_id, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
    };
  }

  tenant(tenantId: string): PartnerTenant | null {
    return (this.sql.tenant.get(tenantId) as PartnerTenant | undefined) ?? null;
  }

  product(tenant: number, productId: string): PartnerProduct | null {
    return (this.sql.product.get(tenant, productId) as PartnerProduct | undefined) ?? null;
  }

  activeProducts(tenant: number): PartnerProduct[] {
    return this.sql.activeProducts.all(tenant) as PartnerProduct[];
  }

  account(product: number, code: string): RetailAccount | null {
    return (this.sql.account.get(product, code) as RetailAccount | undefined) ?? null;
  }

  codeTaken(code: string): boolean {
    return this.sql.codeTaken.get(code) !== undefined;
  }

  /** The account of this product whose external_user_id (CLI) this is, if any. */
  holderOf(product: number, externalUserId: string): number | null {
    return (this.sql.holderOf.get(product, externalUserId) as { id: number } | undefined)?.id ?? null;
  }

  createAccount(product: number, code: string, externalUserId: string | null, pinHash: string | null): number {
    const now = new Date().toISOString();
    return Number(this.sql.insertAccount.run(product, code, externalUserId, pinHash === null ? 0 : 1, pinHash, now, now).lastInsertRowid);
  }

  deactivate(account: number, at: string, reason: string | null): void {
    this.sql.deactivate.run(at, reason, at, account);
  }

  changeCli(account: number, externalUserId: string): void {
    this.sql.changeCli.run(externalUserId, new Date().toISOString(), account);
  }

  /** Up to `limit` answered calls billed to the account that started at or after `since` (ISO time), newest first. */
  calls(account: number, since: string, limit: number): RetailCall[] {
    return this.sql.calls.all(account, since, limit) as RetailCall[];
  }

  /**
   * Stores a translation living until `expiresAt`, ending any earlier one for the same caller and access number,
   * and appends its delta; its id is setup_call's insertId. The ones it ends need no delta: on a node the newer
   * translation replaces them (src/core/snapshot/retail-index.ts).
   */
  addTranslation(account: RetailAccount, aNumber: string, accessNumber: string, bNumber: string, now: string, expiresAt: string): number {
    const { id, partner_product_id: product } = account;
    this.sql.supersede.run(now, aNumber, accessNumber, now);
    const insertId = Number(this.sql.insertTranslation.run(id, product, aNumber, accessNumber, bNumber, now, expiresAt).lastInsertRowid);
    this.live(insertId, this.sql.translation.get(insertId) as Record<string, unknown>);
    return insertId;
  }

  /**
   * Ends the account's live translations now (a deactivated account places no call through them), each a delta
   * that carries its end as expires_at; how many.
   */
  endTranslations(account: number, now: string): number {
    const ended = this.sql.endTranslations.all(now, account, now) as Record<string, unknown>[];
    for (const row of ended) this.live(row.id as number, row);
    return ended.length;
  }

  /** After the transaction that changed translations has committed: wakes the nodes waiting for deltas. */
  committed(): void {
    if (!this.appended) return;
    this.appended = false;
    this.deltas?.committed();
  }

  private live(id: number, row: Record<string, unknown>): void {
    if (this.deltas === null) return;
    this.deltas.append('call_translations', id, row);
    this.appended = true;
  }

  /**
   * Forgets what is older than `before` (ISO time): kept answers written before it (a retry of such a key
   * runs as a new request) and translations that ended before it (nothing reads them again).
   */
  prune(before: string): { kept: number; translations: number } {
    return { kept: this.sql.pruneKept.run(before).changes, translations: this.sql.pruneTranslations.run(before).changes };
  }

  kept(tenantId: string, operation: string, key: string): KeptAnswer | null {
    return (this.sql.kept.get(tenantId, operation, key) as KeptAnswer | undefined) ?? null;
  }

  keep(tenantId: string, operation: string, key: string, answer: KeptAnswer): void {
    this.sql.keep.run(
      tenantId,
      operation,
      key,
      answer.request_digest,
      answer.status,
      answer.body,
      answer.transaction_id,
      new Date().toISOString(),
    );
  }
}
