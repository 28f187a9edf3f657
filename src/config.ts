import { parseArgs } from 'node:util';

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
  return {
    host: read('host'),
    port: integer('port', 0, 65535),
    dataDir: read('data-dir'),
    watchDir: read('watch-dir') === '' ? null : read('watch-dir'),
    snapshotFile: read('snapshot') === '' ? null : read('snapshot'),
    logLevel: read('log-level'),
    maxBodyBytes: integer('max-body-bytes', 1024, 16 * 1024 * 1024),
    maxSnapshotBytes: integer('max-snapshot-bytes', 1024, 4 * 1024 * 1024 * 1024),
  };
}
