import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SignJWT, UnsecuredJWT, exportSPKI, type JWK } from 'jose';
import { trunk10Settlement } from '../helpers/cdrs.js';
import { eventually } from '../helpers/money-world.js';
import { PARTNER_AUDIENCE, PARTNER_ISSUER, makePartnerKey, partnerToken, type PartnerKey, type TokenShape } from '../helpers/partner.js';
import { postgresUnreachable, scratchSchema, type ScratchSchema } from '../helpers/postgres.js';
import { SidecarProcess } from '../helpers/sidecar.js';
import { storeRows } from '../helpers/store-rows.js';

const unreachable = await postgresUnreachable();

/**
 * The partner API (issue 19, first part) against a real control plane, its store on SQLite and on
 * PostgreSQL (a scratch schema; skipped only when the server does not answer): a JWKS served by this test over
 * HTTP, RS256 keys made here with jose, tokens shaped as Cognito ID tokens. Every built operation's happy
 * path, two tenants kept apart, idempotent replay, conflict and concurrency, bad tokens and bad bodies
 * each a clear 4xx that changes nothing, and a kill -9 in a stream of top-ups.
 */
const ISSUER = PARTNER_ISSUER;
const AUDIENCE = PARTNER_AUDIENCE;
const STAGE = '/prod';

type Keys = PartnerKey;
const makeKey = makePartnerKey;

let signing: Keys;
let stranger: Keys;

function token(shape: TokenShape & { key?: Keys } = {}): Promise<string> {
  return partnerToken(shape.key ?? signing, shape);
}

