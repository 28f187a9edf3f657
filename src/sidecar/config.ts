import { hostname } from 'node:os';
import { LOG_LEVELS, OptionReader, type OptionTable } from '../core/config/options.js';
import { parseMicro } from '../core/money/micro.js';
import type { Durability } from './journal/journal.js';

/** Sidecar settings: command-line flags, else SIDECAR_* environment variables, else defaults. */
export interface SidecarConfig {
  host: string;
  port: number;
  dataDir: string;
  /** Directory watched for *.msgpack snapshots; null disables watching. */
  watchDir: string | null;
  /** A snapshot file to ingest at start-up (fixtures, demo). */
  snapshotFile: string | null;
  logLevel: string;
  maxBodyBytes: number;
  maxSnapshotBytes: number;
  /** This node's hostname as registered at the control plane (opensips_nodes). */
  nodeName: string;
  /** Control plane base URL for credit leases and CDR settlement; null: none (prepaid calls are refused). */
  controlUrl: string | null;
  durability: Durability;
  admissionSeconds: number;
  leaseChunkMicro: number;
  offlinePostpaid: 'allow' | 'deny';
  centreTimeoutMs: number;
  leaseIdleSeconds: number;
}

export const SIDECAR_OPTIONS = {
  host: {
    env: 'SIDECAR_HOST',
    fallback: '127.0.0.1',
    doc: 'address to listen on: loopback only, never put a proxy between OpenSIPS and the sidecar',
  },
  port: { env: 'SIDECAR_PORT', fallback: '8090', doc: '`0` picks a free port (logged)' },
  'data-dir': {
    env: 'SIDECAR_DATA_DIR',
    fallback: './data/sidecar',
    doc: 'holds `sidecar.db` (the last two good snapshots), `money.db` and its log `money.db-log/`',
  },
  'watch-dir': { env: 'SIDECAR_WATCH_DIR', fallback: '', shownDefault: 'off', doc: 'directory watched for `*.msgpack` snapshots' },
  snapshot: { env: 'SIDECAR_SNAPSHOT', fallback: '', shownDefault: 'none', doc: 'a snapshot file to ingest at start-up' },
  'log-level': {
    env: 'SIDECAR_LOG_LEVEL',
    fallback: 'info',
    doc: 'pino JSON logs (`fatal` … `trace`, `silent`); credentials are redacted',
  },
  'max-body-bytes': { env: 'SIDECAR_MAX_BODY_BYTES', fallback: String(64 * 1024), doc: 'larger JSON bodies get 413 (1 KiB to 16 MiB)' },
  'max-snapshot-bytes': {
    env: 'SIDECAR_MAX_SNAPSHOT_BYTES',
    fallback: String(1024 * 1024 * 1024),
    shownDefault: '1073741824 (1 GiB)',
    doc: 'larger snapshot uploads get 413',
  },
  'node-name': {
    env: 'SIDECAR_NODE_NAME',
    fallback: hostname(),
    shownDefault: 'the host name',
    doc: "this node's `hostname` in the control plane's `opensips_nodes`",
  },
  'control-url': {
    env: 'SIDECAR_CONTROL_URL',
    fallback: '',
    shownDefault: 'none',
    doc: 'the control plane (`http(s)://host:port`) for credit leases and CDR settlement; without one, prepaid calls are refused',
  },
  durability: {
    env: 'SIDECAR_DURABILITY',
    fallback: 'normal',
    doc: 'money journal: `normal` survives a crash of the process, `full` power loss too (an fdatasync per append, in a thread)',
  },
  'admission-seconds': {
    env: 'SIDECAR_ADMISSION_SECONDS',
    fallback: '7200',
    doc: 'longest call admission reserves for (and caps with `max_duration_seconds`)',
  },
  'lease-chunk': {
    env: 'SIDECAR_LEASE_CHUNK',
    fallback: '10.00',
    doc: 'least credit asked of the control plane at a time (more when calls are dearer)',
  },
  'postpaid-offline': {
    env: 'SIDECAR_POSTPAID_OFFLINE',
    fallback: 'allow',
    doc: 'postpaid calls when the control plane is out of reach and the lease is spent: `allow` or `deny`',
  },
  'centre-timeout-ms': {
    env: 'SIDECAR_CENTRE_TIMEOUT_MS',
    fallback: '2000',
    doc: 'timeout of a money round with the control plane (50 to 60000)',
  },
  'lease-idle-seconds': {
    env: 'SIDECAR_LEASE_IDLE_SECONDS',
    fallback: '60',
    doc: 'unused lease goes back to the control plane after this long without admissions (checked every 5 s)',
  },
} as const satisfies OptionTable;

export function loadConfig(argv: string[], env: NodeJS.ProcessEnv): SidecarConfig {
  const options = new OptionReader(SIDECAR_OPTIONS, argv, env);
  const leaseChunkMicro = parseMicro(options.string('lease-chunk'));
  if (!(leaseChunkMicro > 0)) throw new Error('--lease-chunk must be a positive decimal amount such as 10.00');
  const controlUrl = options.optional('control-url');
  if (controlUrl !== null && !/^https?:\/\/[^/]+$/.test(controlUrl))
    throw new Error('--control-url must be http(s)://host:port with no path');
  return {
    host: options.host('host'),
    port: options.integer('port', 0, 65535),
    dataDir: options.string('data-dir'),
    watchDir: options.optional('watch-dir'),
    snapshotFile: options.optional('snapshot'),
    logLevel: options.oneOf('log-level', LOG_LEVELS),
    maxBodyBytes: options.integer('max-body-bytes', 1024, 16 * 1024 * 1024),
    maxSnapshotBytes: options.integer('max-snapshot-bytes', 1024, 4 * 1024 * 1024 * 1024),
    nodeName: options.string('node-name'),
    controlUrl,
    durability: options.oneOf('durability', ['normal', 'full'] as const),
    admissionSeconds: options.integer('admission-seconds', 1, 86_400),
    leaseChunkMicro,
    offlinePostpaid: options.oneOf('postpaid-offline', ['allow', 'deny'] as const),
    centreTimeoutMs: options.integer('centre-timeout-ms', 50, 60_000),
    leaseIdleSeconds: options.integer('lease-idle-seconds', 1, 86_400),
  };
}
