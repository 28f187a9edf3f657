import type { Logger } from 'pino';
import { RequestError } from '../../src/core/http/errors.js';
import { errorBody, statusOf } from '../../src/core/http/errors.js';
import { parseQuery, queryFlag, queryInteger } from '../../src/core/http/query.js';
import { json } from '../../src/core/http/respond.js';
import type { IncomingRequest, Route } from '../../src/core/http/server.js';
import type { DeltaBatch } from '../../src/core/protocol/deltas.js';
import { adminRoute } from '../http/handlers.js';
import { authenticateNode } from '../ledger/node-auth.js';
import { NodeSyncRefusal } from '../ledger/settlement.js';
import type { LeaseRecalls } from '../ledger/lease-recall.js';
import type { LedgerStore } from '../ledger/store.js';
import type { ConfigStore } from '../store/config-store.js';
import type { DeltaFeed } from './feed.js';

/**
 * The live channel's centre end (issue 18), the embedded transport: a node asks
 * `GET /api/nodes/deltas?node=<hostname>&after=<seq>[&wait_ms=<ms>]` with its secret as Bearer; the answer is
 * every delta past `after` the log holds (up to MAX_BATCH, in order), at once if there are any, else as soon
 * as one commits, else an empty batch after `wait_ms`. `after` is also the node's report of what it has
 * applied: the centre keeps it per node for the sync status (`GET /api/opensips/deltas`).
 *
 * A node whose `after` the log no longer reaches gets `snapshot_required` and the centre starts a sync, which
 * pushes a snapshot to every node with a sidecar address (at most one such sync per node per SNAPSHOT_ASK_MS);
 * so does a node that asks with `snapshot=1` (it could not apply a delta: one names a row only a sync carries,
 * a carrier trunk created since its snapshot, say).
 *
 * Money rides the same answers: a node's pending money signals (lease-recall.ts: recall, refresh) wake its held
 * ask and go in the answer as `money`, so a recall or a top-up reaches the node within a round trip.
 */
export const MAX_BATCH = 1000;
/** The longest a node's ask is held: under uWebSockets.js's ~10 s idle close of a silent connection. */
export const MAX_WAIT_MS = 8000;
const SNAPSHOT_ASK_MS = 5000;
/** The newest deltas the status answer lists. */
const RECENT_SHOWN = 20;

export interface NodeProgress {
  applied_seq: number;
  /** When the node last asked (ISO 8601). */
  seen_at: string;
  /** The node's ask is held open now, waiting for the next delta. */
  waiting: boolean;
  snapshot_required: boolean;
}

export interface DeltaRoutesContext {
  store: ConfigStore;
  ledger: LedgerStore;
  /** SQLite's DeltaLog, or the PostgreSQL feed (feed.ts). */
  deltas: DeltaFeed;
  log: Logger;
  /** A routing sync in the background (sync/main.ts). */
  requestSync: (reason: string) => void;
  /** Money signals for the nodes (recall, refresh), carried by the same answers (sync/ledger/lease-recall.ts). */
  recalls?: LeaseRecalls;
  /** The store's group commit (store/wal-flush.ts). */
  flushed?: () => Promise<void>;
  /** Each node's last ask, by hostname (absent: one of the routes' own); the metrics read the nodes' lag from it. */
  progress?: Map<string, NodeProgress>;
  /** Told of each ask answered snapshot_required (the metrics). */
  onSnapshotRequired?: () => void;
}

