import { parseJsonObject } from '../../src/core/http/body.js';
import { RequestError } from '../../src/core/http/errors.js';
import type { IncomingRequest } from '../../src/core/http/server.js';
import { cidrsOverlap, parseCidr } from '../../src/core/net/ip.js';
import type { ConfigStore, Row } from '../store/config-store.js';

/**
 * What a customer's portal session may call, endpoint by endpoint (docs/operations.md, "Portal access", is
 * this table in the operator's words). A portal request reaches the same handler an operator's does, after
 * its rule has checked that every record it names is the account's own, that the account's `can_*` flag
 * allows it, and narrowed what it may read: a list is cut to the account's records, a CDR loses what the
 * operator paid the carrier. An endpoint without a rule is refused (permission_denied).
 *
 * Another account's record is answered 404, as if it did not exist: a customer learns nothing of the ids
 * others use. A flag that is false, or a field only the operator sets, is answered 403.
 */
export type PortalFlag =
  | 'can_view_trunks'
  | 'can_create_trunks'
  | 'can_modify_trunks'
  | 'can_delete_trunks'
  | 'can_view_trunk_ips'
  | 'can_create_trunk_ips'
  | 'can_modify_trunk_ips'
  | 'can_delete_trunk_ips'
  | 'can_view_sip_registrations'
  | 'can_create_sip_registrations'
  | 'can_modify_sip_registrations'
  | 'can_delete_sip_registrations';

export const PORTAL_FLAGS: readonly PortalFlag[] = [
  'can_view_trunks',
  'can_create_trunks',
  'can_modify_trunks',
  'can_delete_trunks',
  'can_view_trunk_ips',
  'can_create_trunk_ips',
  'can_modify_trunk_ips',
  'can_delete_trunk_ips',
  'can_view_sip_registrations',
  'can_create_sip_registrations',
  'can_modify_sip_registrations',
  'can_delete_sip_registrations',
];

/** The customer a portal request is made for. */
export interface PortalCustomer {
  account: Row;
  /** Ids of the account's customer trunks, whatever their status. */
  trunkIds: ReadonlySet<number>;
}

/** What a rule lets through: the request (its query perhaps narrowed) and a narrowing of the JSON answer. */
export interface PortalPass {
  request: IncomingRequest;
  narrow?: (body: unknown) => unknown;
}

interface PortalRule {
  flag: PortalFlag | null;
  check: (request: IncomingRequest, customer: PortalCustomer, store: ConfigStore) => Promise<PortalPass>;
  /**
   * The check and the handler's write run as one (ConfigStore.exclusively of this name): the check reads
   * other accounts' rows that a write made meanwhile would change (a network claimed by two sessions at once).
   */
  exclusive?: string;
}

/** Customer trunk fields a customer may set; the rest (limits, billing, status, trust) are the operator's. */
const CUSTOMER_TRUNK_FIELDS = new Set(['customer_account_id', 'name', 'currency', 'tech_prefix', 'rtpengine_enabled']);
/** SIP registration fields a customer may set: their credentials, not whether the operator left them active. */
const SIP_REGISTRATION_FIELDS = new Set(['customer_trunk_id', 'username', 'domain', 'password_hash', 'hash_algorithm']);
/** What a CDR tells the operator about the carrier side: not the customer's to read. */
const CARRIER_SIDE = [
  'carrier_trunk_id',
  'carrier_gateway_id',
  'carrier_rate_deck_id',
  'vendor_cost',
  'vendor_currency',
  'vendor_decimal_precision',
  'vendor_rounding_direction',
  'billable_duration_vendor',
];

const notFound = (noun: string, id: unknown): never => {
  throw new RequestError('not_found', `${noun} ${String(id)} not found`);
};

function idParam(request: IncomingRequest, name: string): number {
  const text = request.params[name] ?? '';
  if (!/^[1-9][0-9]{0,15}$/.test(text)) throw new RequestError('invalid_parameter', `${name} must be a positive integer`);
  return Number(text);
}

function body(request: IncomingRequest): Record<string, unknown> {
  return parseJsonObject(request.body, request.contentType);
}

function onlyFields(values: Record<string, unknown>, allowed: ReadonlySet<string>, noun: string): void {
  const operators = Object.keys(values).filter((name) => !allowed.has(name));
  if (operators.length > 0)
    throw new RequestError('permission_denied', `only the operator sets ${operators.join(', ')} on a ${noun}`.slice(0, 300));
}

function ownTrunk(customer: PortalCustomer, id: unknown, noun = 'customer trunk'): void {
  if (typeof id !== 'number' || !customer.trunkIds.has(id)) notFound(noun, id);
}

/** The query with `name` set to `value` whatever the caller gave. */
function withQuery(request: IncomingRequest, name: string, value: string): IncomingRequest {
  const params = new URLSearchParams(request.query);
  params.set(name, value);
  return { ...request, query: params.toString() };
}

