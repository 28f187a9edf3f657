import { RequestError } from '../../src/core/http/errors.js';
import { parseQuery } from '../../src/core/http/query.js';
import { mustFitAssignments, mustFitProducts } from './deck-assignments.js';
import { json, NO_CONTENT } from '../../src/core/http/respond.js';
import type { IncomingRequest, Route } from '../../src/core/http/server.js';
import { adminRoute, mustExist, PAGE_PARAMS, pageOf, pathId, readBody, type AdminHandler } from '../http/handlers.js';
import type { ConfigStore, Row } from '../store/config-store.js';
import { ha1Problem } from '../../src/core/snapshot/field-rules.js';
import { apiRecord, storeValue, storeValues } from './fields.js';
import { RATE_HISTORY_COLUMNS, reviseRate } from './rate-revision.js';
import { CARRIER_TRUNK_IPS, CUSTOMER_TRUNKS, OPENSIPS_NODES, type Resource } from './resources.js';
import { checkNodeTargets } from '../nodes/targets.js';
import { redactDatabaseUrl } from '../store/database-url.js';
import type { NodePolicy } from '../nodes/policy.js';
import { issueNodeSecret } from '../store/node-credentials.js';
import { setPassword } from '../portal/credentials.js';
import { passwordProblem } from '../portal/password.js';

/**
 * Routes for a declared resource: list (filters, pagination), create, get,
 * update (the fields given replace the stored ones), delete (hard, or soft:
 * status = closed). Every write is validated whole before the store is
 * touched, so a refused request changes nothing.
 */

export interface AdminContext {
  store: ConfigStore;
  maxBodyBytes: number;
  /** Where a node's addresses may lead (sync/nodes/). */
  nodePolicy: NodePolicy;
  /** Called after every successful write (the sync job marks its data stale). */
  onChange?: (table: string) => void;
}

/** A referenced record named in a body must exist: 422, as it is the body that is wrong. */
async function mustReference(store: ConfigStore, table: string, id: unknown, field: string): Promise<void> {
  if (id === null || id === undefined) return;
  if ((await store.get(table, id as number)) === null)
    throw new RequestError('unknown_reference', `${field} ${id as number} does not exist`);
}

/** Checks a resource needs beyond single fields. */
/** The fields of an OpenSIPS node that make the control plane write files or send requests. */
const NODE_ADDRESSES = ['sidecar_address', 'mi_socket_address', 'drouting_db'];

/** `changes`: an update's fields, `current` the record it changes (a create checks everything). */
async function checkRecord(resource: Resource, context: AdminContext, record: Row, changes?: Row, current?: Row): Promise<void> {
  const { store } = context;
  for (const [name, field] of Object.entries(resource.fields)) {
    if (field.references !== undefined) await mustReference(store, field.references, record[name], name);
  }
  if (resource.table === 'trunk_ip_auth') {
    await mustReference(store, record.trunk_type === 'carrier' ? 'carrier_trunks' : 'customer_trunks', record.trunk_id, 'trunk_id');
  }
  if (resource.table === 'block_rules') {
    if (record.scope !== 'global' && (record.scope_id === null || record.scope_id === undefined))
      throw new RequestError('invalid_field', `scope_id is required when scope is ${String(record.scope)}`);
    if (record.scope === 'global' && record.scope_id !== null && record.scope_id !== undefined)
      throw new RequestError('invalid_field', 'scope_id must be null when scope is global');
    if (record.scope === 'customer_trunk') await mustReference(store, 'customer_trunks', record.scope_id, 'scope_id');
    if (record.scope === 'carrier_trunk') await mustReference(store, 'carrier_trunks', record.scope_id, 'scope_id');
  }
  if (resource.table === 'trunk_sip_registrations') {
    // The HA1's length is its algorithm's digest's: the sidecar's snapshot validation refuses any other.
    const problem = ha1Problem(String(record.password_hash), String(record.hash_algorithm));
    if (problem !== null) throw new RequestError('invalid_field', `password_hash ${problem}`);
  }
  if (resource.table === 'exchange_rates' && record.from_currency === record.to_currency)
    throw new RequestError('invalid_field', 'from_currency and to_currency must differ');
  // An update that sets none of the addresses (a status change) is not refused for a row stored before these
  // rules: the sync refuses that row's node until its addresses are fixed.
  if (resource.table === 'opensips_nodes' && (changes === undefined || NODE_ADDRESSES.some((name) => Object.hasOwn(changes, name)))) {
    // Paths only under the node files roots, hosts only the node hosts: the admin API is no way to write files or send requests elsewhere.
    const check = await checkNodeTargets(context.nodePolicy, record);
    if (!check.ok) throw new RequestError(check.code, check.message);
  }
  if (resource.table === 'lcr_config' && record.cache_ttl_seconds === 0) record.cache_ttl_seconds = 300; // the contract: 0 means the default
  if (resource.table === 'rate_decks' && record.id !== undefined) {
    await mustFitAssignments(store, record);
    await mustFitProducts(store, record);
  }
  if (resource.table === 'partner_products') {
    await mustFitProduct(store, record);
    await mustOwnAccessNumbers(store, record);
    if (current !== undefined) await mustKeepCurrency(store, current, record);
  }
  if ((resource.table === 'customer_accounts' || resource.table === 'carrier_trunks') && current !== undefined)
    await mustKeepBalanceCurrency(store, resource.table === 'customer_accounts' ? 'customer' : 'carrier', current, record);
}

