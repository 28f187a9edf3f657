/**
 * Database URLs carry passwords (a node's drouting `db_url`, the centre's own `--store`): what goes into a
 * log line, a report or an error message is the URL or the message with the password taken out.
 */

/** The URL with its password replaced by `***` (the user name stays: it tells the operator which login failed). */
export function redactDatabaseUrl(url: URL): string {
  if (url.password === '') return url.toString();
  const copy = new URL(url.toString());
  copy.password = '***';
  return copy.toString();
}

/** Takes the password out of a driver's message, in case one ever quotes the URL it was given. */
export function redactedError(error: unknown, url: string): Error {
  let message = error instanceof Error ? error.message : String(error);
  const password = decodeURIComponent(new URL(url).password);
  if (password !== '') message = message.split(password).join('***');
  return new Error(message);
}
