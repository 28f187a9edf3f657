/**
 * The only module that touches uWebSockets.js: moving to upstream uWS (or to
 * node:http) changes this file alone. Handlers see plain requests and return
 * plain responses; this module enforces the rules uWS imposes (request valid
 * only during the callback, onAborted before any await, copy non-final body
 * chunks, cork writes made after an await, never throw into uWS).
 */
import uWS from 'uWebSockets.js';
import type { ErrorCode } from '../errors/catalogue.js';
import { STATUS_TEXT, errorBody, statusOf } from './errors.js';

export type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';

export interface IncomingRequest {
  method: Method;
  path: string;
  /** Values of the route's `{name}` segments (raw, not decoded). */
  params: Record<string, string>;
  /** The peer's address when the server was started with `remoteAddress: true`, else ''. */
  remoteAddress: string;
  query: string;
  contentType: string;
  body: Uint8Array;
  /** The Authorization header, on routes declared with `readsAuthorization` (else absent). */
  authorization?: string;
}

export interface OutgoingResponse {
  status: number;
  body: string | Uint8Array;
  contentType?: string;
  headers?: Record<string, string>;
}

export type Handler = (request: IncomingRequest) => OutgoingResponse | Promise<OutgoingResponse>;

export interface Route {
  method: Method;
  /** Exact path, or a template with `{name}` segments: /api/carrier-trunks/{id}/ips/{ip_id}. */
  path: string;
  handler: Handler;
  /** Larger bodies get 413 without being read. */
  maxBodyBytes: number;
  /** The handler keeps the body past its synchronous part (it awaits): the body is copied out of uWS memory. */
  retainsBody?: boolean;
  /** The handler checks a credential: the Authorization header is read (the hot-path routes skip it). */
  readsAuthorization?: boolean;
}

export interface RequestObserver {
  /** Called once per answered request; `route` is the registered path or 'unmatched'. */
  (route: string, status: number, seconds: number): void;
}

export interface ServerOptions {
  host: string;
  port: number;
  routes: readonly Route[];
  observe?: RequestObserver;
  onHandlerError?: (error: unknown, route: string) => void;
  /** Read each request's peer address (the admin API's IP allowlist); off on the hot sidecar. */
  remoteAddress?: boolean;
}

export interface RunningServer {
  port: number;
  close(): void;
}

const JSON_TYPE = 'application/json';
const NO_PARAMS: Record<string, string> = Object.freeze({});

/** A path template compiled to its segments; `{name}` segments capture. */
interface Template {
  path: string;
  segments: string[];
  methods: Map<string, Route>;
}

function matchTemplate(template: Template, parts: string[]): Record<string, string> | null {
  if (template.segments.length !== parts.length) return null;
  let params: Record<string, string> | null = null;
  for (let i = 0; i < parts.length; i++) {
    const segment = template.segments[i];
    if (segment.startsWith('{')) {
      if (parts[i] === '') return null;
      (params ??= {})[segment.slice(1, -1)] = parts[i];
    } else if (segment !== parts[i]) {
      return null;
    }
  }
  return params ?? NO_PARAMS;
}
const STATUS_LINES = new Map(Object.entries(STATUS_TEXT).map(([code, text]) => [Number(code), `${code} ${text}`]));

/** What one request needs after its uWS callback returned (body chunks, async handlers). */
interface Exchange {
  res: uWS.HttpResponse;
  remoteAddress: string;
  routeLabel: string;
  started: number;
  aborted: boolean;
  authorization?: string;
}

function writeResponse(exchange: Exchange, response: OutgoingResponse, observe: RequestObserver, closeConnection = false): void {
  if (exchange.aborted) return;
  const { res } = exchange;
  res.cork(() => {
    res.writeStatus(STATUS_LINES.get(response.status) ?? `${response.status} Unknown`);
    res.writeHeader('Content-Type', response.contentType ?? JSON_TYPE);
    if (response.headers) for (const name in response.headers) res.writeHeader(name, response.headers[name]);
    res.end(response.body, closeConnection);
  });
  observe(exchange.routeLabel, response.status, (performance.now() - exchange.started) / 1000);
}

function writeError(exchange: Exchange, code: ErrorCode, message: string, observe: RequestObserver, closeConnection = false): void {
  writeResponse(exchange, { status: statusOf(code), body: errorBody(code, message) }, observe, closeConnection);
}

