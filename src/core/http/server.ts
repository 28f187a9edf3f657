/**
 * The only module that touches uWebSockets.js: moving to upstream uWS (or to
 * node:http) changes this file alone. Handlers see plain requests and return
 * plain responses; this module enforces the rules uWS imposes (request valid
 * only during the callback, onAborted before any await, copy non-final body
 * chunks, cork writes made after an await, never throw into uWS).
 */
import uWS from 'uWebSockets.js';
import type { ErrorCode } from '../errors/catalogue.js';
import { BodyBudget, DEFAULT_BODY_BUDGET_BYTES, GrowingBody, type AppendOutcome } from './body-budget.js';
import { declaredLength, plainLength, type DeclaredLength } from './content-length.js';
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
  /** The headers a route names in `readsHeaders`, by their lower-case names ('' when not sent). */
  headers?: Record<string, string>;
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
  /**
   * A PUT or POST handler that reads the query string (`PUT /api/snapshot?force=1`). GET and DELETE always
   * get it; the hot POSTs do not, so they skip copying it out of uWS.
   */
  readsQuery?: boolean;
  /**
   * Who may call, decided from the connection at header time, before any body byte is buffered: null admits,
   * a response refuses (and the connection is closed). The control plane's auth_ips check, or its portal
   * session check when the route `readsAuthorization` (the header is read before the admission runs); the
   * headers in `readsHeaders` are given to it too (the admin API's Host check).
   */
  admit?: Admission;
  /** The handler checks a credential: the Authorization header is read (the hot-path routes skip it). */
  readsAuthorization?: boolean;
  /**
   * Further headers the handler reads (lower-case names: the partner API's Idempotency-Key, X-Correlation-Id).
   * uWS offers headers only during its callback, so they are copied out then; other routes copy nothing.
   */
  readsHeaders?: readonly string[];
}

export type Admission = (
  remoteAddress: string,
  path: string,
  authorization?: string,
  headers?: Record<string, string>,
) => OutgoingResponse | null | Promise<OutgoingResponse | null>;

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
  /** Bytes all bodies being read may hold together; past it 503 server_busy (default 256 MiB). */
  bodyBudgetBytes?: number;
}

export interface RunningServer {
  port: number;
  /** Bytes of request bodies held right now. */
  readonly bodyBytesHeld: number;
  close(): void;
}

