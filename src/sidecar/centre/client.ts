import http from 'node:http';
import https from 'node:https';

/**
 * JSON POSTs from the node to the control plane over one kept-alive
 * connection. Not fetch: in Node 20 a fetch costs the event loop 0.4–0.7 ms
 * of CPU (Request, Headers, body streams, an abort signal), node:http a
 * fifth of that, and a node admitting 10k calls/s makes a money round every
 * 50 ms, each a pause every admission behind it waits through.
 */
export interface CentreReply {
  status: number;
  text: string;
}

/** The control plane's replies are small; a larger one is not the control plane's. */
const MAX_REPLY_BYTES = 16 * 1024 * 1024;
/** Below uWebSockets.js's ~10 s idle close, so a kept connection is not reused as the server drops it. */
const IDLE_SOCKET_MS = 4000;

export class CentreClient {
  private readonly transport: typeof http | typeof https;
  private readonly agent: http.Agent;

  constructor(
    private readonly base: string,
    private readonly timeoutMs: number,
    /** The Authorization header for each request (the node's secret); null: none sent. */
    private readonly authorization: (() => string) | null = null,
  ) {
    const secure = new URL(base).protocol === 'https:';
    this.transport = secure ? https : http;
    this.agent = new this.transport.Agent({ keepAlive: true, maxSockets: 1, timeout: IDLE_SOCKET_MS });
  }

  /** Resolves with the status and body, or rejects (unreachable, reset, timed out after timeoutMs). */
  async post(path: string, body: string): Promise<CentreReply> {
    return this.request('POST', path, body);
  }

  /** A GET (the delta channel's ask); `signal` abandons it (the request is destroyed, the promise rejects). */
  async get(path: string, signal?: AbortSignal): Promise<CentreReply> {
    return this.request('GET', path, null, signal);
  }

  private async request(method: 'GET' | 'POST', path: string, body: string | null, signal?: AbortSignal): Promise<CentreReply> {
    try {
      return await this.send(method, path, body, signal);
    } catch (error) {
      // A kept connection the server closed as we wrote: the request never reached it, so send it once more.
      if ((error as { reusedSocket?: boolean; code?: string }).reusedSocket === true && (error as { code?: string }).code === 'ECONNRESET')
        return this.send(method, path, body, signal);
      throw error;
    }
  }

  close(): void {
    this.agent.destroy();
  }

  private send(method: 'GET' | 'POST', path: string, body: string | null, signal?: AbortSignal): Promise<CentreReply> {
    return new Promise((resolve, reject) => {
      const request = this.transport.request(`${this.base}${path}`, {
        method,
        agent: this.agent,
        headers: {
          ...(body === null ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }),
          ...(this.authorization === null ? {} : { authorization: this.authorization() }),
        },
        ...(signal === undefined ? {} : { signal }),
      });
      let settled = false;
      const finish = (error: Error | null, reply?: CentreReply): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (error === null) resolve(reply!);
        else reject(error);
      };
      const timer = setTimeout(
        () => request.destroy(new Error(`no answer from the control plane within ${this.timeoutMs} ms`)),
        this.timeoutMs,
      );
      request.on('error', (error: Error) => finish(Object.assign(error, { reusedSocket: request.reusedSocket })));
      request.on('response', (response) => {
        const chunks: Buffer[] = [];
        let bytes = 0;
        response.on('data', (chunk: Buffer) => {
          bytes += chunk.length;
          if (bytes > MAX_REPLY_BYTES) request.destroy(new Error(`control plane reply over ${MAX_REPLY_BYTES} bytes`));
          else chunks.push(chunk);
        });
        response.on('end', () => finish(null, { status: response.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        response.on('error', (error) => finish(error));
        // After 'end' this does nothing; before it, the reply was cut short.
        response.on('close', () => finish(new Error('the control plane closed the connection before its reply ended')));
      });
      request.end(body ?? undefined);
    });
  }
}
