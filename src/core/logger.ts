import pino, { type Logger } from 'pino';

/** Credential material never reaches a log line, whatever object it rides in. */
export const REDACTED_PATHS = [
  'password_hash',
  '*.password_hash',
  // A portal login's password (the admin API's account bodies, the login body), should one ever ride in a log object.
  'password',
  '*.password',
  'ha1',
  '*.ha1',
  'auth_response',
  '*.auth_response',
  'authorization',
  '*.authorization',
  'token',
  '*.token',
  'response',
  '*.response',
  // A node's secret with the centre (sidecar config, the admin API's create and rotate answers).
  'centreSecret',
  '*.centreSecret',
  'node_secret',
  '*.node_secret',
  'secret',
  '*.secret',
];

export function createLogger(level: string, name: string, destination?: pino.DestinationStream): Logger {
  const options = { name, level, redact: { paths: REDACTED_PATHS, censor: '[redacted]' } };
  return destination === undefined ? pino(options) : pino(options, destination);
}
