import fs from 'node:fs';
import pino, { type Logger } from 'pino';

/**
 * Credential material never reaches a log line, whatever object it rides in: a field of one of these names is
 * written as '[redacted]', in the logged object itself or in any object (or array, or error) one level inside it.
 */
const REDACTED_FIELDS: ReadonlySet<string> = new Set([
  'password_hash',
  // A portal login's password (the admin API's account bodies, the login body), should one ever ride in a log object.
  'password',
  'ha1',
  'auth_response',
  'authorization',
  'token',
  'response',
  // A node's secret with the centre (sidecar config, the admin API's create and rotate answers).
  'centreSecret',
  'node_secret',
  'secret',
]);

const CENSOR = '[redacted]';

const FIELDS = [...REDACTED_FIELDS];

/**
 * `value` with its redacted fields censored: itself when it has none (no copy), else a copy with its prototype.
 * The names are looked up, the value's fields not walked: a buffer or a long array costs the same as a small object.
 */
function censored<T extends object>(value: T): T {
  let copy: Record<string, unknown> | null = null;
  for (const name of FIELDS) {
    if (!Object.prototype.hasOwnProperty.call(value, name) || (value as Record<string, unknown>)[name] === undefined) continue;
    // An error keeps its message, stack and class (pino's err serializer reads them); an array stays an array.
    copy ??= Object.create(Object.getPrototypeOf(value) as object, Object.getOwnPropertyDescriptors(value)) as Record<string, unknown>;
    copy[name] = CENSOR;
  }
  return (copy as T | null) ?? value;
}

/**
 * A log object with the redacted fields censored at its top level and one level in: the object passed to the log
 * call is never changed (a copy is made only when something is censored). This replaces pino's `redact` with
 * wildcard paths (`*.token`), which cost ~4× the rest of a line (19 against 5 µs a line in-process, every line:
 * its wildcard runs for every field); here a line with nothing to censor costs a set look-up per field.
 */
export function redactCredentials(object: Record<string, unknown>): Record<string, unknown> {
  let result = censored(object);
  for (const key in object) {
    const value = object[key];
    if (value === null || typeof value !== 'object' || REDACTED_FIELDS.has(key)) continue;
    const inner = censored(value);
    if (inner === value) continue;
    if (result === object) result = { ...object };
    result[key] = inner;
  }
  return result;
}

/** How long the exit's flush waits on a stdout reader that does not read, before what is left is dropped. */
const EXIT_FLUSH_MS = 5_000;

/**
 * stdout as pino makes it by default (asynchronous writes to fd 1, flushed synchronously at exit by pino's exit
 * hook), with that flush bounded. sonic-boom 4.2.1's flushSync sleeps 100 ms and writes again after any error
 * but an EAGAIN it is told to give up on: with the pipe's reader gone (EPIPE) the process hung in its exit for
 * ever, and with a reader that stopped reading (EAGAIN) until it read again. pino stops logging on an EPIPE that
 * an asynchronous write meets; one that only the exit's flush meets (the reader died while the pipe was full) was
 * that hang. flushSync writes through fs.writeSync: for its one synchronous call, a write to stdout that fails
 * for good (or still cannot be made after EXIT_FLUSH_MS) counts as written, so the flush ends and the process exits.
 */
function stdoutDestination(): pino.DestinationStream {
  const stdout = 1;
  const stream = pino.destination({ dest: stdout, sync: false });
  const flushSync = stream.flushSync.bind(stream);
  stream.flushSync = () => {
    const writeSync = fs.writeSync;
    const giveUpAt = Date.now() + EXIT_FLUSH_MS;
    fs.writeSync = (fd: number, data: string | NodeJS.ArrayBufferView, ...rest: unknown[]): number => {
      try {
        return (writeSync as (...args: unknown[]) => number)(fd, data, ...rest);
      } catch (error) {
        if (fd !== stdout || ((error as NodeJS.ErrnoException).code === 'EAGAIN' && Date.now() < giveUpAt)) throw error;
        return typeof data === 'string' ? Buffer.byteLength(data, 'utf8') : data.byteLength;
      }
    };
    try {
      flushSync();
    } finally {
      fs.writeSync = writeSync;
    }
  };
  return stream;
}

export function createLogger(level: string, name: string, destination?: pino.DestinationStream): Logger {
  const options: pino.LoggerOptions = { name, level, formatters: { log: redactCredentials } };
  const logger = pino(options, destination ?? stdoutDestination());
  // A child's bindings are censored too. pino gives children no bindings formatter, but every descendant is made by
  // Object.create from its parent, so this `child` is the one each of them calls.
  // eslint-disable-next-line @typescript-eslint/unbound-method -- called below with the parent (any descendant) as this
  const pinoChild = logger.child;
  logger.child = function (this: Logger, bindings, childOptions) {
    return pinoChild.call(this, redactCredentials(bindings), childOptions);
  } as typeof logger.child;
  return logger;
}
