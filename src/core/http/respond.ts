import type { OutgoingResponse } from './server.js';

/** A JSON answer. */
export function json(status: number, body: unknown): OutgoingResponse {
  return { status, body: JSON.stringify(body) };
}

/** 204: HTTP forbids a body. */
export const NO_CONTENT: OutgoingResponse = { status: 204, body: '' };
