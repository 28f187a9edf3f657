import type { IncomingRequest } from '../core/http/server.js';

/** A JSON POST to `path` as the HTTP layer hands it to a route, body already read (a bench encodes it beforehand). */
export function jsonPost(path: string, body: unknown): IncomingRequest {
  return {
    method: 'POST',
    path,
    params: {},
    remoteAddress: '',
    query: '',
    contentType: 'application/json',
    body: Buffer.from(JSON.stringify(body)),
  };
}
