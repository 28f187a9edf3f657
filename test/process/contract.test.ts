import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Contract } from '../helpers/contract.js';
import { startMoneyWorld, type MoneyWorld } from '../helpers/money-world.js';
import type { SidecarProcess } from '../helpers/sidecar.js';

/**
 * Every operation of the switch API's contract, called with a valid request against the real control plane
 * and a real sidecar serving the fixture world: the answer's status must be one the contract declares for it
 * and its body must validate against that status's schema. The request bodies are the contract's own
 * property examples wherever they are valid here; what is written by hand is the ids of this world.
 */

/**
 * Where the contract contradicts itself, the answer follows one side and this check would fail on the other:
 * listed once, each with its reason, each mirrored by contract note 45 (docs/contract-notes.md). An entry
 * excuses only the problems it matches (`problem`) in the answers it names (`answer`: operation and status);
 * every other part of those answers is still checked.
 */
const CONTRACT_SELF_CONTRADICTIONS: { answer: RegExp; problem: RegExp; reason: string }[] = [
  {
    answer: /^DELETE .* 204$/,
    problem: /^.* 204: body must be object/,
    reason: 'every delete declares 204 No Content with an object body, which HTTP forbids: we send no body (note 18)',
  },
  {
    answer:
      /^GET \/api\/(customer-accounts|customer-trunks|carrier-trunks|rate-decks|rate-decks\/\{id\}\/rates|block-rules|exchange-rates|lcr-config|opensips-nodes|balances\/\{entity_type\}\/\{entity_id\}\/transactions) 200$/,
    problem: /: body must be array/,
    reason: 'the prose shows these lists as {data, meta: {page, page_size, total}}, the schema as a bare array (note 17)',
  },
  {
    answer: /^GET \/api\/metrics\/(cps|per-minute) 200$/,
    problem: /: body must be array/,
    reason: "with ?trunk_id= the prose's example is one trunk's object; the schema declares only an array (note 13)",
  },
  {
    answer: /^GET \/api\/health 200$/,
    problem: /: body\/status must be equal to one of the allowed values/,
    reason: 'HealthResponse.status carries the record-status enum; every prose example answers "ok" (note 14)',
  },
  {
    answer: /^(POST|PUT) \/api\/carrier-trunks\/\{id\}\/ips.* 20[01]$/,
    problem: /: body\/ip_address must match format "byte"/,
    reason: 'CarrierTrunkIP.ip_address has format byte (base64); its own example and the prose are a dotted IP address',
  },
  {
    answer: /^POST \/api\/(admin\/route-simulator (400|422)|auth\/login 401)$/,
    problem: /: body\/status must be (integer|equal to one of the allowed values)/,
    reason:
      'the error schemas type status as an integer restricted to record-status strings, which no body can be; we send the integer status (note 1)',
  },
  {
    answer: /^POST \/api\/cdrs\/ingest 201$/,
    problem: /answered 201; declared: 200/,
    reason: 'the prose answers a new CDR 201 Created and a resend 200; the schema declares only 200 (note 29)',
  },
];

interface Answer {
  status: number;
  body: unknown;
}
type Call = (servers: Servers, ids: Record<string, number>) => Promise<Answer | Answer[]>;
interface Servers {
  control: SidecarProcess;
  sidecar: SidecarProcess;
}

const md5 = (text: string): string => createHash('md5').update(text).digest('hex');

/** A REGISTER's Authorization header for the fixture's acme_trunk_01 (password s3cret). */
function registerDigest(): string {
  const [username, realm, password, nonce, uri] = ['acme_trunk_01', 'sip.crazytel.com.au', 's3cret', 'bm9uY2U', 'sip:sip.crazytel.com.au'];
  const response = md5(`${md5(`${username}:${realm}:${password}`)}:${nonce}:${md5(`REGISTER:${uri}`)}`);
  return `Digest username="${username}", realm="${realm}", nonce="${nonce}", uri="${uri}", response="${response}", algorithm=MD5`;
}