/**
 * A product's retail accounts hold their balances in its currency (their ledger rows, every top-up, debit and call
 * since): a new currency would relabel those amounts, not convert them, and mix two currencies in one balance.
 * Once the product has an account, its currency stays (a product in another currency is another product).
 */
async function mustKeepCurrency(store: ConfigStore, current: Row, record: Row): Promise<void> {
  if (record.currency === current.currency) return;
  const { total } = await store.list('retail_accounts', { where: { partner_product_id: current.id as number }, limit: 1, offset: 0 });
  if (total > 0)
    throw new RequestError(
      'still_referenced',
      `partner product ${current.id as number} has retail accounts with balances in ${String(current.currency)}: its currency cannot change`,
    );
}

/**
 * A customer account's or carrier trunk's balance is kept in its currency (the ledger takes the currency from its
 * row): a new currency would relabel that balance (100.00 AUD read as 100.00 USD), and settle the calls its nodes
 * rated in the old one against it unconverted. Once it has a balance, its currency stays; before, it may be fixed.
 */
async function mustKeepBalanceCurrency(store: ConfigStore, entityType: 'customer' | 'carrier', current: Row, record: Row): Promise<void> {
  if (record.currency === current.currency) return;
  const { rows } = await store.list('balances', {
    where: { entity_type: entityType, entity_id: current.id as number },
    limit: 1,
    offset: 0,
  });
  if (rows.length > 0)
    throw new RequestError(
      'still_referenced',
      `${entityType === 'customer' ? 'customer account' : 'carrier trunk'} ${current.id as number} has a balance in ${String(rows[0].currency)}: its currency cannot change`,
    );
}

/**
 * An access number takes a caller to one product: a number another product that is not closed already has is
 * refused (409 duplicate), so a node never holds two products for one number (the snapshot and the live
 * channel refuse that whole).
 */
async function mustOwnAccessNumbers(store: ConfigStore, record: Row): Promise<void> {
  if (record.status === 'closed' || typeof record.access_numbers !== 'string' || record.access_numbers === '') return;
  const numbers = new Set(record.access_numbers.split(','));
  const { rows } = await store.list('partner_products', { where: {}, limit: null, offset: 0 });
  for (const other of rows) {
    if (other.id === record.id || other.status === 'closed' || typeof other.access_numbers !== 'string') continue;
    const shared = other.access_numbers.split(',').find((number) => numbers.has(number));
    if (shared !== undefined)
      throw new RequestError(
        'duplicate',
        `access number ${shared} is partner product ${other.id as number}'s (${String(other.product_id)})`,
      );
  }
}

/**
 * A partner product's calls are routed on its customer trunk and rated with its sell deck, and billed to
 * accounts in its currency: a trunk or deck in another currency, or a carrier deck, cannot carry them.
 */
async function mustFitProduct(store: ConfigStore, record: Row): Promise<void> {
  for (const [name, table] of [
    ['customer_trunk_id', 'customer_trunks'],
    ['rate_deck_id', 'rate_decks'],
  ] as const) {
    const id = record[name];
    if (typeof id !== 'number') continue;
    const row = await store.get(table, id);
    if (row !== null && row.currency !== record.currency)
      throw new RequestError(
        'reference_mismatch',
        `${name} ${id} is in ${String(row.currency)}, the product in ${String(record.currency)}`,
      );
    if (row !== null && table === 'rate_decks' && row.deck_type !== 'customer')
      throw new RequestError('reference_mismatch', `rate_deck_id ${id} is a carrier deck; a product sells with a customer deck`);
  }
}

const SETTINGS = [
  'billing_mode',
  'credit_limit',
  'warning_threshold',
  'currency',
  'gst_applicable',
  'gst_treatment',
  'invoice_period_days',
  'payment_due_days',
  'auto_cutoff_enabled',
  'auto_cutoff_behaviour',
];

