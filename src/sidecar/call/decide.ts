import { refusalFields, type RefusalCode } from '../../core/errors/catalogue.js';
import { quoteJson } from '../../core/json/quote.js';
import { admitCall, type AdmitContext, type Answer } from '../admission/admit.js';
import { authorizeCall, type CallAuthAllowed, type CallAuthRequest } from '../auth/call-auth.js';
import { authorizeRegister, type RegisterAuthRequest } from '../auth/register-auth.js';
import { encodeCallAuthDecision, encodeRouteDecision } from './encode.js';
import type { CallCounters } from '../limits/call-counters.js';
import type { DigestReplayGuard } from '../auth/digest-replay.js';
import { failoverAction } from '../routing/failover.js';
import { firstAttemptRequest, routeCall, type RouteRequest } from '../routing/route.js';

/**
 * An INVITE decided in one request (POST /api/opensips/call/decide), as a chain of the steps the contract
 * exposes one by one:
 *
 *   digest (only when the INVITE carries credentials) → auth → admit → route
 *
 * Each step is the function behind its own endpoint, given what the earlier steps answered, exactly as the
 * script used to pass it along; the answer carries every step's own answer (`digest`, `auth`, `admit`,
 * `route`, null for a step not reached) and where the chain stopped. One round trip instead of three: each
 * blocking rest_post holds an OpenSIPS worker, and each request costs the sidecar its HTTP work again.
 *
 * A route refused after admission gives the reservation back here (the script would have called
 * call/release): nothing is left held for a call that goes nowhere.
 */
export interface CallContext extends AdmitContext {
  counters: CallCounters;
  /** Digest credentials already taken (the INVITE's Proxy-Authorization is good once). */
  digestReplays: DigestReplayGuard;
}

export interface DecideRequest {
  call: CallAuthRequest & { call_id: string };
  /** The INVITE's Proxy-Authorization, checked first; null: the trunk is known by its address. */
  digest: RegisterAuthRequest | null;
  dialogId: string | null;
}

export type Stage = 'digest' | 'auth' | 'admit' | 'route';

export interface Decided {
  body: string;
  stage: Stage;
  /** Durable before the answer goes out: the reservation an admitted call holds (or its release). */
  committed: Promise<unknown> | null;
}

interface Parts {
  digest: string;
  auth: string;
  admit: string;
  route: string;
}

const NOT_REACHED = 'null';
const str = JSON.stringify;

function decided(stage: Stage, refusal: RefusalCode | null, parts: Parts, sipCode?: number): string {
  const head =
    refusal === null
      ? `{"allowed":true,"stage":"${stage}","reject_code":null,"reject_reason":null,"reason_code":null`
      : `{"allowed":false,"stage":"${stage}",${refusalHead(refusal, sipCode)}`;
  return `${head},"digest":${parts.digest},"auth":${parts.auth},"admit":${parts.admit},"route":${parts.route}}`;
}

function refusalHead(code: RefusalCode, sipCode?: number): string {
  const fields = refusalFields(code, sipCode);
  return `"reject_code":${fields.reject_code},"reject_reason":${quoteJson(fields.reject_reason)},"reason_code":"${code}"`;
}

export function decideCall(context: CallContext, request: DecideRequest, now: number): Decided | Promise<Decided> {
  const { engine, metrics } = context;
  const parts: Parts = { digest: NOT_REACHED, auth: NOT_REACHED, admit: NOT_REACHED, route: NOT_REACHED };
  let call = request.call;

  if (request.digest !== null) {
    const { decision, outcome } = authorizeRegister(engine, request.digest, context.digestReplays, now);
    metrics.decided('register_auth', outcome);
    parts.digest = str(decision);
    if (!decision.allowed) return { body: decided('digest', decision.reason_code, parts), stage: 'digest', committed: null };
    // What the script passed to call/auth after a verified digest: the credentials' user and realm.
    call = { ...call, username: request.digest.username, domain: request.digest.realm };
  }

  const auth = authorizeCall(engine, call, context.credit.ports, now);
  metrics.decided('call_auth', auth.outcome);
  parts.auth = encodeCallAuthDecision(auth.decision);
  if (!auth.decision.allowed) {
    const { reason_code, reject_code } = auth.decision;
    return { body: decided('auth', reason_code, parts, reject_code), stage: 'auth', committed: null };
  }
  const caller = auth.decision;
  context.counters.recordAttempt('customer', caller.customer_trunk_id, now);

  const admitted = admitCall(
    context,
    {
      customer_trunk_id: caller.customer_trunk_id,
      dnis: caller.dnis,
      call_id: call.call_id,
      estimatedCostMicro: null,
      dialogId: request.dialogId,
      retailAccountId: caller.retail_account_id ?? null,
      dnisNode: caller.dnisNode,
      dnisRates: caller.dnisRates,
      sellDeckId: caller.customer_rate_deck_id,
      sellDeck: caller.sellDeck,
      sellDeckRates: caller.sellDeckRates,
    },
    now,
  );
  return admitted instanceof Promise
    ? admitted.then((answer) => afterAdmission(context, call, caller, answer, parts, now))
    : afterAdmission(context, call, caller, admitted, parts, now);
}