const contract = new Contract();
const ex = contract.example.bind(contract);
const RECENT = new Date(Date.now() - 60_000);
/** The portal token login gave, for logout. */
const tokens: Record<string, string> = {};
const at = (seconds: number): string => new Date(RECENT.getTime() + seconds * 1000).toISOString();

/** Calls in an order that lets each find what an earlier one made (`ids`); deletes come last. */
const CALLS: [string, Call][] = [
  // Both processes serve health: both answers are checked.
  ['GET /api/health', async ({ control, sidecar }) => [await sidecar.get('/api/health'), await control.get('/api/health')]],
  ['GET /api/auth/ips', ({ control }) => control.get('/api/auth/ips')],
  ['POST /api/auth/ips', ({ control }) => control.send('POST', '/api/auth/ips', ex('CreateRequest', { ip_address: '192.0.2.99' }))],

  ['GET /api/customer-accounts', ({ control }) => control.get('/api/customer-accounts')],
  [
    'POST /api/customer-accounts',
    ({ control }) =>
      control.send(
        'POST',
        '/api/customer-accounts',
        ex('CreateCustomerAccountRequest', {
          name: 'Contract Pty',
          currency: 'AUD',
          billing_mode: 'prepaid',
          credit_limit: null,
          warning_threshold: null,
        }),
      ),
  ],
  // The portal's session, for the account just made with the contract's example credentials.
  [
    'POST /api/auth/login',
    async ({ control }) => {
      const answer = await control.send('POST', '/api/auth/login', ex('LoginRequest'));
      tokens.portal = (answer.body as { token?: string } | null)?.token ?? '';
      return answer;
    },
  ],
  [
    'POST /api/auth/logout',
    ({ control }) => control.send('POST', '/api/auth/logout', undefined, { authorization: `Bearer ${tokens.portal}` }),
  ],
  ['GET /api/customer-accounts/{id}', ({ control }, ids) => control.get(`/api/customer-accounts/${ids.account}`)],
  [
    'PUT /api/customer-accounts/{id}',
    ({ control }, ids) => control.send('PUT', `/api/customer-accounts/${ids.account}`, { name: 'Contract Pty Ltd' }),
  ],
  ['GET /api/customer-trunks', ({ control }) => control.get('/api/customer-trunks')],
  [
    'POST /api/customer-trunks',
    ({ control }, ids) =>
      control.send('POST', '/api/customer-trunks', { customer_account_id: ids.account, name: 'Contract trunk', currency: 'AUD' }),
  ],
  ['GET /api/customer-trunks/{id}', ({ control }, ids) => control.get(`/api/customer-trunks/${ids.customerTrunk}`)],
  [
    'PUT /api/customer-trunks/{id}',
    ({ control }, ids) => control.send('PUT', `/api/customer-trunks/${ids.customerTrunk}`, { cps_limit: 20 }),
  ],
  ['GET /api/carrier-trunks', ({ control }) => control.get('/api/carrier-trunks')],
  ['POST /api/carrier-trunks', ({ control }) => control.send('POST', '/api/carrier-trunks', { name: 'Contract carrier', currency: 'AUD' })],
  ['GET /api/carrier-trunks/{id}', ({ control }, ids) => control.get(`/api/carrier-trunks/${ids.carrierTrunk}`)],
  ['PUT /api/carrier-trunks/{id}', ({ control }, ids) => control.send('PUT', `/api/carrier-trunks/${ids.carrierTrunk}`, { cps_limit: 20 })],
  ['GET /api/carrier-trunks/{id}/ips', ({ control }, ids) => control.get(`/api/carrier-trunks/${ids.carrierTrunk}/ips`)],
  [
    'POST /api/carrier-trunks/{id}/ips',
    ({ control }, ids) =>
      control.send('POST', `/api/carrier-trunks/${ids.carrierTrunk}/ips`, ex('AddCarrierTrunkIPRequest', { ip_address: '192.0.2.80' })),
  ],
  [
    'PUT /api/carrier-trunks/{id}/ips/{ip_id}',
    ({ control }, ids) => control.send('PUT', `/api/carrier-trunks/${ids.carrierTrunk}/ips/${ids.carrierIp}`, { weight: 2 }),
  ],
  [
    'GET /api/carrier-trunks/{id}/failover-rules',
    ({ control }, ids) => control.get(`/api/carrier-trunks/${ids.carrierTrunk}/failover-rules`),
  ],
  [
    'POST /api/carrier-trunks/{id}/failover-rules',
    ({ control }, ids) =>
      control.send('POST', `/api/carrier-trunks/${ids.carrierTrunk}/failover-rules`, ex('CreateCarrierSIPFailoverRuleRequest')),
  ],
  [
    'GET /api/carrier-trunks/{id}/failover-rules/{rule_id}',
    ({ control }, ids) => control.get(`/api/carrier-trunks/${ids.carrierTrunk}/failover-rules/${ids.failoverRule}`),
  ],
  [
    'PUT /api/carrier-trunks/{id}/failover-rules/{rule_id}',
    ({ control }, ids) =>
      control.send('PUT', `/api/carrier-trunks/${ids.carrierTrunk}/failover-rules/${ids.failoverRule}`, { action: 'return_to_customer' }),
  ],

  ['GET /api/rate-decks', ({ control }) => control.get('/api/rate-decks')],
  [
    'POST /api/rate-decks',
    ({ control }) => control.send('POST', '/api/rate-decks', { name: 'Contract sell', deck_type: 'customer', currency: 'AUD' }),
  ],
  ['GET /api/rate-decks/{id}', ({ control }, ids) => control.get(`/api/rate-decks/${ids.deck}`)],
  ['PUT /api/rate-decks/{id}', ({ control }, ids) => control.send('PUT', `/api/rate-decks/${ids.deck}`, { name: 'Contract sell 2' })],
  ['GET /api/rate-decks/{id}/rates', ({ control }, ids) => control.get(`/api/rate-decks/${ids.deck}/rates`)],
  [
    'POST /api/rate-decks/{id}/rates',
    ({ control }, ids) => control.send('POST', `/api/rate-decks/${ids.deck}/rates`, ex('CreateRateDeckRateRequest')),
  ],
  [
    'PUT /api/rate-decks/{id}/rates/{rate_id}',
    ({ control }, ids) => control.send('PUT', `/api/rate-decks/${ids.deck}/rates/${ids.rate}`, { destination_name: 'AU Mobile' }),
  ],
  [
    'POST /api/rate-decks/{id}/rates/bulk',
    ({ control }, ids) =>
      control.send(
        'POST',
        `/api/rate-decks/${ids.deck}/rates/bulk`,
        ex('BulkCreateRateDeckRateRequest', { rates: [ex('CreateRateDeckRateRequest', { prefix: '612' })] }),
      ),
  ],
  [
    'POST /api/rate-decks/{id}/rates/csv',
    async ({ control }, ids) => {
      const form = new FormData();
      form.append('file', new Blob(['prefix,destination_name,rate\n613,Australia Fixed,0.0100\n'], { type: 'text/csv' }), 'deck.csv');
      const response = await fetch(`${control.url}/api/rate-decks/${ids.deck}/rates/csv`, { method: 'POST', body: form });
      return { status: response.status, body: await response.json() };
    },
  ],
  ['GET /api/rate-decks/{id}/allowlist', ({ control }, ids) => control.get(`/api/rate-decks/${ids.deck}/allowlist`)],
  [
    'POST /api/rate-decks/{id}/allowlist',
    ({ control }, ids) => control.send('POST', `/api/rate-decks/${ids.deck}/allowlist`, { carrier_trunk_id: ids.carrierTrunk }),
  ],
  [
    'PUT /api/customer-trunks/{id}/rate-deck',
    ({ control }, ids) => control.send('PUT', `/api/customer-trunks/${ids.customerTrunk}/rate-deck`, { rate_deck_id: ids.deck }),
  ],
  ['GET /api/customer-trunks/{id}/rate-deck', ({ control }, ids) => control.get(`/api/customer-trunks/${ids.customerTrunk}/rate-deck`)],
  [
    'PUT /api/carrier-trunks/{id}/rate-deck',
    ({ control }, ids) => control.send('PUT', `/api/carrier-trunks/${ids.carrierTrunk}/rate-deck`, { rate_deck_id: 101 }),
  ],
  ['GET /api/carrier-trunks/{id}/rate-deck', ({ control }, ids) => control.get(`/api/carrier-trunks/${ids.carrierTrunk}/rate-deck`)],
  ['GET /api/rate-deck-updates', ({ control }) => control.get('/api/rate-deck-updates')],
  [
    'POST /api/rate-deck-updates',
    ({ control }, ids) =>
      control.send(
        'POST',
        '/api/rate-deck-updates',
        // Due already: activated at once, so that its trunks are notified and one can download it below.
        ex('CreateRateDeckUpdateRequest', { rate_deck_id: ids.deck, effective_at: '2026-02-01T00:00:00Z' }),
      ),
  ],
  ['GET /api/rate-deck-updates/{id}', ({ control }, ids) => control.get(`/api/rate-deck-updates/${ids.deckUpdate}`)],
  [
    'POST /api/rate-deck-updates/{id}/download/{trunk_id}',
    ({ control }, ids) => control.send('POST', `/api/rate-deck-updates/${ids.deckUpdate}/download/${ids.customerTrunk}`, {}),
  ],

  ['GET /api/block-rules', ({ control }) => control.get('/api/block-rules')],
  [
    'POST /api/block-rules',
    ({ control }) =>
      control.send('POST', '/api/block-rules', ex('CreateBlockRuleRequest', { scope_id: null, sip_response_code: 403, pattern: '1901' })),
  ],
  ['GET /api/block-rules/{id}', ({ control }, ids) => control.get(`/api/block-rules/${ids.blockRule}`)],
  ['PUT /api/block-rules/{id}', ({ control }, ids) => control.send('PUT', `/api/block-rules/${ids.blockRule}`, { pattern: '1902' })],
  [
    'POST /api/block-rules/{id}/toggle',
    ({ control }, ids) => control.send('POST', `/api/block-rules/${ids.blockRule}/toggle`, ex('ToggleActiveRequest', { is_active: false })),
  ],
  ['GET /api/exchange-rates', ({ control }) => control.get('/api/exchange-rates')],
  [
    'POST /api/exchange-rates',
    ({ control }) => control.send('POST', '/api/exchange-rates', ex('CreateExchangeRateRequest', { effective_at: '2099-06-01T00:00:00Z' })),
  ],
  ['GET /api/exchange-rates/current', ({ control }) => control.get('/api/exchange-rates/current?from_currency=USD&to_currency=AUD')],
  ['GET /api/exchange-rates/{id}', ({ control }, ids) => control.get(`/api/exchange-rates/${ids.exchangeRate}`)],
  ['GET /api/lcr-config', ({ control }) => control.get('/api/lcr-config')],
  [
    'POST /api/lcr-config',
    ({ control }, ids) => control.send('POST', '/api/lcr-config', ex('CreateLCRConfigRequest', { rate_deck_id: ids.deck })),
  ],
  ['GET /api/lcr-config/{id}', ({ control }, ids) => control.get(`/api/lcr-config/${ids.lcrConfig}`)],
  ['PUT /api/lcr-config/{id}', ({ control }, ids) => control.send('PUT', `/api/lcr-config/${ids.lcrConfig}`, { cache_ttl_seconds: 60 })],
  ['GET /api/opensips-nodes', ({ control }) => control.get('/api/opensips-nodes')],
  [
    'POST /api/opensips-nodes',
    ({ control }) => control.send('POST', '/api/opensips-nodes', ex('CreateOpensipsNodeRequest', { status: 'suspended' })),
  ],
  ['GET /api/opensips-nodes/{id}', ({ control }, ids) => control.get(`/api/opensips-nodes/${ids.node}`)],
  ['PUT /api/opensips-nodes/{id}', ({ control }, ids) => control.send('PUT', `/api/opensips-nodes/${ids.node}`, { region: 'melbourne' })],
  ['GET /api/sip-registrations', ({ control }) => control.get('/api/sip-registrations')],
  [
    'POST /api/sip-registrations',
    ({ control }, ids) =>
      control.send('POST', '/api/sip-registrations', ex('CreateTrunkSIPRegistrationRequest', { customer_trunk_id: ids.customerTrunk })),
  ],
  ['GET /api/sip-registrations/{id}', ({ control }, ids) => control.get(`/api/sip-registrations/${ids.registration}`)],
  [
    'PUT /api/sip-registrations/{id}',
    ({ control }, ids) => control.send('PUT', `/api/sip-registrations/${ids.registration}`, { hash_algorithm: 'MD5' }),
  ],
  ['GET /api/trunk-ip-auth', ({ control }) => control.get('/api/trunk-ip-auth')],
  [
    'POST /api/trunk-ip-auth',
    ({ control }, ids) =>
      control.send('POST', '/api/trunk-ip-auth', ex('CreateTrunkIPAuthRequest', { trunk_id: ids.customerTrunk, cidr: '192.0.2.128/25' })),
  ],
  ['GET /api/trunk-ip-auth/{id}', ({ control }, ids) => control.get(`/api/trunk-ip-auth/${ids.trunkIpAuth}`)],
  [
    'PUT /api/trunk-ip-auth/{id}',
    ({ control }, ids) => control.send('PUT', `/api/trunk-ip-auth/${ids.trunkIpAuth}`, { description: 'Melbourne' }),
  ],

  // A balance read before its first transaction, then the fixture's account 1 funded for the calls below.
  [
    'GET /api/balances/{entity_type}/{entity_id}/balance',
    ({ control }, ids) => control.get(`/api/balances/customer/${ids.account}/balance`),
  ],
  [
    'POST /api/balances/{entity_type}/{entity_id}/balance/credit',
    ({ control }) => control.send('POST', '/api/balances/customer/1/balance/credit', ex('CreditRequest', { amount: '100.00' })),
  ],
  [
    'POST /api/balances/{entity_type}/{entity_id}/balance/debit',
    ({ control }) => control.send('POST', '/api/balances/customer/1/balance/debit', ex('DebitRequest', { amount: '1.00', cdr_id: null })),
  ],
  [
    'POST /api/balances/{entity_type}/{entity_id}/balance/adjust',
    ({ control }) => control.send('POST', '/api/balances/customer/1/balance/adjust', ex('AdjustRequest', { amount: '-0.50' })),
  ],
  ['GET /api/balances/{entity_type}/{entity_id}/transactions', ({ control }) => control.get('/api/balances/customer/1/transactions')],

  // The sidecar's decisions, on the fixture world it serves.
  [
    'POST /api/opensips/call/auth',
    ({ sidecar }) => sidecar.post('/api/opensips/call/auth', { source_ip: '203.0.113.5', ani: '61255500100', dnis: '61400123456' }),
  ],
  [
    'POST /api/opensips/register/auth',
    ({ sidecar }) =>
      sidecar.post(
        '/api/opensips/register/auth',
        ex('RegisterAuthRequest', {
          username: 'acme_trunk_01',
          realm: 'sip.crazytel.com.au',
          uri: 'sip:sip.crazytel.com.au',
          auth_response: registerDigest(),
        }),
      ),
  ],
  [
    'POST /api/opensips/call/route',
    ({ sidecar }) => sidecar.post('/api/opensips/call/route', { customer_trunk_id: 10, dnis: '61400123456' }),
  ],
  ['POST /api/opensips/call/failover', ({ sidecar }) => sidecar.post('/api/opensips/call/failover', ex('FailoverRequest'))],
  [
    'POST /api/opensips/call/admit',
    ({ sidecar }) => sidecar.post('/api/opensips/call/admit', ex('OpensipsAdmitRequest', { call_id: 'contract-admit@test' })),
  ],
  ['POST /api/call-admit/check', ({ sidecar }) => sidecar.post('/api/call-admit/check', ex('CallAdmitCheckRequest'))],
  ['POST /api/lcr/lookup', ({ sidecar }) => sidecar.post('/api/lcr/lookup', { customer_trunk_id: 10, dnis: '61400123456' })],
  ['POST /api/rate-lookup', ({ sidecar }) => sidecar.post('/api/rate-lookup', { rate_deck_id: 1, destination: '61400123456' })],
  ['POST /api/admin/route-simulator', ({ sidecar }) => sidecar.post('/api/admin/route-simulator', ex('RouteSimulationRequest'))],
  [
    'POST /api/cdrs/ingest',
    ({ sidecar }) =>
      sidecar.post(
        '/api/cdrs/ingest',
        ex('IngestCDRRequest', {
          sip_call_id: 'contract-admit@test',
          carrier_gateway_id: 201,
          start_time: at(0),
          answer_time: at(5),
          end_time: at(78),
        }),
      ),
  ],
  // Every trunk (the schema's array), and one trunk (the prose's object).
  [
    'GET /api/metrics/cps',
    async ({ sidecar }) => [await sidecar.get('/api/metrics/cps'), await sidecar.get('/api/metrics/cps?trunk_id=10')],
  ],
  [
    'GET /api/metrics/per-minute',
    async ({ sidecar }) => [await sidecar.get('/api/metrics/per-minute'), await sidecar.get('/api/metrics/per-minute?trunk_id=10')],
  ],
  // A call within the limit and one over it: both are answers the schema must hold (200 only).
  [
    'POST /api/metrics/per-minute/check',
    async ({ sidecar }) => [
      await sidecar.post('/api/metrics/per-minute/check', { trunk_id: 10, limit: 300 }),
      await sidecar.post('/api/metrics/per-minute/check', { trunk_id: 10, limit: 0 }),
    ],
  ],
  ['GET /api/cdrs/search', ({ control }) => control.get('/api/cdrs/search')],
  ['POST /api/opensips/routing/sync', ({ control }) => control.send('POST', '/api/opensips/routing/sync', {})],
  ['POST /api/block-rules/rebuild-cache', ({ control }) => control.send('POST', '/api/block-rules/rebuild-cache', {})],

  // Deletes, each of a record made above, dependants first.
  [
    'DELETE /api/rate-deck-updates/{id}',
    // Only a pending update can be deleted (the one above is active): one scheduled far ahead, made for this.
    async ({ control }, ids) => {
      const pending = await control.send(
        'POST',
        '/api/rate-deck-updates',
        ex('CreateRateDeckUpdateRequest', { rate_deck_id: ids.deck, effective_at: '2099-02-01T00:00:00Z' }),
      );
      assert.equal(pending.status, 201, JSON.stringify(pending.body));
      return control.send('DELETE', `/api/rate-deck-updates/${(pending.body as { id: number }).id}`);
    },
  ],
  [
    'DELETE /api/rate-decks/{id}/rates/{rate_id}',
    ({ control }, ids) => control.send('DELETE', `/api/rate-decks/${ids.deck}/rates/${ids.rate}`),
  ],
  [
    'DELETE /api/rate-decks/{id}/allowlist/{carrier_trunk_id}',
    ({ control }, ids) => control.send('DELETE', `/api/rate-decks/${ids.deck}/allowlist/${ids.carrierTrunk}`),
  ],
  [
    'DELETE /api/carrier-trunks/{id}/ips/{ip_id}',
    ({ control }, ids) => control.send('DELETE', `/api/carrier-trunks/${ids.carrierTrunk}/ips/${ids.carrierIp}`),
  ],
  [
    'DELETE /api/carrier-trunks/{id}/failover-rules/{rule_id}',
    ({ control }, ids) => control.send('DELETE', `/api/carrier-trunks/${ids.carrierTrunk}/failover-rules/${ids.failoverRule}`),
  ],
  [
    'DELETE /api/customer-trunks/{id}/rate-deck',
    ({ control }, ids) => control.send('DELETE', `/api/customer-trunks/${ids.customerTrunk}/rate-deck`),
  ],
  [
    'DELETE /api/carrier-trunks/{id}/rate-deck',
    ({ control }, ids) => control.send('DELETE', `/api/carrier-trunks/${ids.carrierTrunk}/rate-deck`),
  ],
  ['DELETE /api/block-rules/{id}', ({ control }, ids) => control.send('DELETE', `/api/block-rules/${ids.blockRule}`)],
  ['DELETE /api/exchange-rates/{id}', ({ control }, ids) => control.send('DELETE', `/api/exchange-rates/${ids.exchangeRate}`)],
  ['DELETE /api/lcr-config/{id}', ({ control }, ids) => control.send('DELETE', `/api/lcr-config/${ids.lcrConfig}`)],
  ['DELETE /api/opensips-nodes/{id}', ({ control }, ids) => control.send('DELETE', `/api/opensips-nodes/${ids.node}`)],
  ['DELETE /api/sip-registrations/{id}', ({ control }, ids) => control.send('DELETE', `/api/sip-registrations/${ids.registration}`)],
  ['DELETE /api/trunk-ip-auth/{id}', ({ control }, ids) => control.send('DELETE', `/api/trunk-ip-auth/${ids.trunkIpAuth}`)],
  ['DELETE /api/customer-trunks/{id}', ({ control }, ids) => control.send('DELETE', `/api/customer-trunks/${ids.customerTrunk}`)],
  ['DELETE /api/carrier-trunks/{id}', ({ control }, ids) => control.send('DELETE', `/api/carrier-trunks/${ids.carrierTrunk}`)],
  ['DELETE /api/customer-accounts/{id}', ({ control }, ids) => control.send('DELETE', `/api/customer-accounts/${ids.account}`)],
  [
    'DELETE /api/rate-decks/{id}',
    // The deck above keeps its rates and history; a deck still referred to is refused (409), so this deletes one of its own.
    async ({ control }) => {
      const deck = await control.send('POST', '/api/rate-decks', { name: 'Contract spare', deck_type: 'carrier', currency: 'AUD' });
      return control.send('DELETE', `/api/rate-decks/${(deck.body as { id: number }).id}`);
    },
  ],
];

