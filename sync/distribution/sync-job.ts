import type { Logger } from 'pino';
import { RequestError } from '../../src/core/http/errors.js';
import { encodeSnapshot, peekSnapshotHeader } from '../../src/core/snapshot/codec.js';
import type { SnapshotTables } from '../../src/core/snapshot/schema.js';
import { createHash } from 'node:crypto';
import { DroutingBuilder, type BuiltDrouting } from '../drouting/builder.js';
import { reloadNode, type ReloadResult } from '../mi/reload.js';
import { validateSnapshot } from '../../src/core/snapshot/validate.js';
import { DEFAULT_PUSH, pushToAll, type PushOptions, type SidecarResult, type SidecarTarget } from './push.js';
import { buildSnapshotTables } from '../snapshot/build.js';
import { unsyncable } from '../snapshot/unsyncable.js';
import type { ConfigStore, Row } from '../store/config-store.js';
import type { NodePolicy } from '../nodes/policy.js';
import { checkNodeTargets, type NodeTargets } from '../nodes/targets.js';
import { pushTokens } from '../store/node-credentials.js';
import { SyncHistory } from './sync-history.js';
import { LIVE_TABLES } from '../../src/core/snapshot/delta.js';

/**
 * One routing sync: read the store consistently, build and check the
 * snapshot, push it to every active node's sidecar, and write each node's
 * drouting tables and reload them over MI (the fallback when a sidecar is
 * down). Nodes are handled in parallel and reported one by one. Syncs never overlap: a
 * request while one runs waits for one follow-up run, shared by everyone who
 * asked meanwhile, so a burst of admin changes costs at most two builds.
 *
 * A `followLive` run (drouting follows live changes, sync/distribution/drouting-follow.ts) rewrites and reloads
 * the nodes' drouting tables only: the last sync's tables with the live tables as they stand now laid over
 * them, which is what the sidecars serve once they applied the deltas. Nothing is pushed (the sidecars have
 * the changes already), so a change that is not live still waits for a sync, in drouting as on the sidecars.
 * It queues with the syncs like any run.
 */
export interface SyncReport {
  gateways: number;
  carriers: number;
  rules: number;
  groups: number;
  /** Per-node drouting write + MI reload results. */
  reload_results: ReloadResult[];
  warnings: string[];
  /** Added: the snapshot built, and each node sidecar's answer to the push. */
  snapshot_version: number;
  sidecar_results: SidecarResult[];
}

/** Told of every run's end (the control plane's metrics): its report, or null when it failed before one. */
export type SyncObserver = (kind: 'sync' | 'drouting_follow', seconds: number, report: SyncReport | null) => void;

/** What the drouting rows depend on: the rate columns, every other table but block rules, and what is in force. */
interface DroutingInputs {
  rates: object;
  tablesDigest: string;
  inForce: number;
}

export class SyncJob {
  private running: Promise<SyncReport> | null = null;
  /** Builds and writes the drouting rows off the event loop, which meanwhile streams the snapshot to sidecars. */
  private readonly drouting = new DroutingBuilder();
  /** The drouting rows of the last sync and what they were built from: an unchanged input skips the build. */
  private lastDrouting: { inputs: DroutingInputs; built: BuiltDrouting } | null = null;
  private followUp: Promise<SyncReport> | null = null;
  /** Someone waiting on the follow-up asked for force: the follow-up forces. */
  private followUpForce = false;
  /** Someone waiting on the follow-up asked for a whole sync, not only drouting following live changes. */
  private followUpWhole = false;
  /** The tables of the last snapshot built: what a followLive run lays the live tables over. */
  private syncedTables: SnapshotTables | null = null;
  /** The last sync that finished with a report, and when: what the console's Network page shows per node. */
  private last: { report: SyncReport; finishedAt: string } | null = null;
  /** Every sync since start (bounded), and the one running: the console's Sync page. */
  readonly history = new SyncHistory();

  private readonly push: PushOptions;
  private readonly miTimeoutMs: number;
  private readonly flushed: () => Promise<void>;
  private readonly leads: () => boolean;
  private readonly term: () => number | null;
  private readonly observe: SyncObserver;

