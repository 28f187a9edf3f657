import type { EntityType, LeaseRecall } from '../../src/core/protocol/node-sync.js';

/**
 * Lease the centre wants back: when a call on one node could not be leased what it needed (or the headroom
 * is short and leased call by call) while other nodes hold lease on the same entity, those nodes are told,
 * in the answer to their next money round, to hand back what their live calls do not hold. There is no
 * channel to a node but its own rounds, so the marks wait here until then.
 *
 * In memory: a mark lost with a restart of the control plane costs only time (the node still returns an
 * idle lease after --lease-idle-seconds, and the next short ask marks it again); money is never at stake,
 * since a node gives back only what it has not admitted on.
 */
export class LeaseRecalls {
  private readonly marks = new Map<string, Map<string, LeaseRecall>>();

  /** `node` is to give back its unused lease of the entity at its next round. */
  mark(node: string, entityType: EntityType, entityId: number): void {
    let entities = this.marks.get(node);
    if (entities === undefined) {
      entities = new Map();
      this.marks.set(node, entities);
    }
    entities.set(`${entityType}:${entityId}`, { entity_type: entityType, entity_id: entityId });
  }

  /** The marks for a node whose round is being answered; they are cleared, as the answer carries them. */
  take(node: string): LeaseRecall[] {
    const entities = this.marks.get(node);
    if (entities === undefined) return [];
    this.marks.delete(node);
    return [...entities.values()];
  }
}
