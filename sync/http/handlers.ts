import { parseJsonObject } from '../../src/core/http/body.js';
import { RequestError } from '../../src/core/http/errors.js';
import { guard } from '../../src/core/http/guard.js';
import type { IncomingRequest, OutgoingResponse, Route } from '../../src/core/http/server.js';
import { queryInteger } from '../../src/core/http/query.js';
import type { ConfigStore, Row } from '../store/config-store.js';

/**
 * What every control-plane endpoint shares: the handler shape, refusals (and the store's constraint
 * violations) as error responses, and reading path ids, bodies and pages.
 */
export type AdminHandler = (request: IncomingRequest) => Promise<OutgoingResponse>;

/** A route whose refusals become error responses; `maxBodyBytes` as the endpoint takes. Bodies are read after an await, so they are kept. */
export function adminRoute(method: Route['method'], path: string, maxBodyBytes: number, handler: AdminHandler): Route {
  return { method, path, maxBodyBytes, retainsBody: true, handler: guard(handler, constraintRefusal) };
}

/** The store's constraint violations are refusals of the request (409), not defects, on either engine. */
export function constraintRefusal(error: unknown): unknown {
  const code = (error as { code?: unknown }).code;
  if (code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
    return new RequestError(
      'duplicate',
      `a record with these values already exists (${(error as Error).message.replace(/^UNIQUE constraint failed: /, '')})`,
    );
  }
  // PostgreSQL's SQLSTATEs: unique_violation, foreign_key_violation. Its detail names the key ("Key (a)=(b) already exists.").
  if (code === '23505') {
    const detail = (error as { detail?: unknown }).detail;
    return new RequestError(
      'duplicate',
      `a record with these values already exists (${typeof detail === 'string' ? detail : 'unique key'})`,
    );
  }
  if (code === 'SQLITE_CONSTRAINT_FOREIGNKEY' || code === '23503') return new RequestError('still_referenced');
  return error;
}

export function pathId(request: IncomingRequest, name: string): number {
  const text = request.params[name] ?? '';
  if (!/^[1-9][0-9]{0,15}$/.test(text)) throw new RequestError('invalid_parameter', `${name} must be a positive integer`);
  return Number(text);
}

export function readBody(request: IncomingRequest): Record<string, unknown> {
  return parseJsonObject(request.body, request.contentType);
}

export async function mustExist(store: ConfigStore, table: string, id: number, noun: string): Promise<Row> {
  const row = await store.get(table, id);
  if (row === null) throw new RequestError('not_found', `${noun} ${id} not found`);
  return row;
}

export const PAGE_PARAMS = ['page', 'page_size', 'limit', 'offset'];

export interface Page {
  limit: number | null;
  offset: number;
  page: number;
  pageSize: number | null;
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