/** A read as the contract shapes it for this resource (see Resource.view). */
async function present(resource: Resource, store: ConfigStore, record: Row, mode: 'list' | 'item'): Promise<unknown> {
  if (resource.view === 'account_with_trunks') {
    const { rows } = await store.list(CUSTOMER_TRUNKS.table, {
      where: { customer_account_id: record.id as number },
      limit: null,
      offset: 0,
    });
    return {
      ...record,
      settings: Object.fromEntries(SETTINGS.map((name) => [name, record[name]])),
      trunks: rows.map((row) => apiRecord(CUSTOMER_TRUNKS.fields, row)),
    };
  }
  if (resource.view === 'carrier_with_ips' && mode === 'item') {
    const { rows } = await store.list(CARRIER_TRUNK_IPS.table, {
      where: { carrier_trunk_id: record.id as number },
      limit: null,
      offset: 0,
    });
    return { trunk: record, ips: rows.map((row) => apiRecord(CARRIER_TRUNK_IPS.fields, row)) };
  }
  return record;
}

/** The fields a read may ask for by name (`?include=`): the secret ones and the database URLs (see Resource). */
function revealable(resource: Resource): readonly string[] {
  return [...(resource.secret ?? []), ...(resource.databaseUrls ?? [])];
}

/** The secret fields a read asked for by name (`?include=password_hash`); others named are refused. */
function revealed(resource: Resource, params: URLSearchParams): Set<string> {
  const asked = params.getAll('include').flatMap((value) => value.split(','));
  for (const name of asked)
    if (!revealable(resource).includes(name))
      throw new RequestError(
        'invalid_parameter',
        `include takes ${revealable(resource).join(', ') || 'nothing here'}, not ${name.slice(0, 64)}`,
      );
  return new Set(asked);
}

/** A database URL as answered: its password `***` (a file path, or a URL without one, as it is). */
function concealedUrl(value: unknown): unknown {
  if (typeof value !== 'string' || !URL.canParse(value)) return value;
  const url = new URL(value);
  return url.password === '' ? value : redactDatabaseUrl(url);
}

/** The record without the secret fields not asked for, and its database URLs' passwords unless asked for. */
function conceal(resource: Resource, record: Row, reveal: ReadonlySet<string> = new Set()): Row {
  if (resource.secret === undefined && resource.databaseUrls === undefined) return record;
  const shown = { ...record };
  for (const name of resource.secret ?? []) if (!reveal.has(name)) delete shown[name];
  for (const name of resource.databaseUrls ?? []) if (!reveal.has(name) && name in shown) shown[name] = concealedUrl(shown[name]);
  return shown;
}

/** An update's database URLs that are the stored ones as answered (password `***`): not changes, the stored password stays. */
function keepConcealed(resource: Resource, current: Row, changes: Row): void {
  for (const name of resource.databaseUrls ?? [])
    if (name in changes && changes[name] !== current[name] && changes[name] === concealedUrl(current[name])) delete changes[name];
}

/**
 * The portal password a create or update gives (see Resource.portalLogin), checked before the store is touched:
 * required on create; on update, absent or null keeps the current one.
 */
function portalPassword(resource: Resource, body: Record<string, unknown>, mode: 'create' | 'update'): string | null {
  if (resource.portalLogin !== true) return null;
  const value = body.password;
  if (value === undefined || value === null) {
    if (mode === 'create') throw new RequestError('invalid_field', 'password is required');
    return null;
  }
  const problem = passwordProblem(value);
  if (problem !== null) throw new RequestError('invalid_field', `password ${problem}`);
  return value as string;
}

