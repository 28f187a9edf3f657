import { parseDigestHeader, verifyDigest } from '../../core/digest/digest.js';
import { refusalFields } from '../../core/errors/catalogue.js';
import type { DecisionEngine } from '../engine/engine.js';
import { registrationKey } from '../../core/snapshot/model.js';
import type { DigestReplayGuard } from './digest-replay.js';

/** POST /api/opensips/register/auth, validated. */
export interface RegisterAuthRequest {
  source_ip: string | null;
  username: string;
  realm: string;
  /** The whole Authorization header value ("Digest username=..., response=..."). */
  auth_response: string;
  method: string;
  uri: string | null;
}

export type RegisterAuthDecision =
  | { allowed: true; customer_trunk_id: number }
  | { allowed: false; reject_code: number; reject_reason: string; reason_code: 'invalid_credentials' | 'credentials_reused' };

/** Why a REGISTER failed, for logs and metrics only: the answer stays "invalid credentials". */
export type RegisterAuthOutcome = 'allowed' | 'malformed_header' | 'identity_mismatch' | 'unknown_user' | 'bad_response' | 'reused';

const INVALID: RegisterAuthDecision = { allowed: false, ...refusalFields('invalid_credentials') };
const REUSED: RegisterAuthDecision = { allowed: false, ...refusalFields('credentials_reused') };

/**
 * Digest verification against the registration's stored HA1. The nonce was
 * issued by OpenSIPS, which checks its freshness; we check the response.
 * The realm must be the registration's domain; the header's username, realm
 * and uri must agree with what OpenSIPS says it challenged. Credentials that verify are good once
 * (`replays`, digest-replay.ts): OpenSIPS's one-use check does not run with the script's placeholder password.
 */
export function authorizeRegister(
  engine: DecisionEngine,
  request: RegisterAuthRequest,
  replays: DigestReplayGuard,
  now: number,
): { decision: RegisterAuthDecision; outcome: RegisterAuthOutcome; detail: string } {
  const parsed = parseDigestHeader(request.auth_response);
  if (!parsed.ok) return { decision: INVALID, outcome: 'malformed_header', detail: parsed.reason };
  const credentials = parsed.credentials;
  if (credentials.username !== request.username)
    return { decision: INVALID, outcome: 'identity_mismatch', detail: 'username differs from the header' };
  if (credentials.realm.toLowerCase() !== request.realm.toLowerCase())
    return { decision: INVALID, outcome: 'identity_mismatch', detail: 'realm differs from the header' };
  if (request.uri !== null && request.uri !== '' && credentials.uri !== request.uri)
    return { decision: INVALID, outcome: 'identity_mismatch', detail: 'uri differs from the header' };
  const registration = engine.snapshot.registrations.get(registrationKey(request.username, request.realm));
  if (registration === undefined)
    return { decision: INVALID, outcome: 'unknown_user', detail: 'no active registration for username and realm' };
  const verdict = verifyDigest(credentials, request.method, { ha1: registration.ha1, algorithm: registration.algorithm });
  if (!verdict.ok) return { decision: INVALID, outcome: 'bad_response', detail: verdict.reason };
  if (!replays.firstUse(credentials, now)) return { decision: REUSED, outcome: 'reused', detail: 'credentials already used' };
  const trunk = engine.snapshot.customerTrunks[registration.customerTrunk];
  return { decision: { allowed: true, customer_trunk_id: trunk.id }, outcome: 'allowed', detail: 'ok' };
}