const pass = (request: IncomingRequest, narrow?: (body: unknown) => unknown): Promise<PortalPass> => Promise.resolve({ request, narrow });

/** A list answer (a bare array) cut to the rows `keep` says are the customer's. */
const keepRows =
  (keep: (row: Row) => boolean) =>
  (answer: unknown): unknown =>
    Array.isArray(answer) ? answer.filter((row) => keep(row as Row)) : answer;

async function record(store: ConfigStore, table: string, request: IncomingRequest, param: string, noun: string): Promise<Row> {
  const id = idParam(request, param);
  return (await store.get(table, id)) ?? notFound(noun, id);
}

/**
 * call/auth takes the most specific network holding a caller's address, then the longest tech prefix: a
 * customer that gave its trunk another account's address, or a network inside or around it, would have that
 * account's calls taken as its own trunk's. So a network a portal request sets may share no address with
 * one of another customer account's trunks (409 network_of_another_account). Only a network the request
 * changes is checked: one the operator stored (carriers do share addresses, told apart by tech prefix)
 * stays the operator's decision. The refusal names neither the other account nor its network.
 */
/**
 * Held from a portal's network check until its write is stored: two sessions claiming overlapping networks at
 * once would each read the other's as not there yet, and both be stored.
 */
const CUSTOMER_NETWORKS_LOCK = 'portal customer networks';

async function mustNotReachOtherAccounts(values: Row, current: Row | null, customer: PortalCustomer, store: ConfigStore): Promise<void> {
  const network = typeof values.cidr === 'string' ? parseCidr(values.cidr) : null;
  // Not a network: the handler refuses it (invalid_field). The same network again: nothing changes.
  if (network === null || network.canonical === current?.cidr) return;
  const { rows } = await store.list('trunk_ip_auth', { where: { trunk_type: 'customer' }, limit: null, offset: 0 });
  for (const row of rows) {
    if (customer.trunkIds.has(row.trunk_id as number)) continue;
    const other = parseCidr(String(row.cidr));
    if (other !== null && cidrsOverlap(network, other))
      throw new RequestError(
        'network_of_another_account',
        `${network.canonical} shares addresses with a network another customer account calls from; ask the operator`,
      );
  }
}

/** Trunk IP auth and SIP registrations: records of the customer's trunks, each governed by its own four flags. */
function trunkRecordRules(
  path: string,
  table: string,
  noun: string,
  flags: { view: PortalFlag; create: PortalFlag; modify: PortalFlag; delete: PortalFlag },
  owned: (row: Row, customer: PortalCustomer) => boolean,
  writable: ReadonlySet<string> | null,
  /**
   * A check of what a create or update sets beyond its fields and owner (trunk IP auth: its network), made with
   * the write under the lock it names.
   */
  claim: {
    check: (values: Row, current: Row | null, customer: PortalCustomer, store: ConfigStore) => Promise<void>;
    lock: string;
  } | null = null,
): [string, PortalRule][] {
  const mine = async (request: IncomingRequest, customer: PortalCustomer, store: ConfigStore): Promise<void> => {
    const row = await record(store, table, request, 'id', noun);
    if (!owned(row, customer)) notFound(noun, row.id);
  };
  const checkBody = async (request: IncomingRequest, customer: PortalCustomer, store: ConfigStore, current: Row | null): Promise<void> => {
    const values = body(request);
    if (writable !== null) onlyFields(values, writable, noun);
    if (!owned({ ...current, ...values }, customer))
      throw new RequestError('permission_denied', `a ${noun} only for a trunk of your own account`);
    await claim?.check(values, current, customer, store);
  };
  return [
    [
      `GET ${path}`,
      {
        flag: flags.view,
        check: (request, customer) =>
          pass(
            request,
            keepRows((row) => owned(row, customer)),
          ),
      },
    ],
    [
      `GET ${path}/{id}`,
      {
        flag: flags.view,
        check: async (request, customer, store) => {
          await mine(request, customer, store);
          return { request };
        },
      },
    ],
    [
      `POST ${path}`,
      {
        flag: flags.create,
        exclusive: claim?.lock,
        check: async (request, customer, store) => {
          await checkBody(request, customer, store, null);
          return { request };
        },
      },
    ],
    [
      `PUT ${path}/{id}`,
      {
        flag: flags.modify,
        exclusive: claim?.lock,
        check: async (request, customer, store) => {
          await mine(request, customer, store);
          await checkBody(request, customer, store, await store.get(table, idParam(request, 'id')));
          return { request };
        },
      },
    ],
    [
      `DELETE ${path}/{id}`,
      {
        flag: flags.delete,
        check: async (request, customer, store) => {
          await mine(request, customer, store);
          return { request };
        },
      },
    ],
  ];
}

