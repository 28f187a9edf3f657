import { execFile } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { constants, open as openCallback, promises as fs } from 'node:fs';
import { Socket } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';

/**
 * OpenSIPS Management Interface client: JSON-RPC 2.0 over the three
 * transports a node's `mi_socket_address` can name:
 *   http://host:port/mi   mi_http (POST, Content-Type: application/json, or OpenSIPS never answers)
 *   udp:host:port         mi_datagram
 *   /path/to/fifo         mi_fifo (we create a reply FIFO and name it in the request)
 * Every call has a timeout; parameters are named (OpenSIPS refuses positional ones).
 */
export type MiAddress = { kind: 'http'; url: string } | { kind: 'udp'; host: string; port: number } | { kind: 'fifo'; path: string };

export class MiError extends Error {
  constructor(
    message: string,
    readonly code: 'TIMEOUT' | 'TRANSPORT' | 'RPC' | 'PROTOCOL',
  ) {
    super(message);
    this.name = 'MiError';
  }
}

export function parseMiAddress(text: string): MiAddress | null {
  if (/^https?:\/\//.test(text)) {
    try {
      return { kind: 'http', url: new URL(text).toString() };
    } catch {
      return null;
    }
  }
  const udp = /^udp:(\[[0-9a-fA-F:.]+\]|[^:\s]+):(\d{1,5})$/.exec(text);
  if (udp !== null) return { kind: 'udp', host: udp[1].replace(/^\[|\]$/g, ''), port: Number(udp[2]) };
  if (text.startsWith('/')) return { kind: 'fifo', path: text };
  return null;
}

let nextId = 1;

function decodeReply(text: string, id: number): unknown {
  let reply: { id?: unknown; result?: unknown; error?: { code?: number; message?: string } };
  try {
    reply = JSON.parse(text) as typeof reply;
  } catch {
    throw new MiError(`not a JSON-RPC reply: ${text.slice(0, 120)}`, 'PROTOCOL');
  }
  if (reply.error !== undefined) throw new MiError(`MI error ${reply.error.code ?? '?'}: ${reply.error.message ?? 'unknown'}`, 'RPC');
  if (reply.id !== undefined && reply.id !== id && reply.id !== String(id))
    throw new MiError(`reply for another request (id ${JSON.stringify(reply.id)})`, 'PROTOCOL');
  return reply.result;
}

function withTimeout<T>(work: Promise<T>, timeoutMs: number, what: string, cleanup: () => void): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new MiError(`${what}: no answer within ${timeoutMs} ms`, 'TIMEOUT')), timeoutMs);
  });
  return Promise.race([work, timeout]).finally(() => {
    clearTimeout(timer);
    cleanup();
  });
}

async function callHttp(url: string, body: string, id: number, timeoutMs: number): Promise<unknown> {
  let response: Response;
  try {
    response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
      signal: AbortSignal.timeout(timeoutMs),
      // The address was checked by whoever configured it; a redirect would send the request somewhere that was not.
      redirect: 'error',
    });
  } catch (error) {
    if ((error as Error).name === 'TimeoutError') throw new MiError(`${url}: no answer within ${timeoutMs} ms`, 'TIMEOUT');
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    throw new MiError(`${url}: ${cause?.code ?? cause?.message ?? (error as Error).message}`, 'TRANSPORT');
  }
  return decodeReply(await response.text(), id);
}

function callUdp(host: string, port: number, body: string, id: number, timeoutMs: number): Promise<unknown> {
  const socket = createSocket(host.includes(':') ? 'udp6' : 'udp4');
  const work = new Promise<unknown>((resolve, reject) => {
    socket.on('message', (message) => {
      try {
        resolve(decodeReply(message.toString(), id));
      } catch (error) {
        reject(error instanceof Error ? error : new MiError(String(error), 'PROTOCOL'));
      }
    });
    socket.on('error', (error) => reject(new MiError(`udp:${host}:${port}: ${error.message}`, 'TRANSPORT')));
    socket.send(body, port, host);
  });
  return withTimeout(work, timeoutMs, `udp:${host}:${port}`, () => socket.close());
}

async function callFifo(path: string, body: string, id: number, timeoutMs: number): Promise<unknown> {
  // OpenSIPS writes the answer to the FIFO named in the request, relative to its reply directory (/tmp).
  const name = `opensips_mi_reply_${process.pid}_${id}`;
  const replyPath = join('/tmp', name);
  await promisify(execFile)('mkfifo', ['-m', '0600', replyPath]);
  let reply: Socket | null = null;
  const work = (async (): Promise<unknown> => {
    // O_RDWR keeps the open from blocking before OpenSIPS opens its end; a socket over the descriptor
    // reads it from the event loop, with no thread parked in read().
    // A plain descriptor, owned by the socket from here on (a FileHandle would close it a second time).
    const fd = await promisify(openCallback)(replyPath, constants.O_RDWR | constants.O_NONBLOCK);
    reply = new Socket({ fd, readable: true, writable: false });
    let server: fs.FileHandle;
    try {
      server = await fs.open(path, constants.O_WRONLY | constants.O_NONBLOCK);
    } catch (error) {
      throw new MiError(
        `${path}: ${(error as NodeJS.ErrnoException).code === 'ENXIO' ? 'no OpenSIPS reading the FIFO' : (error as Error).message}`,
        'TRANSPORT',
      );
    }
    try {
      // Only ever a FIFO: written to, a regular file or a device would take the request as its new first bytes.
      if (!(await server.stat()).isFIFO()) throw new MiError(`${path}: not a FIFO, nothing written`, 'PROTOCOL');
      await server.write(`:${name}:${body}\n`);
    } finally {
      await server.close();
    }
    const replySocket = reply;
    const text = await new Promise<string>((resolve, reject) => {
      let received = '';
      replySocket.on('data', (chunk: Buffer) => {
        received += chunk.toString();
        try {
          JSON.parse(received);
          resolve(received); // a whole JSON document: the reply is complete
        } catch {
          // keep reading
        }
      });
      replySocket.on('error', (error) => reject(new MiError(`${path}: ${error.message}`, 'TRANSPORT')));
    });
    return decodeReply(text, id);
  })();
  return withTimeout(work, timeoutMs, path, () => {
    reply?.destroy();
    void fs.unlink(replyPath).catch(() => undefined);
  });
}

/** One MI command; resolves with its `result`, rejects with an MiError saying what went wrong. */
export function miCall(
  address: MiAddress,
  method: string,
  params: Record<string, unknown> | null = null,
  timeoutMs = 5000,
): Promise<unknown> {
  const id = nextId++;
  const body = JSON.stringify(params === null ? { jsonrpc: '2.0', method, id } : { jsonrpc: '2.0', method, params, id });
  switch (address.kind) {
    case 'http':
      return callHttp(address.url, body, id, timeoutMs);
    case 'udp':
      return callUdp(address.host, address.port, body, id, timeoutMs);
    case 'fifo':
      return callFifo(address.path, body, id, timeoutMs);
  }
}
