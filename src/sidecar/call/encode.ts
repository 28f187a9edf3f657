import { quoteJson } from '../../core/json/quote.js';
import type { CallAuthDecision } from '../auth/call-auth.js';
import type { RouteDecision } from '../routing/route.js';

/**
 * Encoders for the two answers OpenSIPS asks for on every call. Their shape
 * is fixed, so a template beats JSON.stringify's generic walk (about a
 * microsecond a call). Strings go through quoteJson (JSON.stringify's bytes,
 * without its runtime call for the printable ASCII a number or a URI is), so
 * escaping stays correct; test/unit/encode.test.ts pins the bytes to JSON.stringify's.
 */
const str = JSON.stringify;

export function encodeRouteDecision(decision: RouteDecision): string {
  if (!decision.allowed) return str(decision);
  return (
    `{"allowed":true,"customer_trunk_id":${decision.customer_trunk_id},"carrier_trunk_id":${decision.carrier_trunk_id},` +
    `"carrier_gateway_id":${decision.carrier_gateway_id},"destination_uri":${quoteJson(decision.destination_uri)},` +
    `"outbound_dnis":${quoteJson(decision.outbound_dnis)},"cps_limit":${decision.cps_limit},"port_limit":${decision.port_limit},` +
    `"per_minute_rate_limit":${decision.per_minute_rate_limit},"sip_trusted":${decision.sip_trusted},"rtpengine_enabled":${decision.rtpengine_enabled}}`
  );
}

export function encodeCallAuthDecision(decision: CallAuthDecision): string {
  if (!decision.allowed) return str(decision);
  return (
    `{"allowed":true,"trunk_type":"customer","customer_trunk_id":${decision.customer_trunk_id},"ani":${quoteJson(decision.ani)},` +
    `"dnis":${quoteJson(decision.dnis)},"cps_limit":${decision.cps_limit},"port_limit":${decision.port_limit},` +
    `"per_minute_rate_limit":${decision.per_minute_rate_limit},"sip_trusted":${decision.sip_trusted},"rtpengine_enabled":${decision.rtpengine_enabled}` +
    (decision.retail_account_id === undefined ? '' : `,"retail_account_id":${decision.retail_account_id}`) +
    (decision.customer_rate_deck_id === undefined ? '}' : `,"customer_rate_deck_id":${decision.customer_rate_deck_id}}`)
  );
}