/** The refusals the contract declares with a body (the others fall under `default`, which declares none). */
const DECLARED_REFUSALS: [string, number, Call][] = [
  // Not JSON: 400. Valid JSON the simulator cannot use (a type, an unknown trunk): 422, as its contract says.
  ['POST /api/admin/route-simulator', 400, ({ sidecar }) => sidecar.post('/api/admin/route-simulator', '{"customer_trunk_id":')],
  [
    'POST /api/admin/route-simulator',
    422,
    ({ sidecar }) => sidecar.post('/api/admin/route-simulator', ex('RouteSimulationRequest', { duration_seconds: 'long' })),
  ],
  [
    'POST /api/admin/route-simulator',
    422,
    ({ sidecar }) => sidecar.post('/api/admin/route-simulator', ex('RouteSimulationRequest', { customer_trunk_id: 987654 })),
  ],
  [
    'POST /api/rate-decks/{id}/rates/csv',
    400,
    async ({ control }) => {
      const form = new FormData();
      form.append('file', new Blob(['prefix,destination_name,rate\n613,Australia Fixed,cheap\n'], { type: 'text/csv' }), 'deck.csv');
      const response = await fetch(`${control.url}/api/rate-decks/1/rates/csv`, { method: 'POST', body: form });
      return { status: response.status, body: await response.json() };
    },
  ],
  [
    'POST /api/auth/login',
    401,
    ({ control }) => control.send('POST', '/api/auth/login', ex('LoginRequest', { password: 'not the password' })),
  ],
];

