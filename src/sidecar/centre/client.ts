import http from 'node:http';
import https from 'node:https';

/**
 * JSON POSTs from the node to the control plane over one kept-alive
 * connection (to the first of its control planes that answers: --control-url may list several). Not fetch: in Node 20 a fetch costs the event loop 0.4–0.7 ms
 * of CPU (Request, Headers, body streams, an abort signal), node:http a
 * fifth of that, and a node admitting 10k calls/s makes a money round every
 * 50 ms, each a pause every admission behind it waits through.
 */
export interface CentreReply {
  status: number;
  text: string;
}

/** What a request sends: JSON as text or as its UTF-8 bytes (a money round's, written once: round-body.ts); null: none. */
type RequestBody = string | Buffer | null;

/** The control plane's replies are small; a larger one is not the control plane's. */
const MAX_REPLY_BYTES = 16 * 1024 * 1024;
/** Below uWebSockets.js's ~10 s idle close, so a kept connection is not reused as the server drops it. */
const IDLE_SOCKET_MS = 4000;
/**
 * A body larger than this goes to the socket a piece per event-loop turn. A money round at 1,000 calls/s is
 * ~180 KB, and its write to a control plane on loopback is the kernel's work for the receiving side too: in
 * one write, a pause of about a millisecond that every call/decide arriving meanwhile waited through (issue 16:
 * the top 1% of decides). In pieces, requests are answered between them.
 */
export const BODY_PIECE_BYTES = 16 * 1024;

/** One control plane the node may talk to: its base URL and its kept connection. */
interface Centre {
  base: string;
  transport: typeof http | typeof https;
  agent: http.Agent;
}

/**
 * Answers that say this control plane cannot serve now, where another may: the next request goes to the next
 * centre. Every 5xx: a proxy in front of a stopped one (502, 504), a centre starting or stopping (503), and a
 * centre that has lost its store (500: its PostgreSQL connections cut or refused while the other centre's are
 * fine), which answered every money round 500 for as long as it ran and held its nodes there, their leases
 * lapsing, with a healthy centre listed next. A 500 that is the request's own fault meets the same at the next
 * centre, and the node comes back round.
 */
const notServing = (status: number): boolean => status >= 500;
/** Errors before the request was sent: it certainly did not reach that centre. */
const NOT_CONNECTED = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);

export class CentreClient {
  private readonly centres: Centre[];
  /** The centre requests go to until it fails; then the next in the list (issue 21: two centres on one PostgreSQL). */
  private current = 0;

  constructor(
    bases: string | readonly string[],
    private readonly timeoutMs: number,
    /** The Authorization header for each request (the node's secret); null: none sent. */
    private readonly authorization: (() => string) | null = null,
  ) {
    this.centres = (typeof bases === 'string' ? [bases] : bases).map((base) => {
      const transport = new URL(base).protocol === 'https:' ? https : http;
      return { base, transport, agent: new transport.Agent({ keepAlive: true, maxSockets: 1, timeout: IDLE_SOCKET_MS }) };
    });
    if (this.centres.length === 0) throw new Error('CentreClient needs at least one control plane URL');
  }

  /** The control plane requests go to now. */
  get base(): string {
    return this.centres[this.current].base;
  }

  /** Resolves with the status and body, or rejects (unreachable, reset, timed out after timeoutMs). Bytes: UTF-8. */
  async post(path: string, body: NonNullable<RequestBody>): Promise<CentreReply> {
    return this.request('POST', path, body);
  }

  /** A GET (the delta channel's ask); `signal` abandons it (the request is destroyed, the promise rejects). */
  async get(path: string, signal?: AbortSignal): Promise<CentreReply> {
    return this.request('GET', path, null, signal);
  }

  /**
   * A request that could not connect (nothing listens, no route, no such host) never reached its centre, so it
   * goes to the next one at once: a node whose first centre is down loses no admission to it. Any other
   * failure is not sent again elsewhere here: the caller retries it as after a lost reply from one centre
   * (money rounds are numbered, CDRs keyed, the delta ask names its sequence), since that centre may have
   * taken it. Either way the next request goes to the next centre.
   */
  private async request(method: 'GET' | 'POST', path: string, body: RequestBody, signal?: AbortSignal): Promise<CentreReply> {
    for (let tried = 1; ; tried++) {
      const centre = this.centres[this.current];
      try {
        const reply = await this.sendOnce(centre, method, path, body, signal);
        if (notServing(reply.status)) this.moveOn(centre);
        return reply;
      } catch (error) {
        if (signal?.aborted) throw error;
        this.moveOn(centre);
        if (tried >= this.centres.length || !NOT_CONNECTED.has((error as { code?: string }).code ?? '')) throw error;
      }
    }
  }

  private async sendOnce(
    centre: Centre,
    method: 'GET' | 'POST',
    path: string,
    body: RequestBody,
    signal?: AbortSignal,
  ): Promise<CentreReply> {
    try {
      return await this.send(centre, method, path, body, signal);
    } catch (error) {
      // A kept connection the server closed as we wrote: the request never reached it, so send it once more.
      if ((error as { reusedSocket?: boolean; code?: string }).reusedSocket === true && (error as { code?: string }).code === 'ECONNRESET')
        return this.send(centre, method, path, body, signal);
      throw error;
    }
  }

  /** After a failure at `centre`, the next request goes to the next one (unless another request moved on already). */
  private moveOn(centre: Centre): void {
    if (this.centres[this.current] === centre) this.current = (this.current + 1) % this.centres.length;
  }

  close(): void {
    for (const centre of this.centres) centre.agent.destroy();
  }

  private send(centre: Centre, method: 'GET' | 'POST', path: string, body: RequestBody, signal?: AbortSignal): Promise<CentreReply> {
    return new Promise((resolve, reject) => {
      const request = centre.transport.request(`${centre.base}${path}`, {
        method,
        agent: centre.agent,
        headers: {
          ...(body === null
            ? {}
            : { 'content-type': 'application/json', 'content-length': typeof body === 'string' ? Buffer.byteLength(body) : body.length }),
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
      if (body === null) request.end();
      else if (typeof body === 'string' || body.length <= BODY_PIECE_BYTES) request.end(body);
      else writeInPieces(request, body);
    });
  }
}

/**
 * `body` written BODY_PIECE_BYTES at a time, one piece a turn (setImmediate: after the I/O waiting then), the first
 * one too: making the request is a turn's work of its own.
 */
function writeInPieces(request: http.ClientRequest, body: Buffer): void {
  let at = 0;
  const next = (): void => {
    if (request.destroyed) return; // timed out or failed: the request has been settled already
    const end = Math.min(at + BODY_PIECE_BYTES, body.length);
    const piece = body.subarray(at, end);
    at = end;
    if (at === body.length) request.end(piece);
    else {
      request.write(piece);
      setImmediate(next);
    }
  };
  setImmediate(next);
}
