import { closeSync, fdatasyncSync, fsyncSync, ftruncateSync, mkdirSync, openSync, readdirSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import type { JournalOp } from './ops.js';
import { JsonBytes } from '../../core/json/json-bytes.js';
import { decodeOps, writeOps } from './op-encoding.js';

/**
 * The money journal's log: what the node acknowledges is first appended
 * here, one record per group commit, in numbered segment files
 * (`<dir>/<n>.log`). A record is one write() — a commit in SQLite took about
 * fifteen system calls (WAL frames and their headers, shared-memory locks) —
 * and only with durability `full` an fdatasync. A thread applies the records
 * to money.db behind the event loop (journal-applier.ts) and deletes the
 * segments it has applied; start-up applies whatever it left.
 *
 * Record: payload length (u32 LE), CRC-32 of the payload (u32 LE), payload
 * (the ops as JSON, op-encoding.ts). A record cut short by a crash, or whose CRC does not
 * match, ends the log: everything before it was acknowledged, nothing after.
 */
export const HEADER_BYTES = 8;
/** A segment is closed and a new one started once it passes this size. */
export const SEGMENT_BYTES = 64 * 1024 * 1024;

/**
 * How far the log is durable, shared between threads as one 64-bit value (the segment, then the offset in
 * its low 32 bits: a segment never passes 4 GB) so that a reader never sees half of it.
 */
export function packPosition(segment: number, offset: number): bigint {
  return (BigInt(segment) << 32n) | BigInt(offset);
}

export function unpackPosition(packed: bigint): { segment: number; offset: number } {
  return { segment: Number(packed >> 32n), offset: Number(packed & 0xffffffffn) };
}

export function segmentPath(dir: string, segment: number): string {
  return join(dir, `${String(segment).padStart(12, '0')}.log`);
}

/** The segment numbers in the directory, in order. */
export function listSegments(dir: string): number[] {
  mkdirSync(dir, { recursive: true });
  return readdirSync(dir)
    .map((name) => /^(\d{12})\.log$/.exec(name))
    .filter((match) => match !== null)
    .map((match) => Number(match[1]))
    .sort((a, b) => a - b);
}

/**
 * Encodes records into one buffer it keeps (durability `normal`: the append is done with a record before
 * the next is encoded), the ops written straight into it (op-encoding.ts: writeOps), so that a record
 * leaves no memory behind for the GC.
 */
export class RecordEncoder {
  private readonly out = new JsonBytes();

  /** The record, valid until the next call. */
  encode(ops: JournalOp[]): Buffer {
    const { out } = this;
    out.reset(HEADER_BYTES);
    writeOps(out, ops);
    const record = out.bytes;
    const end = out.length;
    record.writeUInt32LE(end - HEADER_BYTES, 0);
    record.writeUInt32LE(crc32(record.subarray(HEADER_BYTES, end)), 4);
    return record.subarray(0, end);
  }
}

const shared = new RecordEncoder();

/** A record in memory of its own (durability `full`: it is transferred to the writer thread). */
export function encodeRecord(ops: JournalOp[]): Buffer {
  const encoded = shared.encode(ops);
  // Not from Buffer's shared pool: a transferred buffer takes its whole memory with it.
  const record = Buffer.allocUnsafeSlow(encoded.length);
  encoded.copy(record);
  return record;
}

export interface DecodedRecords<Op = JournalOp> {
  ops: Op[];
  /** Offset just past the last whole record read. */
  end: number;
  /** Bytes after `end` that are not a whole, valid record (a torn tail, or a record still being written). */
  trailing: number;
}

/**
 * The whole records in `bytes`, stopping at the first that is cut short or fails its CRC. `decode`: a record's
 * payload to its ops (the applier's keeps rated CDRs' bytes as they are: rated-row.ts).
 */
export function decodeRecords<Op = JournalOp>(
  bytes: Buffer,
  decode: (payload: Buffer) => Op[] = (payload) => decodeOps(payload.toString('utf8')) as Op[],
): DecodedRecords<Op> {
  const ops: Op[] = [];
  let offset = 0;
  while (offset + HEADER_BYTES <= bytes.length) {
    const length = bytes.readUInt32LE(offset);
    const payloadStart = offset + HEADER_BYTES;
    if (payloadStart + length > bytes.length) break;
    const payload = bytes.subarray(payloadStart, payloadStart + length);
    if (crc32(payload) !== bytes.readUInt32LE(offset + 4)) break;
    for (const op of decode(payload)) ops.push(op);
    offset = payloadStart + length;
  }
  return { ops, end: offset, trailing: bytes.length - offset };
}

/** A write to the log failed; the segment was cut back to its last whole record (`intact`), or could not be. */
export class LogAppendError extends Error {
  constructor(
    message: string,
    readonly code: string | undefined,
    readonly intact: boolean,
  ) {
    super(message);
    this.name = 'LogAppendError';
  }
}

/**
 * Appends records to the newest segment. Used on the event loop (durability `normal`: a record is
 * acknowledged once the kernel has it, which a crash of the process does not undo) or in the writer
 * thread (`full`: after its fdatasync).
 */
export class LogAppender {
  private fd: number;
  private offset = 0;
  /** With durability `full`: where the log is synced to, for the applier (it applies nothing beyond). */
  private readonly durable: BigInt64Array | null;

  constructor(
    private readonly dir: string,
    private segment: number,
    private readonly sync: boolean,
    private readonly segmentBytes = SEGMENT_BYTES,
    durable: BigInt64Array | null = null,
  ) {
    mkdirSync(dir, { recursive: true });
    this.fd = this.create(segment);
    this.durable = durable;
    this.publish();
  }

  /** Appends one record; throws LogAppendError, having cut back anything partly written. */
  append(record: Buffer): void {
    try {
      const written = writeSync(this.fd, record, 0, record.length, this.offset);
      if (written !== record.length)
        throw Object.assign(new Error(`short write to the money log (${written} of ${record.length} bytes)`), { code: 'EIO' });
      if (this.sync) fdatasyncSync(this.fd);
    } catch (error) {
      const code = (error as { code?: string }).code;
      const message = error instanceof Error ? error.message : String(error);
      try {
        // A torn record would end the log there and hide every record after it.
        ftruncateSync(this.fd, this.offset);
      } catch {
        throw new LogAppendError(message, code, false);
      }
      throw new LogAppendError(message, code, true);
    }
    this.offset += record.length;
    if (this.offset >= this.segmentBytes) this.rotate();
    this.publish();
  }

  private publish(): void {
    if (this.durable !== null) Atomics.store(this.durable, 0, packPosition(this.segment, this.offset));
  }

  close(): void {
    closeSync(this.fd);
  }

  /** The applier finishes a segment once the next one exists, so the next is created only after the last append. */
  private rotate(): void {
    closeSync(this.fd);
    this.segment++;
    this.offset = 0;
    this.fd = this.create(this.segment);
  }

  private create(segment: number): number {
    const fd = openSync(segmentPath(this.dir, segment), 'w');
    if (this.sync) {
      // The new file's name must survive power loss as well as what is written in it.
      const dirFd = openSync(this.dir, 'r');
      try {
        fsyncSync(dirFd);
      } finally {
        closeSync(dirFd);
      }
    }
    return fd;
  }
}