/** Which id a create's answer gives to the calls after it. */
const CREATED_ID: Partial<Record<string, string>> = {
  'POST /api/customer-accounts': 'account',
  'POST /api/customer-trunks': 'customerTrunk',
  'POST /api/carrier-trunks': 'carrierTrunk',
  'POST /api/carrier-trunks/{id}/ips': 'carrierIp',
  'POST /api/carrier-trunks/{id}/failover-rules': 'failoverRule',
  'POST /api/rate-decks': 'deck',
  'POST /api/rate-decks/{id}/rates': 'rate',
  'POST /api/rate-deck-updates': 'deckUpdate',
  'POST /api/block-rules': 'blockRule',
  'POST /api/exchange-rates': 'exchangeRate',
  'POST /api/lcr-config': 'lcrConfig',
  'POST /api/opensips-nodes': 'node',
  'POST /api/sip-registrations': 'registration',
  'POST /api/trunk-ip-auth': 'trunkIpAuth',
};

/** The answer's status is declared for `key` and its body validates, but for the listed self-contradictions. */
function assertAsDeclared(key: string, answer: Answer): void {
  const excused = CONTRACT_SELF_CONTRADICTIONS.filter((entry) => entry.answer.test(`${key} ${answer.status}`));
  const problems = contract
    .problems(key, answer.status, answer.body)
    .filter((problem) => !excused.some((entry) => entry.problem.test(problem)));
  assert.deepEqual(problems, [], JSON.stringify(answer.body));
}

