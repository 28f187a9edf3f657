import { refusalResponse } from './errors.js';
import type { IncomingRequest, OutgoingResponse } from './server.js';

/**
 * Handlers throw (or reject with) RequestError to refuse; this turns it into
 * the contract's error response. Anything else is a defect and reaches the
 * server (500). `translate` lets a domain say which of its own errors are
 * refusals (the money journal's: 503). A handler that answers at once stays
 * synchronous: no promise per request on the paths that need none.
 */
type Handler = (request: IncomingRequest) => OutgoingResponse | Promise<OutgoingResponse>;

export function guard(handler: Handler, translate: (error: unknown) => unknown = (error) => error): Handler {
  const refuse = (error: unknown): OutgoingResponse => {
    const refused = refusalResponse(translate(error));
    if (refused === null) throw error;
    return refused;
  };
  return (request) => {
    try {
      const outcome = handler(request);
      return outcome instanceof Promise ? outcome.then(undefined, refuse) : outcome;
    } catch (error) {
      return refuse(error);
    }
  };
}
