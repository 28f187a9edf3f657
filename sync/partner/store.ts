import { onEngine, allRows, getRow, pageOfRows, runSql, type SqlText, type Steps } from '../ledger/sql-steps.js';
import type { LedgerStore } from '../ledger/store.js';
import type { ChangeLog, Row } from '../store/config-store.js';
import type { PgChangeLog } from '../store/pg-config-store.js';
import { twelveDigits } from './codes.js';

/**
 * The partner API's tables (migration 11): tenants and products as the admin API wrote them, retail
 * accounts, and the answers kept for idempotent writes, on either engine. Every method is steps
 * (ledger/sql-steps.ts), so a write's checks, its change, its money and its kept answer run inside one ledger
 * transaction (LedgerStore.run): on SQLite under the one write lock, on PostgreSQL READ COMMITTED with the
 * locks each read-modify-write takes (`lockKey`, the ledger's balance locks), run again whole when the server
 * aborts it. A crash leaves all of it or none. Reads outside a write go through `read`.
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

/** Where a partner write's live changes go: each engine's delta log, appended on the write's own connection. */
export interface LiveChanges {
  append(table: string, id: number, row: Row): Steps<number>;
  /** After the commit of a transaction that appended. */
  committed(): void;
}

export function sqliteLiveChanges(log: ChangeLog): LiveChanges {
  return { append: (table, id, row) => onEngine({ sqlite: () => log.append(table, id, row) }), committed: () => log.committed() };
}

/** PostgreSQL's log announces a commit itself (its NOTIFY is delivered at commit): nothing to do after. */
export function pgLiveChanges(log: PgChangeLog): LiveChanges {
  return { append: (table, id, row) => onEngine({ postgres: (client) => log.append(client, table, id, row) }), committed: () => undefined };
}

const PRODUCT_COLUMNS = 'id, partner_tenant_id, product_id, currency, requires_pin, status, access_numbers';
/**
 * A retail account's columns as RetailAccount has them: not its PIN hash (a hundred characters, made a JS string on
 * every write that reads the account) nor its timestamps. Each column of a row read costs its own property.
 */
const ACCOUNT_COLUMNS = 'id, partner_product_id, account_code, external_user_id, requires_pin, status, deactivated_at, deactivation_reason';

/**
 * Statements with the columns above, made once: a template literal in the method made a new string each call,
 * which the prepared-statement cache then hashed whole (~0.4 µs a statement, two or three a partner request).
 */
const PRODUCT_SQL = `SELECT ${PRODUCT_COLUMNS} FROM partner_products WHERE partner_tenant_id = ? AND product_id = ?`;
const ACTIVE_PRODUCTS_SQL = `SELECT ${PRODUCT_COLUMNS} FROM partner_products WHERE partner_tenant_id = ? AND status = 'active' ORDER BY id`;
const ACCOUNT_SQL = `SELECT ${ACCOUNT_COLUMNS} FROM retail_accounts WHERE partner_product_id = ? AND account_code = ?`;
const ACCOUNT_FOR_UPDATE: SqlText = { sql: ACCOUNT_SQL, postgres: `${ACCOUNT_SQL} FOR UPDATE` };

/**
 * The key class of the advisory lock a partner write takes on its Idempotency-Key (PostgreSQL): ours, and
 * apart from the sync lock's (store/pg-sync-lock.ts).
 */
const IDEMPOTENCY_LOCK_CLASS = 0x5eed_0019;

export class PartnerStore {
  /** Deltas appended since the last committed(): only then is there anything to wake the nodes for. */
  private appended = false;

  constructor(
    private readonly ledger: LedgerStore,
    /** The delta log; null: no live changes (a store opened for a one-off job). */
    private readonly live: LiveChanges | null = null,
  ) {}

  /** Runs steps that only read, outside a write's transaction. */
  read<T>(steps: Steps<T>): Promise<T> {
    return this.ledger.read(steps);
  }

