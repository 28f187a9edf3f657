import { createHash } from 'node:crypto';
import { Packr } from 'msgpackr';
import {
  SNAPSHOT_FORMAT_VERSION,
  type RateColumns,
  type RateRow,
  type Snapshot,
  type SnapshotDescription,
  type SnapshotEnvelope,
  type SnapshotTables,
} from './schema.js';

// moreTypes: typed arrays round-trip as typed arrays. useRecords off: plain
// msgpack maps, readable by any msgpack tool an operator points at the file.
const packr = new Packr({ moreTypes: true, useRecords: false });

export function snapshotChecksum(formatVersion: number, version: number, createdAt: string, payload: Uint8Array): string {
  return createHash('sha256').update(`${formatVersion}\n${version}\n${createdAt}\n`).update(payload).digest('hex');
}

export function encodeSnapshot(tables: SnapshotTables, version: number, createdAt: string = new Date().toISOString()): Uint8Array {
  const payload = packr.pack(tables);
  const envelope: SnapshotEnvelope = {
    format_version: SNAPSHOT_FORMAT_VERSION,
    version,
    created_at: createdAt,
    checksum: snapshotChecksum(SNAPSHOT_FORMAT_VERSION, version, createdAt, payload),
    payload,
  };
  return packr.pack(envelope);
}

export type DecodeResult = { ok: true; snapshot: Snapshot } | { ok: false; code: SnapshotRefusal; reason: string };

/** Why a snapshot is refused, as the error catalogue names it (src/core/errors/catalogue.ts). */
export type SnapshotRefusal =
  'snapshot_malformed' | 'snapshot_format_version' | 'snapshot_checksum' | 'snapshot_stale_version' | 'snapshot_integrity';

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Decodes and verifies the envelope: format, checksum, and that the version is
 * newer than `servingVersion` — all before decoding the payload. Table contents
 * are checked by validateSnapshot.
 */
export function decodeSnapshot(bytes: Uint8Array, servingVersion: number): DecodeResult {
  let envelope: unknown;
  try {
    envelope = packr.unpack(bytes);
  } catch (err) {
    return { ok: false, code: 'snapshot_malformed', reason: `not a msgpack snapshot: ${(err as Error).message}` };
  }
  if (!isObject(envelope)) return { ok: false, code: 'snapshot_malformed', reason: 'snapshot envelope is not a map' };
  const { format_version: formatVersion, version, created_at: createdAt, checksum, payload } = envelope;
  if (formatVersion !== SNAPSHOT_FORMAT_VERSION) {
    return {
      ok: false,
      code: 'snapshot_format_version',
      reason: `format_version ${String(formatVersion)} is not supported (expected ${SNAPSHOT_FORMAT_VERSION})`,
    };
  }
  if (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 1) {
    return { ok: false, code: 'snapshot_malformed', reason: 'version must be a positive integer' };
  }
  if (typeof createdAt !== 'string' || Number.isNaN(Date.parse(createdAt))) {
    return { ok: false, code: 'snapshot_malformed', reason: 'created_at must be an ISO 8601 timestamp' };
  }
  if (typeof checksum !== 'string' || !(payload instanceof Uint8Array)) {
    return { ok: false, code: 'snapshot_malformed', reason: 'checksum and payload are required' };
  }
  if (snapshotChecksum(formatVersion, version, createdAt, payload) !== checksum.toLowerCase()) {
    return { ok: false, code: 'snapshot_checksum', reason: 'checksum does not match the payload' };
  }
  if (version <= servingVersion) {
    return {
      ok: false,
      code: 'snapshot_stale_version',
      reason: `version ${version} is not newer than the serving version ${servingVersion}`,
    };
  }
  let tables: unknown;
  try {
    tables = packr.unpack(payload);
  } catch (err) {
    return { ok: false, code: 'snapshot_malformed', reason: `payload is not msgpack: ${(err as Error).message}` };
  }
  if (!isObject(tables)) return { ok: false, code: 'snapshot_malformed', reason: 'payload is not a map of tables' };
  return {
    ok: true,
    snapshot: { format_version: formatVersion, version, created_at: createdAt, checksum, tables: tables as unknown as SnapshotTables },
  };
}

