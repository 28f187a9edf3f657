import { parseJsonObject } from '../../src/http/body.js';
import { RequestError, errorBody, refusalResponse } from '../../src/http/errors.js';
import type { IncomingRequest, OutgoingResponse, Route } from '../../src/http/server.js';
import type { NodeSilence } from '../ledger/lease-reclaim.js';
import type { ConfigStore, Row } from '../store/config-store.js';
import { apiRecord, storeValue, storeValues } from './fields.js';
import { CARRIER_TRUNK_IPS, CUSTOMER_TRUNKS, type Resource } from './resources.js';

/**
 * Routes for a declared resource: list (filters, pagination), create, get,
 * update (the fields given replace the stored ones), delete (hard, or soft:
 * status = closed). Every write is validated whole before the store is
 * touched, so a refused request changes nothing.
 */

export type AdminHandler = (request: IncomingRequest) => Promise<OutgoingResponse>;

export interface AdminContext {
  store: ConfigStore;
  maxBodyBytes: number;
  /** Called after every successful write (the sync job marks its data stale). */
  onChange?: (table: string) => void;
  /** How long a node's credit leases stay valid without a money round (node-sync answers say so). */
  leaseValidSeconds?: number;
  /** Told of every answered money round (the lease reclaim's own clock). */
  nodeSilence?: NodeSilence;
}

export function json(status: number, body: unknown): OutgoingResponse {
  return { status, body: JSON.stringify(body) };
}

export const NO_CONTENT: OutgoingResponse = { status: 204, body: '' };

/** Turns a RequestError (or a store constraint violation) into the contract's error body. */
export function guard(handler: AdminHandler): AdminHandler {
  return async (request) => {
    try {
      return await handler(request);
    } catch (error) {
      const refused = refusalResponse(error);
      if (refused !== null) return refused;
      const code = (error as { code?: unknown }).code;
      if (code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
        return { status: 409, body: errorBody(409, `a record with these values already exists (${(error as Error).message.replace(/^UNIQUE constraint failed: /, '')})`) };
      }
      if (code === 'SQLITE_CONSTRAINT_FOREIGNKEY') return { status: 409, body: errorBody(409, 'other records still refer to this one') };
      throw error;
    }
  };
}

export function pathId(request: IncomingRequest, name: string): number {
  const text = request.params[name] ?? '';
  if (!/^[1-9][0-9]{0,15}$/.test(text)) throw new RequestError(400, `${name} must be a positive integer`);
  return Number(text);
}

export function readBody(request: IncomingRequest): Record<string, unknown> {
  return parseJsonObject(request.body, request.contentType);
}

export async function mustExist(store: ConfigStore, table: string, id: number, noun: string): Promise<Row> {
  const row = await store.get(table, id);
  if (row === null) throw new RequestError(404, `${noun} ${id} not found`);
  return row;
}

/** A referenced record named in a body must exist: 422, as it is the body that is wrong. */
async function mustReference(store: ConfigStore, table: string, id: unknown, field: string): Promise<void> {
  if (id === null || id === undefined) return;
  if ((await store.get(table, id as number)) === null) throw new RequestError(422, `${field} ${id as number} does not exist`);
}

const PAGE_PARAMS = ['page', 'page_size', 'limit', 'offset'];

interface Page {
  limit: number | null;
  offset: number;
  page: number;
  pageSize: number | null;
}

/** A whole-number query parameter within bounds; null when absent, 400 when anything else. */
export function queryInteger(params: URLSearchParams, name: string, min: number, max: number): number | null {
  const text = params.get(name);
  if (text === null) return null;
  if (!/^[0-9]{1,9}$/.test(text) || Number(text) < min || Number(text) > max) throw new RequestError(400, `${name} must be an integer from ${min} to ${max}`);
  return Number(text);
}

/** page/page_size as the contract's meta shows, or limit/offset as its query parameters say. */
export function pageOf(params: URLSearchParams): Page {
  const number = (name: string, min: number, max: number): number | null => queryInteger(params, name, min, max);
  const pageSize = number('page_size', 1, 1000);
  const page = number('page', 1, 1_000_000);
  if (pageSize !== null || page !== null) {
    const size = pageSize ?? 20;
    return { limit: size, offset: ((page ?? 1) - 1) * size, page: page ?? 1, pageSize: size };
  }
  const limit = number('limit', 1, 100_000);
  const offset = number('offset', 0, 1_000_000_000) ?? 0;
  return { limit, offset, page: limit === null ? 1 : Math.floor(offset / limit) + 1, pageSize: limit };
}

/** Checks a resource needs beyond single fields. */
async function checkRecord(resource: Resource, store: ConfigStore, record: Row): Promise<void> {
  for (const [name, field] of Object.entries(resource.fields)) {
    if (field.references !== undefined) await mustReference(store, field.references, record[name], name);
  }
  if (resource.table === 'trunk_ip_auth') {
    await mustReference(store, record.trunk_type === 'carrier' ? 'carrier_trunks' : 'customer_trunks', record.trunk_id, 'trunk_id');
  }
  if (resource.table === 'block_rules') {
    if (record.scope !== 'global' && (record.scope_id === null || record.scope_id === undefined)) throw new RequestError(400, `scope_id is required when scope is ${String(record.scope)}`);
    if (record.scope === 'global' && record.scope_id !== null && record.scope_id !== undefined) throw new RequestError(400, 'scope_id must be null when scope is global');
    if (record.scope === 'customer_trunk') await mustReference(store, 'customer_trunks', record.scope_id, 'scope_id');
    if (record.scope === 'carrier_trunk') await mustReference(store, 'carrier_trunks', record.scope_id, 'scope_id');
  }
  if (resource.table === 'exchange_rates' && record.from_currency === record.to_currency) throw new RequestError(400, 'from_currency and to_currency must differ');
  if (resource.table === 'lcr_config' && record.cache_ttl_seconds === 0) record.cache_ttl_seconds = 300; // the contract: 0 means the default
}

