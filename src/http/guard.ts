import { refusalResponse } from './errors.js';
import type { IncomingRequest, OutgoingResponse } from './server.js';

/**
 * Handlers throw RequestError to refuse; these turn it into the contract's
 * error response. Anything else is a defect and reaches the server (500).
 */
export function guard(handler: (request: IncomingRequest) => OutgoingResponse): (request: IncomingRequest) => OutgoingResponse {
  return (request) => {
    try {
      return handler(request);
    } catch (error) {
      const refused = refusalResponse(error);
      if (refused === null) throw error;
      return refused;
    }
  };
}

export function guardAsync(handler: (request: IncomingRequest) => Promise<OutgoingResponse>): (request: IncomingRequest) => Promise<OutgoingResponse> {
  return async (request) => {
    try {
      return await handler(request);
    } catch (error) {
      const refused = refusalResponse(error);
      if (refused === null) throw error;
      return refused;
    }
  };
}
