import { ADDRESS_TEXT, ATTEMPT, BodyReader, ID, NUMBER_TEXT, SIP_CODE, URI_TEXT } from '../../core/http/body.js';
import { RequestError } from '../../core/http/errors.js';
import type { CallAuthRequest } from '../auth/call-auth.js';
import type { RegisterAuthRequest } from '../auth/register-auth.js';
import type { RouteRequest } from '../routing/route.js';
import { isIpAddress } from './fields.js';

/**
 * The bodies OpenSIPS sends for a call, read and checked once here: the contract's separate endpoints
 * (call/auth, register/auth, call/admit, call/route, call/failover) and the one-trip ones (call/decide,
 * call/reroute) read the same fields the same way, so a call decided either way sees the same input.
 */
const SIP_METHODS = ['REGISTER', 'INVITE', 'OPTIONS'] as const;
/**
 * OpenSIPS's $DLG_did, the dialog id MI's dlg_end_dlg takes: h_entry "." h_id, each a 32-bit number in hex
 * written lowest digit first without trailing zeros (int2reverse_hex in OpenSIPS's ut.h).
 */
const DIALOG_ID = /^(0|[0-9a-f]{0,7}[1-9a-f])\.(0|[0-9a-f]{0,7}[1-9a-f])$/;

export function readCallAuth(reader: BodyReader): CallAuthRequest {
  const sourceIp = reader.requiredString('source_ip', ADDRESS_TEXT);
  if (!isIpAddress(sourceIp)) throw new RequestError('invalid_field', 'source_ip must be an IPv4 or IPv6 address');
  const dnis = reader.string('dnis', NUMBER_TEXT) ?? null;
  const ruri = reader.string('ruri', URI_TEXT) ?? null;
  if ((dnis === null || dnis === '') && (ruri === null || ruri === '')) throw new RequestError('invalid_field', 'dnis is required');
  // Not used by the decision, but a wrong type there is still a malformed request.
  reader.string('from');
  reader.string('to');
  reader.string('privacy');
  return {
    source_ip: sourceIp,
    call_id: reader.string('call_id') ?? null,
    ani: reader.string('ani', NUMBER_TEXT) ?? null,
    dnis: dnis === '' ? null : dnis,
    ruri,
    pai: reader.string('pai') ?? null,
    ppi: reader.string('ppi') ?? null,
    rpid: reader.string('rpid') ?? null,
    username: reader.string('username', NUMBER_TEXT) ?? null,
    domain: reader.string('domain', NUMBER_TEXT) ?? null,
  };
}

/** register/auth's body (and call/decide's digest fields, when it carries credentials). */
export function readDigest(reader: BodyReader): RegisterAuthRequest {
  const method = reader.requiredString('method', ADDRESS_TEXT).toUpperCase();
  if (!(SIP_METHODS as readonly string[]).includes(method))
    throw new RequestError('invalid_field', `method must be one of ${SIP_METHODS.join(', ')}`);
  return {
    source_ip: reader.string('source_ip', ADDRESS_TEXT) ?? null,
    username: reader.requiredString('username', NUMBER_TEXT),
    realm: reader.requiredString('realm', NUMBER_TEXT),
    auth_response: reader.requiredString('auth_response', { maxLength: 8192 }),
    method,
    uri: reader.string('uri', URI_TEXT) ?? null,
  };
}

export function readRoute(reader: BodyReader): RouteRequest {
  return {
    customer_trunk_id: reader.requiredInteger('customer_trunk_id', ID),
    dnis: reader.requiredString('dnis', NUMBER_TEXT),
    ani: reader.string('ani', NUMBER_TEXT) ?? null,
    attempt: reader.integer('attempt', ATTEMPT) ?? 1,
    previous_carrier_trunk_id: reader.integer('previous_carrier_trunk_id', ID) ?? null,
    previous_gateway_id: reader.integer('previous_gateway_id', ID) ?? null,
    previous_failure_code: reader.integer('previous_failure_code', SIP_CODE) ?? null,
    tried_carrier_trunk_ids: reader.integerArray('tried_carrier_trunk_ids'),
    tried_gateway_ids: reader.integerArray('tried_gateway_ids'),
    // call/auth's answer for a call through a partner access number whose product names its sell deck: routed by that deck.
    sellDeckId: reader.integer('customer_rate_deck_id', ID),
  };
}

/** The dialog OpenSIPS created for the call: the sidecar ends it over MI when its credit runs out. */
export function readDialogId(reader: BodyReader): string | null {
  const text = reader.string('dialog_id', { maxLength: 32 });
  if (text === undefined || text === '') return null;
  if (!DIALOG_ID.test(text)) throw new RequestError('invalid_field', 'dialog_id must be the dialog id OpenSIPS gives ($DLG_did)');
  return text;
}
