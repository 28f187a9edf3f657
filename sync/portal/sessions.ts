import { createHash, randomBytes } from 'node:crypto';
import type { ConfigStore } from '../store/config-store.js';

/**
 * Portal sessions: an opaque token (32 random bytes, base64url) answered once at login; the store keeps only
 * its SHA-256 (customer_auth_tokens), so a copy of config.db lets no one in. A session lasts 24 hours from
 * login (the contract's), and logout deletes it.
 */
export const SESSIONS_TABLE = 'customer_auth_tokens';
export const SESSION_SECONDS = 24 * 60 * 60;

export interface PortalSession {
  /** The row's id (in logs: a session is named by it, never by its token). */
  id: number;
  customerAccountId: number;
  expiresAt: string;
}

export type SessionLookup = { ok: true; session: PortalSession } | { ok: false };

const tokenHash = (token: string): string => createHash('sha256').update(token).digest('hex');

export async function issueSession(
  store: ConfigStore,
  customerAccountId: number,
  now = new Date(),
): Promise<{ token: string; session: PortalSession }> {
  const token = randomBytes(32).toString('base64url');
  const expiresAt = new Date(now.getTime() + SESSION_SECONDS * 1000).toISOString();
  const row = await store.insert(SESSIONS_TABLE, {
    customer_account_id: customerAccountId,
    token_hash: tokenHash(token),
    created_at: now.toISOString(),
    expires_at: expiresAt,
  });
  return { token, session: { id: row.id as number, customerAccountId, expiresAt } };
}

/** The session a token opens; an expired one is deleted as it is found (and opens nothing). */
export async function findSession(store: ConfigStore, token: string, now = new Date()): Promise<SessionLookup> {
  const row = (await store.list(SESSIONS_TABLE, { where: { token_hash: tokenHash(token) }, limit: 1, offset: 0 })).rows.at(0);
  if (row === undefined) return { ok: false };
  if ((row.expires_at as string) <= now.toISOString()) {
    await store.remove(SESSIONS_TABLE, row.id as number);
    return { ok: false };
  }
  return {
    ok: true,
    session: { id: row.id as number, customerAccountId: row.customer_account_id as number, expiresAt: row.expires_at as string },
  };
}

/** Ends the session a token opens; false when there was none (logout is idempotent). */
export async function endSession(store: ConfigStore, token: string): Promise<PortalSession | null> {
  const row = (await store.list(SESSIONS_TABLE, { where: { token_hash: tokenHash(token) }, limit: 1, offset: 0 })).rows.at(0);
  if (row === undefined) return null;
  await store.remove(SESSIONS_TABLE, row.id as number);
  return { id: row.id as number, customerAccountId: row.customer_account_id as number, expiresAt: row.expires_at as string };
}
