import assert from 'node:assert/strict';
import { Decimal } from '../../src/core/money/decimal.js';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { PARTNER_AUDIENCE, PARTNER_ISSUER, makePartnerKey, partnerToken } from '../../src/devkit/partner-tokens.js';
import type { Route } from '../../src/core/http/server.js';
import type { SettlementCdr } from '../../src/core/protocol/node-sync.js';
import { settledCall } from '../../src/devkit/ledger-world.js';
import { insertPartnerTenant, partnerRequest } from '../../src/devkit/partner-world.js';
import { LeaseRecalls } from '../../sync/ledger/lease-recall.js';
import { applyNodeSync } from '../../sync/ledger/settlement.js';
import { allRows, getRow } from '../../sync/ledger/sql-steps.js';
import { PartnerAuthenticator } from '../../sync/partner/auth.js';
import { partnerRoutes } from '../../sync/partner/routes.js';
import { DEFAULT_PARTNER_LIMITS, PartnerLimits } from '../../sync/partner/limits.js';
import { parseStoreLocation } from '../../sync/store/store-location.js';
import { openConfigStore, type ConfigStoreHandle } from '../../sync/stores.js';
import { postgresUnreachable, scratchSchema, type ScratchSchema } from '../helpers/postgres.js';

/**
 * The partner API's writes and store, the same cases on both engines: SQLite (one write lock) and PostgreSQL
 * (READ COMMITTED, the Idempotency-Key's advisory lock and the rows' locks, retried whole: sync/partner/store.ts).
 * The routes are driven directly, as the listener would. The PostgreSQL half is skipped only when the server
 * does not answer.
 */
const unreachable = await postgresUnreachable();
const ACCESS = '61280000000';
const CALLER = '61400111222';

interface Reply {
  status: number;
  text: string;
  json: Record<string, unknown>;
}