  constructor(
    private readonly store: ConfigStore,
    private readonly log: Logger,
    /** Every node's addresses are held to it again at each sync: a row stored before the rule fails its node. */
    private readonly policy: NodePolicy,
    /**
     * `flushed`: the store's group commit (store/wal-flush.ts), awaited before anything read is sent.
     * `leads`: whether this control plane may sync now; on a store several share, only the one holding the sync
     * lock (store/pg-leadership.ts): a sync asked of another is refused (sync_elsewhere), never run beside it.
     */
    options: {
      push?: PushOptions;
      miTimeoutMs?: number;
      flushed?: () => Promise<void>;
      leads?: () => boolean;
      /**
       * The sync lead term this control plane holds (store/pg-sync-lock.ts), taken as a sync starts and written
       * with its drouting as the node databases' fence (drouting/writer.ts SYNC_TERM_ROW); null: no fence.
       */
      term?: () => number | null;
      observe?: SyncObserver;
    } = {},
  ) {
    this.observe = options.observe ?? (() => undefined);
    this.push = options.push ?? DEFAULT_PUSH;
    this.leads = options.leads ?? (() => true);
    this.term = options.term ?? (() => null);
    this.flushed = options.flushed ?? (() => Promise.resolve());
    // Large reloads take seconds on OpenSIPS (383k rules: 4-8 s).
    this.miTimeoutMs = options.miTimeoutMs ?? 30_000;
  }

  /** Stops the drouting worker (a sync still running fails its drouting part). */
  close(): Promise<void> {
    return this.drouting.close();
  }

  /** The last finished sync's report (null before the first since start: it is kept in memory only). */
  lastRun(): { report: SyncReport; finishedAt: string } | null {
    return this.last;
  }

  /**
   * `force`: every sidecar takes this snapshot even if it serves a newer version (PushOptions.force).
   * `followLive`: drouting only, following live changes (see the class comment); not in the sync history.
   */
  run(options: { force?: boolean; followLive?: boolean } = {}): Promise<SyncReport> {
    const force = options.force === true;
    const followLive = options.followLive === true && !force;
    if (!this.leads()) return Promise.reject(new RequestError('sync_elsewhere'));
    if (this.running === null) {
      if (!followLive) this.history.started(force);
      const kind = followLive ? 'drouting_follow' : 'sync';
      const started = performance.now();
      this.running = this.execute(force, followLive)
        .then(
          (report) => {
            this.observe(kind, (performance.now() - started) / 1000, report);
            if (followLive) return report;
            const record = this.history.finished({ report });
            this.last = { report, finishedAt: record?.finished_at ?? new Date().toISOString() };
            return report;
          },
          (error: unknown) => {
            this.observe(kind, (performance.now() - started) / 1000, null);
            if (!followLive) this.history.finished({ error: error instanceof Error ? error.message : String(error) });
            throw error;
          },
        )
        .finally(() => {
          this.running = null;
        });
      return this.running;
    }
    this.followUpForce ||= force;
    this.followUpWhole ||= !followLive;
    this.followUp ??= this.running
      .catch(() => undefined)
      .then(() => {
        const forced = this.followUpForce;
        const whole = this.followUpWhole;
        this.followUp = null;
        this.followUpForce = false;
        this.followUpWhole = false;
        return this.run({ force: forced, followLive: !whole });
      });
    return this.followUp;
  }