export function deltaRoutes(context: DeltaRoutesContext): Route[] {
  const { deltas, ledger, log, recalls: money } = context;
  const progress = context.progress ?? new Map<string, NodeProgress>();
  const snapshotAsked = new Map<string, number>();

  const ask = async (request: IncomingRequest) => {
    const params = parseQuery(request.query, ['node', 'after', 'wait_ms', 'snapshot']);
    const node = params.get('node');
    if (node === null || node.length === 0 || node.length > 255)
      throw new RequestError('invalid_parameter', 'node must be the node hostname');
    const after = queryInteger(params, 'after', 0, Number.MAX_SAFE_INTEGER);
    if (after === null) throw new RequestError('invalid_parameter', 'after is required: the last delta sequence the node applied');
    const waitMs = queryInteger(params, 'wait_ms', 0, MAX_WAIT_MS) ?? MAX_WAIT_MS;
    try {
      await ledger.run((tx) => authenticateNode(tx, node, request.authorization));
    } catch (error) {
      if (!(error instanceof NodeSyncRefusal)) throw error;
      if (error.code === 'node_unauthenticated')
        log.warn({ node, remote_address: request.remoteAddress }, "delta ask refused: it does not carry the node's secret");
      return { status: statusOf(error.code), body: errorBody(error.code, error.message) };
    }
    const seen: NodeProgress = { applied_seq: after, seen_at: new Date().toISOString(), waiting: false, snapshot_required: false };
    progress.set(node, seen);
    // snapshot=1: the node cannot apply what follows its sequence (a delta names a row only a sync carries).
    let batch = queryFlag(params, 'snapshot') ? null : await deltas.read(after, MAX_BATCH);
    // Held until a delta commits or a money signal for this node comes (or the wait ends).
    let superseded = false;
    if (batch !== null && batch.length === 0 && waitMs > 0 && money?.hasSignals(node) !== true) {
      seen.waiting = true;
      const woken = new AbortController();
      const listener = money?.listen(node, () => woken.abort());
      await deltas.waitPast(after, waitMs, woken.signal);
      if (listener !== undefined) {
        money!.unlisten(node, listener);
        superseded = listener.superseded;
      }
      seen.waiting = false;
      batch = await deltas.read(after, MAX_BATCH);
    }
    if (batch === null) {
      seen.snapshot_required = true;
      context.onSnapshotRequired?.();
      const last = snapshotAsked.get(node) ?? 0;
      if (Date.now() - last >= SNAPSHOT_ASK_MS) {
        snapshotAsked.set(node, Date.now());
        log.info(
          { node, after, last_seq: await deltas.lastSeq(), oldest_seq: await deltas.oldestSeq() },
          'node behind the delta log: a sync sends it a snapshot',
        );
        context.requestSync(`node ${node} is behind the delta log`);
      }
    }
    // A node never applies a delta a power cut could take back: the centre would reuse its sequence for
    // another change, and the node, past it, would never see that one.
    if (batch !== null && batch.length > 0) await context.flushed?.();
    // An ask superseded by the node's newer one (its connection is likely gone) leaves the signals to that one.
    const signals = superseded ? undefined : money?.takeSignals(node);
    const answer: DeltaBatch = {
      deltas: batch ?? [],
      last_seq: await deltas.lastSeq(),
      snapshot_required: batch === null,
      ...(signals === undefined ? {} : { money: signals }),
    };
    return json(200, answer);
  };

  return [
    { ...adminRoute('GET', '/api/nodes/deltas', 0, ask), readsAuthorization: true },
    adminRoute('GET', '/api/opensips/deltas', 0, async () => {
      const last = await deltas.lastSeq();
      const { rows } = await context.store.list('opensips_nodes', { where: {}, limit: null, offset: 0 });
      return json(200, {
        last_seq: last,
        oldest_seq: await deltas.oldestSeq(),
        retention: { count: deltas.retention.count, seconds: deltas.retention.seconds },
        // What changed last (the console's Sync page): the rows themselves are in the snapshot and the nodes.
        recent: await deltas.recent(RECENT_SHOWN),
        nodes: rows.map((node) => {
          const seen = progress.get(node.hostname as string);
          return {
            id: node.id,
            hostname: node.hostname,
            status: node.status,
            applied_seq: seen?.applied_seq ?? null,
            lag: seen === undefined ? null : Math.max(0, last - seen.applied_seq),
            seen_at: seen?.seen_at ?? null,
            waiting: seen?.waiting ?? false,
            snapshot_required: seen?.snapshot_required ?? false,
          };
        }),
      });
    }),
  ];
}
