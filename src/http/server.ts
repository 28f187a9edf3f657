/**
 * The only module that touches uWebSockets.js: moving to upstream uWS (or to
 * node:http) changes this file alone. Handlers see plain requests and return
 * plain responses; this module enforces the rules uWS imposes (request valid
 * only during the callback, onAborted before any await, copy non-final body
 * chunks, cork writes made after an await, never throw into uWS).
 */
import uWS from 'uWebSockets.js';
import { STATUS_TEXT, errorBody } from './errors.js';

export type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';

export interface IncomingRequest {
  method: Method;
  path: string;
  query: string;
  contentType: string;
  body: Uint8Array;
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
  path: string;
  handler: Handler;
  /** Larger bodies get 413 without being read. */
  maxBodyBytes: number;
  /** The handler keeps the body past its synchronous part (it awaits): the body is copied out of uWS memory. */
  retainsBody?: boolean;
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
}

export interface RunningServer {
  port: number;
  close(): void;
}

const JSON_TYPE = 'application/json';
const STATUS_LINES = new Map(Object.entries(STATUS_TEXT).map(([code, text]) => [Number(code), `${code} ${text}`]));

/** What one request needs after its uWS callback returned (body chunks, async handlers). */
interface Exchange {
  res: uWS.HttpResponse;
  routeLabel: string;
  started: number;
  aborted: boolean;
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

function writeError(exchange: Exchange, status: number, message: string, observe: RequestObserver, closeConnection = false): void {
  writeResponse(exchange, { status, body: errorBody(status, message) }, observe, closeConnection);
}

export function startServer(options: ServerOptions): Promise<RunningServer> {
  const byPath = new Map<string, Map<string, Route>>();
  for (const route of options.routes) {
    const methods = byPath.get(route.path) ?? new Map<string, Route>();
    methods.set(route.method, route);
    byPath.set(route.path, methods);
  }
  const observe = options.observe ?? ((): void => undefined);
  const app = uWS.App();

  const dispatch = (exchange: Exchange, route: Route, query: string, contentType: string, body: Uint8Array): void => {
    const request: IncomingRequest = { method: route.method, path: route.path, query, contentType, body };
    let outcome: OutgoingResponse | Promise<OutgoingResponse>;
    try {
      outcome = route.handler(request);
    } catch (error) {
      options.onHandlerError?.(error, route.path);
      writeError(exchange, 500, 'internal error', observe);
      return;
    }
    if (outcome instanceof Promise) {
      outcome.then(
        (response) => writeResponse(exchange, response, observe),
        (error: unknown) => {
          options.onHandlerError?.(error, route.path);
          writeError(exchange, 500, 'internal error', observe);
        },
      );
    } else {
      writeResponse(exchange, outcome, observe);
    }
  };

  app.any('/*', (res, req) => {
    const exchange: Exchange = { res, routeLabel: 'unmatched', started: performance.now(), aborted: false };
    res.onAborted(() => {
      exchange.aborted = true;
    });
    const path = req.getUrl();
    const method = req.getCaseSensitiveMethod(); // methods are case-sensitive (RFC 9110)
    const methods = byPath.get(path);
    if (methods === undefined) {
      writeError(exchange, 404, `no such endpoint: ${truncate(method)} ${truncate(path)}`, observe, true);
      return;
    }
    exchange.routeLabel = path;
    const route = methods.get(method);
    if (route === undefined) {
      const allow = [...methods.keys()].join(', ');
      writeResponse(exchange, { status: 405, body: errorBody(405, `method ${truncate(method)} not allowed on ${path}`), headers: { Allow: allow } }, observe, true);
      return;
    }
    const contentLength = req.getHeader('content-length');
    const contentType = req.getHeader('content-type');
    const query = route.method === 'GET' ? req.getQuery() : '';
    const declared = contentLength === '' ? 0 : Number(contentLength);
    if (declared > route.maxBodyBytes) {
      // Answer before reading and close: the client may still be sending.
      writeError(exchange, 413, `body of ${contentLength} bytes exceeds the limit of ${route.maxBodyBytes}`, observe, true);
      return;
    }
    if (method === 'GET' || (contentLength === '' && req.getHeader('transfer-encoding') === '')) {
      dispatch(exchange, route, query, contentType, new Uint8Array(0));
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
        writeError(exchange, 413, `body exceeds the limit of ${route.maxBodyBytes} bytes`, observe, true);
        return;
      }
      if (whole !== null) {
        whole.set(new Uint8Array(chunk), offset); // copy: uWS reuses the chunk's memory
        if (isLast) dispatch(exchange, route, query, contentType, whole.subarray(0, received));
        return;
      }
      if (isLast && chunks === null && route.retainsBody !== true) {
        // Whole body in one chunk (nearly every OpenSIPS request): use it in place; handlers parse synchronously
        // and copy what they keep.
        dispatch(exchange, route, query, contentType, new Uint8Array(chunk));
        return;
      }
      (chunks ??= []).push(Buffer.from(new Uint8Array(chunk))); // copy: uWS reuses the chunk's memory
      if (isLast) dispatch(exchange, route, query, contentType, Buffer.concat(chunks));
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
