import type { Logger } from 'pino';
import { leaseReclaimSeconds } from '../../src/core/protocol/node-sync.js';
import type { LedgerStore } from './store.js';
import { reclaimSilentNodesLeases } from './settlement.js';

/**
 * When this process last answered each node's money round, on the monotonic clock. The store keeps
 * that time on the wall clock (it must outlive a restart), but a wall clock that steps forward would
 * make a live node look silent and its leases would be taken back while it still admits on them. So a
 * lease is taken back only when both clocks agree: silent in the store, and unheard by this process
 * for the reclaim time (counted from its start for a node it has not heard yet). A node that failed over
 * to another control plane sharing a PostgreSQL store is unheard here however live it is: the store's
 * time alone speaks for it, which is why on PostgreSQL that time is the server's clock, written and
 * compared (LedgerSteps.silenceCutoff), never one centre's clock against another's.
 */
export class NodeSilence {
  private readonly heardAt = new Map<string, number>();
  private readonly startedAt: number;

  constructor(
    private readonly reclaimAfterMs: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.startedAt = now();
  }

  /** A money round of this node was answered. */
  heard(node: string): void {
    this.heardAt.set(node, this.now());
  }

  silent(node: string): boolean {
    return this.now() - (this.heardAt.get(node) ?? this.startedAt) >= this.reclaimAfterMs;
  }
}

/**
 * Takes back the leases of nodes that have gone silent (crashed, cut off,
 * decommissioned): without it, credit leased to a node that never comes
 * back stays reserved for ever and its accounts' calls elsewhere are refused
 * for want of headroom they have. Checks a few times per validity period.
 * The node-sync handler tells `silence` of every round it answers.
 */
export function startLeaseReclaim(
  ledger: LedgerStore,
  log: Logger,
  leaseValidSeconds: number,
  /** Told how many leases each sweep took back (the metrics). */
  reclaimed: (count: number) => void = () => undefined,
): { stop: () => void; silence: NodeSilence } {
  const reclaimAfterMs = leaseReclaimSeconds(leaseValidSeconds) * 1000;
  const silence = new NodeSilence(reclaimAfterMs);
  const sweep = async (): Promise<void> => {
    const taken = await ledger.run((tx) => reclaimSilentNodesLeases(tx, reclaimAfterMs, (node) => silence.silent(node)));
    reclaimed(taken.length);
    for (const lease of taken) {
      log.warn(
        {
          node: lease.node,
          entity_type: lease.entityType,
          entity_id: lease.entityId,
          amount: lease.amount,
          silent_since: lease.silentSince,
        },
        'credit lease of a silent node taken back',
      );
    }
  };
  const timer = setInterval(
    () => {
      sweep().catch((error: unknown) => log.error({ err: error }, 'lease reclaim failed'));
    },
    Math.min(60_000, Math.max(1000, (leaseValidSeconds * 1000) / 4)),
  );
  timer.unref();
  return { stop: () => clearInterval(timer), silence };
}
