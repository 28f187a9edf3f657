import type { Logger } from 'pino';
import { leaseReclaimSeconds } from '../../src/ledger/protocol.js';
import type { ConfigStore } from '../store/config-store.js';
import { reclaimSilentNodesLeases } from './settlement.js';

/**
 * Takes back the leases of nodes that have gone silent (crashed, cut off,
 * decommissioned): without it, credit leased to a node that never comes
 * back stays reserved for ever and its accounts' calls elsewhere are refused
 * for want of headroom they have. Checks a few times per validity period.
 */
export function startLeaseReclaim(store: ConfigStore, log: Logger, leaseValidSeconds: number): { stop: () => void } {
  const sweep = async (): Promise<void> => {
    const silentSince = new Date(Date.now() - leaseReclaimSeconds(leaseValidSeconds) * 1000).toISOString();
    const reclaimed = await store.ledgerTransaction((tx) => reclaimSilentNodesLeases(tx, silentSince));
    for (const lease of reclaimed) {
      log.warn({ node: lease.node, entity_type: lease.entityType, entity_id: lease.entityId, amount: lease.amount, silent_since: silentSince }, 'credit lease of a silent node taken back');
    }
  };
  const timer = setInterval(() => {
    sweep().catch((error: unknown) => log.error({ err: error }, 'lease reclaim failed'));
  }, Math.min(60_000, Math.max(1000, (leaseValidSeconds * 1000) / 4)));
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
