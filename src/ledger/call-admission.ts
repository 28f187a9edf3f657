import type { Logger } from 'pino';
import type { DecisionEngine } from '../engine.js';
import type { SidecarMetrics } from '../metrics/metrics.js';
import { formatMicro } from '../money/micro.js';
import { isRoutableDnis, normalizeNumber } from '../numbers/normalize.js';
import { affordable, priceCall } from './admission.js';
import type { AdmitOutcome, EntityMoney, NodeLedger, Plan } from './node-ledger.js';
import type { EntityType } from './protocol.js';

/**
 * The financial gate: POST /api/opensips/call/admit (price the call from the
 * trunk's sell rate, reserve what the account can afford up to the admission
 * duration, and say how long the call may last) and POST
 * /api/call-admit/check (reserve a given amount against an entity).
 */
export interface AdmitCallInput {
  customer_trunk_id: number;
  dnis: string | null;
  call_id: string | null;
  /** Micro-units in the account's currency; null: priced from the sell rate. */
  estimatedCostMicro: number | null;
}

export interface AdmitContext {
  engine: DecisionEngine;
  ledger: NodeLedger;
  metrics: SidecarMetrics;
  log: Logger;
}

export interface Answer {
  /** The JSON body. */
  body: string;
  outcome: string;
  /** The reservation the answer acknowledges; the answer goes out only once it is durable. null: nothing to wait for. */
  committed: Promise<void> | null;
}

let generatedCallIds = 0;
/** Reservations without a Call-ID still need a key; they end by release or expiry. */
function callIdOrGenerated(callId: string | null): string {
  return callId ?? `no-call-id-${process.pid}-${Date.now()}-${++generatedCallIds}`;
}

function refusal(code: number, reason: string, headroom: string | null = null): Answer {
  return { body: JSON.stringify({ allowed: false, headroom, reject_code: code, reject_reason: reason, max_duration_seconds: null }), outcome: reason, committed: null };
}

const lastWarning = new Map<number, number>();

/** Within the lease the answer is decided at once; a promise only when it waits for the centre. */
export function admitCall(context: AdmitContext, input: AdmitCallInput, now: number): Answer | Promise<Answer> {
  const { engine, ledger } = context;
  const trunkIndex = engine.customerTrunkIndex(input.customer_trunk_id);
  if (trunkIndex < 0) return refusal(403, 'unknown_customer_trunk');
  const trunk = engine.snapshot.customerTrunks[trunkIndex];
  if (!trunk.active) return refusal(403, 'customer_trunk_not_active');
  const account = engine.snapshot.accounts.get(trunk.accountId)!;

  let plan: (availableMicro: number) => Plan | null;
  const estimated = input.estimatedCostMicro;
  if (estimated !== null) {
    plan = (available) => (estimated <= available ? { amountMicro: estimated, maxDurationSeconds: null } : null);
  } else {
    const dnis = normalizeNumber(input.dnis ?? '');
    if (dnis === null || !isRoutableDnis(dnis)) return refusal(484, 'invalid_dnis');
    const priced = priceCall(engine, trunk, account.currency, dnis, now);
    if (!priced.ok) return refusal(priced.reason === 'no_exchange_rate' ? 503 : 404, priced.reason);
    const { price } = priced;
    const cap = ledger.settings.admissionSeconds;
    plan = (available) => {
      const fit = affordable(price, available, cap);
      return fit === null ? null : { amountMicro: fit.amountMicro, maxDurationSeconds: fit.maxDurationSeconds };
    };
  }

  const outcome = ledger.admit({
    entity: { type: 'customer', id: account.id },
    callId: callIdOrGenerated(input.call_id),
    plan,
    enforce: account.enforcesHeadroom,
    admitWhenUnreachable: account.billingMode === 'postpaid' && ledger.settings.offlinePostpaid === 'allow',
    answer: 'admit',
    now,
  });
  const answer = (settled: AdmitOutcome): Answer => {
    if (settled.kind === 'reserved') {
      const { entity } = settled;
      // Only against figures the centre has given: a postpaid account without cutoff asks for no lease, so learn them once.
      if (Number.isNaN(entity.centreHeadroomMicro)) ledger.learnHeadroom(entity, now);
      else if (entity.headroomMicro < account.warningThresholdMicro) warnLowBalance(context, account.id, entity, now);
    }
    return answerOf(settled, (entity) => refusal(402, settled.kind === 'refused' ? settled.reason : '', formatMicro(entity.headroomMicro)));
  };
  return outcome instanceof Promise ? outcome.then(answer) : answer(outcome);
}

function answerOf(outcome: AdmitOutcome, refused: (entity: EntityMoney) => Answer): Answer {
  switch (outcome.kind) {
    case 'refused':
      return refused(outcome.entity);
    case 'replayed':
      return { body: outcome.answer, outcome: 'replayed', committed: null };
    case 'reserved':
      return { body: outcome.answer, outcome: outcome.waited ? 'admitted_after_lease_wait' : 'admitted', committed: outcome.committed };
  }
}

function warnLowBalance(context: AdmitContext, accountId: number, entity: EntityMoney, now: number): void {
  context.metrics.balanceWarnings.inc();
  if (now - (lastWarning.get(accountId) ?? 0) < 60_000) return;
  lastWarning.set(accountId, now);
  context.log.warn({ customer_account_id: accountId, headroom: formatMicro(entity.headroomMicro) }, 'account below its warning threshold');
}

export interface CheckInput {
  entity_type: EntityType;
  entity_id: number;
  estimatedCostMicro: number;
  call_id: string | null;
}

/** POST /api/call-admit/check: reserve exactly the estimated cost, or refuse. null: no such entity. */
export function checkAndReserve(context: AdmitContext, input: CheckInput, now: number): Answer | Promise<Answer> | null {
  const { engine, ledger } = context;
  let enforce = true;
  let admitWhenUnreachable = false;
  if (input.entity_type === 'customer') {
    const account = engine.snapshot.accounts.get(input.entity_id);
    if (account === undefined) return null;
    enforce = account.enforcesHeadroom;
    admitWhenUnreachable = account.billingMode === 'postpaid' && ledger.settings.offlinePostpaid === 'allow';
  } else if (!engine.snapshot.carrierById.has(input.entity_id)) {
    return null;
  }
  const amount = input.estimatedCostMicro;
  const outcome = ledger.admit({
    entity: { type: input.entity_type, id: input.entity_id },
    callId: callIdOrGenerated(input.call_id),
    plan: (available) => (amount <= available ? { amountMicro: amount, maxDurationSeconds: null } : null),
    enforce,
    admitWhenUnreachable,
    answer: 'check',
    now,
  });
  const answer = (settled: AdmitOutcome): Answer =>
    answerOf(settled, (entity) => ({
      body: JSON.stringify({
        allowed: false,
        headroom: formatMicro(entity.headroomMicro),
        message: settled.kind === 'refused' && settled.reason === 'credit_unavailable' ? 'credit unavailable: control plane unreachable' : 'insufficient balance',
      }),
      outcome: settled.kind === 'refused' ? settled.reason : '',
      committed: null,
    }));
  return outcome instanceof Promise ? outcome.then(answer) : answer(outcome);
}
