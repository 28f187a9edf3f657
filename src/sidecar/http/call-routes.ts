import { BodyReader, SIP_CODE, parseJsonObject } from '../../core/http/body.js';
import type { OutgoingResponse, Route } from '../../core/http/server.js';
import { decideCall, rerouteCall, type CallContext, type Decided, type DecideRequest } from '../call/decide.js';
import { readCallAuth, readDialogId, readDigest, readRoute } from './call-requests.js';
import type { SidecarContext } from './context.js';
import { callIdField, servingEngine } from './fields.js';

/**
 * The one-trip call endpoints the OpenSIPS script uses: call/decide (digest, auth, admission and the first
 * route of an INVITE) and call/reroute (a failed carrier's failover rule and the next route). Each answers
 * with the separate endpoints' own answers inside (docs/contract-notes.md).
 */
function answered(decided: Decided): OutgoingResponse | Promise<OutgoingResponse> {
  const response = { status: 200, body: decided.body };
  return decided.committed === null ? response : decided.committed.then(() => response);
}

export function callRoutes(context: SidecarContext): Route[] {
  const { snapshots, post } = context;
  const callContext = (): CallContext => ({
    engine: servingEngine(snapshots),
    credit: context.credit,
    metrics: context.metrics,
    log: context.log,
    counters: context.counters,
    digestReplays: context.digestReplays,
  });

  return [
    post('/api/opensips/call/decide', (request) => {
      const reader = new BodyReader(parseJsonObject(request.body, request.contentType));
      // call/auth's fields, then the Call-ID, which call/decide requires (and checks): set on the object read,
      // not spread into a copy of it.
      const call = readCallAuth(reader) as DecideRequest['call'];
      call.call_id = callIdField(reader, 'call_id', true)!;
      // Credentials on the INVITE: register/auth's fields, checked before the caller is identified.
      const digest = reader.string('auth_response') === undefined ? null : readDigest(reader);
      const dialogId = readDialogId(reader);
      const decided = decideCall(callContext(), { call, digest, dialogId }, Date.now());
      return decided instanceof Promise ? decided.then(answered) : answered(decided);
    }),

    post('/api/opensips/call/reroute', (request) => {
      const reader = new BodyReader(parseJsonObject(request.body, request.contentType));
      const route = readRoute(reader);
      const failureCode = reader.integer('failure_code', SIP_CODE) ?? null;
      return { status: 200, body: rerouteCall(callContext(), route, failureCode, Date.now()) };
    }),
  ];
}