export function startServer(options: ServerOptions): Promise<RunningServer> {
  // Exact paths answer with one map lookup (the OpenSIPS endpoints); templates are tried in order after.
  const byPath = new Map<string, Map<string, Route>>();
  const templates: Template[] = [];
  for (const route of options.routes) {
    if (route.path.includes('{')) {
      let template = templates.find((candidate) => candidate.path === route.path);
      if (template === undefined) {
        template = { path: route.path, segments: route.path.split('/'), methods: new Map() };
        templates.push(template);
      }
      template.methods.set(route.method, route);
      continue;
    }
    const methods = byPath.get(route.path) ?? new Map<string, Route>();
    methods.set(route.method, route);
    byPath.set(route.path, methods);
  }
  // Literal segments win: /rates/bulk before /rates/{rate_id}.
  const paramCount = (template: Template): number => template.segments.filter((segment) => segment.startsWith('{')).length;
  templates.sort((a, b) => paramCount(a) - paramCount(b));
  const resolve = (path: string): { methods: Map<string, Route>; label: string; params: Record<string, string> } | null => {
    const exact = byPath.get(path);
    if (exact !== undefined) return { methods: exact, label: path, params: NO_PARAMS };
    if (templates.length === 0) return null;
    const parts = path.split('/');
    for (const template of templates) {
      const params = matchTemplate(template, parts);
      if (params !== null) return { methods: template.methods, label: template.path, params };
    }
    return null;
  };
  const observe = options.observe ?? ((): void => undefined);
  const app = uWS.App();

  const dispatch = (
    exchange: Exchange,
    route: Route,
    params: Record<string, string>,
    query: string,
    contentType: string,
    body: Uint8Array,
  ): void => {
    const request: IncomingRequest = {
      method: route.method,
      path: route.path,
      params,
      remoteAddress: exchange.remoteAddress,
      authorization: exchange.authorization,
      query,
      contentType,
      body,
    };
    let outcome: OutgoingResponse | Promise<OutgoingResponse>;
    try {
      outcome = route.handler(request);
    } catch (error) {
      options.onHandlerError?.(error, route.path);
      writeError(exchange, 'internal_error', 'internal error', observe);
      return;
    }
    if (outcome instanceof Promise) {
      outcome.then(
        (response) => writeResponse(exchange, response, observe),
        (error: unknown) => {
          options.onHandlerError?.(error, route.path);
          writeError(exchange, 'internal_error', 'internal error', observe);
        },
      );
    } else {
      writeResponse(exchange, outcome, observe);
    }
  };

  app.any('/*', (res, req) => {
    const exchange: Exchange = {
      res,
      remoteAddress: options.remoteAddress === true ? Buffer.from(res.getRemoteAddressAsText()).toString() : '',
      routeLabel: 'unmatched',
      started: performance.now(),
      aborted: false,
    };
    res.onAborted(() => {
      exchange.aborted = true;
    });
    const path = req.getUrl();
    const method = req.getCaseSensitiveMethod(); // methods are case-sensitive (RFC 9110)
    const resolved = resolve(path);
    if (resolved === null) {
      writeError(exchange, 'no_such_endpoint', `no such endpoint: ${truncate(method)} ${truncate(path)}`, observe, true);
      return;
    }
    const { methods, params } = resolved;
    exchange.routeLabel = resolved.label;
    const route = methods.get(method);
    if (route === undefined) {
      const allow = [...methods.keys()].join(', ');
      writeResponse(
        exchange,
        {
          status: 405,
          body: errorBody('method_not_allowed', `method ${truncate(method)} not allowed on ${resolved.label}`),
          headers: { Allow: allow },
        },
        observe,
        true,
      );
      return;
    }
    // Headers can only be read now, before the body arrives.
    if (route.readsAuthorization === true) exchange.authorization = req.getHeader('authorization');
    const contentLength = req.getHeader('content-length');
    const contentType = req.getHeader('content-type');
    const query = route.method === 'GET' || route.method === 'DELETE' ? req.getQuery() : '';
    const declared = contentLength === '' ? 0 : Number(contentLength);
    if (declared > route.maxBodyBytes) {
      // Answer before reading and close: the client may still be sending.
      writeError(exchange, 'body_too_large', `body of ${contentLength} bytes exceeds the limit of ${route.maxBodyBytes}`, observe, true);
      return;
    }
    if (method === 'GET' || (contentLength === '' && req.getHeader('transfer-encoding') === '')) {
      dispatch(exchange, route, params, query, contentType, new Uint8Array(0));
      return;
    }

    // A large body with a known length (a snapshot) is copied once into a buffer of its size: collecting
    // chunks and concatenating them costs a second copy and garbage the event loop pays for in GC pauses.
    const whole = declared > 64 * 1024 ? Buffer.allocUnsafeSlow(declared) : null;
    let chunks: Buffer[] | null = null;
    let received = 0;
    let refused = false;
    res.onData((chunk, isLast) => {
      if (refused) return;
      const offset = received;
      received += chunk.byteLength;
      if (received > route.maxBodyBytes || (whole !== null && received > whole.byteLength)) {
        refused = true;
        writeError(exchange, 'body_too_large', `body exceeds the limit of ${route.maxBodyBytes} bytes`, observe, true);
        return;
      }
      if (whole !== null) {
        whole.set(new Uint8Array(chunk), offset); // copy: uWS reuses the chunk's memory
        if (isLast) dispatch(exchange, route, params, query, contentType, whole.subarray(0, received));
        return;
      }
      if (isLast && chunks === null && route.retainsBody !== true) {
        // Whole body in one chunk (nearly every OpenSIPS request): use it in place; handlers parse synchronously
        // and copy what they keep.
        dispatch(exchange, route, params, query, contentType, new Uint8Array(chunk));
        return;
      }
      (chunks ??= []).push(Buffer.from(new Uint8Array(chunk))); // copy: uWS reuses the chunk's memory
      if (isLast) dispatch(exchange, route, params, query, contentType, Buffer.concat(chunks));
    });
  });

  return new Promise((resolve, reject) => {
    app.listen(options.host, options.port, (socket) => {
      if (!socket) {
        reject(new Error(`cannot listen on ${options.host}:${options.port}`));
        return;
      }
      resolve({
        port: uWS.us_socket_local_port(socket),
        close: () => uWS.us_listen_socket_close(socket),
      });
    });
  });
}

function truncate(text: string): string {
  return text.length > 64 ? `${text.slice(0, 64)}...` : text;
}
