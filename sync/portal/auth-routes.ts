import type { Logger } from 'pino';
import { bearerToken } from '../../src/core/http/bearer.js';
import { RequestError, errorBody, statusOf } from '../../src/core/http/errors.js';
import { json } from '../../src/core/http/respond.js';
import type { Route } from '../../src/core/http/server.js';
import { adminRoute, readBody } from '../http/handlers.js';
import type { ConfigStore } from '../store/config-store.js';
import { passwordMatches } from './credentials.js';
import { endSession, issueSession } from './sessions.js';
import type { LoginThrottle } from './throttle.js';
import { normaliseUsername } from './username.js';

/**
 * POST /api/auth/login and /api/auth/logout: the customer portal's sessions. Both are open to any address (a
 * customer's browser is in no allowlist): login is how a customer gets a token, held back by the throttle;
 * logout only ends the session its token names. Log lines name the account and the session's id, never the
 * password or the token.
 */
export interface AuthRoutesContext {
  store: ConfigStore;
  log: Logger;
  maxBodyBytes: number;
  throttle: LoginThrottle;
  /** Whether the address is in auth_ips (an operator's logout without a token answers 200, as the contract says). */
  allowlisted: (address: string) => Promise<boolean>;
}

const CUSTOMER_ACCOUNTS = 'customer_accounts';

function text(body: Record<string, unknown>, name: string, max: number): string {
  const value = body[name];
  if (typeof value !== 'string' || value === '') throw new RequestError('invalid_field', `${name} is required`);
  if (value.length > max) throw new RequestError('invalid_field', `${name} is longer than ${max} characters`);
  return value;
}

export function authRoutes(context: AuthRoutesContext): Route[] {
  const { store, log, throttle } = context;
  const login = adminRoute('POST', '/api/auth/login', context.maxBodyBytes, async (request) => {
    const body = readBody(request);
    const username = normaliseUsername(text(body, 'username', 256));
    const password = text(body, 'password', 1024);
    const address = request.remoteAddress;
    const wait = throttle.retryAfterSeconds(username, address);
    if (wait > 0) {
      log.warn({ username, remote_address: address, retry_after: wait }, 'portal login refused: too many failed attempts');
      return { status: statusOf('too_many_attempts'), body: errorBody('too_many_attempts'), headers: { 'Retry-After': String(wait) } };
    }
    // Counted as failed before its password is checked (scrypt takes a while off the event loop), in the same
    // step as the throttle's check: guesses sent at once are then held back as guesses sent one after another.
    // Counted after, every guess sent before the first was checked passed the check.
    throttle.failed(username, address);
    const account = (await store.list(CUSTOMER_ACCOUNTS, { where: { username }, limit: 1, offset: 0 })).rows.at(0) ?? null;
    if (!(await passwordMatches(store, account === null ? null : (account.id as number), password))) {
      log.warn({ username, remote_address: address }, 'portal login failed');
      throw new RequestError('login_failed');
    }
    throttle.succeeded(username, address);
    if (account!.status !== 'active') {
      log.warn({ username, customer_account_id: account!.id, status: account!.status }, 'portal login refused: account not active');
      throw new RequestError('login_account_not_active', `customer account is ${String(account!.status)}`);
    }
    const { token, session } = await issueSession(store, account!.id as number);
    log.info({ username, customer_account_id: account!.id, session_id: session.id, remote_address: address }, 'portal login');
    return json(200, {
      id: account!.id,
      name: account!.name,
      username,
      currency: account!.currency,
      status: account!.status,
      token,
      expires_at: session.expiresAt,
      message: 'login successful',
    });
  });
  const logout: Route = {
    ...adminRoute('POST', '/api/auth/logout', context.maxBodyBytes, async (request) => {
      // The contract's logout has no body: one that is sent must be an empty JSON object, so a client sending
      // something else (a misrouted request, a wrong content type) hears so instead of a success.
      if (request.body.byteLength > 0) {
        const fields = Object.keys(readBody(request));
        if (fields.length > 0) throw new RequestError('invalid_field', `logout takes no fields (given: ${fields.join(', ')})`);
      }
      const token = bearerToken(request.authorization);
      if (token === null) {
        if (!(await context.allowlisted(request.remoteAddress))) throw new RequestError('authentication_required');
        return json(200, { message: 'logout successful' }); // an operator: no session to end (the contract's)
      }
      const ended = await endSession(store, token);
      if (ended !== null) log.info({ customer_account_id: ended.customerAccountId, session_id: ended.id }, 'portal logout');
      return json(200, { message: 'logout successful' });
    }),
    readsAuthorization: true,
  };
  return [login, logout];
}
