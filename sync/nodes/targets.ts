import Database from 'better-sqlite3';
import type { Stats } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { isAbsolute } from 'node:path';
import { parseMiAddress, type MiAddress } from '../../src/core/mi/client.js';
import type { ErrorCode } from '../../src/core/errors/catalogue.js';
import { OUR_TABLES, redactDatabaseUrl, SQL_SCHEMES, type DroutingDatabase } from '../drouting/node-database.js';
import { hostAllowed, type HostAllowlist } from './hosts.js';
import { pathUnderRoots, type FileRoots } from './paths.js';
import type { NodePolicy } from './policy.js';

/**
 * A node's three addresses (`sidecar_address`, `mi_socket_address`, `drouting_db`) checked against what
 * the operator allowed at start (policy.ts): at the admin API, so a bad one is refused with the field
 * named, and again at every sync, so a row stored before the rule (or written to the store by other
 * means) fails its node with nothing written. What comes back is what the sync uses: resolved paths and
 * parsed addresses, never the stored text.
 */
export type SidecarAddress = { kind: 'http'; url: string } | { kind: 'directory'; path: string };

export interface NodeTargets {
  sidecar: SidecarAddress | null;
  mi: MiAddress;
  /** The drouting SQLite file, resolved, or a MySQL/PostgreSQL database; null: none configured. */
  droutingDb: DroutingDatabase | null;
}

export interface NodeTargetRefusal {
  field: 'sidecar_address' | 'mi_socket_address' | 'drouting_db';
  /** invalid_field: not an address of any kind we take; node_target_not_allowed: one outside what the operator allowed. */
  code: Extract<ErrorCode, 'invalid_field' | 'node_target_not_allowed'>;
  message: string;
}

export type NodeTargetCheck = { ok: true; targets: NodeTargets } | ({ ok: false } & NodeTargetRefusal);

/** Tables a drouting database must have: OpenSIPS's own (scripts/sqlite/drouting-create.sql). */
const DROUTING_TABLES = ['dr_gateways', 'dr_rules'];
const SQLITE_HEADER = 'SQLite format 3\0';

class Refused extends Error {
  constructor(
    readonly field: NodeTargetRefusal['field'],
    readonly code: NodeTargetRefusal['code'],
    message: string,
  ) {
    super(message);
  }
}

function urlHostAllowed(field: NodeTargetRefusal['field'], text: string, hosts: HostAllowlist): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new Refused(field, 'invalid_field', `${field} ${JSON.stringify(text)} is not a valid URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new Refused(field, 'invalid_field', `${field} must be an http:// or https:// URL`);
  if (url.username !== '' || url.password !== '') throw new Refused(field, 'invalid_field', `${field} must not carry credentials`);
  if (!hostAllowed(hosts, url.hostname))
    throw new Refused(
      field,
      'node_target_not_allowed',
      `${field} host ${url.hostname} is not one of the node hosts the control plane was started with (${hosts.text})`,
    );
  return url.toString();
}

async function underRoots(field: NodeTargetRefusal['field'], text: string, files: FileRoots): Promise<string> {
  if (!isAbsolute(text)) throw new Refused(field, 'invalid_field', `${field} must be an absolute path`);
  const resolved = await pathUnderRoots(files, text);
  if ('refused' in resolved) throw new Refused(field, 'node_target_not_allowed', `${field} ${resolved.refused}`);
  return resolved.path;
}

