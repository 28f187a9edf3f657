/**
 * Every way the sidecar and the control plane say no, once. A code is stable: clients, the OpenSIPS
 * script, dashboards and logs may depend on it. Bodies carry it as `reason_code`:
 *
 * - a refused call or registration (a decision endpoint's 200 answer with `allowed: false`) carries the
 *   entry's `sip` code as `reject_code` and its `reason` as `reject_reason`, which OpenSIPS sends as the
 *   SIP reason phrase;
 * - an error response (a request refused as a whole) has the entry's `http` status, the contract's
 *   ErrorResponse fields (`error`: a message naming what was wrong, `code`: the HTTP reason phrase,
 *   `status`) and `reason_code`.
 *
 * docs/errors.md documents every code; test/unit/error-catalogue.test.ts holds the two together.
 * Add a code here and there, never rename one.
 */
export interface CatalogueEntry {
  /** HTTP status of an error response with this code; null: only ever a refusal inside a 200 answer. */
  readonly http: number | null;
  /** SIP response code of a call or registration refused for this reason; null: not a call refusal. */
  readonly sip: number | null;
  /** A refusal's reject_reason (the SIP reason phrase), and an error's message when it has nothing to add. */
  readonly reason: string;
}

// Generic so that each entry keeps its literal statuses: ErrorCode and RefusalCode are derived from them.
function refusal<Sip extends number, Http extends number | null = null>(sip: Sip, reason: string, http: Http = null as Http) {
  return { http, sip, reason };
}
function error<Http extends number>(http: Http, reason: string) {
  return { http, sip: null, reason };
}

