import type { HttpResponse } from 'uWebSockets.js';

/**
 * The least a server can do with one of our requests, shared by the floor (floor-server.ts) and the
 * trivial sidecar (trivial-sidecar.ts): read the whole body, parse it as JSON, answer a fixed body.
 * `parsed` runs once the body is read, before the answer (the trivial sidecar counts requests there).
 */
export function answerParsed(res: HttpResponse, status: string, answer: string, parsed?: () => void): void {
  let aborted = false;
  res.onAborted(() => {
    aborted = true;
  });
  let body: Buffer | null = null;
  res.onData((chunk, isLast) => {
    const part = Buffer.from(new Uint8Array(chunk));
    body = body === null ? part : Buffer.concat([body, part]);
    if (!isLast || aborted) return;
    JSON.parse(body.toString());
    parsed?.();
    res.cork(() => {
      res.writeStatus(status).writeHeader('Content-Type', 'application/json').end(answer);
    });
  });
}
