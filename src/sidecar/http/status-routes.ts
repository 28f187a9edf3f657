import { BodyReader, ID, parseJsonObject } from '../../core/http/body.js';
import { RequestError, errorBody, statusOf } from '../../core/http/errors.js';
import { namesThisServer } from '../../core/http/host-names.js';
import { parseQuery, queryFlag, queryInteger } from '../../core/http/query.js';
import { json } from '../../core/http/respond.js';
import type { Route } from '../../core/http/server.js';
import type { TrunkType } from '../limits/call-counters.js';
import type { SnapshotRefusalCode } from '../snapshot/service.js';
import type { SidecarContext } from './context.js';
import { servingEngine } from './fields.js';

/**
 * What the node reports and takes in besides calls: per-trunk counters, health, Prometheus metrics, and
 * the routing snapshot (what serves, and a new one from the control plane).
 */
const PER_MINUTE_LIMIT = { min: 0, max: 1_000_000_000 };
const TRUNK_ID_MAX = Number.MAX_SAFE_INTEGER;
const QUEUE_RETRY_SECONDS = '2';

export function statusRoutes(context: SidecarContext): Route[] {
  const { snapshots, metrics, counters, post, get } = context;
  return [
    post('/api/metrics/per-minute/check', (request) => {
      const reader = new BodyReader(parseJsonObject(request.body, request.contentType));
      const trunkId = reader.requiredInteger('trunk_id', ID);
      const limit = reader.requiredInteger('limit', PER_MINUTE_LIMIT);
      const result = counters.checkPerMinute(trunkId, limit, Date.now());
      metrics.decided('per_minute_check', result.allowed ? 'allowed' : 'exceeded');
      // 200 either way: the schema declares only 200, and `allowed` is the answer (contract note 45); the
      // prose's 429 would make a refusal look like an HTTP failure to a caller that checks the status.
      return json(200, result);
    }),

    get('/api/metrics/per-minute', (request) => {
      const trunkId = queryInteger(parseQuery(request.query, ['trunk_id']), 'trunk_id', 1, TRUNK_ID_MAX);
      const now = Date.now();
      const timestamp = new Date(now).toISOString();
      const entry = (id: number) => ({ trunk_id: id, per_minute_current: counters.perMinuteCurrent(id, now), timestamp });
      return json(200, trunkId === null ? counters.perMinuteTrunks(now).map(entry) : entry(trunkId));
    }),

    get('/api/metrics/cps', (request) => {
      const params = parseQuery(request.query, ['trunk_id', 'trunk_type']);
      const trunkId = queryInteger(params, 'trunk_id', 1, TRUNK_ID_MAX);
      const typeText = params.get('trunk_type');
      if (typeText !== null && typeText !== 'customer' && typeText !== 'carrier')
        throw new RequestError('invalid_parameter', 'trunk_type must be customer or carrier');
      const now = Date.now();
      const timestamp = new Date(now).toISOString();
      const ports = context.credit.ports;
      // Live calls are counted per customer trunk, from admissions; a carrier's are not (contract note 44).
      const entry = (type: TrunkType, id: number) => ({
        trunk_type: type,
        trunk_id: id,
        cps_current: counters.cpsCurrent(type, id, now),
        ports_current: type === 'customer' ? ports.current(id) : 0,
        per_minute_current: counters.perMinuteCurrent(id, now),
        timestamp,
      });
      if (trunkId !== null) return json(200, entry(typeText ?? 'customer', trunkId));
      const types: TrunkType[] = typeText === null ? ['customer', 'carrier'] : [typeText];
      // A customer trunk with live calls is listed even before its first attempt since a restart.
      const trunksOf = (type: TrunkType): number[] =>
        type === 'carrier'
          ? counters.cpsTrunks(type)
          : [...new Set([...counters.cpsTrunks(type), ...ports.trunks()])].sort((a, b) => a - b);
      return json(
        200,
        types.flatMap((type) => trunksOf(type).map((id) => entry(type, id))),
      );
    }),

    get('/api/health', () => {
      const engine = snapshots.engine;
      const now = Date.now();
      return json(200, {
        status: engine === null ? 'no_snapshot' : 'ok',
        valkey: 'disabled',
        snapshot_version: engine?.snapshot.version ?? null,
        delta_seq: engine?.snapshot.deltaSeq ?? null,
        snapshot_created_at: engine?.snapshot.createdAt ?? null,
        snapshot_age_seconds: engine === null ? null : Math.max(0, Math.round((now - engine.snapshot.createdAtMs) / 1000)),
        uptime_seconds: Math.round((now - context.startedAt) / 1000),
      });
    }),

    metricsRoute(context),

    get('/api/snapshot', () => {
      const { version, createdAt, checksum, counts, deltaSeq } = servingEngine(snapshots).snapshot;
      return json(200, { version, created_at: createdAt, checksum, counts, delta_seq: deltaSeq });
    }),

    {
      method: 'PUT',
      path: '/api/snapshot',
      maxBodyBytes: context.maxSnapshotBytes,
      retainsBody: true,
      readsQuery: true,
      readsAuthorization: true,
      // Only the centre that issued this node's secret may replace what it routes with: decided from the headers,
      // so a caller without the push token never has the sidecar hold a snapshot-sized body.
      admit: (_address, _path, authorization) => {
        if (context.admitsSnapshotPush === undefined || context.admitsSnapshotPush(authorization)) return null;
        context.log.warn("snapshot push refused: it does not carry the push token for this node's secret");
        return { status: statusOf('node_unauthenticated'), body: errorBody('node_unauthenticated') };
      },
      handler: async (request) => {
        let force: boolean;
        try {
          force = queryFlag(parseQuery(request.query, ['force']), 'force');
        } catch (error) {
          if (!(error instanceof RequestError)) throw error;
          return { status: statusOf(error.code), body: errorBody(error.code, error.message) };
        }
        if (request.body.byteLength === 0) return { status: statusOf('snapshot_empty'), body: errorBody('snapshot_empty') };
        const result = await snapshots.ingest(request.body, 'http', { force });
        if (result.ok)
          return json(200, { version: result.version, compile_seconds: result.compileSeconds, swap_seconds: result.swapSeconds });
        const code: SnapshotRefusalCode = result.code;
        return {
          status: statusOf(code),
          body: errorBody(code, result.reason, { serving_version: snapshots.version }),
          // A full compile queue clears within a compile or two: say when to push again.
          headers: code === 'snapshot_queue_full' ? { 'Retry-After': QUEUE_RETRY_SECONDS } : undefined,
        };
      },
    },
  ];
}

/**
 * GET /metrics, under a Host that names the sidecar only. It listens on loopback, which a browser on the node
 * reaches too: a page whose name is rebound to 127.0.0.1 would read the node's metrics as its own origin. Its
 * requests carry its own name as Host, which is refused (421 metrics_host_not_allowed). Only this route reads
 * the header: the call endpoints, OpenSIPS's hot path, copy no header they do not need.
 */
function metricsRoute(context: SidecarContext): Route {
  const hostnames = new Set(context.metricsHostnames ?? []);
  const route = context.get('/metrics', (request) => {
    if (!namesThisServer(request.headers?.host ?? '', hostnames)) throw new RequestError('metrics_host_not_allowed');
    return { status: 200, body: context.metrics.render(), contentType: 'text/plain; version=0.0.4; charset=utf-8' };
  });
  return { ...route, readsHeaders: ['host'] };
}