export function resourceRoutes(resource: Resource, context: AdminContext): Route[] {
  const { store } = context;
  const itemPath = `${resource.path}/{${resource.itemParam}}`;
  const routes: Route[] = [];
  const add = (method: Route['method'], path: string, handler: AdminHandler): void => {
    routes.push(adminRoute(method, path, context.maxBodyBytes, handler));
  };
  const parentId = async (request: IncomingRequest): Promise<number | null> => {
    if (resource.parent === undefined) return null;
    const id = pathId(request, 'id');
    await mustExist(store, resource.parent.table, id, resource.parent.noun);
    return id;
  };
  const item = async (request: IncomingRequest): Promise<Row> => {
    const parent = await parentId(request);
    const id = pathId(request, resource.itemParam);
    const row = await store.get(resource.table, id);
    if (row === null || (resource.parent !== undefined && row[resource.parent.column] !== parent))
      throw new RequestError('not_found', `${resource.noun} ${id} not found`);
    if (resource.history === true && row.superseded_by !== null) throw new RequestError('not_found', `${resource.noun} ${id} not found`);
    return row;
  };
  /** A stored row as the API shows it; history columns are the store's business. */
  const shown = (row: Row): Record<string, unknown> => {
    const record = apiRecord(resource.fields, row);
    if (resource.history === true) for (const column of RATE_HISTORY_COLUMNS) delete record[column];
    return record;
  };
  const changed = (): void => context.onChange?.(resource.table);

  if (resource.operations.includes('list')) {
    add('GET', resource.path, async (request) => {
      const parent = await parentId(request);
      const params = parseQuery(request.query, [
        ...resource.filters,
        ...PAGE_PARAMS,
        'active_only',
        ...(revealable(resource).length === 0 ? [] : ['include']),
      ]);
      const reveal = revealed(resource, params);
      const where: Record<string, string | number | null> = {};
      for (const filter of resource.filters) {
        const text = params.get(filter);
        if (text === null) continue;
        const field = resource.fields[filter];
        let value: unknown = text;
        if (field.kind === 'integer' || (typeof field.kind === 'object' && typeof field.kind.enum[0] === 'number'))
          value = /^-?[0-9]{1,15}$/.test(text) ? Number(text) : text;
        if (field.kind === 'boolean') value = text === 'true' ? true : text === 'false' ? false : text;
        where[filter] = storeValue(filter, field, value) as string | number;
      }
      if (resource.parent !== undefined && parent !== null) where[resource.parent.column] = parent;
      if (resource.history === true) where.superseded_by = null;
      const page = pageOf(params);
      const { rows, total } = await store.list(resource.table, { where, limit: page.limit, offset: page.offset });
      const data = await Promise.all(rows.map((row) => present(resource, store, conceal(resource, shown(row), reveal), 'list')));
      if (resource.list === 'array') return json(200, data);
      return json(200, { data, meta: { page: page.page, page_size: page.pageSize ?? total, total } });
    });
  }
  if (resource.operations.includes('create')) {
    add('POST', resource.path, async (request) => {
      const parent = await parentId(request);
      const body = readBody(request);
      const record: Row = storeValues(resource.fields, body, 'create');
      const password = portalPassword(resource, body, 'create');
      if (resource.parent !== undefined) record[resource.parent.column] = parent;
      await checkRecord(resource, context, record);
      const now = new Date().toISOString();
      record.created_at = now;
      if (resource.createdOnly !== true) record.updated_at = now;
      const created = await store.insert(resource.table, record);
      if (password !== null) await setPassword(store, created.id as number, password);
      changed();
      if (resource.table === OPENSIPS_NODES.table) {
        // The node's credential for its money rounds, answered this once (contract note 39).
        const { secret } = await issueNodeSecret(store, created.id as number, false);
        return json(201, { ...conceal(resource, shown(created)), node_secret: secret });
      }
      return json(201, conceal(resource, shown(created)));
    });
  }
  if (resource.operations.includes('get')) {
    add('GET', itemPath, async (request) => {
      const reveal = revealable(resource).length === 0 ? new Set<string>() : revealed(resource, parseQuery(request.query, ['include']));
      return json(200, await present(resource, store, conceal(resource, shown(await item(request)), reveal), 'item'));
    });
  }
  if (resource.operations.includes('update')) {
    add('PUT', itemPath, async (request) => {
      const current = await item(request);
      const body = readBody(request);
      const changes: Row = storeValues(resource.fields, body, 'update', resource.portalLogin === true ? ['password'] : []);
      const password = portalPassword(resource, body, 'update');
      keepConcealed(resource, current, changes);
      await checkRecord(resource, context, { ...current, ...changes }, changes, current);
      changes.updated_at = new Date().toISOString();
      const updated =
        resource.history === true
          ? await reviseRate(store, current, changes)
          : await store.update(resource.table, current.id as number, changes);
      if (password !== null) await setPassword(store, current.id as number, password);
      changed();
      return json(200, conceal(resource, shown(updated!)));
    });
  }
  if (resource.operations.includes('delete')) {
    add('DELETE', itemPath, async (request) => {
      const current = await item(request);
      if (resource.deletion === 'soft')
        await store.update(resource.table, current.id as number, { status: 'closed', updated_at: new Date().toISOString() });
      else if (resource.history === true) await store.removeRate(current.id as number);
      else await store.remove(resource.table, current.id as number);
      changed();
      return NO_CONTENT;
    });
  }
  return routes;
}
