/**
 * Well-formed bodies for the fuzz suite to mutate, in the fixture world's terms (test/fixtures/routing.ts):
 * a mutation of a body that would be accepted reaches the validation behind the JSON envelope. The admin
 * resources' bodies come from their declarations (sync/admin/resources.ts); the other endpoints' are
 * written here. An endpoint with none is still fuzzed, with envelope, size and path defects only.
 *
 * Every field in a sample is one its handler reads unconditionally, so a wrong-typed value in it is a
 * defect the handler must refuse (fuzz-requests.ts relies on that for the routes that write).
 */
import { join } from 'node:path';
import type { Field, Fields } from '../../sync/admin/fields.js';
import { RESOURCES } from '../../sync/admin/resources.js';
import { routingSnapshotBytes } from '../fixtures/routing.js';
import type { FuzzRoute, FuzzWorld, RouteSample } from './fuzz-requests.js';

const DNIS = '61412345678';
const ANI = '61299998888';
const CALL_ID = 'fuzz-call@198.51.100.7';
const SOURCE_IP = '203.0.113.5';

function sampleValue(field: Field): unknown {
  const kind = field.kind;
  if (typeof kind === 'object') return kind.enum[0];
  switch (kind) {
    case 'integer':
      return field.references === 'carrier_trunks' ? 20 : field.references === 'customer_trunks' ? 10 : Math.max(1, field.min ?? 1);
    case 'boolean':
      return true;
    case 'decimal':
      return '1.25';
    case 'money':
      return '100.00';
    case 'currency':
      return 'AUD';
    case 'cidr':
      return '192.0.2.0/24';
    case 'ip':
      return '192.0.2.1';
    case 'digits':
      return '614';
    case 'datetime':
      return '2026-01-01T00:00:00Z';
    case 'hex':
      return 'a'.repeat(32);
    case 'hash_algorithm':
      return 'MD5';
    case 'string':
      return 'fuzz';
  }
}

function recordOf(fields: Fields): Record<string, unknown> {
  return Object.fromEntries(Object.entries(fields).map(([name, field]) => [name, sampleValue(field)]));
}

/** Bodies of the endpoints that are not plain admin records, by 'METHOD path'. */
const BODIES: Partial<Record<string, Record<string, unknown>>> = {
  // sidecar: the OpenSIPS calls
  'POST /api/opensips/call/decide': { source_ip: SOURCE_IP, call_id: CALL_ID, dnis: DNIS, ani: ANI },
  'POST /api/opensips/call/reroute': {
    customer_trunk_id: 10,
    dnis: DNIS,
    ani: ANI,
    attempt: 2,
    previous_carrier_trunk_id: 20,
    tried_carrier_trunk_ids: [20],
    failure_code: 503,
  },
  'POST /api/opensips/call/auth': { source_ip: SOURCE_IP, dnis: DNIS, ani: ANI, call_id: CALL_ID, from: 'sip:a@b', to: 'sip:c@d' },
  'POST /api/opensips/register/auth': {
    method: 'REGISTER',
    username: 'acme_trunk_01',
    realm: 'sip.crazytel.com.au',
    auth_response: 'Digest username="acme_trunk_01", realm="sip.crazytel.com.au", nonce="1", uri="sip:x", response="00"',
    source_ip: SOURCE_IP,
    uri: 'sip:sip.crazytel.com.au',
  },
  'POST /api/opensips/call/route': { customer_trunk_id: 10, dnis: DNIS, ani: ANI, attempt: 1, tried_gateway_ids: [201] },
  'POST /api/opensips/call/failover': { customer_trunk_id: 10, carrier_trunk_id: 20, failure_code: 503 },
  'POST /api/opensips/call/admit': { customer_trunk_id: 10, dnis: DNIS, call_id: CALL_ID, estimated_cost: '0.10', dialog_id: '1.2' },
  'POST /api/opensips/call/release': { call_id: CALL_ID },
  'POST /api/call-admit/check': { entity_type: 'customer', entity_id: 1, estimated_cost: '0.10', call_id: CALL_ID },
  'POST /api/cdrs/ingest': {
    sip_call_id: CALL_ID,
    customer_trunk_id: 10,
    carrier_trunk_id: 20,
    carrier_gateway_id: 201,
    ani: ANI,
    dnis: DNIS,
    start_time: '2026-01-01T00:00:00Z',
    answer_time: '2026-01-01T00:00:05Z',
    end_time: '2026-01-01T00:01:05Z',
    duration_seconds: 60,
    sip_response_code: 200,
  },
  'POST /api/lcr/lookup': { customer_trunk_id: 10, dnis: DNIS, ani: ANI },
  'POST /api/rate-lookup': { rate_deck_id: 1, destination: DNIS },
  'POST /api/admin/route-simulator': { customer_account_id: 1, customer_trunk_id: 10, ani: ANI, dnis: DNIS, duration_seconds: 60 },
  'POST /api/metrics/per-minute/check': { trunk_id: 10, limit: 100 },
  // control plane: the endpoints that are not plain records
  'POST /api/auth/ips': { ip_address: '192.0.2.9', description: 'fuzz', is_active: true },
  'PUT /api/customer-trunks/{id}/rate-deck': { rate_deck_id: 1 },
  'PUT /api/carrier-trunks/{id}/rate-deck': { rate_deck_id: 101 },
  'POST /api/rate-decks/{id}/allowlist': { carrier_trunk_id: 20 },
  'POST /api/block-rules/{id}/toggle': { is_active: true },
  'POST /api/ledger/node-sync': { node: 'node-1', seq: 1, settlements: [], leases: [] },
  'GET /api/exchange-rates/current': { from_currency: 'USD', to_currency: 'AUD' },
  'GET /api/cdrs/search': { customer_trunk_id: 10, sip_call_id: CALL_ID, start_time_from: '2026-01-01T00:00:00Z' },
};
for (const kind of ['credit', 'debit', 'adjust']) {
  BODIES[`POST /api/balances/{entity_type}/{entity_id}/balance/${kind}`] = { amount: '1.00', description: 'fuzz', cdr_id: 1 };
}
for (const resource of RESOURCES) {
  const record = recordOf(resource.fields);
  BODIES[`POST ${resource.path}`] = record;
  BODIES[`PUT ${resource.path}/{${resource.itemParam}}`] = record;
  BODIES[`GET ${resource.path}`] = Object.fromEntries(resource.filters.map((name) => [name, record[name]]));
}
BODIES['POST /api/rate-decks/{id}/rates/bulk'] = { on_conflict: 'skip', rates: [BODIES['POST /api/rate-decks/{id}/rates']] };