for (const engine of ['sqlite', 'postgres'] as const) {
  describe(
    `partner API, the centre on ${engine}`,
    { timeout: 300_000, skip: engine === 'postgres' ? (unreachable ?? false) : false },
    () => {
      let control: SidecarProcess;
      let scratch: ScratchSchema | null = null;
      let jwks: Server;
      let partnerUrl: string;
      let keySet: JWK[];

      const startControl = async (dataDir?: string): Promise<void> => {
        const address = jwks.address() as { port: number };
        control = await SidecarProcess.startControlPlane({
          dataDir,
          args: [
            ...(scratch === null ? [] : ['--store', scratch.url]),
            '--partner-port',
            '0',
            '--partner-stage-prefix',
            STAGE,
            '--partner-jwt-issuer',
            ISSUER,
            '--partner-jwt-audience',
            AUDIENCE,
            '--partner-jwks-url',
            `http://127.0.0.1:${address.port}/.well-known/jwks.json`,
          ],
        });
        const line = control.logs.find((entry) => entry.includes('partner API listening'));
        assert.ok(line !== undefined, 'the control plane logs where the partner API listens');
        partnerUrl = `http://127.0.0.1:${(JSON.parse(line) as { port: number }).port}${STAGE}`;
      };

      before(async () => {
        signing = await makeKey('key-1');
        stranger = await makeKey('key-unknown');
        keySet = [signing.jwk];
        jwks = createServer((_request, response) => {
          response.setHeader('content-type', 'application/json');
          response.end(JSON.stringify({ keys: keySet }));
        });
        await new Promise<void>((resolve) => jwks.listen(0, '127.0.0.1', resolve));
        scratch = engine === 'postgres' ? await scratchSchema('partner_api') : null;
        await startControl();
        // Two tenants, each with a product; acme may call everything, globex only reads balances and tops up.
        const acme = await control.post('/api/partner-tenants', { tenant_id: 'acme', name: 'Acme' });
        assert.equal(acme.status, 201, JSON.stringify(acme.body));
        const globex = await control.post('/api/partner-tenants', {
          tenant_id: 'globex',
          name: 'Globex',
          operations: 'get_balance,topup,create_account',
        });
        assert.equal(globex.status, 201, JSON.stringify(globex.body));
        const products = [
          { partner_tenant_id: acme.body.id, product_id: 'prepaid_au', currency: 'AUD', access_numbers: '+61280000000' },
          { partner_tenant_id: acme.body.id, product_id: 'prepaid_us', currency: 'USD', requires_pin: false },
          { partner_tenant_id: globex.body.id, product_id: 'globex_au', currency: 'AUD' },
        ];
        for (const product of products) {
          const created = await control.post('/api/partner-products', product);
          assert.equal(created.status, 201, JSON.stringify(created.body));
        }
      });

      after(async () => {
        // Both may be missing when before() failed part-way (its own failure is the one to read).
        await (control as SidecarProcess | undefined)?.kill();
        (jwks as Server | undefined)?.close();
        await scratch?.drop();
      });

      interface Reply {
        status: number;
        body: any;
        text: string;
        headers: Headers;
      }

      let keyCounter = 0;
      const freshKey = (): string => `key-${process.pid}-${++keyCounter}`;

      /** A partner call; writes get a fresh Idempotency-Key unless one is given (or `null`: none sent). */
      const call = async (
        operation: string,
        body: unknown,
        options: { bearer?: string | null; key?: string | null; correlation?: string; contentType?: string } = {},
      ): Promise<Reply> => {
        const headers: Record<string, string> = { 'content-type': options.contentType ?? 'application/json' };
        const bearer = options.bearer === undefined ? await token() : options.bearer;
        if (bearer !== null) headers.authorization = `Bearer ${bearer}`;
        const key = options.key === undefined ? freshKey() : options.key;
        if (key !== null) headers['idempotency-key'] = key;
        if (options.correlation !== undefined) headers['x-correlation-id'] = options.correlation;
        const response = await fetch(`${partnerUrl}/${operation}`, {
          method: 'POST',
          headers,
          body: typeof body === 'string' ? body : JSON.stringify(body),
        });
        const text = await response.text();
        let parsed: unknown = null;
        try {
          parsed = JSON.parse(text);
        } catch {
          // asserted by the caller
        }
        return { status: response.status, body: parsed, text, headers: response.headers };
      };

      const createAccount = async (body: Record<string, unknown> = {}, bearer?: string): Promise<string> => {
        const created = await call('create_account', { product_id: 'prepaid_au', ...body }, { bearer });
        assert.equal(created.status, 201, created.text);
        return created.body.account_code_12 as string;
      };

      const balanceOf = async (account: string, product = 'prepaid_au'): Promise<string> => {
        const reply = await call('get_balance', { account, product_id: product });
        assert.equal(reply.status, 200, reply.text);
        return /"total_balance":(-?[0-9.]+)/.exec(reply.text)![1];
      };

      /** What the store holds: every refused request below must leave it as it was. */
      const database = () => storeRows(scratch?.url ?? join(control.dataDir, 'config.db'));
      const ledgerRows = async (): Promise<number> =>
        (await database().get<{ n: number }>("SELECT COUNT(*) AS n FROM balance_transactions WHERE entity_type = 'retail'"))!.n;
      const accountRows = async (): Promise<number> =>
        (await database().get<{ n: number }>('SELECT COUNT(*) AS n FROM retail_accounts'))!.n;

      it('serves every built operation: create, top up, read, debit, change the CLI, deactivate', async () => {
        const created = await call(
          'create_account',
          { product_id: 'prepaid_au', initial_balance: 5.5, external_user_id: '+61400000001' },
          { correlation: 'corr-1' },
        );
        assert.equal(created.status, 201, created.text);
        assert.match(created.body.account_code_12, /^[0-9]{12}$/);
        assert.match(created.body.pin_12, /^[0-9]{12}$/, 'the product requires PINs by default: one is returned once');
        assert.equal(created.body.requires_pin, true);
        assert.equal(created.body.currency, 'AUD');
        assert.equal(created.body.tenant_id, 'acme');
        assert.equal(created.headers.get('x-correlation-id'), 'corr-1');
        assert.equal(created.body.correlation_id, 'corr-1');
        assert.ok(created.headers.get('x-transaction-id'));
        assert.match(created.text, /"initial_balance":5\.50/);
        const account = created.body.account_code_12 as string;

        // The PIN is stored only as a slow hash, and the answer kept for replays does not hold it.
        const row = (await database().get<{ pin_hash: string }>('SELECT pin_hash FROM retail_accounts WHERE account_code = ?', account))!;
        assert.match(row.pin_hash, /^scrypt\$/);
        assert.ok(!row.pin_hash.includes(created.body.pin_12));
        const kept = await database().all<{ body: string }>("SELECT body FROM partner_idempotency WHERE operation = 'create_account'");
        assert.ok(kept.length > 0 && kept.every((entry) => !entry.body.includes(created.body.pin_12)));

        const topup = await call('topup', { account, amount: 10.1, product_id: 'prepaid_au', currency: 'AUD' });
        assert.equal(topup.status, 200, topup.text);
        assert.match(topup.text, /"balance_before":5\.50,/);
        assert.match(topup.text, /"balance_after":15\.60,/);
        assert.equal(topup.body.transaction_id, topup.headers.get('x-transaction-id'));
        assert.equal(topup.body.ledger_logged, true);

        const debit = await call('debit_balance', { account, amount: 0.1, product_id: 'prepaid_au' });
        assert.equal(debit.status, 200, debit.text);
        assert.match(debit.text, /"balance_after":15\.50,/);
        assert.equal(await balanceOf(account), '15.50');

        // More than there is: refused, nothing changes.
        const over = await call('debit_balance', { account, amount: 15.51, product_id: 'prepaid_au' });
        assert.equal(over.status, 400, over.text);
        assert.equal(over.body.reason_code, 'insufficient_balance');
        assert.equal(await balanceOf(account), '15.50');

        // Fewer digits are left-padded to 12.
        const short = await createAccount({ requires_pin: false });
        const padded = await call('get_balance', { account: short.replace(/^0+/, '') || '0', product_id: 'prepaid_au' });
        assert.equal(padded.status, 200, padded.text);
        assert.equal(padded.body.account_code_12, short);

        const cli = await call('change_cli', { account, product_id: 'prepaid_au', cli: '+61400000002' });
        assert.equal(cli.status, 200, cli.text);
        assert.equal(cli.body.external_user_id, '+61400000002');
        const taken = await call('create_account', { product_id: 'prepaid_au', external_user_id: '+61400000002' });
        assert.equal(taken.status, 409, taken.text);
        assert.equal(taken.body.reason_code, 'external_user_id_taken');
        const mismatch = await call('change_cli', { account, product_id: 'prepaid_au', cli: '+1', external_user_id: '+2' });
        assert.equal(mismatch.status, 400, mismatch.text);

        const deleted = await call('delete_account', { account, product_id: 'prepaid_au', reason: 'closure' });
        assert.equal(deleted.status, 200, deleted.text);
        assert.equal(deleted.body.status, 'deactivated');
        const again = await call('delete_account', { account, product_id: 'prepaid_au' });
        assert.equal(again.status, 200, again.text);
        assert.equal(again.body.deactivated_at, deleted.body.deactivated_at, 'a repeat reports the first deactivation');
        const afterDelete = await call('topup', { account, amount: 1, product_id: 'prepaid_au' });
        assert.equal(afterDelete.status, 409, afterDelete.text);
        assert.equal(afterDelete.body.reason_code, 'account_deactivated');
        assert.equal(await balanceOf(account), '15.50');

        // A product without PINs by default; the only product named by the token is not needed when given.
        const noPin = await call('create_account', { product_id: 'prepaid_us' });
        assert.equal(noPin.status, 201, noPin.text);
        assert.equal(noPin.body.pin_12, null);
        assert.equal(noPin.body.currency, 'USD');
      });

      it('keeps two tenants apart: neither sees nor touches the other one’s accounts or products', async () => {
        const acmeAccount = await createAccount();
        await call('topup', { account: acmeAccount, amount: 3, product_id: 'prepaid_au' });
        const globex = await token({ tenant: 'globex' });
        const globexCreated = await call('create_account', { product_id: 'globex_au' }, { bearer: globex });
        assert.equal(globexCreated.status, 201, globexCreated.text);
        const rows = await ledgerRows();

        const viaOwnProduct = await call('get_balance', { account: acmeAccount, product_id: 'globex_au' }, { bearer: globex });
        assert.equal(viaOwnProduct.status, 404, viaOwnProduct.text);
        assert.equal(viaOwnProduct.body.reason_code, 'account_not_found');
        const viaTheirProduct = await call('topup', { account: acmeAccount, amount: 1, product_id: 'prepaid_au' }, { bearer: globex });
        assert.equal(viaTheirProduct.status, 403, viaTheirProduct.text);
        assert.equal(viaTheirProduct.body.reason_code, 'partner_out_of_scope');
        const notAllowed = await call('debit_balance', { account: globexCreated.body.account_code_12, amount: 1 }, { bearer: globex });
        assert.equal(notAllowed.status, 403, notAllowed.text);
        assert.equal(notAllowed.body.reason_code, 'partner_operation_not_allowed');
        const wrongCurrency = await call('get_balance', { account: acmeAccount, product_id: 'prepaid_au', currency: 'USD' });
        assert.equal(wrongCurrency.status, 403, wrongCurrency.text);
        const unknownTenant = await call(
          'get_balance',
          { account: acmeAccount, product_id: 'prepaid_au' },
          { bearer: await token({ tenant: 'initech' }) },
        );
        assert.equal(unknownTenant.status, 403, unknownTenant.text);
        assert.equal(unknownTenant.body.reason_code, 'partner_tenant_not_active');

        assert.equal(await ledgerRows(), rows, 'nothing was written');
        assert.equal(await balanceOf(acmeAccount), '3.00');
      });

      it('replays a write with the same key and body, refuses another body with 409, and runs concurrent repeats once', async () => {
        const account = await createAccount();
        const key = freshKey();
        const first = await call('topup', { account, amount: 2.25, product_id: 'prepaid_au' }, { key, correlation: 'first' });
        assert.equal(first.status, 200, first.text);
        // Same request, keys reordered, spaced differently and the amount written another way: the same request.
        const replay = await call('topup', `{ "product_id": "prepaid_au", "amount": 2.250, "account": "${account}" }`, {
          key,
          correlation: 'second',
        });
        assert.equal(replay.status, 200, replay.text);
        assert.equal(replay.text, first.text, 'the first answer, byte for byte');
        assert.equal(replay.headers.get('x-transaction-id'), first.headers.get('x-transaction-id'));
        assert.equal(replay.headers.get('x-correlation-id'), 'second');
        assert.equal(await balanceOf(account), '2.25');

        const conflict = await call('topup', { account, amount: 2.26, product_id: 'prepaid_au' }, { key });
        assert.equal(conflict.status, 409, conflict.text);
        assert.equal(conflict.body.reason_code, 'idempotency_conflict');
        assert.equal(conflict.body.error, 'Idempotency key already used with a different request');
        assert.equal(conflict.body.transaction_id, key);
        assert.equal(await balanceOf(account), '2.25');

        // The same key for another operation is another request.
        const debit = await call('debit_balance', { account, amount: 0.25, product_id: 'prepaid_au' }, { key });
        assert.equal(debit.status, 200, debit.text);
        assert.equal(await balanceOf(account), '2.00');

        const concurrentKey = freshKey();
        const bearer = await token();
        const answers = await Promise.all(
          Array.from({ length: 12 }, () => call('topup', { account, amount: 1, product_id: 'prepaid_au' }, { key: concurrentKey, bearer })),
        );
        assert.ok(
          answers.every((answer) => answer.status === 200 && answer.text === answers[0].text),
          answers.map((a) => a.text).join('\n'),
        );
        assert.equal(await balanceOf(account), '3.00', 'twelve concurrent requests with one key top up once');

        const creates = await Promise.all(
          Array.from({ length: 4 }, () => call('create_account', { product_id: 'prepaid_au' }, { key: 'one-create', bearer })),
        );
        assert.ok(creates.every((answer) => answer.status === 201));
        assert.equal(new Set(creates.map((answer): string => answer.body.account_code_12 as string)).size, 1, 'one account created');
      });

      it("gives a CLI to one live account: concurrent sign-ups with it get one 201, and a deleted account's CLI is free again", async () => {
        const cli = '+61400555000';
        const bearer = await token();
        const signUps = () =>
          Promise.all(
            Array.from({ length: 6 }, () => call('create_account', { product_id: 'prepaid_au', requires_pin: false, cli }, { bearer })),
          );
        for (const round of ['first', 'after the deletion']) {
          const answers = await signUps();
          const statuses = answers.map((answer) => answer.status).sort();
          assert.deepEqual(statuses, [201, 409, 409, 409, 409, 409], `${round}: ${answers.map((answer) => answer.text).join('\n')}`);
          assert.ok(answers.every((answer) => answer.status === 201 || answer.body.reason_code === 'external_user_id_taken'));
          const created = answers.find((answer) => answer.status === 201)!.body.account_code_12 as string;
          const deleted = await call('delete_account', { account: created, product_id: 'prepaid_au', reason: 'closure' });
          assert.equal(deleted.status, 200, deleted.text);
          // The closed account is still read, and keeps its CLI.
          assert.equal(await balanceOf(created), '0.00');
        }
        const holders = await database().all<{ status: string }>('SELECT status FROM retail_accounts WHERE external_user_id = ?', cli);
        assert.deepEqual(
          holders.map((holder) => holder.status),
          ['deactivated', 'deactivated'],
        );
      });

      it('refuses bad tokens with 403 and changes nothing', async () => {
        const account = await createAccount();
        const rows = await ledgerRows();
        const accounts = await accountRows();
        const { publicKey } = signing;
        const publicPem = await exportSPKI(publicKey);
        const now = Math.floor(Date.now() / 1000);
        const claims = { token_use: 'id', 'custom:tenant_id': 'acme' };
        const bad: Record<string, string | null> = {
          missing: null,
          garbage: 'not-a-jwt',
          expired: await token({ expiresIn: -3600 }),
          'not yet valid': await token({ notBefore: 3600 }),
          'wrong audience': await token({ audience: 'another-client' }),
          'wrong issuer': await token({ issuer: 'https://cognito-idp.eu-west-2.amazonaws.com/other' }),
          'unknown kid': await token({ key: stranger }),
          'known kid, other key': await token({ key: stranger, kid: 'key-1' }),
          'access token': await token({ tokenUse: 'access' }),
          'no tenant': await token({ tenant: null }),
          'alg none': new UnsecuredJWT(claims)
            .setIssuer(ISSUER)
            .setAudience(AUDIENCE)
            .setExpirationTime(now + 3600)
            .encode(),
          'HS256 with the public key': await new SignJWT(claims)
            .setProtectedHeader({ alg: 'HS256', kid: 'key-1' })
            .setIssuer(ISSUER)
            .setAudience(AUDIENCE)
            .setExpirationTime(now + 3600)
            .sign(new TextEncoder().encode(publicPem)),
        };
        for (const [name, bearer] of Object.entries(bad)) {
          for (const operation of ['topup', 'create_account', 'get_balance']) {
            const reply = await call(operation, { account, amount: 1, product_id: 'prepaid_au' }, { bearer });
            assert.equal(reply.status, 403, `${name} on ${operation}: ${reply.text}`);
            assert.equal(reply.body.reason_code, 'partner_token_invalid', name);
            assert.ok(typeof reply.body.error === 'string' && reply.body.correlation_id, name);
          }
        }
        assert.equal(await ledgerRows(), rows);
        assert.equal(await accountRows(), accounts);
        assert.equal(await balanceOf(account), '0.00');
      });

      it('refuses malformed bodies, bad amounts, bad codes and missing keys with 400 and changes nothing', async () => {
        const account = await createAccount();
        const rows = await ledgerRows();
        const accounts = await accountRows();
        const cases: [string, string | Record<string, unknown>, string, { key?: string | null; contentType?: string }?][] = [
          ['not JSON', '{"account": ', 'invalid_json'],
          ['an array', '[1,2]', 'invalid_json'],
          ['duplicate key', `{"account":"${account}","amount":1,"amount":1000}`, 'invalid_json'],
          ['unknown field', { account, amount: 1, product_id: 'prepaid_au', note: 'x' }, 'unknown_field'],
          ['tenant_id', { account, amount: 1, product_id: 'prepaid_au', tenant_id: 'globex' }, 'tenant_id_in_body'],
          ['amount as a string', { account, amount: '1.00', product_id: 'prepaid_au' }, 'invalid_amount'],
          ['zero', { account, amount: 0, product_id: 'prepaid_au' }, 'invalid_amount'],
          ['negative', { account, amount: -5, product_id: 'prepaid_au' }, 'invalid_amount'],
          ['three decimals', `{"account":"${account}","amount":1.001,"product_id":"prepaid_au"}`, 'invalid_amount'],
          ['huge', `{"account":"${account}","amount":1e400,"product_id":"prepaid_au"}`, 'invalid_amount'],
          ['huge digits', `{"account":"${account}","amount":123456789012345678901234567890,"product_id":"prepaid_au"}`, 'invalid_amount'],
          ['tiny', `{"account":"${account}","amount":1e-30,"product_id":"prepaid_au"}`, 'invalid_amount'],
          ['missing amount', { account, product_id: 'prepaid_au' }, 'invalid_amount'],
          ['13-digit code', { account: `1${account}`, amount: 1, product_id: 'prepaid_au' }, 'invalid_account_code'],
          ['code with letters', { account: '12345abc', amount: 1, product_id: 'prepaid_au' }, 'invalid_account_code'],
          ['code as a number', { account: 123, amount: 1, product_id: 'prepaid_au' }, 'invalid_account_code'],
          ['no Idempotency-Key', { account, amount: 1, product_id: 'prepaid_au' }, 'idempotency_key_invalid', { key: null }],
          ['key too long', { account, amount: 1, product_id: 'prepaid_au' }, 'idempotency_key_invalid', { key: 'k'.repeat(129) }],
          ['bad currency', { account, amount: 1, product_id: 'prepaid_au', currency: 'aud' }, 'invalid_field'],
        ];
        for (const [name, body, code, options] of cases) {
          const reply = await call('topup', body, options ?? {});
          assert.equal(reply.status, 400, `${name}: ${reply.text}`);
          assert.equal(reply.body.reason_code, code, `${name}: ${reply.text}`);
        }
        const createCases: [string, Record<string, unknown>, string][] = [
          ['negative opening balance', { product_id: 'prepaid_au', initial_balance: -1 }, 'invalid_amount'],
          ['opening balance with decimals', { product_id: 'prepaid_au', initial_balance: 0.005 }, 'invalid_amount'],
          ['no product', { initial_balance: 1 }, 'invalid_field'],
          ['requires_pin not a boolean', { product_id: 'prepaid_au', requires_pin: 'yes' }, 'invalid_field'],
          ['cli and external_user_id differ', { product_id: 'prepaid_au', cli: '+1', external_user_id: '+2' }, 'invalid_field'],
        ];
        for (const [name, body, code] of createCases) {
          const reply = await call('create_account', body);
          assert.equal(reply.status, 400, `${name}: ${reply.text}`);
          assert.equal(reply.body.reason_code, code, `${name}: ${reply.text}`);
        }
        const media = await call('topup', { account, amount: 1 }, { contentType: 'text/plain' });
        assert.equal(media.status, 415, media.text);
        assert.equal(await ledgerRows(), rows);
        assert.equal(await accountRows(), accounts);
        assert.equal(await balanceOf(account), '0.00');

        // Exact amounts: no float arithmetic on the way (0.1 + 0.2 is 0.3 here).
        await call('topup', `{"account":"${account}","amount":0.1,"product_id":"prepaid_au"}`);
        await call('topup', `{"account":"${account}","amount":0.2,"product_id":"prepaid_au"}`);
        await call('topup', `{"account":"${account}","amount":99999999999999.99,"product_id":"prepaid_au"}`);
        assert.equal(await balanceOf(account), '100000000000000.29');
      });

      it('takes keys from a local JWKS file, and answers 503 when the JWKS URL cannot be reached', async () => {
        const dir = mkdtempSync(join(tmpdir(), 'partner-jwks-'));
        const file = join(dir, 'jwks.json');
        writeFileSync(file, JSON.stringify({ keys: [signing.jwk] }));
        const closed = createServer();
        await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
        const deadPort = (closed.address() as { port: number }).port;
        await new Promise<void>((resolve) => closed.close(() => resolve()));
        for (const [source, expected] of [
          [['--partner-jwks-file', file], 'file'],
          [['--partner-jwks-url', `http://127.0.0.1:${deadPort}/jwks.json`], 'unreachable'],
        ] as const) {
          const other = await SidecarProcess.startControlPlane({
            args: ['--partner-port', '0', '--partner-jwt-issuer', ISSUER, '--partner-jwt-audience', AUDIENCE, ...source],
          });
          try {
            const line = other.logs.find((entry) => entry.includes('partner API listening'))!;
            const url = `http://127.0.0.1:${(JSON.parse(line) as { port: number }).port}/get_balance`;
            const ask = async (bearer: string): Promise<{ status: number; body: any }> => {
              const response = await fetch(url, {
                method: 'POST',
                headers: { 'content-type': 'application/json', authorization: `Bearer ${bearer}` },
                body: JSON.stringify({ account: '1' }),
              });
              return { status: response.status, body: await response.json() };
            };
            const good = await ask(await token());
            const foreign = await ask(await token({ key: stranger }));
            if (expected === 'file') {
              // The token passed: this control plane has no tenants, so the refusal is the tenant's.
              assert.equal(good.body.reason_code, 'partner_tenant_not_active', JSON.stringify(good.body));
              assert.equal(foreign.body.reason_code, 'partner_token_invalid', JSON.stringify(foreign.body));
            } else {
              assert.equal(good.status, 503, JSON.stringify(good.body));
              assert.equal(good.body.reason_code, 'partner_keys_unavailable');
            }
          } finally {
            await other.kill();
          }
        }
      });

      it('answers bodies mangled at random with a coded 4xx, never a 5xx', async () => {
        const account = await createAccount();
        // A seeded generator: the same requests every run (a failure names its index).
        let seed = 0x2f6e2b1;
        const next = (n: number): number => {
          seed = (seed * 1103515245 + 12345) & 0x7fffffff;
          return seed % n;
        };
        const values = [null, true, 0, -1, 1.005, 1e21, '', 'x'.repeat(300), [], {}, { a: 1 }, '\u0000', '123456789012345', account];
        const base = `{"account":"${account}","amount":1.5,"product_id":"prepaid_au"}`;
        const bearer = await token();
        for (let i = 0; i < 200; i++) {
          let body: string;
          const kind = next(3);
          if (kind === 0) {
            // A byte of a valid body cut, doubled or replaced.
            const at = next(base.length);
            body = base.slice(0, at) + ['', '"', '{', '}', ',', '\\', '1e', '-'][next(8)] + base.slice(at + next(2));
          } else {
            const fields: Record<string, unknown> = { account, amount: 1.5, product_id: 'prepaid_au' };
            const name = ['account', 'amount', 'product_id', 'currency', 'reason'][next(5)];
            fields[name] = values[next(values.length)];
            body = JSON.stringify(fields);
          }
          const reply = await call(['topup', 'debit_balance', 'change_cli', 'delete_account'][next(4)], body, {
            bearer,
            key: `mangled-${i}`,
          });
          assert.ok(reply.status < 500, `request ${i} (${body}): ${reply.status} ${reply.text}`);
          // Some mangled bodies are still valid requests (a field set to what it was): those may succeed.
          if (reply.status >= 400) assert.ok(typeof reply.body.reason_code === 'string', `request ${i}: ${reply.text}`);
        }
      });

      it('admin API: a product must fit its trunk and deck (currency, a customer deck), and tenant ids are unique', async () => {
        const tenant = await control.post('/api/partner-tenants', { tenant_id: 'fitcheck', name: 'Fit', operations: 'topup,nonsense' });
        assert.equal(tenant.status, 400, JSON.stringify(tenant.body));
        const created = await control.post('/api/partner-tenants', {
          tenant_id: 'fitcheck',
          name: 'Fit',
          operations: 'topup, get_balance,topup',
        });
        assert.equal(created.status, 201, JSON.stringify(created.body));
        assert.equal(created.body.operations, 'get_balance,topup');
        const again = await control.post('/api/partner-tenants', { tenant_id: 'fitcheck', name: 'Fit again' });
        assert.equal(again.status, 409, JSON.stringify(again.body));
        const customer = await control.post('/api/customer-accounts', {
          name: 'Retail',
          currency: 'USD',
          username: 'retail',
          password: 'retail-pass-1',
        });
        const trunk = await control.post('/api/customer-trunks', {
          customer_account_id: customer.body.id,
          name: 'Retail',
          currency: 'USD',
        });
        const carrierDeck = await control.post('/api/rate-decks', { name: 'Cost', deck_type: 'carrier', currency: 'AUD' });
        const base = { partner_tenant_id: created.body.id, product_id: 'fit', currency: 'AUD' };
        for (const extra of [{ customer_trunk_id: trunk.body.id }, { rate_deck_id: carrierDeck.body.id }]) {
          const refused = await control.post('/api/partner-products', { ...base, ...extra });
          assert.equal(refused.status, 422, JSON.stringify(refused.body));
          assert.equal(refused.body.reason_code, 'reference_mismatch');
        }
        const fits = await control.post('/api/partner-products', {
          ...base,
          currency: 'USD',
          customer_trunk_id: trunk.body.id,
          access_numbers: '+1 555 0100',
        });
        assert.equal(fits.status, 400, 'an access number with spaces is refused');
        const ok = await control.post('/api/partner-products', {
          ...base,
          currency: 'USD',
          customer_trunk_id: trunk.body.id,
          access_numbers: '+15550100,15550101',
        });
        assert.equal(ok.status, 201, JSON.stringify(ok.body));
        assert.equal(ok.body.access_numbers, '15550100,15550101');
        // One product per access number: another product may not take one, by create or update, until the first is closed.
        const other = { ...base, product_id: 'fit_2', currency: 'USD', customer_trunk_id: trunk.body.id };
        const taken = await control.post('/api/partner-products', { ...other, access_numbers: '15550199,+15550101' });
        assert.equal(taken.status, 409, JSON.stringify(taken.body));
        assert.equal(taken.body.reason_code, 'duplicate');
        assert.match(String(taken.body.error), /15550101/);
        const second = await control.post('/api/partner-products', { ...other, access_numbers: '15550199' });
        assert.equal(second.status, 201, JSON.stringify(second.body));
        const moved = await control.send('PUT', `/api/partner-products/${second.body.id}`, { access_numbers: '15550199,15550100' });
        assert.equal(moved.status, 409, JSON.stringify(moved.body));
        assert.equal(moved.body.reason_code, 'duplicate');
        assert.equal((await control.send('PUT', `/api/partner-products/${ok.body.id}`, { status: 'closed' })).status, 200);
        const afterClose = await control.send('PUT', `/api/partner-products/${second.body.id}`, { access_numbers: '15550199,15550100' });
        assert.equal(afterClose.status, 200, JSON.stringify(afterClose.body));
      });

      it("admin API: a product's currency stays while it has accounts (their balances are in it)", async () => {
        const acme = (await control.get('/api/partner-tenants?tenant_id=acme')).body.data[0] as { id: number };
        const product = await control.post('/api/partner-products', {
          partner_tenant_id: acme.id,
          product_id: 'denominated',
          currency: 'AUD',
          requires_pin: false,
        });
        assert.equal(product.status, 201, JSON.stringify(product.body));
        // No account yet: the currency is still the operator's to correct.
        const corrected = await control.send('PUT', `/api/partner-products/${product.body.id}`, { currency: 'USD' });
        assert.equal(corrected.status, 200, JSON.stringify(corrected.body));
        assert.equal((await control.send('PUT', `/api/partner-products/${product.body.id}`, { currency: 'AUD' })).status, 200);
        const created = await call('create_account', { product_id: 'denominated', initial_balance: 10 });
        assert.equal(created.status, 201, created.text);
        const account = created.body.account_code_12 as string;
        // Ten dollars in AUD would have become ten in USD, and every later top-up and call added in USD to them.
        const refused = await control.send('PUT', `/api/partner-products/${product.body.id}`, { currency: 'USD' });
        assert.equal(refused.status, 409, JSON.stringify(refused.body));
        assert.equal(refused.body.reason_code, 'still_referenced');
        const reply = await call('get_balance', { account, product_id: 'denominated' });
        assert.equal(reply.status, 200, reply.text);
        assert.equal(reply.body.currency, 'AUD');
        assert.equal(reply.body.total_balance, 10);
        // Any other change to it is made as before.
        assert.equal(
          (await control.send('PUT', `/api/partner-products/${product.body.id}`, { currency: 'AUD', requires_pin: true })).status,
          200,
        );
      });

      /** The retail account's row id at the centre (what nodes name it by). */
      const retailId = async (code: string): Promise<number> =>
        (await database().get<{ id: number }>('SELECT id FROM retail_accounts WHERE account_code = ?', code))!.id;

      /** A node registered at the centre, posting its money rounds (settlements, lease asks) as a sidecar does. */
      const registerNode = async (hostname: string) => {
        const node = await control.post('/api/opensips-nodes', { hostname, mi_socket_address: 'http://127.0.0.1:9/mi' });
        assert.equal(node.status, 201, JSON.stringify(node.body));
        let seq = 0;
        return async (settlements: unknown[], leases: unknown[] = []): Promise<any> => {
          const round = await control.post(
            '/api/ledger/node-sync',
            { node: hostname, seq: ++seq, settlements, leases },
            { authorization: `Bearer ${node.body.node_secret as string}` },
          );
          assert.equal(round.status, 200, JSON.stringify(round.body));
          return round.body;
        };
      };

      /** A rated CDR of a call through an access number, billed to retail account `retail` (null: a wholesale call). */
      const retailCdr = (callId: string, retail: number | null, dnis: string, seconds: number, charge: string, startMs: number) =>
        trunk10Settlement(
          callId,
          seconds,
          charge,
          { startMs },
          {
            // An account this centre does not have: a wholesale CDR is recorded unbilled, so it cannot be mistaken for billed.
            customer_account_id: 999_999,
            dnis,
            billable_duration_vendor: seconds,
            vendor_cost: '0.0000',
            ...(retail === null ? {} : { retail_account_id: retail }),
          },
        );

      it('call_history: the 10 newest answered calls of the last 30 days settled against the account, charges exact', async () => {
        const account = await createAccount({ initial_balance: 10, requires_pin: false });
        const id = await retailId(account);
        const round = await registerNode('partner-history-node');
        const minute = 60_000;
        const start = Date.now() - 2 * 86_400_000;
        const calls = Array.from({ length: 12 }, (_, index) =>
          retailCdr(`history-${index}@test`, id, `6140000${String(index).padStart(4, '0')}`, 60 + index, '0.0325', start + index * minute),
        );
        const old = retailCdr('history-old@test', id, '61400009999', 30, '1.00', Date.now() - 31 * 86_400_000);
        const unanswered = retailCdr('history-cancelled@test', id, '61400008888', 0, '0.00', start + 30 * minute);
        const wholesale = retailCdr('history-wholesale@test', null, '61400007777', 60, '0.0325', start + 31 * minute);
        const settled = await round([...calls, old, unanswered, wholesale]);
        // The wholesale call is its trunk's account's (unknown here: recorded unbilled), never the retail account's.
        assert.deepEqual(settled.unbilled, ['history-wholesale@test']);

        const history = await call('call_history', { account, product_id: 'prepaid_au', currency: 'AUD' }, { correlation: 'history-1' });
        assert.equal(history.status, 200, history.text);
        assert.deepEqual(Object.keys(history.body).sort(), [
          'account_code_12',
          'calls',
          'correlation_id',
          'currency',
          'product_id',
          'tenant_id',
        ]);
        assert.equal(history.body.account_code_12, account);
        assert.equal(history.body.tenant_id, 'acme');
        // Newest first, the two oldest of the twelve beyond the ten, the 31-day-old call and the cancelled one not shown.
        assert.deepEqual(
          history.body.calls.map((row: { called_number: string }) => row.called_number),
          Array.from({ length: 10 }, (_, index) => `6140000${String(11 - index).padStart(4, '0')}`),
        );
        assert.deepEqual(history.body.calls[0], { called_number: '61400000011', duration_seconds: 72, amount_charged: 0.0325 });
        // The charge is written from the decimal the ledger debited, not from a double.
        assert.equal((history.text.match(/"amount_charged":0\.0325[,}]/g) ?? []).length, 10);
        // The balance is down by exactly what was billed to it: 12 x 0.0325 + 1.00 (the old call is billed too).
        assert.equal(await balanceOf(account), '8.61');

        const empty = await call('call_history', { account: await createAccount(), product_id: 'prepaid_au' });
        assert.equal(empty.status, 200, empty.text);
        assert.deepEqual(empty.body.calls, []);
        // Outside the tenant's product: 403 as the contract lists for call_history (not 404), whether it exists or not.
        for (const body of [
          { account, product_id: 'prepaid_us' },
          { account: '999999999999', product_id: 'prepaid_au' },
        ]) {
          const refused = await call('call_history', body);
          assert.equal(refused.status, 403, refused.text);
          assert.equal(refused.body.reason_code, 'account_out_of_scope');
        }
        const globex = await call('call_history', { account, product_id: 'prepaid_au' }, { bearer: await token({ tenant: 'globex' }) });
        assert.equal(globex.status, 403, globex.text);
        assert.equal((await call('call_history', { account, extra: 1 })).status, 400);
      });

      it('setup_call stores a translation for the ttl, replays it, and refuses bad numbers, ttls and accounts', async () => {
        const account = await createAccount({ requires_pin: false });
        const body = {
          a_number: '+61400111222',
          b_number: '+61298765432',
          access_number: '+61280000000',
          account_number: account,
          ttl: 300,
          product_id: 'prepaid_au',
          currency: 'AUD',
        };
        const saved = await call('setup_call', body, { key: `setup-${process.pid}` });
        assert.equal(saved.status, 200, saved.text);
        assert.equal(saved.body.message, 'Call setup saved successfully');
        assert.ok(Number.isSafeInteger(saved.body.insertId) && saved.body.insertId > 0, saved.text);
        assert.equal(saved.body.account_code_12, account);
        assert.equal(saved.headers.get('x-transaction-id'), `setup-${process.pid}`);
        const replay = await call('setup_call', body, { key: `setup-${process.pid}` });
        assert.equal(replay.text.replace(/"correlation_id":"[^"]*"/, ''), saved.text.replace(/"correlation_id":"[^"]*"/, ''));

        const rows = await database().all<any>('SELECT * FROM call_translations WHERE id = ?', saved.body.insertId);
        assert.equal(rows.length, 1, 'the replay stored nothing more');
        assert.deepEqual([rows[0].a_number, rows[0].access_number, rows[0].b_number], ['61400111222', '61280000000', '61298765432']);
        const lives = Date.parse(rows[0].expires_at) - Date.parse(rows[0].created_at);
        assert.equal(lives, 300_000, 'it lives ttl seconds');

        const refusals: [Record<string, unknown>, number, string][] = [
          [{ ...body, access_number: '+61280000001' }, 400, 'invalid_access_number'],
          [{ ...body, ttl: 0 }, 400, 'invalid_field'],
          [{ ...body, ttl: 86_401 }, 400, 'invalid_field'],
          [{ ...body, ttl: 1.5 }, 400, 'invalid_field'],
          [{ ...body, ttl: '300' }, 400, 'invalid_field'],
          [{ ...body, a_number: '+44 20 7123' }, 400, 'invalid_field'],
          [{ ...body, b_number: undefined }, 400, 'invalid_field'],
          [{ ...body, account_number: '1234567890123' }, 400, 'invalid_account_code'],
          [{ ...body, account_number: '999999999999' }, 403, 'account_out_of_scope'],
          [{ ...body, product_id: 'prepaid_us', currency: undefined }, 400, 'invalid_access_number'],
          [{ ...body, tenant_id: 'acme' }, 400, 'tenant_id_in_body'],
        ];
        for (const [refusedBody, status, code] of refusals) {
          const refused = await call('setup_call', refusedBody);
          assert.equal(refused.status, status, `${JSON.stringify(refusedBody)}: ${refused.text}`);
          assert.equal(refused.body.reason_code, code, refused.text);
        }
        const other = await call('setup_call', body, { bearer: await token({ tenant: 'globex' }) });
        assert.equal(other.status, 403, other.text);

        assert.equal((await call('delete_account', { account, product_id: 'prepaid_au' })).status, 200);
        const closed = await call('setup_call', body);
        assert.equal(closed.status, 409, closed.text);
        assert.equal(closed.body.reason_code, 'account_deactivated');
        const ended = (await database().get<{ expires_at: string }>(
          'SELECT expires_at FROM call_translations WHERE id = ?',
          saved.body.insertId,
        ))!;
        const account_ = (await database().get<{ deactivated_at: string }>(
          'SELECT deactivated_at FROM retail_accounts WHERE account_code = ?',
          account,
        ))!;
        assert.equal(ended.expires_at, account_.deactivated_at, 'delete_account ended the translation then');
      });

      it('delete_account takes back the credit nodes hold for the account, leases it no more, and keeps its balance exact', async () => {
        const account = await createAccount({ initial_balance: 20, requires_pin: false });
        const id = await retailId(account);
        const round = await registerNode('partner-lease-node');
        const leased = await round([], [{ entity_type: 'retail', entity_id: id, want: '5.00', need: '0.50', give_back: '0' }]);
        assert.deepEqual(leased.leases, [{ entity_type: 'retail', entity_id: id, granted: '5', headroom: '15' }]);
        const held = await call('get_balance', { account, product_id: 'prepaid_au' });
        assert.match(held.text, /"available_balance":15\.00/);

        assert.equal((await call('delete_account', { account, product_id: 'prepaid_au', reason: 'closed' })).status, 200);
        // The node's next round is told to hand its unused lease of the account back.
        const told = await round([]);
        assert.deepEqual(told.recall, [{ entity_type: 'retail', entity_id: id }]);
        // A call that ran before the deactivation is still billed; the rest of the lease comes back; nothing more is leased.
        const back = await round(
          [retailCdr('lease-call@test', id, '61298765432', 60, '0.3000', Date.now() - 120_000)],
          [{ entity_type: 'retail', entity_id: id, want: '5.00', need: '0.50', give_back: '4.70' }],
        );
        assert.deepEqual(back.leases, [{ entity_type: 'retail', entity_id: id, granted: '0', headroom: '19.7' }]);
        const after = await call('get_balance', { account, product_id: 'prepaid_au' });
        assert.match(after.text, /"total_balance":19\.70/);
        assert.match(after.text, /"available_balance":19\.70/);
        assert.equal(after.body.status, 'deactivated');
      });

      it("carries the products' access numbers and live translations to a sidecar in the routing snapshot", async () => {
        const sidecar = await SidecarProcess.start();
        try {
          const node = await control.post('/api/opensips-nodes', {
            hostname: 'partner-snapshot-node',
            mi_socket_address: 'http://127.0.0.1:9/mi',
            sidecar_address: sidecar.url,
          });
          assert.equal(node.status, 201, JSON.stringify(node.body));
          /** Syncs and reads what the sidecar serves: this test checks the snapshot carries them (partner-live.test.ts: the live channel). */
          const served = async (): Promise<Record<string, number>> => {
            const sync = await control.post('/api/opensips/routing/sync', {});
            const result = (sync.body.sidecar_results as { hostname: string; success: boolean; error: string | null }[]).find(
              (entry) => entry.hostname === 'partner-snapshot-node',
            );
            assert.ok(result?.success, JSON.stringify(sync.body));
            return (await sidecar.get('/api/snapshot')).body.counts as Record<string, number>;
          };
          const before = await served();
          const tenant = (await control.get('/api/partner-tenants?tenant_id=acme')).body.data[0].id as number;
          const product = await control.post('/api/partner-products', {
            partner_tenant_id: tenant,
            product_id: 'access_check',
            currency: 'AUD',
            access_numbers: '+61280000010,61280000011',
          });
          assert.equal(product.status, 201, JSON.stringify(product.body));
          const account = await createAccount({ requires_pin: false });
          const setup = (aNumber: string, ttl: number) =>
            call('setup_call', {
              a_number: aNumber,
              b_number: '61298765432',
              access_number: '61280000000',
              account_number: account,
              ttl,
              product_id: 'prepaid_au',
            });
          assert.equal((await setup('+61400222333', 600)).status, 200);
          assert.equal((await setup('+61400222444', 1)).status, 200);
          // Once the one-second translation has expired at the centre, only the other one is carried.
          const ends = (await database().get<{ at: string }>(
            'SELECT MAX(expires_at) AS at FROM call_translations WHERE a_number = ?',
            '61400222444',
          ))!.at;
          await eventually(() => Promise.resolve(assert.ok(Date.now() > Date.parse(ends))), 5_000);
          const carried = await served();
          assert.equal(carried.access_numbers, before.access_numbers + 2, "the new product's two access numbers");
          assert.equal(carried.call_translations, before.call_translations + 1);
          // delete_account ends the account's translations: the next snapshot carries none of them.
          assert.equal((await call('delete_account', { account, product_id: 'prepaid_au' })).status, 200);
          assert.equal((await served()).call_translations, before.call_translations);
          await control.send('DELETE', `/api/opensips-nodes/${node.body.id as number}`);
        } finally {
          await sidecar.kill();
        }
      });

      it('serves only its own routes on its listener', async () => {
        const admin = await fetch(`${partnerUrl.replace(STAGE, '')}/api/partner-tenants`);
        assert.equal(admin.status, 404);
        const unprefixed = await fetch(`${partnerUrl.replace(STAGE, '')}/topup`, { method: 'POST', body: '{}' });
        assert.equal(unprefixed.status, 404);
      });

      it('after a kill -9 in a stream of top-ups, every acknowledged top-up is there once and every retried key replays', async () => {
        const account = await createAccount();
        const bearer = await token();
        const acknowledged = new Map<string, string>();
        const sent: string[] = [];
        const stream = (async () => {
          for (let i = 0; i < 400; i++) {
            const key = `stream-${i}`;
            sent.push(key);
            try {
              const reply = await call('topup', { account, amount: 1, product_id: 'prepaid_au' }, { key, bearer });
              if (reply.status === 200) acknowledged.set(key, reply.text);
            } catch {
              return; // the control plane is gone
            }
          }
        })();
        // Killed once some top-ups were acknowledged (a count, not a time): the stream is mid-flight.
        while (acknowledged.size < 25) await new Promise((resolve) => setImmediate(resolve));
        await control.kill('SIGKILL');
        await stream;
        const dataDir = control.dataDir;
        await startControl(dataDir);

        // Retry every key the stream sent: an acknowledged one replays its first answer, any other applies now.
        for (const key of sent) {
          const reply = await call('topup', { account, amount: 1, product_id: 'prepaid_au' }, { key, bearer });
          assert.equal(reply.status, 200, reply.text);
          if (acknowledged.has(key)) assert.equal(reply.text, acknowledged.get(key), `${key} replayed, not applied again`);
        }
        assert.equal(await balanceOf(account), `${sent.length}.00`, 'each key applied exactly once');
        const applied = await database().all(
          "SELECT description, COUNT(*) AS n FROM balance_transactions WHERE entity_type = 'retail' AND description LIKE 'partner topup stream-%' GROUP BY description HAVING COUNT(*) > 1",
        );
        assert.deepEqual(applied, []);
      });
    },
  );
}