async function existing(field: NodeTargetRefusal['field'], path: string): Promise<Stats | null> {
  try {
    return await stat(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return null;
    throw new Refused(field, 'node_target_not_allowed', `${field} ${path} cannot be examined (${code ?? (error as Error).message})`);
  }
}

async function sidecarAddress(text: string | null, policy: NodePolicy): Promise<SidecarAddress | null> {
  if (text === null || text === '') return null;
  if (/^[a-z][a-z0-9+.-]*:/i.test(text)) return { kind: 'http', url: urlHostAllowed('sidecar_address', text, policy.hosts) };
  const path = await underRoots('sidecar_address', text, policy.files);
  const info = await existing('sidecar_address', path);
  if (info !== null && !info.isDirectory())
    throw new Refused('sidecar_address', 'node_target_not_allowed', `sidecar_address ${path} exists and is not a directory`);
  return { kind: 'directory', path };
}

/**
 * A FIFO path need not exist yet (a node is registered before its OpenSIPS runs and makes it; the MI call
 * then fails as a node that does not answer), but whatever exists there must be a FIFO.
 */
async function miAddress(text: string, policy: NodePolicy): Promise<MiAddress> {
  const address = parseMiAddress(text);
  if (address === null)
    throw new Refused(
      'mi_socket_address',
      'invalid_field',
      'mi_socket_address must be http://host:port/path, udp:host:port or the absolute path of a FIFO',
    );
  switch (address.kind) {
    case 'http':
      return { kind: 'http', url: urlHostAllowed('mi_socket_address', address.url, policy.hosts) };
    case 'udp':
      if (!hostAllowed(policy.hosts, address.host))
        throw new Refused(
          'mi_socket_address',
          'node_target_not_allowed',
          `mi_socket_address host ${address.host} is not one of the node hosts the control plane was started with (${policy.hosts.text})`,
        );
      return address;
    case 'fifo': {
      const path = await underRoots('mi_socket_address', address.path, policy.files);
      const info = await existing('mi_socket_address', path);
      // Opening anything else for writing would make its first bytes an MI request, or block on a device.
      if (info !== null && !info.isFIFO())
        throw new Refused('mi_socket_address', 'node_target_not_allowed', `mi_socket_address ${path} exists and is not a FIFO`);
      return { kind: 'fifo', path };
    }
  }
}

async function readHeader(path: string): Promise<string> {
  const handle = await open(path, 'r');
  try {
    const { buffer, bytesRead } = await handle.read(Buffer.alloc(16), 0, 16, 0);
    return buffer.subarray(0, bytesRead).toString('latin1');
  } finally {
    await handle.close();
  }
}

/**
 * A MySQL/MariaDB or PostgreSQL `drouting_db` URL: held to `--node-hosts` like every other URL. Unlike an
 * HTTP address it may carry a user and password (OpenSIPS's own db_url needs them); messages name it
 * without the password.
 */
function databaseUrl(text: string, hosts: HostAllowlist): DroutingDatabase {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new Refused('drouting_db', 'invalid_field', 'drouting_db is neither an absolute path nor a valid database URL');
  }
  const kind = SQL_SCHEMES[url.protocol];
  if (kind === undefined)
    throw new Refused('drouting_db', 'invalid_field', 'drouting_db must be an absolute path, a mysql:// URL or a postgres:// URL');
  const shown = redactDatabaseUrl(url);
  if (url.hostname === '') throw new Refused('drouting_db', 'invalid_field', `drouting_db ${shown} names no host`);
  if (!/^\/[^/]+$/.test(url.pathname))
    throw new Refused('drouting_db', 'invalid_field', `drouting_db ${shown} must name one database (/name)`);
  if (url.search !== '' || url.hash !== '')
    // Driver options in the query (a socket path, TLS files) are the operator's to set, not an admin-API caller's.
    throw new Refused('drouting_db', 'invalid_field', `drouting_db ${shown} must not carry query options`);
  if (!hostAllowed(hosts, url.hostname))
    throw new Refused(
      'drouting_db',
      'node_target_not_allowed',
      `drouting_db host ${url.hostname} is not one of the node hosts the control plane was started with (${hosts.text})`,
    );
  return { kind, url: url.toString(), shown };
}

async function droutingDb(text: string | null, policy: NodePolicy): Promise<DroutingDatabase | null> {
  if (text === null || text === '') return null;
  if (/^[a-z][a-z0-9+.-]*:/i.test(text)) return databaseUrl(text, policy.hosts);
  const path = await underRoots('drouting_db', text, policy.files);
  const info = await existing('drouting_db', path);
  if (info === null) return { kind: 'sqlite', path }; // created under the root at the first sync
  const refuse = (why: string): never => {
    throw new Refused('drouting_db', 'node_target_not_allowed', `drouting_db ${path} ${why}`);
  };
  if (!info.isFile()) refuse('exists and is not a regular file');
  const header = await readHeader(path).catch((error: unknown) =>
    refuse(`cannot be read (${(error as NodeJS.ErrnoException).code ?? String(error)})`),
  );
  if (header !== SQLITE_HEADER) refuse('exists and is not an SQLite database');
  let tables: Set<string>;
  try {
    const db = new Database(path, { readonly: true, fileMustExist: true });
    try {
      tables = new Set(
        (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]).map((row) => row.name),
      );
    } finally {
      db.close();
    }
  } catch (error) {
    return refuse(`cannot be read as SQLite (${(error as Error).message})`);
  }
  const ours = OUR_TABLES.filter((table) => tables.has(table));
  if (ours.length > 0) refuse(`is one of this system's own databases (it has ${ours.join(', ')}), not OpenSIPS's`);
  const missing = DROUTING_TABLES.filter((table) => !tables.has(table));
  if (missing.length > 0) refuse(`exists without OpenSIPS's drouting tables (no ${missing.join(', ')})`);
  return { kind: 'sqlite', path };
}

export async function checkNodeTargets(
  policy: NodePolicy,
  row: { sidecar_address?: unknown; mi_socket_address?: unknown; drouting_db?: unknown },
): Promise<NodeTargetCheck> {
  try {
    return {
      ok: true,
      targets: {
        sidecar: await sidecarAddress((row.sidecar_address as string | null | undefined) ?? null, policy),
        mi: await miAddress(String(row.mi_socket_address), policy),
        droutingDb: await droutingDb((row.drouting_db as string | null | undefined) ?? null, policy),
      },
    };
  } catch (error) {
    if (error instanceof Refused) return { ok: false, field: error.field, code: error.code, message: error.message };
    throw error;
  }
}

/** A node's sidecar address alone, checked as a sync checks it: where the console may send a read. */
export async function checkSidecarAddress(
  policy: NodePolicy,
  text: string | null,
): Promise<{ ok: true; sidecar: SidecarAddress | null } | ({ ok: false } & NodeTargetRefusal)> {
  try {
    return { ok: true, sidecar: await sidecarAddress(text, policy) };
  } catch (error) {
    if (error instanceof Refused) return { ok: false, field: error.field, code: error.code, message: error.message };
    throw error;
  }
}
