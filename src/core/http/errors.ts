import { CATALOGUE, type ErrorCode } from '../errors/catalogue.js';

/**
 * Error bodies: the contract's ErrorResponse ({"error": message, "code": the HTTP reason phrase,
 * "status": the HTTP status}) plus `reason_code`, the catalogue's stable code for what went wrong.
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
  421: 'Misdirected Request',
  422: 'Unprocessable Content',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
};

/** The HTTP status an error code is answered with. */
export function statusOf(code: ErrorCode): number {
  return CATALOGUE[code].http;
}

function reasonOf(code: ErrorCode): string {
  return CATALOGUE[code].reason;
}

/** The body of an error response; `extra` adds fields some answers carry (the serving snapshot version, the last round). */
export function errorBody(code: ErrorCode, message: string = reasonOf(code), extra?: Record<string, unknown>): string {
  const status = statusOf(code);
  return JSON.stringify({ error: message, code: STATUS_TEXT[status] ?? 'Error', status, reason_code: code, ...extra });
}

/** A request the handler refuses: becomes an error response with the code's status. */
export class RequestError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string = reasonOf(code),
    /** Fields the body carries besides the ErrorResponse's (the record a refused sync names). */
    readonly extra?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'RequestError';
  }

  get status(): number {
    return statusOf(this.code);
  }
}

/** The error response for a refused request; null for any other error (a defect: the server answers 500). */
export function refusalResponse(error: unknown): { status: number; body: string } | null {
  return error instanceof RequestError ? { status: error.status, body: errorBody(error.code, error.message, error.extra) } : null;
}
