import type { IncomingRequest } from '../core/http/server.js';
import type { CallAuthRequest } from '../sidecar/auth/call-auth.js';

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

/**
 * A call/auth request from `source_ip` as the handler validates it: the headers a test or bench does not name
 * are absent (null), as when OpenSIPS's INVITE lacks them.
 */
export function callAuthRequest(source_ip: string, fields: Partial<Omit<CallAuthRequest, 'source_ip'>> = {}): CallAuthRequest {
  return {
    source_ip,
    call_id: null,
    ani: null,
    dnis: null,
    ruri: null,
    pai: null,
    ppi: null,
    rpid: null,
    username: null,
    domain: null,
    ...fields,
  };
}