function afterAdmission(
  context: CallContext,
  { call_id: callId, ani: sentAni }: DecideRequest['call'],
  caller: CallAuthAllowed,
  admission: Answer,
  parts: Parts,
  now: number,
): Decided {
  context.metrics.decided('call_admit', admission.outcome);
  parts.admit = admission.body;
  if (admission.refusal !== null) return { body: decided('admit', admission.refusal, parts), stage: 'admit', committed: null };

  const route = routeCall(context.engine, firstAttempt(caller, sentAni), now);
  context.metrics.decided('call_route', route.outcome);
  parts.route = encodeRouteDecision(route.decision);
  if (route.decision.allowed) {
    context.counters.recordAttempt('carrier', route.decision.carrier_trunk_id, now);
    context.metrics.routedTo(route.decision.carrier_trunk_id);
    return { body: decided('route', null, parts), stage: 'route', committed: admission.committed };
  }
  // Nowhere to send it: the reservation goes back before the caller hears so (after it is durable, as a release would).
  const released = (admission.committed ?? Promise.resolve()).then(() => context.credit.release(callId, now));
  return { body: decided('route', route.decision.reason_code, parts), stage: 'route', committed: released };
}

/**
 * What the script sent to call/route for a call's first carrier (and what auth knows of the number's route and sell
 * deck, for a retail call). `sentAni`: the caller's number as sent, routed with when auth found none usable in it
 * (carrier ANI rules read its digits, as auth's customer rules did: callerBlock).
 */
export function firstAttempt(caller: CallAuthAllowed, sentAni: string | null = null): RouteRequest {
  return firstAttemptRequest(
    caller.customer_trunk_id,
    caller.dnis,
    caller.ani !== '' ? caller.ani : sentAni,
    caller.dnisNode,
    caller.dnisRates,
    caller.customer_rate_deck_id,
    caller.sellDeck,
    caller.sellDeckRates,
  );
}

/**
 * A carrier failed (or was over its limits): its failover rule, then the next carrier, in one request
 * (POST /api/opensips/call/reroute) instead of call/failover and call/route. `failureCode` null: nothing
 * failed (the script skipped a carrier at its limits), so no rule applies.
 */
export function rerouteCall(
  context: Pick<CallContext, 'engine' | 'metrics' | 'counters'>,
  request: RouteRequest,
  failureCode: number | null,
  now: number,
): string {
  const { engine, metrics } = context;
  let action = 'retry_next';
  // Nothing failed: the script skipped the carrier it was handed (at its CPS or port limit; mark_tried put it
  // last in the tried list) and sent it nothing, so the attempt counted for it when it was handed out goes back.
  const tried = request.tried_carrier_trunk_ids;
  if (failureCode === null && tried.length > 0) context.counters.giveBackAttempt('carrier', tried[tried.length - 1], now);
  if (failureCode !== null && request.previous_carrier_trunk_id !== null) {
    action = failoverAction(engine, {
      customer_trunk_id: request.customer_trunk_id,
      carrier_trunk_id: request.previous_carrier_trunk_id,
      failure_code: failureCode,
    }).action;
    metrics.decided('call_failover', action);
    metrics.failedOver(failureCode, action);
    if (action !== 'retry_next') return `{"allowed":false,"action":"${action}","route":null}`;
  }
  const route = routeCall(engine, request, now);
  metrics.decided('call_route', route.outcome);
  if (route.decision.allowed) {
    context.counters.recordAttempt('carrier', route.decision.carrier_trunk_id, now);
    metrics.routedTo(route.decision.carrier_trunk_id);
  }
  return `{"allowed":${route.decision.allowed},"action":"${action}","route":${encodeRouteDecision(route.decision)}}`;
}
