import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { forEachEngine, startCentre, type Centre } from '../helpers/engines.js';
import { assertErrorResponse } from '../helpers/errors.js';
import type { SidecarProcess } from '../helpers/sidecar.js';
import { storeRows } from '../helpers/store-rows.js';

/**
 * The customer portal against a real control plane and its store, on each engine: two customers, each logged in with
 * its own token, see and change only their own account, trunks, rates, CDRs and balance, and only what their
 * can_* flags allow; sessions end at logout and at expiry; failed logins are throttled; the password is
 * never answered, and neither it nor a token reaches the store or the log in the clear.
 */
/** An error response with its catalogue code. */
function refused(response: { status: number; body: any }, status: number, pattern: RegExp, code: string): void {
  assertErrorResponse(response, status, pattern);
  assert.equal(response.body.reason_code, code);
}

forEachEngine('customer portal', (engine) => {
  let centre: Centre;
  let control: SidecarProcess;
  const ids: Record<string, number> = {};
  const tokens: Record<string, string> = {};
  const PASSWORDS = { alpha: 'alpha-secret-1', beta: 'beta-secret-22' };

  const as = (token: string | null) => ({
    send: (method: string, path: string, body?: unknown) =>
      control.send(method, path, body, token === null ? {} : { authorization: `Bearer ${token}` }),
  });
  const operator = as(null);
  const created = async (path: string, body: unknown): Promise<any> => {
    const response = await operator.send('POST', path, body);
    assert.equal(response.status, 201, `${path}: ${JSON.stringify(response.body)}`);
    return response.body;
  };
  const login = (username: string, password: string) => control.post('/api/auth/login', { username, password });

  before(async () => {
    centre = await startCentre(engine, 'portal');
    control = centre.control;
    const alpha = await created('/api/customer-accounts', {
      name: 'Alpha Telecom',
      currency: 'AUD',
      username: 'Alpha',
      password: PASSWORDS.alpha,
      can_view_trunks: true,
      can_modify_trunks: true,
      can_delete_trunks: true,
      can_view_trunk_ips: true,
    });
    const beta = await created('/api/customer-accounts', {
      name: 'Beta Voice',
      currency: 'AUD',
      username: 'beta@wholesale',
      password: PASSWORDS.beta,
      can_view_trunks: true,
      can_view_trunk_ips: true,
      can_create_trunk_ips: true,
      can_view_sip_registrations: true,
    });
    ids.alpha = alpha.id;
    ids.beta = beta.id;
    for (const name of ['alpha', 'beta'] as const) {
      const trunk = await created('/api/customer-trunks', { customer_account_id: ids[name], name: `${name} trunk`, currency: 'AUD' });
      ids[`${name}Trunk`] = trunk.id;
      const deck = await created('/api/rate-decks', { name: `${name} deck`, deck_type: 'customer', currency: 'AUD' });
      ids[`${name}Deck`] = deck.id;
      await created(`/api/rate-decks/${deck.id}/rates`, { prefix: '61', destination_name: 'Australia', rate_per_minute: '0.02' });
      assert.equal((await operator.send('PUT', `/api/customer-trunks/${trunk.id}/rate-deck`, { rate_deck_id: deck.id })).status, 200);
      const ip = await created('/api/trunk-ip-auth', {
        trunk_type: 'customer',
        trunk_id: trunk.id,
        cidr: name === 'alpha' ? '198.51.100.0/24' : '203.0.113.0/24',
      });
      ids[`${name}Ip`] = ip.id;
      assert.equal(
        (
          await operator.send('POST', `/api/balances/customer/${ids[name]}/balance/credit`, {
            amount: name === 'alpha' ? '10.00' : '20.00',
          })
        ).status,
        200,
      );
    }
    await created('/api/sip-registrations', {
      customer_trunk_id: ids.betaTrunk,
      username: 'beta_reg',
      domain: 'sip.example.net',
      password_hash: 'b'.repeat(32),
      hash_algorithm: 'MD5',
    });
    // One CDR each, written as settlement writes them (the ledger's table, in the control plane's store).
    const db = storeRows(centre.store, { writable: true });
    const insert = (...values: unknown[]): Promise<unknown[]> =>
      db.all(
        `INSERT INTO cdrs (sip_call_id, node, node_cdr_id, customer_account_id, customer_trunk_id, carrier_trunk_id, carrier_gateway_id,
        ani, dnis, start_time, answer_time, end_time, duration_seconds, sip_response_code, billable_duration_customer,
        billable_duration_vendor, customer_cost, customer_currency, customer_decimal_precision, customer_rounding_direction,
        vendor_cost, vendor_currency, vendor_decimal_precision, vendor_rounding_direction, account_charge, account_currency, created_at)
       VALUES (?, 'node-1', ?, ?, ?, 7, 9, '61290000000', '61390000000', ?, ?, ?, 60, 200, 60, 60, '0.0200', 'AUD', 4, 'standard',
        '0.0100', 'AUD', 4, 'standard', '0.0200', 'AUD', ?)`,
        ...values,
      );
    const at = '2026-11-01T10:00:00.000Z';
    await insert('alpha-call', 1, ids.alpha, ids.alphaTrunk, at, at, '2026-11-01T10:01:00.000Z', at);
    await insert('beta-call', 2, ids.beta, ids.betaTrunk, at, at, '2026-11-01T10:01:00.000Z', at);
  });
  after(() => centre.stop());

  it('logs a customer in with the username normalised and answers the token once, never the password', async () => {
    const response = await login('ALPHA', PASSWORDS.alpha);
    assert.equal(response.status, 200, JSON.stringify(response.body));
    assert.equal(response.body.username, 'alpha@wholesale');
    assert.equal(response.body.id, ids.alpha);
    assert.equal(response.body.message, 'login successful');
    assert.match(response.body.token, /^[A-Za-z0-9_-]{43}$/);
    tokens.alpha = response.body.token;
    const beta = await login('beta', PASSWORDS.beta);
    assert.equal(beta.status, 200);
    tokens.beta = beta.body.token;

    const account = (await operator.send('GET', `/api/customer-accounts/${ids.alpha}`)).body;
    assert.equal(account.username, 'alpha@wholesale');
    assert.equal(account.can_view_trunks, true);
    assert.equal(account.can_create_trunks, false, 'a flag not given is not granted');
    const answers = JSON.stringify([
      account,
      (await operator.send('GET', '/api/customer-accounts')).body,
      (await operator.send('PUT', `/api/customer-accounts/${ids.alpha}`, { name: 'Alpha Telecom' })).body,
      (await as(tokens.alpha).send('GET', `/api/customer-accounts/${ids.alpha}`)).body,
    ]);
    for (const secret of [PASSWORDS.alpha, 'password', tokens.alpha]) assert.equal(answers.includes(secret), false, secret);

    // At rest: a slow hash apart from the account row, the token only as its SHA-256.
    const db = storeRows(centre.store);
    const hash = (await db.get<{ password_hash: string }>('SELECT password_hash FROM customer_portal_credentials WHERE id = ?', ids.alpha))!
      .password_hash;
    assert.match(hash, /^scrypt\$\d+\$\d+\$\d+\$/);
    const stored = JSON.stringify(await db.all('SELECT * FROM customer_auth_tokens'));
    assert.equal(stored.includes(tokens.alpha), false);
    const logs = control.logs.join('\n');
    assert.match(logs, /portal login/);
    for (const secret of [PASSWORDS.alpha, PASSWORDS.beta, tokens.alpha, tokens.beta]) assert.equal(logs.includes(secret), false);
  });

  it('refuses a wrong password or an unknown username alike (401), and an account not active (403)', async () => {
    refused(await login('alpha', 'not-the-password'), 401, /./, 'login_failed');
    refused(await login('nobody', PASSWORDS.alpha), 401, /./, 'login_failed');
    refused(await control.post('/api/auth/login', { username: 'alpha' }), 400, /password is required/, 'invalid_field');
    const suspended = await created('/api/customer-accounts', {
      name: 'Suspended Pty',
      currency: 'AUD',
      username: 'suspended',
      password: 'suspended-1',
      status: 'suspended',
    });
    assert.equal(suspended.status, 'suspended');
    refused(await login('suspended', 'suspended-1'), 403, /suspended/, 'login_account_not_active');
  });

  it('refuses accounts created without a username or a password, or with a short password', async () => {
    refused(
      await operator.send('POST', '/api/customer-accounts', { name: 'X', currency: 'AUD', password: 'long-enough' }),
      400,
      /username is required/,
      'invalid_field',
    );
    refused(
      await operator.send('POST', '/api/customer-accounts', { name: 'X', currency: 'AUD', username: 'x' }),
      400,
      /password is required/,
      'invalid_field',
    );
    refused(
      await operator.send('POST', '/api/customer-accounts', { name: 'X', currency: 'AUD', username: 'x', password: 'short' }),
      400,
      /password must be at least 8 characters/,
      'invalid_field',
    );
    refused(
      await operator.send('POST', '/api/customer-accounts', {
        name: 'X',
        currency: 'AUD',
        username: 'alpha@wholesale',
        password: 'long-enough',
      }),
      409,
      /username/,
      'duplicate',
    );
  });

  it('keeps each customer to its own account, trunks, rates, CDRs and balance', async () => {
    const alpha = as(tokens.alpha);
    const beta = as(tokens.beta);
    assert.equal((await alpha.send('GET', `/api/customer-accounts/${ids.alpha}`)).body.name, 'Alpha Telecom');
    refused(await alpha.send('GET', `/api/customer-accounts/${ids.beta}`), 404, /./, 'not_found');
    refused(await alpha.send('GET', '/api/customer-accounts'), 403, /./, 'permission_denied');

    const trunks = (await alpha.send('GET', `/api/customer-trunks?customer_account_id=${ids.beta}`)).body;
    assert.deepEqual(
      trunks.data.map((trunk: { id: number }) => trunk.id),
      [ids.alphaTrunk],
    );
    refused(await alpha.send('GET', `/api/customer-trunks/${ids.betaTrunk}`), 404, /./, 'not_found');
    refused(await alpha.send('PUT', `/api/customer-trunks/${ids.betaTrunk}`, { name: 'mine now' }), 404, /./, 'not_found');
    refused(await alpha.send('DELETE', `/api/customer-trunks/${ids.betaTrunk}`), 404, /./, 'not_found');
    const betaTrunk = (await operator.send('GET', `/api/customer-trunks/${ids.betaTrunk}`)).body;
    assert.deepEqual([betaTrunk.name, betaTrunk.status], ['beta trunk', 'active']);
    // Its own trunk it may rename (can_modify_trunks), but its limits and money are the operator's.
    assert.equal((await alpha.send('PUT', `/api/customer-trunks/${ids.alphaTrunk}`, { name: 'Alpha main' })).status, 200);
    refused(
      await alpha.send('PUT', `/api/customer-trunks/${ids.alphaTrunk}`, { credit_limit: '1000000', port_limit: 500 }),
      403,
      /operator sets credit_limit, port_limit/,
      'permission_denied',
    );
    refused(
      await alpha.send('PUT', `/api/customer-trunks/${ids.alphaTrunk}`, { customer_account_id: ids.beta }),
      403,
      /./,
      'permission_denied',
    );

    assert.equal((await alpha.send('GET', `/api/rate-decks/${ids.alphaDeck}/rates`)).body.data[0].rate_per_minute, '0.02');
    refused(await alpha.send('GET', `/api/rate-decks/${ids.betaDeck}/rates`), 404, /./, 'not_found');
    refused(await alpha.send('GET', `/api/rate-decks`), 403, /./, 'permission_denied');

    const cdrs = (await alpha.send('GET', '/api/cdrs/search')).body;
    assert.deepEqual(
      cdrs.map((cdr: { sip_call_id: string }) => cdr.sip_call_id),
      ['alpha-call'],
    );
    assert.equal('vendor_cost' in cdrs[0], false, 'what the carrier cost is the operator’s');
    assert.deepEqual(
      (await alpha.send('GET', `/api/cdrs/search?customer_account_id=${ids.beta}`)).body.map(
        (cdr: { sip_call_id: string }) => cdr.sip_call_id,
      ),
      ['alpha-call'],
    );
    assert.deepEqual((await alpha.send('GET', `/api/cdrs/search?customer_trunk_id=${ids.betaTrunk}`)).body, []);

    assert.deepEqual(
      (await alpha.send('GET', `/api/balances/customer/${ids.alpha}/balance`)).body,
      (await operator.send('GET', `/api/balances/customer/${ids.alpha}/balance`)).body,
    );
    refused(await alpha.send('GET', `/api/balances/customer/${ids.beta}/balance`), 404, /./, 'not_found');
    refused(await alpha.send('GET', `/api/balances/customer/${ids.beta}/transactions`), 404, /./, 'not_found');
    refused(
      await alpha.send('POST', `/api/balances/customer/${ids.alpha}/balance/credit`, { amount: '1000.00' }),
      403,
      /./,
      'permission_denied',
    );
    refused(await alpha.send('POST', '/api/auth/ips', { ip_address: '192.0.2.1' }), 403, /./, 'permission_denied');

    assert.deepEqual(
      (await alpha.send('GET', '/api/trunk-ip-auth')).body.map((row: { id: number }) => row.id),
      [ids.alphaIp],
    );
    refused(await alpha.send('GET', `/api/trunk-ip-auth/${ids.betaIp}`), 404, /./, 'not_found');
    refused(
      await beta.send('POST', '/api/trunk-ip-auth', { trunk_type: 'customer', trunk_id: ids.alphaTrunk, cidr: '192.0.2.0/24' }),
      403,
      /./,
      'permission_denied',
    );
    assert.equal(
      (await beta.send('POST', '/api/trunk-ip-auth', { trunk_type: 'customer', trunk_id: ids.betaTrunk, cidr: '192.0.2.0/24' })).status,
      201,
    );
  });

  it("refuses a customer a network that reaches another account's trunk (the caller's address decides whose call it is); the operator keeps full control", async () => {
    const beta = as(tokens.beta);
    const ipRows = async (): Promise<string[]> =>
      ((await operator.send('GET', '/api/trunk-ip-auth')).body as { cidr: string }[]).map((row) => row.cidr).sort();
    const before = await ipRows();
    const claim = (cidr: string) => beta.send('POST', '/api/trunk-ip-auth', { trunk_type: 'customer', trunk_id: ids.betaTrunk, cidr });
    // Alpha calls from 198.51.100.0/24: the same network, one host of it, a network inside or around it, its
    // IPv4-mapped forms and the whole address space would all have Alpha's calls identified as Beta's trunk.
    for (const cidr of [
      '198.51.100.0/24',
      '198.51.100.7',
      '198.51.100.7/32',
      '198.51.100.128/25',
      '198.51.0.0/16',
      '::ffff:198.51.100.7',
      '::ffff:198.51.100.0/120',
      '0.0.0.0/0',
      '::/0',
    ])
      refused(await claim(cidr), 409, /shares addresses with a network another customer account calls from/, 'network_of_another_account');
    assert.deepEqual(await ipRows(), before, 'nothing was added');
    assert.equal((await claim('198.51.101.0/24')).status, 201, 'the network next to it');
    assert.equal((await claim('203.0.113.128/25')).status, 201, "inside a network of Beta's own trunk");

    // A change of network is held to the same rule; a network the operator stored, shared on purpose, stays as it was.
    assert.equal((await operator.send('PUT', `/api/customer-accounts/${ids.beta}`, { can_modify_trunk_ips: true })).status, 200);
    refused(
      await beta.send('PUT', `/api/trunk-ip-auth/${ids.betaIp}`, { cidr: '198.51.100.64/26' }),
      409,
      /./,
      'network_of_another_account',
    );
    assert.equal((await operator.send('GET', `/api/trunk-ip-auth/${ids.betaIp}`)).body.cidr, '203.0.113.0/24');
    const shared = await created('/api/trunk-ip-auth', { trunk_type: 'customer', trunk_id: ids.betaTrunk, cidr: '198.51.100.9/32' });
    const kept = await beta.send('PUT', `/api/trunk-ip-auth/${shared.id}`, { cidr: '198.51.100.9', description: 'shared carrier' });
    assert.equal(kept.status, 200, JSON.stringify(kept.body));
    assert.deepEqual([kept.body.cidr, kept.body.description], ['198.51.100.9/32', 'shared carrier']);
    refused(await beta.send('PUT', `/api/trunk-ip-auth/${shared.id}`, { cidr: '198.51.100.10' }), 409, /./, 'network_of_another_account');
    assert.equal((await operator.send('DELETE', `/api/trunk-ip-auth/${shared.id}`)).status, 204);
  });

  it('answers 403 where the can_* flag is false', async () => {
    const alpha = as(tokens.alpha);
    // can_view_sip_registrations and can_create_trunk_ips are not Alpha's; Beta has them.
    refused(await alpha.send('GET', '/api/sip-registrations'), 403, /can_view_sip_registrations/, 'permission_denied');
    refused(
      await alpha.send('POST', '/api/trunk-ip-auth', { trunk_type: 'customer', trunk_id: ids.alphaTrunk, cidr: '192.0.2.0/24' }),
      403,
      /can_create_trunk_ips/,
      'permission_denied',
    );
    refused(
      await alpha.send('POST', '/api/customer-trunks', { customer_account_id: ids.alpha, name: 'another', currency: 'AUD' }),
      403,
      /can_create_trunks/,
      'permission_denied',
    );
    assert.equal((await as(tokens.beta).send('GET', '/api/sip-registrations')).body.length, 1);
    // The operator revokes a flag: the next request of a live session is refused.
    assert.equal((await operator.send('PUT', `/api/customer-accounts/${ids.alpha}`, { can_view_trunks: false })).status, 200);
    refused(await alpha.send('GET', '/api/customer-trunks'), 403, /can_view_trunks/, 'permission_denied');
    assert.deepEqual((await alpha.send('GET', `/api/customer-accounts/${ids.alpha}`)).body.trunks, []);
  });

  it('ends a session at logout and at expiry', async () => {
    const session = (await login('alpha', PASSWORDS.alpha)).body.token as string;
    const alpha = as(session);
    assert.equal((await alpha.send('GET', `/api/customer-accounts/${ids.alpha}`)).status, 200);
    assert.deepEqual(await alpha.send('POST', '/api/auth/logout'), { status: 200, body: { message: 'logout successful' } });
    refused(await alpha.send('GET', `/api/customer-accounts/${ids.alpha}`), 401, /./, 'session_expired');
    assert.equal((await alpha.send('POST', '/api/auth/logout')).status, 200, 'logout is idempotent');
    assert.equal((await operator.send('POST', '/api/auth/logout')).status, 200, 'an operator has no session to end');
    refused(await as('made-up-token').send('GET', `/api/customer-accounts/${ids.alpha}`), 401, /./, 'session_expired');

    // Expiry: the session's 24 hours are over (its row says so, as it would a day later).
    await storeRows(centre.store, { writable: true }).all(
      "UPDATE customer_auth_tokens SET expires_at = '2020-01-01T00:00:00.000Z' WHERE customer_account_id = ?",
      ids.beta,
    );
    refused(await as(tokens.beta).send('GET', `/api/customer-accounts/${ids.beta}`), 401, /./, 'session_expired');

    // A new password ends the sessions the old one opened.
    const again = (await login('alpha', PASSWORDS.alpha)).body.token as string;
    assert.equal((await operator.send('PUT', `/api/customer-accounts/${ids.alpha}`, { password: 'alpha-secret-2' })).status, 200);
    refused(await as(again).send('GET', `/api/customer-accounts/${ids.alpha}`), 401, /./, 'session_expired');
    assert.equal((await login('alpha', 'alpha-secret-2')).status, 200);
  });

  it('throttles failed logins per username, then per address, with Retry-After', async () => {
    for (let i = 0; i < 5; i++) assert.equal((await login('beta', `wrong-${i}-password`)).status, 401);
    const held = await fetch(`${control.url}/api/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'beta', password: PASSWORDS.beta }),
    });
    assert.equal(held.status, 429, 'not even the right password is tried');
    assert.equal(((await held.json()) as { reason_code: string }).reason_code, 'too_many_attempts');
    const retryAfter = Number(held.headers.get('retry-after'));
    assert.ok(retryAfter > 800 && retryAfter <= 900, `Retry-After ${retryAfter}`);
    assert.equal((await login('alpha', 'alpha-secret-2')).status, 200, 'another username from the same address still logs in');

    // The address has failed 7 times (2 in the test above, 5 here); 13 more under other names, each below its own
    // limit, make its 20.
    for (let i = 0; i < 13; i++) assert.equal((await login(`guess-${i}`, 'wrong-password')).status, 401);
    refused(await login('alpha', 'alpha-secret-2'), 429, /./, 'too_many_attempts');
  });
});
