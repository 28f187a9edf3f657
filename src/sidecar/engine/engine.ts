import { createCidrMatches, type CidrMatches } from '../../core/net/cidr-index.js';
import { GatewaySelector } from './gateway-select.js';
import { LcrEngine } from '../../core/lcr/lcr.js';
import type { CompiledSnapshot } from '../../core/snapshot/model.js';
import type { SmallTables } from '../../core/snapshot/schema.js';

/**
 * One compiled snapshot with the scratch space and per-node state its
 * decisions use. Swapping snapshots swaps the whole engine in one assignment,
 * so a request sees either the old snapshot or the new one, never a mix.
 */
export class DecisionEngine {
  readonly lcr: LcrEngine;
  readonly gateways = new GatewaySelector();
  readonly cidrMatches: CidrMatches = createCidrMatches();

  constructor(
    readonly snapshot: CompiledSnapshot,
    /**
     * Every table but the rates as of `snapshot.deltaSeq`: what the next live change applies to (null: an
     * engine built for a test or a bench, which takes none). Part of the engine so that both swap together.
     */
    readonly tables: SmallTables | null = null,
    /** The engine this one replaces after live changes that left the route caches right (routeCachesOutlive). */
    carryRouteCachesFrom: DecisionEngine | null = null,
  ) {
    this.lcr = new LcrEngine(snapshot, carryRouteCachesFrom?.lcr ?? null);
  }

  customerTrunkIndex(id: number): number {
    return this.snapshot.customerTrunkById.get(id) ?? -1;
  }

  /** A customer or carrier trunk with this id is in the snapshot (per-trunk counters take no other ids). */
  knowsTrunk(id: number): boolean {
    return this.snapshot.customerTrunkById.has(id) || this.snapshot.carrierById.has(id);
  }
}