export const PORTAL_RULES: ReadonlyMap<string, PortalRule> = new Map<string, PortalRule>([
  [
    'GET /api/customer-accounts/{id}',
    {
      flag: null,
      check: (request, customer) => {
        if (idParam(request, 'id') !== customer.account.id) notFound('customer account', request.params.id);
        // The account read carries its trunks: only for an account that may view them.
        return pass(request, (answer) => (customer.account.can_view_trunks === 1 ? answer : { ...(answer as Row), trunks: [] }));
      },
    },
  ],
  [
    'GET /api/customer-trunks',
    { flag: 'can_view_trunks', check: (request, customer) => pass(withQuery(request, 'customer_account_id', String(customer.account.id))) },
  ],
  [
    'POST /api/customer-trunks',
    {
      flag: 'can_create_trunks',
      check: (request, customer) => {
        const values = body(request);
        onlyFields(values, CUSTOMER_TRUNK_FIELDS, 'customer trunk');
        if (values.customer_account_id !== customer.account.id)
          throw new RequestError('permission_denied', 'a trunk only under your own account');
        return pass(request);
      },
    },
  ],
  ...(['GET', 'PUT', 'DELETE'] as const).map((method): [string, PortalRule] => [
    `${method} /api/customer-trunks/{id}`,
    {
      flag: method === 'GET' ? 'can_view_trunks' : method === 'PUT' ? 'can_modify_trunks' : 'can_delete_trunks',
      check: (request, customer) => {
        ownTrunk(customer, idParam(request, 'id'));
        if (method === 'PUT') {
          const values = body(request);
          onlyFields(values, CUSTOMER_TRUNK_FIELDS, 'customer trunk');
          if (values.customer_account_id !== undefined && values.customer_account_id !== customer.account.id)
            throw new RequestError('permission_denied', 'a trunk stays under your own account');
        }
        return pass(request);
      },
    },
  ]),
  [
    'GET /api/customer-trunks/{id}/rate-deck',
    {
      flag: 'can_view_trunks',
      check: (request, customer) => {
        ownTrunk(customer, idParam(request, 'id'));
        return pass(request);
      },
    },
  ],
  ...['GET /api/rate-decks/{id}', 'GET /api/rate-decks/{id}/rates'].map((key): [string, PortalRule] => [
    key,
    {
      // The deck a trunk of the account is rated with now: its prices are the customer's to read.
      flag: null,
      check: async (request, customer, store) => {
        const deckId = idParam(request, 'id');
        const { rows } = await store.list('customer_trunk_rate_decks', {
          where: { rate_deck_id: deckId, is_active: 1 },
          limit: null,
          offset: 0,
        });
        if (!rows.some((row) => customer.trunkIds.has(row.customer_trunk_id as number))) notFound('rate deck', deckId);
        return { request };
      },
    },
  ]),
  ...trunkRecordRules(
    '/api/trunk-ip-auth',
    'trunk_ip_auth',
    'trunk IP auth record',
    { view: 'can_view_trunk_ips', create: 'can_create_trunk_ips', modify: 'can_modify_trunk_ips', delete: 'can_delete_trunk_ips' },
    (row, customer) => row.trunk_type === 'customer' && customer.trunkIds.has(row.trunk_id as number),
    null,
    { check: mustNotReachOtherAccounts, lock: CUSTOMER_NETWORKS_LOCK },
  ),
  ...trunkRecordRules(
    '/api/sip-registrations',
    'trunk_sip_registrations',
    'SIP registration',
    {
      view: 'can_view_sip_registrations',
      create: 'can_create_sip_registrations',
      modify: 'can_modify_sip_registrations',
      delete: 'can_delete_sip_registrations',
    },
    (row, customer) => customer.trunkIds.has(row.customer_trunk_id as number),
    SIP_REGISTRATION_FIELDS,
  ),
  [
    'GET /api/cdrs/search',
    {
      flag: null,
      check: (request, customer) =>
        pass(withQuery(request, 'customer_account_id', String(customer.account.id)), (answer) =>
          Array.isArray(answer)
            ? answer.map((row: Row) => Object.fromEntries(Object.entries(row).filter(([name]) => !CARRIER_SIDE.includes(name))))
            : answer,
        ),
    },
  ],
  ...['GET /api/balances/{entity_type}/{entity_id}/balance', 'GET /api/balances/{entity_type}/{entity_id}/transactions'].map(
    (key): [string, PortalRule] => [
      key,
      {
        flag: null,
        check: (request, customer) => {
          if (request.params.entity_type !== 'customer' || request.params.entity_id !== String(customer.account.id))
            notFound('balance of', `${request.params.entity_type} ${request.params.entity_id}`);
          return pass(request);
        },
      },
    ],
  ),
]);
