import type { DroutingCounts } from '../drouting/builder.js';
import { describeDatabase, type DroutingDatabase } from '../drouting/node-database.js';
import { MiError, miCall, type MiAddress } from '../../src/core/mi/client.js';

/**
 * Per node: write its drouting tables, `dr_reload` over MI, confirm what
 * the node loaded (its gateway and carrier counts), then `address_reload`
 * (the degraded mode's source-address groups) before calling it done.
 * A node whose data did not change is not reloaded. Reloads of one node never
 * overlap: a second request waits for the first.
 */
export interface ReloadTarget {
  nodeId: number;
  hostname: string;
  /** Parsed and checked against the node policy (sync/nodes/targets.ts). */
  miAddress: MiAddress;
  /** A file resolved under a node files root, or a database URL to an allowed host (sync/nodes/targets.ts). */
  droutingDb: DroutingDatabase;
  /** Checksum of the drouting data the node last loaded successfully. */
  loadedChecksum: string | null;
}

export interface ReloadResult {
  node_id: number;
  hostname: string;
  success: boolean;
  /** True when the node already had this data: nothing written, no reload. */
  skipped: boolean;
  error: string | null;
  duration_ms: number;
}

const inFlight = new Map<number, Promise<unknown>>();

function count(result: unknown, key: string): number | null {
  const list = (result as Record<string, unknown> | null)?.[key];
  return Array.isArray(list) ? list.length : null;
}

/** Puts the drouting rows into the node's database (written, or copied from a node written before). */
export type WriteTables = (target: DroutingDatabase) => Promise<void>;

async function reload(
  target: ReloadTarget,
  expected: DroutingCounts,
  checksum: string,
  writeTables: WriteTables,
  timeoutMs: number,
): Promise<ReloadResult> {
  const started = performance.now();
  const result = (success: boolean, skipped: boolean, error: string | null): ReloadResult => ({
    node_id: target.nodeId,
    hostname: target.hostname,
    success,
    skipped,
    error,
    duration_ms: Math.round(performance.now() - started),
  });
  if (target.loadedChecksum === checksum) return result(true, true, null);
  const address = target.miAddress;
  try {
    await writeTables(target.droutingDb);
  } catch (error) {
    return result(false, false, `cannot write drouting tables to ${describeDatabase(target.droutingDb)}: ${(error as Error).message}`);
  }
  try {
    const answer = await miCall(address, 'dr_reload', null, timeoutMs);
    if (answer !== 'OK') return result(false, false, `dr_reload answered ${JSON.stringify(answer).slice(0, 100)}`);
    const gateways = count(await miCall(address, 'dr_gw_status', null, timeoutMs), 'Gateways');
    const carriers = count(await miCall(address, 'dr_carrier_status', null, timeoutMs), 'Carriers');
    if (gateways !== expected.gateways || carriers !== expected.carriers) {
      return result(
        false,
        false,
        `node loaded ${gateways ?? '?'} gateways and ${carriers ?? '?'} carriers; ${expected.gateways} and ${expected.carriers} were written`,
      );
    }
    // The address rows (degraded mode's source-address groups). A node without the permissions module has nothing to reload.
    try {
      const reloaded = await miCall(address, 'address_reload', null, timeoutMs);
      if (reloaded !== 'OK') return result(false, false, `address_reload answered ${JSON.stringify(reloaded).slice(0, 100)}`);
    } catch (error) {
      if (!(error instanceof MiError && error.code === 'RPC' && /-32601|not found/i.test(error.message))) throw error;
    }
    return result(true, false, null);
  } catch (error) {
    if (error instanceof MiError && (error.code === 'TRANSPORT' || error.code === 'TIMEOUT'))
      // Typically the first sync of a new node, before OpenSIPS runs: the rows are in place, and OpenSIPS reads them at start.
      return result(
        false,
        false,
        `drouting tables written to ${describeDatabase(target.droutingDb)}, but OpenSIPS did not answer over MI (${error.message}): ` +
          'a node not running yet loads them when it starts; the next sync reloads a running one',
      );
    return result(false, false, error instanceof MiError ? error.message : String(error));
  }
}

export function reloadNode(
  target: ReloadTarget,
  expected: DroutingCounts,
  checksum: string,
  writeTables: WriteTables,
  timeoutMs = 30_000,
): Promise<ReloadResult> {
  const previous = inFlight.get(target.nodeId) ?? Promise.resolve();
  const next = previous.catch(() => undefined).then(() => reload(target, expected, checksum, writeTables, timeoutMs));
  inFlight.set(target.nodeId, next);
  void next.finally(() => {
    if (inFlight.get(target.nodeId) === next) inFlight.delete(target.nodeId);
  });
  return next;
}
