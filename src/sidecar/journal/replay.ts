import { closeSync, fstatSync, openSync, readSync, rmSync } from 'node:fs';
import { decodeRecords, listSegments, segmentPath } from './log.js';
import { decodeOpsToApply, type AppliedOp } from './rated-row.js';
import type { JournalStore, LogPosition, SkippedOp } from './store.js';

/**
 * Carrying the log into money.db: at start-up, everything the last run left
 * (recoverLog); behind the event loop, each segment as it grows (the applier
 * thread, applySegment).
 */
export interface SegmentApplied {
  /** The segment read. */
  segment: number;
  /** Where the applied part of the log now ends. */
  position: LogPosition;
  /** The highest CDR id among the applied ops (0: none). */
  lastCdrId: number;
  skipped: SkippedOp[];
  /** Bytes at the end of a finished segment that were not a whole record (a torn tail, or damage). */
  lostBytes: number;
}

/**
 * The memory a reader of segments keeps between passes: the applier thread reads a second's records each
 * pass, and a fresh buffer each time cost it page faults and malloc (~3% of its CPU). A read larger than
 * `KEPT_BYTES` (a backlog, start-up's whole segments) gets memory of its own, not kept.
 */
export class SegmentBuffer {
  private kept = Buffer.allocUnsafeSlow(0);

  /** Bytes for a read of `length`, valid until the next call. */
  take(length: number): Buffer {
    if (length > SegmentBuffer.KEPT_BYTES) return Buffer.allocUnsafe(length);
    if (this.kept.length < length)
      this.kept = Buffer.allocUnsafeSlow(Math.min(SegmentBuffer.KEPT_BYTES, Math.max(length, 2 * this.kept.length)));
    return this.kept;
  }

  static readonly KEPT_BYTES = 4 * 1024 * 1024;
}

/** The segment's bytes from `offset` to its end or to `limit` (empty when there are none, or no file). */
function readFrom(path: string, offset: number, limit: number, buffer: SegmentBuffer | null): Buffer {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (error) {
    if ((error as { code?: string }).code === 'ENOENT') return Buffer.alloc(0);
    throw error;
  }
  try {
    const length = Math.min(fstatSync(fd).size, limit) - offset;
    if (length <= 0) return Buffer.alloc(0);
    const bytes = buffer === null ? Buffer.allocUnsafe(length) : buffer.take(length);
    let read = 0;
    while (read < length) {
      const n = readSync(fd, bytes, read, length - read, offset + read);
      if (n === 0) break;
      read += n;
    }
    return bytes.subarray(0, read);
  } finally {
    closeSync(fd);
  }
}

function lastCdrIdOf(ops: AppliedOp[]): number {
  let id = 0;
  for (const op of ops) if ((op.op === 'ratedRow' || op.op === 'rated' || op.op === 'cdr') && op.id > id) id = op.id;
  return id;
}

/**
 * Applies the whole records of the position's segment from its offset. `final`: nothing more will be
 * written to it (a later segment exists, or the writer is gone), so the position moves to the next
 * segment and this one is deleted once that is committed. `limit`: the offset the segment is durable to
 * (durability `full`: what is written but not yet synced may still be lost, so it is not applied yet).
 * `buffer`: memory to read into, kept by a caller that reads again and again (the applier thread).
 */
export function applySegment(
  store: JournalStore,
  dir: string,
  position: LogPosition,
  final: boolean,
  limit = Number.POSITIVE_INFINITY,
  buffer: SegmentBuffer | null = null,
): SegmentApplied {
  const path = segmentPath(dir, position.segment);
  const decoded = decodeRecords(readFrom(path, position.offset, limit, buffer), decodeOpsToApply);
  const next = final ? { segment: position.segment + 1, offset: 0 } : { segment: position.segment, offset: position.offset + decoded.end };
  const applied: SegmentApplied = {
    segment: position.segment,
    position,
    lastCdrId: lastCdrIdOf(decoded.ops),
    skipped: [],
    lostBytes: final ? decoded.trailing : 0,
  };
  if (decoded.end === 0 && !final) return applied;
  applied.skipped = store.applyOps(decoded.ops, next);
  applied.position = next;
  if (final) rmSync(path, { force: true });
  return applied;
}

/** At start-up, before anything reads money.db: applies every segment left, deletes them, and says where the next one starts. */
export function recoverLog(store: JournalStore, dir: string): { next: LogPosition; applied: SegmentApplied[] } {
  let position = store.position();
  const applied: SegmentApplied[] = [];
  for (const segment of listSegments(dir)) {
    // Applied and committed before a crash kept it from being deleted.
    if (segment < position.segment) {
      rmSync(segmentPath(dir, segment), { force: true });
      continue;
    }
    if (segment > position.segment) position = { segment, offset: 0 };
    const result = applySegment(store, dir, position, true);
    applied.push(result);
    position = result.position;
  }
  return { next: position, applied };
}