/**
 * What can be told from the first byte, before any worker or decoding is paid for: a snapshot is a msgpack
 * map (fixmap 0x80-0x8f, map16 0xde, map32 0xdf), so text, JSON, HTML or an empty body are refused at once.
 * null: worth decoding.
 */
export function snapshotShapeRefusal(bytes: Uint8Array): string | null {
  if (bytes.byteLength === 0) return 'snapshot body is empty';
  const first = bytes[0];
  if ((first & 0xf0) === 0x80 || first === 0xde || first === 0xdf) return null;
  return `not a msgpack snapshot: it starts with byte 0x${first.toString(16).padStart(2, '0')}, not a map`;
}

/** Reads only the header (no checksum check): for logs and listings. */
export function peekSnapshotHeader(bytes: Uint8Array): { version: number; created_at: string; checksum: string } | null {
  try {
    const envelope: unknown = packr.unpack(bytes);
    if (
      !isObject(envelope) ||
      typeof envelope.version !== 'number' ||
      typeof envelope.created_at !== 'string' ||
      typeof envelope.checksum !== 'string'
    )
      return null;
    return { version: envelope.version, created_at: envelope.created_at, checksum: envelope.checksum };
  } catch {
    return null;
  }
}

function rateTypeCode(rateType: string): number {
  if (rateType === 'per_minute') return 0;
  if (rateType === 'per_call') return 1;
  return 255;
}

/** Turns rate rows into the snapshot's columns (the CLI and the control plane both build snapshots this way). */
export function rateRowsToColumns(rows: readonly RateRow[]): RateColumns {
  const n = rows.length;
  const names = new Map<string, number>();
  const columns: RateColumns = {
    rate_deck_id: new Uint32Array(n),
    prefix_digits: '',
    prefix_end: new Uint32Array(n),
    destination_name: new Uint32Array(n),
    destination_names: [],
    rate_text: '',
    rate_end: new Uint32Array(n),
    rate_type: new Uint8Array(n),
    billing_increment_initial: new Uint16Array(n),
    billing_increment_step: new Uint16Array(n),
    effective_at: new Float64Array(n),
  };
  const prefixes: string[] = [];
  const rates: string[] = [];
  let prefixLength = 0;
  let rateLength = 0;
  for (let i = 0; i < n; i++) {
    const row = rows[i];
    columns.rate_deck_id[i] = row.rate_deck_id;
    prefixes.push(row.prefix);
    prefixLength += row.prefix.length;
    columns.prefix_end[i] = prefixLength;
    let nameIndex = names.get(row.destination_name);
    if (nameIndex === undefined) {
      nameIndex = columns.destination_names.length;
      names.set(row.destination_name, nameIndex);
      columns.destination_names.push(row.destination_name);
    }
    columns.destination_name[i] = nameIndex;
    rates.push(row.rate_per_minute);
    rateLength += row.rate_per_minute.length;
    columns.rate_end[i] = rateLength;
    // An unknown type becomes 255, which validateSnapshot refuses.
    columns.rate_type[i] = rateTypeCode(row.rate_type);
    columns.billing_increment_initial[i] = row.billing_increment_initial ?? 0;
    columns.billing_increment_step[i] = row.billing_increment_step ?? 0;
    columns.effective_at[i] = Date.parse(row.effective_at);
  }
  columns.prefix_digits = prefixes.join('');
  columns.rate_text = rates.join('');
  return columns;
}

export function rateRowCount(columns: RateColumns): number {
  return columns.prefix_end.length;
}

/** Row i's prefix (allocates: for tools and tests, not for compile loops). */
export function rowPrefix(columns: RateColumns, i: number): string {
  return columns.prefix_digits.slice(i === 0 ? 0 : columns.prefix_end[i - 1], columns.prefix_end[i]);
}

export function rowRate(columns: RateColumns, i: number): string {
  return columns.rate_text.slice(i === 0 ? 0 : columns.rate_end[i - 1], columns.rate_end[i]);
}

export function descriptionToTables(description: SnapshotDescription): SnapshotTables {
  return { ...description, rate_deck_rates: rateRowsToColumns(description.rate_deck_rates) };
}