  *tenant(tenantId: string): Steps<PartnerTenant | null> {
    return (
      (yield* getRow<PartnerTenant>('SELECT id, tenant_id, status, operations FROM partner_tenants WHERE tenant_id = ?', tenantId)) ?? null
    );
  }

  *product(tenant: number, productId: string): Steps<PartnerProduct | null> {
    return (yield* getRow<PartnerProduct>(PRODUCT_SQL, tenant, productId)) ?? null;
  }

  *activeProducts(tenant: number): Steps<PartnerProduct[]> {
    return yield* allRows<PartnerProduct>(ACTIVE_PRODUCTS_SQL, tenant);
  }

  /**
   * The account with this code in this product. Inside a write it is locked (PostgreSQL: `FOR UPDATE`), so
   * a concurrent delete_account or change_cli on it waits for the write that read it.
   */
  *account(product: number, code: string, forUpdate = false): Steps<RetailAccount | null> {
    return (yield* getRow<RetailAccount>(forUpdate ? ACCOUNT_FOR_UPDATE : ACCOUNT_SQL, product, code)) ?? null;
  }

  /**
   * The live account of this product whose external_user_id (CLI) this is, if any. A deactivated account keeps
   * its CLI (its history) but no longer holds it: the CLI is unique among the product's live accounts only
   * (migration 23's index, which this reads through).
   */
  *holderOf(product: number, externalUserId: string): Steps<number | null> {
    return (
      (yield* getRow<{ id: number }>(
        'SELECT id FROM retail_accounts WHERE partner_product_id = ? AND external_user_id = ? AND deactivated_at IS NULL',
        product,
        externalUserId,
      ))?.id ?? null
    );
  }

  /** A new account with a fresh code (drawn again while taken); its id and code. */
  *createAccount(product: number, externalUserId: string | null, pinHash: string | null): Steps<{ id: number; code: string }> {
    let code: string | null = null;
    for (let draw = 0; draw < 100 && code === null; draw++) {
      // Codes starting 0 are as good as any (inputs are left-padded).
      const candidate = twelveDigits();
      if ((yield* getRow('SELECT 1 AS taken FROM retail_accounts WHERE account_code = ?', candidate)) === undefined) code = candidate;
    }
    if (code === null) throw new Error('no free account code after 100 draws');
    const now = new Date().toISOString();
    const row = yield* getRow<{ id: number }>(
      `INSERT INTO retail_accounts (partner_product_id, account_code, external_user_id, requires_pin, pin_hash, status, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?, 'active', ?, ?) RETURNING id`,
      product,
      code,
      externalUserId,
      pinHash === null ? 0 : 1,
      pinHash,
      now,
      now,
    );
    return { id: row!.id, code };
  }

  *deactivate(account: number, at: string, reason: string | null): Steps<void> {
    yield* runSql(
      "UPDATE retail_accounts SET status = 'deactivated', deactivated_at = ?, deactivation_reason = ?, updated_at = ? WHERE id = ?",
      at,
      reason,
      at,
      account,
    );
  }

  *changeCli(account: number, externalUserId: string): Steps<void> {
    yield* runSql(
      'UPDATE retail_accounts SET external_user_id = ?, updated_at = ? WHERE id = ?',
      externalUserId,
      new Date().toISOString(),
      account,
    );
  }

  /** Up to `limit` answered calls billed to the account that started at or after `since` (ISO time), newest first. */
  *calls(account: number, since: string, limit: number): Steps<RetailCall[]> {
    // retail_call_cdrs is indexed by account and start.
    return yield* pageOfRows<RetailCall>(
      `SELECT c.dnis, c.billable_duration_customer, c.account_charge FROM retail_call_cdrs r JOIN cdrs c ON c.id = r.cdr_id
       WHERE r.retail_account_id = ? AND r.start_time >= ? AND c.answer_time IS NOT NULL
       ORDER BY r.start_time DESC, r.cdr_id DESC`,
      [account, since],
      { limit },
    );
  }

