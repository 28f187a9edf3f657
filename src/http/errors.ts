/**
 * Error bodies as the contract's ErrorResponse: {"error": message, "code":
 * the HTTP reason phrase, "status": the HTTP status}.
 */
export const STATUS_TEXT: Record<number, string> = {
  200: 'OK',
  201: 'Created',
  202: 'Accepted',
  204: 'No Content',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  413: 'Content Too Large',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Content',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

export function errorBody(status: number, message: string): string {
  return JSON.stringify({ error: message, code: STATUS_TEXT[status] ?? 'Error', status });
}

/** A request the handler refuses: becomes an ErrorResponse with this status. */
export class RequestError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'RequestError';
  }
}

/** The contract's error response for a refused request; null for any other error (a defect: the server answers 500). */
export function refusalResponse(error: unknown): { status: number; body: string } | null {
  return error instanceof RequestError ? { status: error.status, body: errorBody(error.status, error.message) } : null;
}