  private async execute(force: boolean, followLive: boolean): Promise<SyncReport> {
    // The term the store is read under: should the lead pass meanwhile, a node the next leader has written refuses these rows.
    const term = this.term();
    const started = performance.now();
    const phases: Record<string, number> = {};
    let mark = started;
    const phase = (name: string): void => {
      const now = performance.now();
      phases[name] = Math.round(now - mark);
      mark = now;
      this.history.phase(PHASE_AFTER[name] ?? name);
    };
    const built = await buildSnapshotTables(this.store);
    // What a node is sent must not be lost by a power cut after it: a background write (lease reclaim, the
    // rate-deck scheduler) is acknowledged to nobody, so nothing else waited for it to reach the disk.
    await this.flushed();
    const tables = followLive && this.syncedTables !== null ? withLiveTables(this.syncedTables, built.tables) : built.tables;
    phase('read_ms');
    // Checked before anything is built or sent: a row the sidecar would refuse is named to the operator (422),
    // and every node keeps the snapshot it serves (and its drouting rows) until the row is fixed.
    const valid = validateSnapshot(tables);
    if (!valid.ok) throw await unsyncable(this.store, valid.reason, valid.row);
    phase('validate_ms');
    // drouting from the same data, through the sidecar's own compiler and LCR, in the drouting worker while
    // this thread encodes and uploads (or as last time, if nothing it reads changed).
    const now = Date.now();
    const inputs = droutingInputs(tables, now);
    const last = this.lastDrouting;
    const reuse = last !== null && last.built.generation === this.drouting.generation && sameInputs(last.inputs, inputs);
    // A new build replaces the worker's rows, whatever becomes of this sync: the last ones are no longer there to reuse.
    if (!reuse) this.lastDrouting = null;
    const droutingBuild: Promise<BuiltDrouting | string> = reuse
      ? Promise.resolve(last.built)
      : this.drouting.build(tables, now).then(
          (result) => result,
          (error: unknown) => `drouting rows not built: ${(error as Error).message}`,
        );
    // The lead may have passed while the store was read (this centre's lock connection broke): the new leader
    // syncs on taking it, so this one records and sends nothing rather than push beside it.
    if (!this.leads()) throw new RequestError('sync_elsewhere');
    let version = await this.store.lastSnapshotVersion();
    let bytes: Uint8Array | null = null;
    if (!followLive) {
      // None when another centre took the lead since this sync started: this snapshot, read before, would outrank its.
      const next = await this.store.nextSnapshotVersion(term);
      if (next === null) throw new RequestError('sync_elsewhere');
      version = next;
      const createdAt = new Date().toISOString();
      bytes = encodeSnapshot(built.tables, version, createdAt);
      await this.store.recordSnapshot(version, createdAt, peekSnapshotHeader(bytes)?.checksum ?? '', built.counts, built.tables.delta_seq);
      this.syncedTables = built.tables;
    }
    phase('encode_ms');

    const nodes = (await this.store.list('opensips_nodes', { where: {}, limit: null, offset: 0 })).rows;
    const warnings = [...built.warnings];
    const active = nodes.filter((node) => node.status === 'active');
    for (const node of nodes)
      if (node.status !== 'active') warnings.push(`node ${String(node.id)} (${String(node.hostname)}) skipped: ${String(node.status)}`);
    // Each node's addresses, held to the node policy again: a refused node gets nothing, pushed or written.
    const checked = await Promise.all(active.map((node) => checkNodeTargets(this.policy, node)));
    const refused: { nodeId: number; hostname: string; error: string }[] = [];
    const allowed: { node: Row; targets: NodeTargets }[] = [];
    active.forEach((node, index) => {
      const check = checked[index];
      if (check.ok) allowed.push({ node, targets: check.targets });
      else
        refused.push({
          nodeId: node.id as number,
          hostname: node.hostname as string,
          error: `refused by the node policy, nothing pushed or written: ${check.message}`,
        });
    });
    const targets: SidecarTarget[] = [];
    for (const { node, targets: addresses } of allowed) {
      if (addresses.sidecar === null)
        warnings.push(`node ${String(node.id)} (${String(node.hostname)}) has no sidecar_address: not pushed`);
      else
        targets.push({
          nodeId: node.id as number,
          hostname: node.hostname as string,
          address: addresses.sidecar,
          pushTokens: await pushTokens(this.store, node.id as number),
        });
    }
    // The sidecars decode and compile in their own processes while the drouting worker builds.
    const pushes =
      bytes === null
        ? Promise.resolve([])
        : pushToAll(targets, bytes, version, { ...this.push, force }).then((results) => [
            ...results,
            ...refused.map((node) => refusedPush(node.nodeId, node.hostname, node.error)),
          ]);

    const builtDrouting = await droutingBuild;
    const drouting = typeof builtDrouting === 'string' ? null : builtDrouting;
    const droutingError = typeof builtDrouting === 'string' ? builtDrouting : null;
    this.lastDrouting = drouting === null ? null : { inputs, built: drouting };
    if (droutingError !== null) warnings.push(droutingError);
    phase('drouting_build_wait_ms');
    const reloads: Promise<ReloadResult>[] = refused.map((node) =>
      Promise.resolve({ node_id: node.nodeId, hostname: node.hostname, success: false, skipped: false, error: node.error, duration_ms: 0 }),
    );
    for (const { node, targets: addresses } of allowed) {
      if (addresses.droutingDb === null) {
        warnings.push(`node ${String(node.id)} (${String(node.hostname)}) has no drouting_db: no drouting fallback written`);
        continue;
      }
      const target = {
        nodeId: node.id as number,
        hostname: node.hostname as string,
        miAddress: addresses.mi,
        droutingDb: addresses.droutingDb,
        loadedChecksum: node.drouting_checksum as string | null,
      };
      if (drouting === null) {
        reloads.push(
          Promise.resolve({
            node_id: target.nodeId,
            hostname: target.hostname,
            success: false,
            skipped: false,
            error: droutingError,
            duration_ms: 0,
          }),
        );
        continue;
      }
      const { checksum, counts } = drouting;
      reloads.push(
        reloadNode(target, counts, checksum, (database) => this.drouting.write(checksum, database, term), this.miTimeoutMs).then(
          async (result) => {
            if (result.success && !result.skipped)
              await this.store.update('opensips_nodes', result.node_id, {
                drouting_checksum: checksum,
                last_seen_at: new Date().toISOString(),
              });
            return result;
          },
        ),
      );
    }
    if (nodes.length === 0) warnings.push('no OpenSIPS nodes registered: the snapshot was built but sent nowhere');
    const [sidecarResults, reloadResults] = await Promise.all([pushes, Promise.all(reloads)]);
    for (const result of sidecarResults)
      if (!result.success)
        warnings.push(`node ${result.node_id} (${result.hostname}) did not take the snapshot: ${result.error ?? 'unknown'}`);
    for (const result of reloadResults)
      if (!result.success)
        warnings.push(`node ${result.node_id} (${result.hostname}) drouting reload failed: ${result.error ?? 'unknown'}`);
    phase('distribute_ms');
    this.log.info(
      {
        version,
        bytes: bytes?.byteLength ?? 0,
        follow_live: followLive,
        phases,
        seconds: (performance.now() - started) / 1000,
        nodes: sidecarResults.length,
        failed: sidecarResults.filter((result) => !result.success).length,
      },
      followLive ? 'drouting followed live changes' : 'routing sync done',
    );
    return {
      gateways: drouting?.counts.gateways ?? 0,
      carriers: drouting?.counts.carriers ?? 0,
      rules: drouting?.counts.rules ?? 0,
      groups: drouting?.counts.groups ?? 0,
      reload_results: reloadResults,
      warnings,
      snapshot_version: version,
      sidecar_results: sidecarResults,
    };
  }
}

