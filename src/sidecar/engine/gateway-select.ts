import type { CarrierTrunk, Gateway } from '../../core/snapshot/model.js';

/**
 * Picks a carrier's gateway for one attempt.
 * - failover: the lowest priority value not yet tried (ties: lowest id).
 * - load_balance: smooth weighted round robin (nginx's algorithm) over the
 *   untried gateways with weight > 0, so weights 3:1 give A A B A, not A A A B;
 *   when every untried gateway has weight 0, failover order applies.
 * Round-robin state lives per node and restarts with each snapshot.
 */
export class GatewaySelector {
  private readonly currentWeights = new Map<number, Float64Array>();

  select(carrierIndex: number, carrier: CarrierTrunk, triedGatewayIds: readonly number[], preview = false): Gateway | null {
    const { gateways } = carrier;
    if (carrier.multiIpMode === 'load_balance') {
      let weights = this.currentWeights.get(carrierIndex);
      if (weights === undefined) {
        weights = new Float64Array(gateways.length);
        this.currentWeights.set(carrierIndex, weights);
      }
      if (preview) weights = weights.slice();
      let total = 0;
      let best = -1;
      for (let i = 0; i < gateways.length; i++) {
        const gateway = gateways[i];
        if (gateway.weight <= 0 || (triedGatewayIds.length > 0 && triedGatewayIds.includes(gateway.id))) continue;
        weights[i] += gateway.weight;
        total += gateway.weight;
        if (best < 0 || weights[i] > weights[best]) best = i;
      }
      if (best >= 0) {
        weights[best] -= total;
        return gateways[best];
      }
    }
    for (const gateway of gateways) {
      if (!triedGatewayIds.includes(gateway.id)) return gateway;
    }
    return null;
  }
}