const SETTINGS = ['billing_mode', 'credit_limit', 'warning_threshold', 'currency', 'gst_applicable', 'gst_treatment', 'invoice_period_days', 'payment_due_days', 'auto_cutoff_enabled', 'auto_cutoff_behaviour'];

/** A read as the contract shapes it for this resource (see Resource.view). */
async function present(resource: Resource, store: ConfigStore, record: Row, mode: 'list' | 'item'): Promise<unknown> {
  if (resource.view === 'account_with_trunks') {
    const { rows } = await store.list(CUSTOMER_TRUNKS.table, { where: { customer_account_id: record.id as number }, limit: null, offset: 0 });
    return {
      ...record,
      settings: Object.fromEntries(SETTINGS.map((name) => [name, record[name]])),
      trunks: rows.map((row) => apiRecord(CUSTOMER_TRUNKS.fields, row)),
    };
  }
  if (resource.view === 'carrier_with_ips' && mode === 'item') {
    const { rows } = await store.list(CARRIER_TRUNK_IPS.table, { where: { carrier_trunk_id: record.id as number }, limit: null, offset: 0 });
    return { trunk: record, ips: rows.map((row) => apiRecord(CARRIER_TRUNK_IPS.fields, row)) };
  }
  return record;
}

export function resourceRoutes(resource: Resource, context: AdminContext): Route[] {
  const { store } = context;
  const itemPath = `${resource.path}/{${resource.itemParam}}`;
  const routes: Route[] = [];
  const add = (method: Route['method'], path: string, handler: AdminHandler): void => {
    routes.push({ method, path, maxBodyBytes: context.maxBodyBytes, retainsBody: true, handler: guard(handler) });
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
    if (row === null || (resource.parent !== undefined && row[resource.parent.column] !== parent)) throw new RequestError(404, `${resource.noun} ${id} not found`);
    return row;
  };
  const changed = (): void => context.onChange?.(resource.table);

  if (resource.operations.includes('list')) {
    add('GET', resource.path, async (request) => {
      const parent = await parentId(request);
      const params = new URLSearchParams(request.query);
      for (const key of params.keys()) {
        if (!resource.filters.includes(key) && !PAGE_PARAMS.includes(key) && key !== 'active_only') throw new RequestError(400, `unknown query parameter ${key.slice(0, 64)}`);
      }
      const where: Record<string, string | number | null> = {};
      for (const filter of resource.filters) {
        const text = params.get(filter);
        if (text === null) continue;
        const field = resource.fields[filter];
        let value: unknown = text;
        if (field.kind === 'integer' || (typeof field.kind === 'object' && typeof field.kind.enum[0] === 'number')) value = /^-?[0-9]{1,15}$/.test(text) ? Number(text) : text;
        if (field.kind === 'boolean') value = text === 'true' ? true : text === 'false' ? false : text;
        where[filter] = storeValue(filter, field, value) as string | number;
      }
      if (resource.parent !== undefined && parent !== null) where[resource.parent.column] = parent;
      const page = pageOf(params);
      const { rows, total } = await store.list(resource.table, { where, limit: page.limit, offset: page.offset });
      const data = await Promise.all(rows.map((row) => present(resource, store, apiRecord(resource.fields, row), 'list')));
      if (resource.list === 'array') return json(200, data);
      return json(200, { data, meta: { page: page.page, page_size: page.pageSize ?? total, total } });
    });
  }
  if (resource.operations.includes('create')) {
    add('POST', resource.path, async (request) => {
      const parent = await parentId(request);
      const record: Row = storeValues(resource.fields, readBody(request), 'create');
      if (resource.parent !== undefined) record[resource.parent.column] = parent;
      await checkRecord(resource, store, record);
      const now = new Date().toISOString();
      record.created_at = now;
      if (resource.createdOnly !== true) record.updated_at = now;
      const created = await store.insert(resource.table, record);
      changed();
      return json(201, apiRecord(resource.fields, created));
    });
  }
  if (resource.operations.includes('get')) {
    add('GET', itemPath, async (request) => json(200, await present(resource, store, apiRecord(resource.fields, await item(request)), 'item')));
  }
  if (resource.operations.includes('update')) {
    add('PUT', itemPath, async (request) => {
      const current = await item(request);
      const changes: Row = storeValues(resource.fields, readBody(request), 'update');
      await checkRecord(resource, store, { ...current, ...changes });
      changes.updated_at = new Date().toISOString();
      const updated = await store.update(resource.table, current.id as number, changes);
      changed();
      return json(200, apiRecord(resource.fields, updated!));
    });
  }
  if (resource.operations.includes('delete')) {
    add('DELETE', itemPath, async (request) => {
      const current = await item(request);
      if (resource.deletion === 'soft') await store.update(resource.table, current.id as number, { status: 'closed', updated_at: new Date().toISOString() });
      else await store.remove(resource.table, current.id as number);
      changed();
      return NO_CONTENT;
    });
  }
  return routes;
}
