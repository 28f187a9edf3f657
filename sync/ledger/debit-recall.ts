import type { Decimal } from '../../src/core/money/decimal.js';
import type { EntityType } from '../../src/core/protocol/node-sync.js';
import type { LeaseRecalls } from './lease-recall.js';
import type { LedgerStore } from './store.js';

/**
 * A debit (the admin API's, a partner's debit_balance) that the balance covers but its headroom does not:
 * the difference is credit leased to nodes. Rather than refuse while that lease sits unused on a node, the
 * centre recalls it over the live channel, holds back new grants of the entity by the debit's amount (so the
 * lease handed back goes to the debit, not to the next ask), and tries again, for at most DEBIT_RECALL_MS.
 *
 * Never an overspend: each attempt is the ledger's own transaction with its own check (balance less what
 * is leased), and a node gives back only what its calls do not hold. Never a blocked event loop: the waits
 * are timers and the nodes' rounds, not a held transaction.
 */
export const DEBIT_RECALL_MS = 2000;

/** What a refusal says when the balance holds the debit's amount but leases stand in the way. */
export interface HeldInLeases {
  entityType: EntityType;
  entityId: number;
  amount: Decimal;
}

export async function debitRecallingLeases<T>(
  context: { recalls: LeaseRecalls; ledger: LedgerStore },
  attempt: () => Promise<T>,
  /** The entity and amount when `error` is such a refusal; null for any other error (thrown at once). */
  heldInLeases: (error: unknown) => HeldInLeases | null,
  waitMs = DEBIT_RECALL_MS,
): Promise<T> {
  const { recalls, ledger } = context;
  const deadline = performance.now() + waitMs;
  let release: (() => void) | null = null;
  try {
    for (;;) {
      const returnsBefore = recalls.returns;
      try {
        return await attempt();
      } catch (error) {
        const held = heldInLeases(error);
        const left = deadline - performance.now();
        if (held === null || left <= 0) throw error;
        const { entityType, entityId } = held;
        if (release === null) {
          release = recalls.withhold(entityType, entityId, held.amount);
          // Every holder, even one that lately had nothing to spare: a call may have ended since.
          const holders = await ledger.leasesOf(entityType, entityId);
          for (const holder of holders) recalls.recallNow(holder.node, entityType, entityId, holder.amount, true);
          if (holders.length === 0) throw error;
        } else if (recalls.returns === returnsBefore && !recalls.recalling(entityType, entityId)) {
          // Every recalled node has answered and nothing came back since the last attempt: refused.
          throw error;
        }
        if (recalls.returns === returnsBefore) await recalls.whenReturned(entityType, entityId, left);
      }
    }
  } finally {
    release?.();
  }
}
