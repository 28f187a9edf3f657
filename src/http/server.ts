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
  remoteAddress: string;
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

export function startServer(options: ServerOptions): Promise<RunningServer> {
  const byPath = new Map<string, Map<string, Route>>();
  for (const route of options.routes) {
    const methods = byPath.get(route.path) ?? new Map<string, Route>();
    methods.set(route.method, route);
    byPath.set(route.path, methods);
  }
  const observe = options.observe ?? ((): void => undefined);
  const app = uWS.App();

  app.any('/*', (res, req) => {
    const started = performance.now();
    const path = req.getUrl();
    const method = req.getCaseSensitiveMethod().toUpperCase();
    const methods = byPath.get(path);
    let aborted = false;
    res.onAborted(() => {
      aborted = true;
    });

    const send = (routeLabel: string, response: OutgoingResponse, closeConnection = false): void => {
      if (aborted) return;
      res.cork(() => {
        res.writeStatus(`${response.status} ${STATUS_TEXT[response.status] ?? 'Unknown'}`);
        res.writeHeader('Content-Type', response.contentType ?? JSON_TYPE);
        if (response.headers) for (const [name, value] of Object.entries(response.headers)) res.writeHeader(name, value);
        res.end(response.body, closeConnection);
      });
      observe(routeLabel, response.status, (performance.now() - started) / 1000);
    };
    const fail = (routeLabel: string, status: number, message: string, closeConnection = false): void =>
      send(routeLabel, { status, body: errorBody(status, message) }, closeConnection);

    if (methods === undefined) {
      fail('unmatched', 404, `no such endpoint: ${method} ${truncate(path)}`, true);
      return;
    }
    const route = methods.get(method);
    if (route === undefined) {
      send(path, { status: 405, body: errorBody(405, `method ${truncate(method)} not allowed on ${path}`), headers: { Allow: [...methods.keys()].join(', ') } }, true);
      return;
    }
    const contentLength = req.getHeader('content-length');
    const contentType = req.getHeader('content-type');
    const query = req.getQuery();
    const remoteAddress = Buffer.from(res.getRemoteAddressAsText()).toString();
    const declared = contentLength === '' ? 0 : Number(contentLength);
    if (declared > route.maxBodyBytes) {
      // Answer before reading and close: the client may still be sending.
      fail(path, 413, `body of ${contentLength} bytes exceeds the limit of ${route.maxBodyBytes}`, true);
      return;
    }

    const dispatch = (body: Uint8Array): void => {
      const request: IncomingRequest = { method: route.method, path, query, contentType, remoteAddress, body };
      let outcome: OutgoingResponse | Promise<OutgoingResponse>;
      try {
        outcome = route.handler(request);
      } catch (error) {
        options.onHandlerError?.(error, path);
        fail(path, 500, 'internal error');
        return;
      }
      if (outcome instanceof Promise) {
        outcome.then(
          (response) => send(path, response),
          (error: unknown) => {
            options.onHandlerError?.(error, path);
            fail(path, 500, 'internal error');
          },
        );
      } else {
        send(path, outcome);
      }
    };

    if (method === 'GET' || (contentLength === '' && req.getHeader('transfer-encoding') === '')) {
      dispatch(new Uint8Array(0));
      return;
    }
    let chunks: Buffer[] | null = null;
    let received = 0;
    let refused = false;
    res.onData((chunk, isLast) => {
      if (refused) return;
      received += chunk.byteLength;
      if (received > route.maxBodyBytes) {
        refused = true;
        fail(path, 413, `body exceeds the limit of ${route.maxBodyBytes} bytes`, true);
        return;
      }
      if (isLast && chunks === null && route.retainsBody !== true) {
        // Whole body in one chunk (nearly every OpenSIPS request): use it in place; handlers parse synchronously
        // and copy what they keep.
        dispatch(new Uint8Array(chunk));
        return;
      }
      (chunks ??= []).push(Buffer.from(new Uint8Array(chunk))); // copy: uWS reuses the chunk's memory
      if (isLast) dispatch(Buffer.concat(chunks));
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
