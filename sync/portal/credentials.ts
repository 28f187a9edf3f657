import type { ConfigStore } from '../store/config-store.js';
import { hashPassword, verifyPassword } from './password.js';
import { SESSIONS_TABLE } from './sessions.js';

/**
 * An account's portal password, as its slow hash, in a table of its own (customer_portal_credentials, id = the
 * account's): the account row is answered whole by the admin API and carried to every node in the snapshot,
 * and the hash must be in neither.
 */
export const CREDENTIALS_TABLE = 'customer_portal_credentials';

/** Hashed as an account's password would be: verified when the username is unknown, so that both take as long. */
let decoy: Promise<string> | null = null;

export async function setPassword(store: ConfigStore, customerAccountId: number, password: string): Promise<void> {
  const values = { password_hash: await hashPassword(password), updated_at: new Date().toISOString() };
  if ((await store.get(CREDENTIALS_TABLE, customerAccountId)) === null) {
    await store.insert(CREDENTIALS_TABLE, { id: customerAccountId, ...values });
    return;
  }
  await store.update(CREDENTIALS_TABLE, customerAccountId, values);
  // A new password ends the sessions the old one opened: it is how an operator shuts out whoever knew it.
  const { rows } = await store.list(SESSIONS_TABLE, { where: { customer_account_id: customerAccountId }, limit: null, offset: 0 });
  for (const row of rows) await store.remove(SESSIONS_TABLE, row.id as number);
}

/** Whether `password` is the account's; an account without a password (created before the portal) never matches. */
export async function passwordMatches(store: ConfigStore, customerAccountId: number | null, password: string): Promise<boolean> {
  const row = customerAccountId === null ? null : await store.get(CREDENTIALS_TABLE, customerAccountId);
  if (row === null) {
    decoy ??= hashPassword('not anyone’s password');
    await verifyPassword(password, await decoy);
    return false;
  }
  return verifyPassword(password, row.password_hash as string);
}