/** Endpoints whose handler never reads the body (an action: run a sync). */
const IGNORE_BODY = new Set(['POST /api/opensips/routing/sync', 'POST /api/block-rules/rebuild-cache']);

/** Ids of the fixture world: accounts 1-2, customer trunks 10-14, carrier trunks 20-24, decks 1 and 101-104, rules 1-5. */
const EXISTING: Record<string, readonly string[]> = {
  id: ['1', '2', '10', '11', '20', '21', '101'],
  entity_type: ['customer', 'carrier'],
  entity_id: ['1', '2', '10', '20', '21'],
  ip_id: ['1'],
  rule_id: ['1'],
  rate_id: ['1', '2'],
  carrier_trunk_id: ['20', '21'],
};

/** A node's fields the control plane acts on: a directory it writes snapshots to, a database file, an MI address. */
const NODE_ADDRESSES = ['sidecar_address', 'drouting_db', 'mi_socket_address'];

/** `nodeFiles`: a scratch directory for what accepted OpenSIPS nodes make the control plane write. */
export function fixtureWorld(nodeFiles: string): FuzzWorld {
  const snapshot = { bytes: routingSnapshotBytes(2), contentType: 'application/msgpack' };
  const nodeAddresses = {
    sidecar_address: join(nodeFiles, 'snapshots'),
    drouting_db: join(nodeFiles, 'drouting.db'),
    // Refused at once. Not a UDP address nobody answers: a routing sync waits for each node's drouting
    // reload up to the MI timeout (30 s), which the 2 s hang detector would report as a hang.
    mi_socket_address: 'http://127.0.0.1:9/mi',
  };
  return {
    sample(route: FuzzRoute): RouteSample {
      const key = `${route.method} ${route.path}`;
      if (IGNORE_BODY.has(key)) return { ignoresBody: true };
      if (key === 'PUT /api/snapshot') return { raw: snapshot };
      if (route.path.startsWith('/api/opensips-nodes') && BODIES[key] !== undefined)
        return { body: { ...BODIES[key], ...nodeAddresses }, pinned: NODE_ADDRESSES };
      return { body: BODIES[key] };
    },
    existing: (param) => EXISTING[param] ?? [],
  };
}