  /**
   * Stores a translation living until `expiresAt`, ending any earlier one for the same caller and access number,
   * and appends its delta; its id is setup_call's insertId. The ones it ends need no delta: on a node the newer
   * translation replaces them (src/core/snapshot/retail-index.ts).
   */
  *addTranslation(
    account: RetailAccount,
    aNumber: string,
    accessNumber: string,
    bNumber: string,
    now: string,
    expiresAt: string,
  ): Steps<number> {
    // One translation per caller and access number (partner contract note 57): a new one ends those before it.
    yield* runSql(
      'UPDATE call_translations SET expires_at = ? WHERE a_number = ? AND access_number = ? AND expires_at > ?',
      now,
      aNumber,
      accessNumber,
      now,
    );
    const row = (yield* getRow<Row>(
      `INSERT INTO call_translations (retail_account_id, partner_product_id, a_number, access_number, b_number, created_at, expires_at)
       VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING *`,
      account.id,
      account.partner_product_id,
      aNumber,
      accessNumber,
      bNumber,
      now,
      expiresAt,
    ))!;
    yield* this.changed(row);
    return row.id as number;
  }

  /**
   * Ends the account's live translations now (a deactivated account places no call through them), each a delta
   * that carries its end as expires_at; how many.
   */
  *endTranslations(account: number, now: string): Steps<number> {
    const ended = yield* allRows<Row>(
      'UPDATE call_translations SET expires_at = ? WHERE retail_account_id = ? AND expires_at > ? RETURNING *',
      now,
      account,
      now,
    );
    for (const row of ended) yield* this.changed(row);
    return ended.length;
  }

  /** After the transaction that changed translations has committed: wakes the nodes waiting for deltas. */
  committed(): void {
    if (!this.appended) return;
    this.appended = false;
    this.live?.committed();
  }

  private *changed(row: Row): Steps<void> {
    if (this.live === null) return;
    yield* this.live.append('call_translations', row.id as number, row);
    this.appended = true;
  }

  /**
   * Forgets what is older than `before` (ISO time): kept answers written before it (a retry of such a key
   * runs as a new request) and translations that ended before it (nothing reads them again). One transaction.
   */
  prune(before: string): Promise<{ kept: number; translations: number }> {
    return this.ledger.run(function* () {
      const kept = yield* runSql('DELETE FROM partner_idempotency WHERE created_at < ?', before);
      const translations = yield* runSql('DELETE FROM call_translations WHERE expires_at < ?', before);
      return { kept, translations };
    });
  }

  /**
   * Holds the write's Idempotency-Key until the transaction ends (PostgreSQL: a transaction-scoped advisory
   * lock; SQLite's write lock already holds everything): a second request with the key waits here, then
   * finds the first's kept answer. Without it, READ COMMITTED lets the second run the work on what the first
   * changed (a debit refused for want of the balance the first took) before the kept answer's key stops it.
   */
  *lockKey(tenantId: string, operation: string, key: string): Steps<void> {
    yield* getRow(
      {
        sql: 'SELECT 1',
        postgres: "SELECT pg_advisory_xact_lock(?, hashtext(current_schema() || ' ' || ? || ' ' || ? || ' ' || ?))",
        onlyOn: 'postgres',
      },
      IDEMPOTENCY_LOCK_CLASS,
      tenantId,
      operation,
      key,
    );
  }

  *kept(tenantId: string, operation: string, key: string): Steps<KeptAnswer | null> {
    return (
      (yield* getRow<KeptAnswer>(
        'SELECT request_digest, status, body, transaction_id FROM partner_idempotency WHERE tenant_id = ? AND operation = ? AND idempotency_key = ?',
        tenantId,
        operation,
        key,
      )) ?? null
    );
  }

  *keep(tenantId: string, operation: string, key: string, answer: KeptAnswer): Steps<void> {
    yield* runSql(
      `INSERT INTO partner_idempotency (tenant_id, operation, idempotency_key, request_digest, status, body, transaction_id, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
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
