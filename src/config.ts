import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import type { Durability } from './ledger/journal.js';
import { parseMicro } from './money/micro.js';

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

const OPTIONS = {
  host: { type: 'string', env: 'SIDECAR_HOST', fallback: '127.0.0.1' },
  port: { type: 'string', env: 'SIDECAR_PORT', fallback: '8090' },
  'data-dir': { type: 'string', env: 'SIDECAR_DATA_DIR', fallback: './data/sidecar' },
  'watch-dir': { type: 'string', env: 'SIDECAR_WATCH_DIR', fallback: '' },
  snapshot: { type: 'string', env: 'SIDECAR_SNAPSHOT', fallback: '' },
  'log-level': { type: 'string', env: 'SIDECAR_LOG_LEVEL', fallback: 'info' },
  'max-body-bytes': { type: 'string', env: 'SIDECAR_MAX_BODY_BYTES', fallback: String(64 * 1024) },
  'max-snapshot-bytes': { type: 'string', env: 'SIDECAR_MAX_SNAPSHOT_BYTES', fallback: String(1024 * 1024 * 1024) },
  'node-name': { type: 'string', env: 'SIDECAR_NODE_NAME', fallback: hostname() },
  'control-url': { type: 'string', env: 'SIDECAR_CONTROL_URL', fallback: '' },
  durability: { type: 'string', env: 'SIDECAR_DURABILITY', fallback: 'normal' },
  'admission-seconds': { type: 'string', env: 'SIDECAR_ADMISSION_SECONDS', fallback: '7200' },
  'lease-chunk': { type: 'string', env: 'SIDECAR_LEASE_CHUNK', fallback: '10.00' },
  'postpaid-offline': { type: 'string', env: 'SIDECAR_POSTPAID_OFFLINE', fallback: 'allow' },
  'centre-timeout-ms': { type: 'string', env: 'SIDECAR_CENTRE_TIMEOUT_MS', fallback: '2000' },
  'lease-idle-seconds': { type: 'string', env: 'SIDECAR_LEASE_IDLE_SECONDS', fallback: '60' },
} as const;

export function loadConfig(argv: string[], env: NodeJS.ProcessEnv): SidecarConfig {
  const { values } = parseArgs({
    args: argv,
    options: Object.fromEntries(Object.entries(OPTIONS).map(([name, option]) => [name, { type: option.type }])),
    strict: true,
  });
  const read = (name: keyof typeof OPTIONS): string => {
    const flag = values[name];
    return typeof flag === 'string' ? flag : (env[OPTIONS[name].env] ?? OPTIONS[name].fallback);
  };
  const integer = (name: keyof typeof OPTIONS, min: number, max: number): number => {
    const value = Number(read(name));
    if (!Number.isInteger(value) || value < min || value > max) throw new Error(`--${name} must be an integer from ${min} to ${max}`);
    return value;
  };
  const oneOf = <T extends string>(name: keyof typeof OPTIONS, allowed: readonly T[]): T => {
    const value = read(name);
    if (!(allowed as readonly string[]).includes(value)) throw new Error(`--${name} must be one of ${allowed.join(', ')}`);
    return value as T;
  };
  const leaseChunkMicro = parseMicro(read('lease-chunk'));
  if (!(leaseChunkMicro > 0)) throw new Error('--lease-chunk must be a positive decimal amount such as 10.00');
  const controlUrl = read('control-url');
  if (controlUrl !== '' && !/^https?:\/\/[^/]+$/.test(controlUrl)) throw new Error('--control-url must be http(s)://host:port with no path');
  return {
    host: read('host'),
    port: integer('port', 0, 65535),
    dataDir: read('data-dir'),
    watchDir: read('watch-dir') === '' ? null : read('watch-dir'),
    snapshotFile: read('snapshot') === '' ? null : read('snapshot'),
    logLevel: read('log-level'),
    maxBodyBytes: integer('max-body-bytes', 1024, 16 * 1024 * 1024),
    maxSnapshotBytes: integer('max-snapshot-bytes', 1024, 4 * 1024 * 1024 * 1024),
    nodeName: read('node-name'),
    controlUrl: controlUrl === '' ? null : controlUrl,
    durability: oneOf('durability', ['normal', 'full'] as const),
    admissionSeconds: integer('admission-seconds', 1, 86_400),
    leaseChunkMicro,
    offlinePostpaid: oneOf('postpaid-offline', ['allow', 'deny'] as const),
    centreTimeoutMs: integer('centre-timeout-ms', 50, 60_000),
    leaseIdleSeconds: integer('lease-idle-seconds', 1, 86_400),
  };
}
