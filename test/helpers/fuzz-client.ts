/**
 * Sends one fuzz request on its own raw TCP connection and reads the answer's status line. Raw, not fetch:
 * fetch normalises paths ('..', '%2e'), refuses some methods and bodies, and reports "fetch failed" when a
 * server answers 413 and closes while the body is still being sent; here a status read before the close
 * counts as the answer.
 */
import { connect } from 'node:net';
import type { FuzzRequest } from './fuzz-requests.js';

export interface FuzzAnswer {
  /** null: the connection closed (or the time ran out) before a status line came. */
  status: number | null;
  /** No complete answer within the time allowed. */
  hung: boolean;
  /** The answer's first bytes, for the failure message. */
  text: string;
}

function requestHead(request: FuzzRequest, length: string | null): string {
  // Keep-alive (HTTP/1.1's default), so the server closes only when it means to (after a 413); a close asked
  // for here would reset a connection still carrying a body the server did not read (a GET's).
  const lines = [`${request.method} ${request.target} HTTP/1.1`, 'Host: 127.0.0.1'];
  for (const [name, value] of Object.entries(request.headers)) lines.push(`${name}: ${value}`);
  if (length !== null) lines.push(`Content-Length: ${length}`);
  if (request.framing === 'chunked-over') lines.push('Transfer-Encoding: chunked');
  return `${lines.join('\r\n')}\r\n\r\n`;
}

/** The status of a complete answer in `received`, or undefined while more is due (head or body incomplete). */
function completeStatus(received: Buffer, method: string): number | undefined {
  const end = received.indexOf('\r\n\r\n');
  if (end < 0) return undefined;
  const head = received.subarray(0, end).toString('latin1');
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1]);
  const length = /\r\ncontent-length: *(\d+)/i.exec(head)?.[1];
  const bodiless = method === 'HEAD' || status === 204 || status === 304;
  if (!bodiless && length !== undefined && received.byteLength - end - 4 < Number(length)) return undefined;
  return Number.isInteger(status) ? status : undefined;
}

export function sendFuzz(port: number, request: FuzzRequest, timeoutMs: number): Promise<FuzzAnswer> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    // A hang detector, not a timing target: the answer only has to come at all within this bound.
    const signal = AbortSignal.timeout(timeoutMs);
    let received = Buffer.alloc(0);
    let settled = false;
    const finish = (hung: boolean): void => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      socket.destroy();
      const end = received.indexOf('\r\n\r\n');
      const head = (end < 0 ? received : received.subarray(0, end)).toString('latin1');
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1]);
      resolve({ status: Number.isInteger(status) ? status : null, hung, text: received.subarray(0, 300).toString('latin1') });
    };
    const onAbort = (): void => finish(completeStatus(received, request.method) === undefined);
    signal.addEventListener('abort', onAbort);
    socket.on('data', (chunk) => {
      received = Buffer.concat([received, chunk]);
      if (completeStatus(received, request.method) !== undefined) finish(false);
    });
    socket.on('close', () => finish(false));
    // A server that answered early (413) and closed makes our writes fail: the answer read so far stands.
    socket.on('error', () => finish(false));
    // The whole request in one write: a server that answers before reading all of it (a GET ignores its
    // body, a 413 stops reading) and then closes resets the connection when more bytes arrive after the
    // close, and a reset discards the answer the client had not read yet.
    socket.on('connect', () => socket.write(wire(request)));
  });
}

/** The request's bytes. An `over` framing is cut short: the server must answer once it is past the limit. */
function wire(request: FuzzRequest): Buffer {
  if (request.framing === 'length')
    return Buffer.concat([Buffer.from(requestHead(request, String(request.body.byteLength)), 'latin1'), request.body]);
  if (request.framing === 'declared-over') {
    // One byte past the limit announced, at most the limit sent: answering must not wait for the rest.
    return Buffer.concat([Buffer.from(requestHead(request, String(request.limit + 1)), 'latin1'), request.body.subarray(0, request.limit)]);
  }
  // Chunked, limit + 1 bytes in 64 KiB chunks, with no last chunk: the server must refuse at the byte past its limit.
  const parts: Buffer[] = [Buffer.from(requestHead(request, null), 'latin1')];
  for (let offset = 0; offset < request.body.byteLength; offset += 64 * 1024) {
    const chunk = request.body.subarray(offset, offset + 64 * 1024);
    parts.push(Buffer.from(`${chunk.byteLength.toString(16)}\r\n`), chunk, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}
