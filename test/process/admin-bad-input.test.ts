import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, it } from 'node:test';
import type { Field } from '../../sync/admin/fields.js';
import { RESOURCES } from '../../sync/admin/resources.js';
import { forEachEngine, startCentre, type Centre } from '../helpers/engines.js';
import { assertErrorResponse } from '../helpers/errors.js';
import type { SidecarProcess } from '../helpers/sidecar.js';

/** Every admin resource, from its own definition: bad bodies get a clear 4xx and change nothing. */

function wrongValue(field: Field): unknown {
  if (field.kind === 'integer') return 'twelve';
  if (field.kind === 'boolean') return 'yes';
  if (typeof field.kind === 'object') return 'not-one-of-them';
  return 12345; // every other kind is a string
}

forEachEngine('admin API bad input, per resource', (engine) => {
  let centre: Centre;
  let control: SidecarProcess;
  const parents: Record<string, number> = {};

  before(async () => {
    centre = await startCentre(engine, 'bad_input');
    control = centre.control;
    parents.carrier = (await control.send('POST', '/api/carrier-trunks', { name: 'Parent carrier', currency: 'AUD' })).body.id;
    parents.deck = (await control.send('POST', '/api/rate-decks', { name: 'Parent deck', deck_type: 'carrier', currency: 'AUD' })).body.id;
    parents.account = (
      await control.send('POST', '/api/customer-accounts', {
        name: 'Parent account',
        currency: 'AUD',
        username: 'parent',
        password: 'parent-pass-1',
      })
    ).body.id;
    parents.trunk = (
      await control.send('POST', '/api/customer-trunks', { customer_account_id: parents.account, name: 'Parent trunk', currency: 'AUD' })
    ).body.id;
    parents.tenant = (await control.send('POST', '/api/partner-tenants', { tenant_id: 'parent', name: 'Parent tenant' })).body.id;
  });

  /** A body each resource accepts, so one broken field is the only thing wrong. */
  const validBody = (table: string): Record<string, unknown> =>
    ({
      customer_accounts: { name: 'Acme', currency: 'AUD', username: 'acme', password: 'acme-pass-1' },
      customer_trunks: { customer_account_id: parents.account, name: 'T', currency: 'AUD' },
      carrier_trunks: { name: 'C', currency: 'USD' },
      carrier_trunk_ips: { ip_address: '192.0.2.10' },
      carrier_sip_failover_rules: { sip_code: 503, action: 'retry_next' },
      trunk_ip_auth: { trunk_type: 'customer', trunk_id: parents.trunk, cidr: '192.0.2.0/24' },
      trunk_sip_registrations: {
        customer_trunk_id: parents.trunk,
        username: 'u',
        domain: 'd',
        password_hash: '0'.repeat(32),
        hash_algorithm: 'MD5',
      },
      block_rules: { scope: 'global', block_type: 'dnis', pattern: '1900', match_type: 'prefix' },
      rate_decks: { name: 'D', deck_type: 'customer', currency: 'AUD' },
      rate_deck_rates: { prefix: '61', destination_name: 'Australia', rate_per_minute: '0.01' },
      lcr_config: { rate_deck_id: null },
      exchange_rates: { from_currency: 'USD', to_currency: 'AUD', rate: '1.5' },
      opensips_nodes: { hostname: 'n', mi_socket_address: 'udp:127.0.0.1:9' },
      partner_tenants: { tenant_id: 'acme', name: 'Acme' },
      partner_products: { partner_tenant_id: parents.tenant, product_id: 'prepaid_au', currency: 'AUD' },
    })[table] ?? {};
  after(() => centre.stop());

  for (const resource of RESOURCES.filter((candidate) => candidate.operations.includes('create'))) {
    const path = (): string =>
      resource.path.replace('{id}', String(resource.parent?.table === 'rate_decks' ? parents.deck : parents.carrier));
    const count = async (): Promise<number> => {
      const listed = (await control.get(path())).body as unknown[] | { meta: { total: number } };
      return Array.isArray(listed) ? listed.length : listed.meta.total;
    };
    const required = Object.entries(resource.fields).filter(([, field]) => field.required === true);

    it(`${resource.path}: malformed JSON, wrong types, missing fields, oversized and hostile bodies`, async () => {
      const before = await count();
      const expect4xx = async (body: unknown, status: number, pattern?: RegExp): Promise<void> => {
        const response = await control.send('POST', path(), body);
        assertErrorResponse(response, status, pattern);
        assert.deepEqual(Object.keys(response.body).sort(), ['code', 'error', 'reason_code', 'status']);
      };
      await expect4xx('{"name": ', 400, /not valid JSON/);
      await expect4xx('[]', 400, /JSON object/);
      for (const [name] of required) {
        const body = validBody(resource.table);
        delete body[name];
        await expect4xx(body, 400, new RegExp(`${name} is required`));
      }
      for (const [name, field] of Object.entries(resource.fields))
        await expect4xx({ ...validBody(resource.table), [name]: wrongValue(field) }, 400, new RegExp(name));
      for (const value of ['\u0000', 'x'.repeat(5000), '"; DROP TABLE customer_trunks; --']) {
        const body = Object.fromEntries(Object.entries(resource.fields).map(([name]) => [name, value]));
        const response = await control.send('POST', path(), body);
        assert.ok(response.status >= 400 && response.status < 500, `hostile ${JSON.stringify(value).slice(0, 20)} -> ${response.status}`);
      }
      // One NUL in an otherwise valid body's stored field: PostgreSQL's text cannot hold it, so it must be refused
      // before the store on either engine (it was a 500 on PostgreSQL). A password is hashed, never stored.
      for (const [name, value] of Object.entries(validBody(resource.table)).filter(
        ([name, value]) => typeof value === 'string' && name in resource.fields,
      ))
        await expect4xx({ ...validBody(resource.table), [name]: `${value as string}\u0000` }, 400, new RegExp(name));
      const big = await fetch(control.url + path(), {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ padding: 'x'.repeat(2 * 1024 * 1024) }),
      }).catch(() => null);
      if (big !== null) assert.equal(big.status, 413);
      assert.equal(await count(), before, 'nothing was written');
    });
  }

  it('custom endpoints: missing and mistyped fields, malformed JSON, hostile values, unknown ids', async () => {
    const cases: [string, string, unknown, number, RegExp][] = [
      ['POST', '/api/auth/ips', {}, 400, /ip_address is required/],
      ['POST', '/api/auth/ips', { ip_address: '10.0.0.300' }, 400, /ip_address must be an IPv4 or IPv6 address/],
      ['POST', '/api/auth/ips', { ip_address: '10.0.0.0/8' }, 400, /ip_address/],
      ['POST', '/api/auth/ips', { ip_address: '10.0.0.1', is_active: 'yes' }, 400, /is_active/],
      ['POST', '/api/auth/ips', '{"ip_address":', 400, /not valid JSON/],
      ['PUT', `/api/customer-trunks/${parents.trunk}/rate-deck`, {}, 400, /rate_deck_id is required/],
      ['PUT', `/api/customer-trunks/${parents.trunk}/rate-deck`, { rate_deck_id: 'one' }, 400, /rate_deck_id must be an integer/],
      ['PUT', `/api/customer-trunks/${parents.trunk}/rate-deck`, { rate_deck_id: 987654 }, 422, /rate_deck_id 987654 does not exist/],
      ['PUT', '/api/customer-trunks/987654/rate-deck', { rate_deck_id: parents.deck }, 404, /customer trunk 987654 not found/],
      ['GET', `/api/customer-trunks/${parents.trunk}/rate-deck`, undefined, 404, /no rate deck assigned/],
      ['POST', `/api/rate-decks/${parents.deck}/allowlist`, {}, 400, /carrier_trunk_id is required/],
      ['POST', `/api/rate-decks/${parents.deck}/allowlist`, { carrier_trunk_id: 987654 }, 422, /carrier_trunk_id 987654 does not exist/],
      ['DELETE', `/api/rate-decks/${parents.deck}/allowlist/987654`, undefined, 404, /not on rate deck/],
      ['POST', '/api/block-rules/987654/toggle', {}, 404, /block rule 987654 not found/],
      ['GET', '/api/exchange-rates/current?from_currency=USD', undefined, 400, /to_currency is required/],
      ['GET', '/api/exchange-rates/current?from_currency=EUR&to_currency=AUD', undefined, 400, /from_currency must be one of/],
      ['GET', '/api/exchange-rates/current?from_currency=AUD&to_currency=USD', undefined, 404, /no exchange rate in force/],
      // Node statuses are the contract's enum (note 45): draining/offline were accepted before and are no longer.
      [
        'POST',
        '/api/opensips-nodes',
        { hostname: 'n-draining', mi_socket_address: 'udp:127.0.0.1:8890', status: 'draining' },
        400,
        /status/,
      ],
      ['POST', '/api/opensips-nodes', { hostname: 'n-offline', mi_socket_address: 'udp:127.0.0.1:8890', status: 'offline' }, 400, /status/],
    ];
    for (const [method, path, body, status, pattern] of cases) {
      assertErrorResponse(await control.send(method, path, body), status, pattern);
    }
    const ips = (await control.get('/api/auth/ips')).body as { ip_address: string }[];
    assert.deepEqual(
      ips.map((row) => row.ip_address),
      ['127.0.0.1'],
      'no refused request added an address',
    );
  });

  it('reports a sidecar that refuses the snapshot, without retrying a refusal', async () => {
    let calls = 0;
    const refusing: Server = createServer((request, response) => {
      calls++;
      request.resume();
      request.on('end', () => {
        response.writeHead(422, { 'content-type': 'application/json' });
        response.end(
          JSON.stringify({
            error: 'customer_trunks 3: customer_account_id 9 does not exist',
            code: 'Unprocessable Content',
            status: 422,
            reason_code: 'snapshot_integrity',
            serving_version: 0,
          }),
        );
      });
    });
    await new Promise<void>((resolve) => refusing.listen(0, '127.0.0.1', resolve));
    try {
      const address = `http://127.0.0.1:${(refusing.address() as AddressInfo).port}`;
      assert.equal(
        (
          await control.send('POST', '/api/opensips-nodes', {
            hostname: 'refuser',
            mi_socket_address: 'udp:127.0.0.1:9',
            sidecar_address: address,
          })
        ).status,
        201,
      );
      const report = (await control.send('POST', '/api/opensips/routing/sync')).body;
      const result = report.sidecar_results.find((entry: { hostname: string }) => entry.hostname === 'refuser');
      assert.equal(result.success, false);
      assert.match(result.error, /HTTP 422 snapshot_integrity: customer_trunks 3/);
      assert.equal(result.attempts, 1);
      assert.equal(calls, 1);
    } finally {
      refusing.close();
    }
  });
});