for (const engine of ['sqlite', 'postgres'] as const) {
  describe(`the partner API on ${engine}`, { skip: engine === 'postgres' ? (unreachable ?? false) : false }, () => {
    let handle: ConfigStoreHandle;
    let scratch: ScratchSchema | null = null;
    let routes: Route[];
    let token: string;
    let keys = 0;
    let account = '';
    let tenantRowId = 0;
    /** A token carrying the product context custom:product_id = p1. */
    let p1Token: string;
    let signingKey: Awaited<ReturnType<typeof makePartnerKey>>;

    /** A partner call with the tenant's token (no product context) unless `bearer` is another. */
    const post = async (operation: string, body: Record<string, unknown>, key = `key-${++keys}`, bearer = token): Promise<Reply> => {
      const route = routes.find((candidate) => candidate.path === `/${operation}`)!;
      const response = await route.handler(partnerRequest(route.path, body, bearer, { 'idempotency-key': key, 'x-correlation-id': '' }));
      const text = String(response.body);
      return { status: response.status, text, json: JSON.parse(text) as Record<string, unknown> };
    };
    const balance = async () => (await post('get_balance', { account, product_id: 'p1' })).json.total_balance;
    const debits = () =>
      handle.ledger.read(
        allRows<{ amount: string }>(
          "SELECT amount FROM balance_transactions WHERE entity_type = 'retail' AND transaction_type = 'debit' ORDER BY id",
        ),
      );
    const liveTranslations = () =>
      handle.ledger.read(
        allRows<{ id: number; b_number: string }>(
          'SELECT id, b_number FROM call_translations WHERE expires_at > ? ORDER BY id',
          new Date().toISOString(),
        ),
      );
    const lastDelta = () =>
      handle.ledger.read(
        getRow<{ table_name: string; row_id: number }>('SELECT table_name, row_id FROM delta_log ORDER BY seq DESC LIMIT 1'),
      );

    before(async () => {
      scratch = engine === 'postgres' ? await scratchSchema('partner_engines') : null;
      const dir = mkdtempSync(join(tmpdir(), 'partner-engines-'));
      handle = await openConfigStore(parseStoreLocation(scratch?.url ?? `sqlite:${join(dir, 'config.db')}`));
      const tenant = await insertPartnerTenant(
        handle.config,
        {
          tenant_id: 'acme',
          name: 'Acme',
          operations: 'get_balance,topup,debit_balance,create_account,delete_account,change_cli,setup_call,call_history',
        },
        { product_id: 'p1', currency: 'AUD', access_numbers: ACCESS },
      );
      tenantRowId = Number(tenant.id);
      const key = await makePartnerKey('k1');
      const jwksFile = join(dir, 'jwks.json');
      writeFileSync(jwksFile, JSON.stringify({ keys: [key.jwk] }));
      token = await partnerToken(key, { tenant: 'acme' });
      p1Token = await partnerToken(key, { tenant: 'acme', product: 'p1' });
      signingKey = key;
      routes = partnerRoutes({
        partner: handle.partner,
        ledger: handle.ledger,
        recalls: new LeaseRecalls(),
        auth: new PartnerAuthenticator({ issuer: PARTNER_ISSUER, audience: PARTNER_AUDIENCE, jwksUrl: null, jwksFile }),
        log: pino({ level: 'silent' }),
        stagePrefix: '',
        flushed: () => Promise.resolve(),
        limits: new PartnerLimits(DEFAULT_PARTNER_LIMITS),
      });
    });

    after(async () => {
      await handle.close();
      await scratch?.drop();
    });

    it('creates an account with a 12-digit code, and keeps only the hash of its PIN', async () => {
      const created = await post('create_account', { product_id: 'p1', requires_pin: true, external_user_id: CALLER });
      assert.equal(created.status, 201, created.text);
      account = String(created.json.account_code_12);
      assert.match(account, /^[0-9]{12}$/);
      const pin = String(created.json.pin_12);
      assert.match(pin, /^[0-9]{12}$/);
      const row = await handle.ledger.read(
        getRow<{ pin_hash: string | null }>('SELECT pin_hash FROM retail_accounts WHERE account_code = ?', account),
      );
      assert.ok(row?.pin_hash !== null && row?.pin_hash !== undefined && !row.pin_hash.includes(pin), 'a hash, not the PIN');
      const taken = await post('create_account', { product_id: 'p1', external_user_id: CALLER });
      assert.equal(taken.json.reason_code, 'external_user_id_taken');
    });

    it('tops up and debits with the balance before and after, and refuses a debit beyond what is available, changing nothing', async () => {
      const topup = await post('topup', { account, product_id: 'p1', amount: 10 });
      assert.equal(topup.status, 200, topup.text);
      assert.deepEqual([topup.json.balance_before, topup.json.balance_after], [0, 10]);
      const debit = await post('debit_balance', { account, product_id: 'p1', amount: 4.5 });
      assert.deepEqual([debit.json.balance_before, debit.json.balance_after], [10, 5.5]);
      const before = await debits();
      const refused = await post('debit_balance', { account, product_id: 'p1', amount: 6 });
      assert.equal(refused.json.reason_code, 'insufficient_balance', refused.text);
      assert.equal(await balance(), 5.5);
      assert.deepEqual(await debits(), before);
    });

    it('keeps a token that carries a product (custom:product_id) to that product: a body naming another is 403', async () => {
      // A second product of the tenant, with an account of its own; closed again at the end (the later cases
      // name no product, and rely on the tenant having one).
      const now = new Date().toISOString();
      const p2 = await handle.config.insert('partner_products', {
        partner_tenant_id: tenantRowId,
        product_id: 'p2',
        currency: 'AUD',
        requires_pin: 0,
        status: 'active',
        created_at: now,
        updated_at: now,
      });
      try {
        const p2Account = String((await post('create_account', { product_id: 'p2', initial_balance: 5 })).json.account_code_12);
        // Through the p1 token: the token's product when the body names none, or names it.
        assert.equal((await post('get_balance', { account }, undefined, p1Token)).status, 200);
        assert.equal((await post('get_balance', { account, product_id: 'p1' }, undefined, p1Token)).status, 200);
        const reads = [
          post('get_balance', { account: p2Account, product_id: 'p2' }, undefined, p1Token),
          post('call_history', { account: p2Account, product_id: 'p2' }, undefined, p1Token),
        ];
        const writes = [
          post('topup', { account: p2Account, product_id: 'p2', amount: 1 }, undefined, p1Token),
          post('debit_balance', { account: p2Account, product_id: 'p2', amount: 5 }, undefined, p1Token),
          post('create_account', { product_id: 'p2' }, undefined, p1Token),
          post('change_cli', { account: p2Account, product_id: 'p2', cli: '61400999888' }, undefined, p1Token),
          post('delete_account', { account: p2Account, product_id: 'p2' }, undefined, p1Token),
        ];
        for (const refused of await Promise.all([...reads, ...writes])) {
          assert.equal(refused.status, 403, refused.text);
          assert.equal(refused.json.reason_code, 'partner_out_of_scope', refused.text);
        }
        const untouched = await post('get_balance', { account: p2Account, product_id: 'p2' });
        assert.equal(untouched.json.total_balance, 5, untouched.text);
        assert.equal(untouched.json.status, 'active', untouched.text);
        // Nor through a replay: a p2 token sending a p2 request's key and body again is not answered with it.
        const p2Token = await partnerToken(signingKey, { tenant: 'acme', product: 'p2' });
        const kept = await post('topup', { account: p2Account, amount: 1 }, 'scoped-replay', p2Token);
        assert.equal(kept.status, 200, kept.text);
        const replayed = await post('topup', { account: p2Account, amount: 1 }, 'scoped-replay', p1Token);
        assert.equal(replayed.status, 409, replayed.text);
        assert.equal(replayed.json.reason_code, 'idempotency_conflict', replayed.text);
        assert.equal((await post('topup', { account: p2Account, amount: 1 }, 'scoped-replay', p2Token)).text, kept.text);
      } finally {
        await handle.config.update('partner_products', Number(p2.id), { status: 'closed' });
      }
    });

    it('replays the kept answer to a retry, and refuses a different body under the same key', async () => {
      const first = await post('topup', { account, product_id: 'p1', amount: 1 }, 'retry-1');
      const again = await post('topup', { account, product_id: 'p1', amount: 1 }, 'retry-1');
      assert.equal(again.status, first.status);
      assert.equal(again.text, first.text);
      assert.equal(await balance(), 6.5);
      const other = await post('topup', { account, product_id: 'p1', amount: 2 }, 'retry-1');
      assert.equal(other.json.reason_code, 'idempotency_conflict', other.text);
      assert.equal(await balance(), 6.5);
    });

    it('executes two concurrent requests with one key once, both answered with its answer', async () => {
      for (let round = 0; round < 3; round++) {
        const { balance_after: funds } = (await post('topup', { account, product_id: 'p1', amount: 2 })).json;
        // Connections open and idle, so neither request waits for one while the other runs its transaction.
        await Promise.all([1, 2, 3, 4].map(() => handle.ledger.run(() => getRow('SELECT 1 AS warm'))));
        // The whole balance: run twice, the second would be refused for want of it.
        const body = { account, product_id: 'p1', amount: funds };
        const before = (await debits()).length;
        const [one, two] = await Promise.all([
          post('debit_balance', body, `twice-${round}`),
          post('debit_balance', body, `twice-${round}`),
        ]);
        assert.equal(one.status, 200, one.text);
        assert.equal(two.text, one.text);
        assert.equal(await balance(), 0);
        assert.equal((await debits()).length, before + 1);
      }
    });

    /** A retail call of the account (`start`: when it began), as a node settles it. */
    const retailCall = async () => {
      const { id } = (await handle.ledger.read(getRow<{ id: number }>('SELECT id FROM retail_accounts WHERE account_code = ?', account)))!;
      return (callId: string, charge: string, start?: string): SettlementCdr => ({
        ...settledCall(callId, 0, charge),
        retail_account_id: Number(id),
        ...(start === undefined ? {} : { start_time: start, answer_time: start, end_time: start }),
      });
    };
    // A money round as node-round.ts runs it, without the node's secret (this store has no nodes).
    let seq = 0;
    const round = (settlements: SettlementCdr[]) =>
      handle.ledger.run(function* (tx) {
        const request = { node: 'node-r', seq: ++seq, settlements, leases: [] };
        const applied = yield* applyNodeSync(tx, request);
        yield* tx.recordRound('node-r', request.seq, `round-${request.seq}`, JSON.stringify(applied));
        return applied;
      });

    it('bills a retail call once when a later money round brings its CDR again, and that round still settles', async () => {
      assert.equal((await post('topup', { account, product_id: 'p1', amount: 2 })).status, 200);
      const retailCdr = await retailCall();
      assert.deepEqual((await round([retailCdr('retail-1', '0.50')])).settled, ['retail-1']);
      assert.equal(await balance(), 1.5);
      // Its answer was lost: the node sends the CDR again, with a new one.
      const again = await round([retailCdr('retail-1', '0.50'), retailCdr('retail-2', '0.25')]);
      assert.deepEqual(again.settled, ['retail-1', 'retail-2']);
      assert.equal(await balance(), 1.25);
      const linked = await handle.ledger.read(
        allRows<{ n: number }>(
          "SELECT COUNT(*) AS n FROM retail_call_cdrs r JOIN cdrs c ON c.id = r.cdr_id WHERE c.sip_call_id IN ('retail-1', 'retail-2')",
        ),
      );
      assert.equal(Number(linked[0].n), 2, 'one retail row per call, each naming its own CDR');
      assert.equal(Number((await handle.ledger.read(allRows<{ n: number }>('SELECT COUNT(*) AS n FROM retail_call_cdrs')))[0].n), 2);
    });

    it('bills two retail calls under one Call-ID (another start) each once, each linked to its own CDR', async () => {
      const retailCdr = await retailCall();
      const before = String(await balance());
      const first = retailCdr('retail-reused', '0.30', '2026-12-01T10:00:00.000Z');
      const second = retailCdr('retail-reused', '0.20', '2026-12-01T11:00:00.000Z');
      await round([first]);
      // The second call, with the first's CDR again (a resend): the second billed, the first not again.
      assert.deepEqual((await round([first, second])).settled, ['retail-reused', 'retail-reused']);
      await round([second]);
      assert.equal(String(await balance()), new Decimal(before).minus('0.50').toString());
      const linked = await handle.ledger.read(
        allRows<{ start_time: string; linked_start: string; account_charge: string }>(
          `SELECT c.start_time, r.start_time AS linked_start, c.account_charge FROM retail_call_cdrs r JOIN cdrs c ON c.id = r.cdr_id
            WHERE c.sip_call_id = 'retail-reused' ORDER BY c.start_time`,
        ),
      );
      assert.deepEqual(linked, [
        { start_time: first.start_time, linked_start: first.start_time, account_charge: '0.30' },
        { start_time: second.start_time, linked_start: second.start_time, account_charge: '0.20' },
      ]);
    });

    it('keeps the newest translation for a caller and access number, each set up as a live delta', async () => {
      const call = (bNumber: string) =>
        post('setup_call', {
          a_number: `+${CALLER}`,
          b_number: bNumber,
          access_number: ACCESS,
          account_number: account,
          ttl: 600,
          product_id: 'p1',
        });
      const first = await call('61298765432');
      assert.equal(first.status, 200, first.text);
      const second = await call('61298765433');
      assert.deepEqual(await liveTranslations(), [{ id: second.json.insertId, b_number: '61298765433' }]);
      assert.deepEqual(await lastDelta(), { table_name: 'call_translations', row_id: second.json.insertId });
    });

    it('deletes an account: its translations end (a delta), and it takes no more money', async () => {
      const [live] = await liveTranslations();
      const deleted = await post('delete_account', { account, product_id: 'p1', reason: 'closed' });
      assert.equal(deleted.json.status, 'deactivated', deleted.text);
      assert.deepEqual(await liveTranslations(), []);
      assert.deepEqual(await lastDelta(), { table_name: 'call_translations', row_id: live.id });
      assert.equal((await post('topup', { account, product_id: 'p1', amount: 1 })).json.reason_code, 'account_deactivated');
    });

    it("frees a deleted account's CLI for a new account (the deleted one keeps it), and gives a CLI to one live account", async () => {
      // `account` was deleted above with CALLER as its CLI: its owner may sign up again with their own number.
      const again = await post('create_account', { product_id: 'p1', requires_pin: false, external_user_id: CALLER });
      assert.equal(again.status, 201, again.text);
      const renewed = String(again.json.account_code_12);
      const taken = await post('create_account', { product_id: 'p1', cli: CALLER });
      assert.equal(taken.status, 409, taken.text);
      assert.equal(taken.json.reason_code, 'external_user_id_taken');
      const closed = await post('get_balance', { account, product_id: 'p1' });
      assert.equal(closed.status, 200, 'the deleted account is still read');
      const holders = await handle.ledger.read(
        allRows<{ account_code: string; status: string }>(
          'SELECT account_code, status FROM retail_accounts WHERE external_user_id = ? ORDER BY id',
          CALLER,
        ),
      );
      assert.deepEqual(holders, [
        { account_code: account, status: 'deactivated' },
        { account_code: renewed, status: 'active' },
      ]);
      // change_cli: refused while a live account holds the CLI, given once that one is deleted.
      const other = String(
        (await post('create_account', { product_id: 'p1', requires_pin: false, cli: '61400999000' })).json.account_code_12,
      );
      assert.equal(
        (await post('change_cli', { account: other, product_id: 'p1', cli: CALLER })).json.reason_code,
        'external_user_id_taken',
      );
      assert.equal((await post('delete_account', { account: renewed, product_id: 'p1' })).status, 200);
      const moved = await post('change_cli', { account: other, product_id: 'p1', cli: CALLER });
      assert.equal(moved.status, 200, moved.text);
      assert.equal(
        (await post('change_cli', { account: renewed, product_id: 'p1', cli: '61400999001' })).json.reason_code,
        'account_deactivated',
      );

      // Two sign-ups with one new CLI at once (PostgreSQL: both read no holder, one insert waits on the other's key).
      const racing = await Promise.all(
        [1, 2].map(() => post('create_account', { product_id: 'p1', requires_pin: false, cli: '61400999002' })),
      );
      assert.deepEqual(racing.map((reply) => reply.status).sort(), [201, 409], racing.map((reply) => reply.text).join('\n'));
    });

    it('refuses a top-up that would take a balance to 10^15 or more (the ledger holds 15 integer digits), changing nothing', async () => {
      const rich = String(
        (await post('create_account', { product_id: 'p1', requires_pin: false, initial_balance: 999999999999999 })).json.account_code_12,
      );
      const read = async () => /"total_balance":([0-9.]+)/.exec((await post('get_balance', { account: rich, product_id: 'p1' })).text)?.[1];
      assert.equal((await post('topup', { account: rich, product_id: 'p1', amount: 0.99 })).status, 200, 'just below the bound');
      assert.equal(await read(), '999999999999999.99');
      const refused = await post('topup', { account: rich, product_id: 'p1', amount: 0.01 });
      assert.equal(refused.status, 400, refused.text);
      assert.equal(refused.json.reason_code, 'invalid_amount');
      assert.match(String(refused.json.error), /1000000000000000\.00: the ledger holds balances below 10\^15/);
      assert.equal(await read(), '999999999999999.99');
      assert.equal((await post('debit_balance', { account: rich, product_id: 'p1', amount: 0.01 })).status, 200, 'a debit still is');
    });

    it('prunes kept answers written, and translations ended, before the cut-off, and nothing younger', async () => {
      const other = String((await post('create_account', { product_id: 'p1' })).json.account_code_12);
      const setUp = await post('setup_call', {
        a_number: CALLER,
        b_number: '61298765434',
        access_number: ACCESS,
        account_number: other,
        ttl: 600,
      });
      const kept = (await handle.ledger.read(allRows('SELECT 1 AS kept FROM partner_idempotency'))).length;
      assert.deepEqual(await handle.partner.prune('2025-01-01T00:00:00.000Z'), { kept: 0, translations: 0 });
      const later = new Date(Date.now() + 60_000).toISOString();
      assert.deepEqual(await handle.partner.prune(later), { kept, translations: 2 });
      assert.deepEqual(await handle.ledger.read(allRows('SELECT 1 AS kept FROM partner_idempotency')), []);
      assert.deepEqual(
        await liveTranslations(),
        [{ id: setUp.json.insertId, b_number: '61298765434' }],
        'a live translation is never pruned',
      );
      // The retry of a pruned key runs as a new request.
      assert.equal((await post('topup', { account, product_id: 'p1', amount: 1 }, 'retry-1')).json.reason_code, 'account_deactivated');
    });

    it('checks the tenant on every request, though its token is remembered as verified: suspended, or the operation withdrawn', async () => {
      const other = String((await post('create_account', { product_id: 'p1' })).json.account_code_12);
      assert.equal((await post('get_balance', { account: other, product_id: 'p1' })).status, 200);
      await handle.config.update('partner_tenants', tenantRowId, { status: 'suspended' });
      assert.equal((await post('get_balance', { account: other, product_id: 'p1' })).json.reason_code, 'partner_tenant_not_active');
      await handle.config.update('partner_tenants', tenantRowId, { status: 'active', operations: 'topup' });
      assert.equal((await post('get_balance', { account: other, product_id: 'p1' })).json.reason_code, 'partner_operation_not_allowed');
      assert.equal((await post('topup', { account: other, product_id: 'p1', amount: 1 })).status, 200);
    });
  });
}