describe('the switch API answers every operation as its contract declares', () => {
  let world: MoneyWorld;
  const ids: Record<string, number> = {};

  before(async () => {
    world = await startMoneyWorld({ sidecars: 1 });
  });
  after(() => world.stop());

  it('has a call for every operation in the contract, and none for an operation it lacks', () => {
    const called = CALLS.map(([key]) => key);
    assert.deepEqual(
      contract.operations.map((operation) => operation.key).filter((key) => !called.includes(key)),
      [],
      'operations without a call here',
    );
    assert.deepEqual(
      called.filter((key) => !contract.operations.some((operation) => operation.key === key)),
      [],
      'calls of operations the contract does not have',
    );
  });

  for (const [key, call] of CALLS) {
    it(key, async () => {
      const answers = [await call({ control: world.control, sidecar: world.sidecars[0] }, ids)].flat();
      const created = CREATED_ID[key];
      if (created !== undefined && answers[0].status < 300) ids[created] = (answers[0].body as { id: number }).id;
      for (const answer of answers) {
        assert.ok(answer.status < 400, `${key} refused a valid request: ${answer.status} ${JSON.stringify(answer.body)}`);
        assertAsDeclared(key, answer);
      }
    });
  }

  for (const [key, status, call] of DECLARED_REFUSALS) {
    it(`${key} refused with ${status}`, async () => {
      const [answer] = [await call({ control: world.control, sidecar: world.sidecars[0] }, ids)].flat();
      assert.equal(answer.status, status, JSON.stringify(answer.body));
      assertAsDeclared(key, answer);
    });
  }
});