/** Seconds a client refused for memory (server_busy) is asked to wait. */
const BUSY_RETRY_SECONDS = '1';

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
  headers?: Record<string, string>;
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
    /** Called once the response is written (or the handler failed): the body's memory is given back. */
    done?: () => void,
  ): void => {
    const request: IncomingRequest = {
      method: route.method,
      path: route.path,
      params,
      remoteAddress: exchange.remoteAddress,
      authorization: exchange.authorization,
      headers: exchange.headers,
      query,
      contentType,
      body,
    };
    let outcome: OutgoingResponse | Promise<OutgoingResponse>;
    try {
      outcome = route.handler(request);
    } catch (error) {
      done?.();
      options.onHandlerError?.(error, route.path);
      writeError(exchange, 'internal_error', 'internal error', observe);
      return;
    }
    if (outcome instanceof Promise) {
      outcome.then(
        (response) => {
          done?.();
          writeResponse(exchange, response, observe);
        },
        (error: unknown) => {
          done?.();
          options.onHandlerError?.(error, route.path);
          writeError(exchange, 'internal_error', 'internal error', observe);
        },
      );
    } else {
      done?.();
      writeResponse(exchange, outcome, observe);
    }
  };

  const budget = new BodyBudget(options.bodyBudgetBytes ?? DEFAULT_BODY_BUDGET_BYTES);

  app.any('/*', (res, req) => {
    const exchange: Exchange = {
      res,
      remoteAddress: options.remoteAddress === true ? Buffer.from(res.getRemoteAddressAsText()).toString() : '',
      routeLabel: 'unmatched',
      started: performance.now(),
      aborted: false,
    };
    let body: GrowingBody | null = null;
    let handedOver = false;
    res.onAborted(() => {
      exchange.aborted = true;
      // A client that went away mid-upload holds nothing; a body its handler still works on is given back when
      // the handler is done.
      if (!handedOver) body?.release();
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
    if (route.readsHeaders !== undefined) exchange.headers = readHeaders(req, route.readsHeaders);
    const contentLength = req.getHeader('content-length');
    const contentType = req.getHeader('content-type');
    const query = route.method === 'GET' || route.method === 'DELETE' || route.readsQuery === true ? req.getQuery() : '';
    const chunked = req.getHeader('transfer-encoding') !== '';
    // Every Content-Length, not just the first: uWS frames the body by one of them, and a request whose
    // copies disagree must be refused rather than read by a length the client may not have meant. Nearly every
    // request has one plain number: that is read without the general parser's allocations (it is on every
    // OpenSIPS request); anything else goes through declaredLength for its verdict and message.
    let declared: DeclaredLength = NO_LENGTH;
    if (contentLength !== '') {
      let repeatsDiffer = false as boolean; // set inside the forEach callback, which narrowing does not follow
      req.forEach((name, value) => {
        if (name === 'content-length' && value !== contentLength) repeatsDiffer = true;
      });
      const plain = repeatsDiffer ? -1 : plainLength(contentLength);
      declared = plain >= 0 ? { ok: true, bytes: plain } : declaredLength(contentLengths(req));
    }
    if (!declared.ok) {
      writeError(exchange, 'invalid_content_length', declared.reason, observe, true);
      return;
    }
    if (declared.bytes !== null && declared.bytes > route.maxBodyBytes) {
      // Answer before reading and close: the client may still be sending.
      writeError(exchange, 'body_too_large', `body of ${contentLength} bytes exceeds the limit of ${route.maxBodyBytes}`, observe, true);
      return;
    }
    const expectsBody = method !== 'GET' && (chunked || (declared.bytes ?? 0) > 0);
    const admission = route.admit === undefined ? null : guardAdmission(route.admit, exchange, path);
    if (admission !== null && !(admission instanceof Promise)) {
      writeResponse(exchange, admission, observe, true);
      return;
    }
    if (!expectsBody && admission === null) {
      dispatch(exchange, route, params, query, contentType, new Uint8Array(0));
      return;
    }

    let admitted = admission === null;
    let complete = !expectsBody;
    let refused = false;
    // uWS's resume() arms its 10 s idle timeout (HTTP_TIMEOUT_S), which only the body's last chunk clears: a
    // socket resumed after the whole request arrived would be closed, with no reply, under a handler slower
    // than that (a sync of the wholesale world: an empty reply at ~12 s). Such a socket stays paused until
    // the answer is about to be written.
    let resumeWhenAnswered = false;
    const finish = (): void => {
      handedOver = true;
      const bytes = body?.bytes() ?? new Uint8Array(0);
      dispatch(exchange, route, params, query, contentType, bytes, () => {
        body?.release();
        if (resumeWhenAnswered && !exchange.aborted) res.resume();
      });
    };
    const refuse = (outcome: AppendOutcome): void => {
      refused = true;
      body?.release();
      if (outcome === 'too_large')
        writeError(exchange, 'body_too_large', `body exceeds the limit of ${route.maxBodyBytes} bytes`, observe, true);
      else
        writeResponse(
          exchange,
          { status: statusOf('server_busy'), body: errorBody('server_busy'), headers: { 'Retry-After': BUSY_RETRY_SECONDS } },
          observe,
          true,
        );
    };
    if (admission instanceof Promise) {
      // Whatever bytes came with the headers still arrive (and are held, within the budget); nothing more is
      // read from the socket until the caller is admitted.
      res.pause();
      admission.then(
        (refusal) => {
          if (exchange.aborted || refused) return;
          if (refusal !== null) {
            refused = true;
            body?.release();
            writeResponse(exchange, refusal, observe, true);
            return;
          }
          admitted = true;
          if (complete) {
            // Resumed once answered (see resumeWhenAnswered): else the next request on this keep-alive
            // connection would never be read.
            resumeWhenAnswered = true;
            finish();
          } else res.resume();
        },
        (error: unknown) => {
          options.onHandlerError?.(error, route.path);
          refused = true;
          body?.release();
          writeError(exchange, 'internal_error', 'internal error', observe, true);
        },
      );
    }
    if (!expectsBody) return;

    const receive = (chunk: ArrayBuffer, isLast: boolean): void => {
      if (refused || exchange.aborted) return;
      if (isLast && body === null && admitted && route.retainsBody !== true) {
        // Whole body in one chunk (nearly every OpenSIPS request): use it in place; handlers parse synchronously
        // and copy what they keep.
        dispatch(exchange, route, params, query, contentType, new Uint8Array(chunk));
        return;
      }
      body ??= new GrowingBody(budget, route.maxBodyBytes, declared.bytes ?? 0);
      const outcome = body.append(new Uint8Array(chunk)); // a copy: uWS reuses the chunk's memory
      if (outcome !== 'ok') {
        refuse(outcome);
        return;
      }
      if (!isLast) return;
      complete = true;
      if (admitted) finish();
    };
    res.onData((chunk, isLast) => {
      try {
        receive(chunk, isLast);
      } catch (error) {
        // Never throw into uWS (it ends the process): a defect here costs this request, not the server.
        options.onHandlerError?.(error, route.path);
        refused = true;
        body?.release();
        writeError(exchange, 'internal_error', 'internal error', observe, true);
      }
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
        get bodyBytesHeld() {
          return budget.heldBytes;
        },
        close: () => uWS.us_listen_socket_close(socket),
      });
    });
  });
}

/** Runs an admission hook; a hook that throws refuses with 500 rather than throwing into uWS. */
function guardAdmission(admit: Admission, exchange: Exchange, path: string): OutgoingResponse | null | Promise<OutgoingResponse | null> {
  try {
    return admit(exchange.remoteAddress, path, exchange.authorization, exchange.headers);
  } catch (error) {
    return Promise.reject(error instanceof Error ? error : new Error(String(error)));
  }
}

function truncate(text: string): string {
  return text.length > 64 ? `${text.slice(0, 64)}...` : text;
}

const NO_LENGTH: DeclaredLength = Object.freeze({ ok: true, bytes: null });

/**
 * The named headers, each a header sent more than once read as all its lines joined by ", " in order (RFC 9110
 * 5.3), not as its first line (uWS's getHeader). A proxy may add its X-Forwarded-For as a line of its own after
 * the caller's (HAProxy's option forwardfor does): read by its first line, the address the partner API's limits
 * key on was the one the caller wrote, a fresh allowance of forged tokens per request. A repeated Host reads as
 * no host name at all, so the host checks refuse it.
 */
function readHeaders(req: uWS.HttpRequest, names: readonly string[]): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const name of names) headers[name] = req.getHeader(name);
  const lines = new Map<string, string[]>();
  req.forEach((name, value) => {
    if (name in headers) lines.set(name, [...(lines.get(name) ?? []), value]);
  });
  for (const [name, values] of lines) if (values.length > 1) headers[name] = values.join(', ');
  return headers;
}

/** Every Content-Length header of the request, in order (read only when the first is not a plain number). */
function contentLengths(req: uWS.HttpRequest): string[] {
  const lengths: string[] = [];
  req.forEach((name, value) => {
    if (name === 'content-length') lengths.push(value);
  });
  return lengths;
}
