/**
 * Portal usernames as the contract stores them: with the `@wholesale` suffix, which the frontend's other
 * logins do not use, appended when not given. Lower-cased and trimmed too, so that `Acme` and `acme ` cannot
 * be two accounts a person would read as one (contract note 42).
 */
export const USERNAME_SUFFIX = '@wholesale';

export function normaliseUsername(text: string): string {
  const name = text.trim().toLowerCase();
  return name.endsWith(USERNAME_SUFFIX) ? name : `${name}${USERNAME_SUFFIX}`;
}

/** Why a username cannot be stored (null: it can): something before the suffix, no spaces or control characters. */
export function usernameProblem(text: string): string | null {
  const name = normaliseUsername(text);
  const local = name.slice(0, -USERNAME_SUFFIX.length);
  if (local === '') return 'must not be empty';
  if (local.length > 128) return 'is longer than 128 characters';
  // eslint-disable-next-line no-control-regex
  if (/[\s\u0000-\u001f\u007f]/.test(local)) return 'must not contain spaces or control characters';
  return null;
}