/** What a sync does after each measured phase, as the Sync page shows its progress. */
const PHASE_AFTER: Record<string, string> = {
  read_ms: 'checking the snapshot',
  validate_ms: 'encoding the snapshot',
  encode_ms: 'pushing to sidecars and building drouting rows',
  drouting_build_wait_ms: 'pushing to sidecars and reloading drouting',
  distribute_ms: 'done',
};

function refusedPush(nodeId: number, hostname: string, error: string): SidecarResult {
  return { node_id: nodeId, hostname, success: false, version: null, attempts: 0, duration_ms: 0, error };
}

/** The last snapshot's tables with the live ones (and the delta sequence) as `now` holds them. */
function withLiveTables(synced: SnapshotTables, now: SnapshotTables): SnapshotTables {
  const tables: Record<string, unknown> = { ...synced, delta_seq: now.delta_seq };
  for (const table of LIVE_TABLES) tables[table] = now[table];
  return tables as unknown as SnapshotTables;
}

function sameInputs(a: DroutingInputs, b: DroutingInputs): boolean {
  return a.rates === b.rates && a.tablesDigest === b.tablesDigest && a.inForce === b.inForce;
}

function droutingInputs(tables: SnapshotTables, now: number): DroutingInputs {
  // Block rules are left out: drouting cannot express them, so they never change its rows.
  const others: Partial<SnapshotTables> = { ...tables };
  delete others.rate_deck_rates;
  delete others.block_rules;
  delete others.delta_seq; // moves with every live change, block rules' too
  // Nor do the partner API's access numbers and translations (a setup_call must not rebuild drouting).
  delete others.retail_products;
  delete others.call_translations;
  const rates = tables.rate_deck_rates;
  let inForce = 0;
  for (let i = 0; i < rates.effective_at.length; i++) if (rates.effective_at[i] <= now) inForce++;
  for (const row of tables.exchange_rates) if (Date.parse(row.effective_at) <= now) inForce++;
  return { rates, tablesDigest: createHash('sha256').update(JSON.stringify(others)).digest('hex'), inForce };
}
