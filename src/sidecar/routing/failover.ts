import type { DecisionEngine } from '../engine/engine.js';
import type { FailoverAction } from '../../core/snapshot/schema.js';

export interface FailoverRequest {
  customer_trunk_id: number | null;
  carrier_trunk_id: number;
  failure_code: number;
}

/** The carrier's rule for this SIP code; no rule (or an unknown carrier) means try the next carrier. */
export function failoverAction(engine: DecisionEngine, request: FailoverRequest): { action: FailoverAction } {
  const carrier = engine.snapshot.carrierById.get(request.carrier_trunk_id);
  const action = carrier === undefined ? undefined : engine.snapshot.carriers[carrier].failoverRules.get(request.failure_code);
  return { action: action ?? 'retry_next' };
}