export const CATALOGUE = {
  // Calls and registrations refused (call/auth, register/auth, call/route, call/admit, the route simulator).
  source_ip_not_authorised: refusal(403, 'source ip not authorised'),
  invalid_credentials: refusal(403, 'invalid credentials'),
  credentials_reused: refusal(403, 'credentials already used'),
  invalid_dnis: refusal(484, 'invalid dnis'),
  ani_blocked: refusal(403, 'ani blocked'),
  dnis_blocked: refusal(403, 'dnis blocked'),
  unknown_customer_trunk: refusal(403, 'unknown customer trunk'),
  customer_trunk_not_active: refusal(403, 'customer trunk not active'),
  customer_account_not_active: refusal(403, 'customer account not active'),
  no_rate_deck: refusal(404, 'no rate deck assigned'),
  no_rate: refusal(404, 'no rate for the destination', 404),
  no_route: refusal(404, 'no route available'),
  no_exchange_rate: refusal(503, 'no exchange rate'),
  insufficient_balance: refusal(402, 'insufficient balance', 400),
  credit_unavailable: refusal(402, 'credit unavailable'),
  port_limit_reached: refusal(503, 'port limit reached'),
  call_id_reused: refusal(403, 'call id already used by an ended call'),
  no_call_translation: refusal(404, 'no call set up for this caller'),

  // Requests refused as a whole.
  invalid_json: error(400, 'the body must be a JSON object'),
  invalid_field: error(400, 'a field is missing, of the wrong type, out of range or too long'),
  invalid_parameter: error(400, 'a query or path parameter is unknown or malformed'),
  invalid_rate_sheet: error(400, 'the rate sheet has rows that cannot be imported'),
  validation_failed: error(422, 'the simulation request failed validation'),
  unsupported_media_type: error(415, 'the body must be application/json'),
  body_too_large: error(413, 'the body is larger than this endpoint takes'),
  no_such_endpoint: error(404, 'no such endpoint'),
  method_not_allowed: error(405, 'method not allowed on this endpoint'),
  not_found: error(404, 'no such record'),
  unknown_reference: error(422, 'a record the body refers to does not exist'),
  reference_mismatch: error(422, 'records the body refers to do not fit together'),
  duplicate: error(409, 'a record with these values already exists'),
  still_referenced: error(409, 'other records still refer to this one'),
  address_not_allowed: error(403, 'source address not authorised'),
  cross_site_request: error(403, 'a change another site asked an operator browser to make'),
  admin_host_not_allowed: error(421, 'the Host header does not name this control plane'),
  metrics_host_not_allowed: error(421, 'the Host header does not name this sidecar'),
  network_of_another_account: error(409, 'the network overlaps one another customer account calls from'),
  cdr_conflict: error(409, 'a different CDR was already ingested under this sip_call_id'),
  unrateable_cdr: error(422, 'the CDR cannot be rated'),
  unknown_node: error(404, 'the node is not registered'),
  stale_round: error(409, 'the money round is older than the last one applied for this node'),
  no_snapshot: error(503, 'no routing snapshot loaded'),
  journal_unavailable: error(503, 'the money journal cannot commit; nothing was recorded'),
  snapshot_empty: error(400, 'snapshot body is empty'),
  snapshot_malformed: error(422, 'the snapshot cannot be decoded'),
  snapshot_format_version: error(422, 'the snapshot format version is not one this sidecar reads'),
  snapshot_checksum: error(422, 'the snapshot checksum does not match its contents'),
  snapshot_integrity: error(422, 'the snapshot has a malformed row or a broken reference'),
  snapshot_stale_version: error(409, 'the snapshot is not newer than the one serving'),
  snapshot_store: error(503, 'the snapshot could not be stored or compiled'),
  internal_error: error(500, 'internal error'),
  node_target_not_allowed: error(422, "a node's path or host is outside what the control plane was started to allow"),
  store_unsyncable: error(422, 'the store holds a record the snapshot validation refuses; nothing was synced'),
  server_busy: error(503, 'the server holds as many request bodies as it may; retry later'),
  invalid_content_length: error(400, 'the Content-Length header is malformed or given twice with different values'),
  snapshot_queue_full: error(503, 'too many snapshots are waiting to compile; retry later'),
  node_unauthenticated: error(401, "the request does not carry the node's credential"),
  round_out_of_sequence: error(409, 'the money round number jumps too far past the last one applied for this node'),
  login_failed: error(401, 'unknown username or wrong password'),
  login_account_not_active: error(403, 'the customer account is not active'),
  too_many_attempts: error(429, 'too many failed logins; retry later'),
  authentication_required: error(401, 'no portal session given'),
  session_expired: error(401, 'the portal session has expired or ended'),
  metrics_token_invalid: error(401, 'the request does not carry the metrics scrape token'),
  permission_denied: error(403, 'the portal session may not do this'),
  update_not_pending: error(400, 'only a pending rate deck update can be deleted'),
  partner_token_invalid: error(403, 'missing or invalid authorization'),
  partner_tenant_not_active: error(403, 'the tenant is unknown or not active'),
  partner_operation_not_allowed: error(403, 'the tenant may not call this operation'),
  partner_out_of_scope: error(403, "the product or currency is not one of the tenant's"),
  unknown_field: error(400, 'the body has a field the operation does not take'),
  tenant_id_in_body: error(400, 'tenant_id is not accepted in a body'),
  invalid_amount: error(400, 'the amount is not a positive number the currency can hold'),
  invalid_account_code: error(400, 'the account code is not 1 to 12 digits'),
  idempotency_key_invalid: error(400, 'Idempotency-Key is missing or malformed'),
  idempotency_conflict: error(409, 'Idempotency key already used with a different request'),
  account_not_found: error(404, 'no such account in this product'),
  external_user_id_taken: error(409, 'another account of this product has this external_user_id'),
  account_deactivated: error(409, 'the account is deactivated'),
  account_out_of_scope: error(403, "the account is not one of the tenant's product's"),
  invalid_access_number: error(400, "the access number is not one of the product's"),
  partner_keys_unavailable: error(503, 'the token signing keys cannot be fetched; retry later'),
  partner_auth_throttled: error(429, 'too many refused tokens from this address; retry later'),
  partner_rate_limited: error(429, "the tenant's requests are over its rate; retry later"),
  sidecar_not_http: error(409, 'the node has no HTTP sidecar address to ask'),
  sidecar_unreachable: error(502, "the node's sidecar did not answer"),
  sync_elsewhere: error(409, 'another control plane on this store runs the routing sync'),
} as const satisfies Record<string, CatalogueEntry>;

export type ReasonCode = keyof typeof CATALOGUE;

/** Codes a request can be refused with as a whole (an error response). */
export type ErrorCode = { [Code in ReasonCode]: (typeof CATALOGUE)[Code]['http'] extends number ? Code : never }[ReasonCode];

/** Codes a call or registration can be refused with (inside a 200 answer). */
export type RefusalCode = { [Code in ReasonCode]: (typeof CATALOGUE)[Code]['sip'] extends number ? Code : never }[ReasonCode];

/** A refused call's fields, as every decision endpoint answers them. `sip` overrides the catalogue's (a block rule's own code). */
export function refusalFields<Code extends RefusalCode>(
  code: Code,
  sip?: number,
): { reject_code: number; reject_reason: string; reason_code: Code } {
  const entry: CatalogueEntry = CATALOGUE[code];
  return { reject_code: sip ?? entry.sip!, reject_reason: entry.reason, reason_code: code };
}
