/**
 * The compiled image: the node's newest stored snapshot as the compile worker compiled it (the compiled model
 * and the tables live changes apply to), in one file beside sidecar.db, so that a restart reads it back in a
 * few hundred milliseconds instead of decoding, validating and compiling 2M rate rows again (issue 18: a
 * restarted sidecar serves the latest version within 2 s; the compile took 2-4 s of it).
 *
 * The image is a cache, never the authority: the stored snapshot is. It is used only when all of these hold,
 * and the node compiles the stored snapshot otherwise (and writes a new image):
 * - it names the version and checksum of the newest stored snapshot (a newer snapshot, or one forced in below
 *   it, makes it stale);
 * - it was written by this build's compiler (a fingerprint of the code under src/core/, which makes the model:
 *   an upgrade that changes how anything compiles cannot be served an older build's indexes);
 * - its SHA-256, over every byte before it, matches (a torn write or a flipped bit on disk).
 * It is written to a temporary file, synced and renamed over the old one, so a crash leaves the old image or
 * the new one, and the checksum catches what a disk does anyway.
 *
 * Layout: MAGIC, the header's length (u32 LE) and the header (JSON), then the body at an 8-byte boundary: the
 * skeleton (msgpack: the whole state with every typed array left out) and each typed array's bytes at an
 * 8-byte boundary, then the SHA-256 of everything before it. The state is read with one read; each typed array
 * is a view on it in place (no copy), its path in the header says where it goes back in the skeleton.
 */
import { createHash } from 'node:crypto';
import { closeSync, fstatSync, openSync, readdirSync, readFileSync, readSync } from 'node:fs';
import { open, rename } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Packr } from 'msgpackr';
import type { CompiledSnapshot } from '../../core/snapshot/model.js';
import type { SmallTables } from '../../core/snapshot/schema.js';
import { writePrivateFile } from '../../core/files/private-file.js';

/** The compiled image of the snapshots stored in `dbPath` (sidecar.db): sidecar.db.compiled beside it. */
export function compiledImagePath(dbPath: string): string {
  return `${dbPath}.compiled`;
}

/** Which stored snapshot an image is of: its version and its envelope's checksum. */
export interface ImageKey {
  version: number;
  checksum: string;
}

export interface ImageState {
  compiled: CompiledSnapshot;
  tables: SmallTables;
}

export type ImageRead = { ok: true; state: ImageState; bytes: number } | { ok: false; reason: string };

const MAGIC = Buffer.from('OSDE-IMG');
/** The layout above; the model's own shape is covered by the build fingerprint. */
const FORMAT = 1;
const DIGEST_BYTES = 32;
// Records (one shape per kind of row) decode 100k CIDR rows several times faster than maps; Maps stay Maps.
const packr = new Packr({ useRecords: true, mapsAsObjects: false, moreTypes: true });

type TypedArray =
  | Int8Array
  | Uint8Array
  | Uint8ClampedArray
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | Float32Array
  | Float64Array
  | BigInt64Array
  | BigUint64Array;

const TYPED_ARRAYS = {
  Int8Array,
  Uint8Array,
  Uint8ClampedArray,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  Float32Array,
  Float64Array,
  BigInt64Array,
  BigUint64Array,
} as const;
type TypedArrayName = keyof typeof TYPED_ARRAYS;

/** Where one typed array of the state is: its place in the skeleton, its kind, its bytes in the body. */
interface ArrayEntry {
  path: (string | number)[];
  type: TypedArrayName;
  offset: number;
  bytes: number;
}

/** Offsets are from the body's start, the first 8-byte boundary after the header. */
interface Header {
  format: number;
  build: string;
  snapshot: ImageKey;
  arrays: ArrayEntry[];
  skeleton: { offset: number; bytes: number };
  /** Where the trailing digest is: the body's length. */
  digestAt: number;
}

let fingerprint: string | null = null;

/**
 * The build's compiler, as a hash of every module under src/core/ (where the model and its compiler are) and of
 * this one: read once per process, a few milliseconds.
 */
export function buildFingerprint(): string {
  if (fingerprint !== null) return fingerprint;
  const core = fileURLToPath(new URL('../../core/', import.meta.url));
  const hash = createHash('sha256');
  const files = (readdirSync(core, { recursive: true }) as string[]).filter((file) => file.endsWith('.js')).sort();
  for (const file of files) hash.update(`${file}\n`).update(readFileSync(join(core, file)));
  const self = fileURLToPath(import.meta.url);
  hash.update(`${relative(core, self)}\n`).update(readFileSync(self));
  fingerprint = hash.digest('hex');
  return fingerprint;
}

const align8 = (n: number): number => (n + 7) & ~7;

/**
 * What the compile worker takes from a state before handing its buffers to the main thread (transferred, so
 * gone from the worker): every typed array copied into one block, and the rest as it is (it was cloned, not
 * transferred). writeCompiledImage makes the image of it after the worker has answered.
 */
export interface ImageDraft {
  key: ImageKey;
  /** The state with its typed arrays left out (null where each was). */
  skeleton: unknown;
  arrays: ArrayEntry[];
  /** Every typed array's bytes, each at its entry's offset (8-byte aligned). */
  block: Uint8Array;
}

/** The draft of `state`'s image (freshly compiled from the snapshot `key`): the copy of its typed arrays, before they go. */
export function draftCompiledImage(state: ImageState, key: ImageKey): ImageDraft {
  const found: { path: (string | number)[]; array: TypedArray }[] = [];
  const skeleton = withoutTypedArrays(state, [], found);
  const arrays: ArrayEntry[] = [];
  let at = 0;
  for (const { path, array } of found) {
    arrays.push({ path, type: array.constructor.name as TypedArrayName, offset: at, bytes: array.byteLength });
    at = align8(at + array.byteLength);
  }
  const block = new Uint8Array(at);
  for (const [i, { array }] of found.entries())
    block.set(new Uint8Array(array.buffer, array.byteOffset, array.byteLength), arrays[i].offset);
  return { key, skeleton, arrays, block };
}

/** The image's bytes: the header, the typed arrays, the skeleton and the digest of all before it. */
function encodeCompiledImage(draft: ImageDraft): Uint8Array {
  const skeleton = packr.pack(draft.skeleton);
  const header: Header = {
    format: FORMAT,
    build: buildFingerprint(),
    snapshot: draft.key,
    arrays: draft.arrays,
    skeleton: { offset: draft.block.byteLength, bytes: skeleton.byteLength },
    digestAt: draft.block.byteLength + skeleton.byteLength,
  };
  const headerText = Buffer.from(JSON.stringify(header));
  const bodyStart = align8(MAGIC.length + 4 + headerText.length);
  const image = Buffer.alloc(bodyStart + header.digestAt + DIGEST_BYTES);
  MAGIC.copy(image, 0);
  image.writeUInt32LE(headerText.length, MAGIC.length);
  headerText.copy(image, MAGIC.length + 4);
  image.set(draft.block, bodyStart);
  image.set(skeleton, bodyStart + header.skeleton.offset);
  const digestAt = bodyStart + header.digestAt;
  image.set(createHash('sha256').update(image.subarray(0, digestAt)).digest(), digestAt);
  return image;
}

/**
 * `value` with every typed array replaced by null and listed in `arrays` with its path. Objects and arrays that
 * hold none are the same objects (the 100k CIDR rows are not copied). Maps and Sets must hold none: a typed
 * array there has no path (the model keeps its arrays in plain objects), and the image is then not written.
 */
function withoutTypedArrays(
  value: unknown,
  path: (string | number)[],
  arrays: { path: (string | number)[]; array: TypedArray }[],
): unknown {
  if (ArrayBuffer.isView(value)) {
    if (!(value.constructor.name in TYPED_ARRAYS)) throw new Error(`${path.join('.')}: a ${value.constructor.name} is not a typed array`);
    arrays.push({ path, array: value as TypedArray });
    return null;
  }
  if (typeof value !== 'object' || value === null) return value;
  if (value instanceof Map || value instanceof Set) {
    for (const item of value.values())
      if (typeof item === 'object' && item !== null && withoutTypedArrays(item, path, []) !== item)
        throw new Error(`${path.join('.')}: a typed array inside a Map or Set`);
    return value;
  }
  // Copied only where a typed array was taken out below: a row of primitives is returned as it is.
  if (Array.isArray(value)) {
    let copy: unknown[] | null = null;
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      if (typeof item !== 'object' || item === null) continue;
      const stripped = withoutTypedArrays(item, [...path, i], arrays);
      if (stripped !== item) (copy ??= value.slice())[i] = stripped;
    }
    return copy ?? value;
  }
  let copy: Record<string, unknown> | null = null;
  for (const [name, field] of Object.entries(value)) {
    if (typeof field !== 'object' || field === null) continue;
    const stripped = withoutTypedArrays(field, [...path, name], arrays);
    if (stripped !== field) (copy ??= { ...value })[name] = stripped;
  }
  return copy ?? value;
}

/**
 * Writes the image of `draft` where a restart looks for it: to a temporary file, synced, renamed over the old
 * one, the directory synced. Owner-only: it holds every registration's HA1, as sidecar.db does.
 */
export async function writeCompiledImage(path: string, draft: ImageDraft): Promise<void> {
  const image = encodeCompiledImage(draft);
  const temporary = `${path}.tmp`;
  await writePrivateFile(temporary, image, { durable: true });
  await rename(temporary, path);
  const directory = await open(dirname(path), 'r');
  try {
    await directory.sync();
  } finally {
    await directory.close();
  }
}

/**
 * The state an image holds, if it is the image of `key` written by this build and whole; else why not. Reads
 * synchronously, with one read: it runs at start-up, before the sidecar listens, when nothing waits on the
 * event loop and one read of the file is the quickest way in.
 */
export function readCompiledImage(path: string, key: ImageKey): ImageRead {
  let buffer: ArrayBuffer;
  let image: Uint8Array;
  try {
    const fd = openSync(path, 'r');
    try {
      const size = fstatSync(fd).size;
      buffer = new ArrayBuffer(size);
      image = new Uint8Array(buffer);
      for (let at = 0; at < size;) {
        const read = readSync(fd, image, at, size - at, at);
        if (read === 0) return { ok: false, reason: `the file ended at byte ${at} of ${size}` };
        at += read;
      }
    } finally {
      closeSync(fd);
    }
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return { ok: false, reason: code === 'ENOENT' ? 'no compiled image' : `cannot read it: ${(error as Error).message}` };
  }
  const read = readHeader(image);
  if (typeof read === 'string') return { ok: false, reason: read };
  const { header, bodyStart } = read;
  if (header.build !== buildFingerprint()) return { ok: false, reason: 'written by another build' };
  if (header.snapshot.version !== key.version || header.snapshot.checksum !== key.checksum)
    return {
      ok: false,
      reason: `it is of snapshot version ${header.snapshot.version}, the newest stored is version ${key.version}`,
    };
  const digestAt = bodyStart + header.digestAt;
  const digest = createHash('sha256').update(image.subarray(0, digestAt)).digest();
  if (!digest.equals(image.subarray(digestAt))) return { ok: false, reason: 'its checksum does not match (torn or corrupt)' };
  try {
    const skeletonAt = bodyStart + header.skeleton.offset;
    const state = packr.unpack(image.subarray(skeletonAt, skeletonAt + header.skeleton.bytes)) as Record<string, unknown>;
    for (const entry of header.arrays) {
      const Type = TYPED_ARRAYS[entry.type];
      const array = new Type(buffer, bodyStart + entry.offset, entry.bytes / Type.BYTES_PER_ELEMENT);
      let holder: Record<string | number, unknown> = state;
      for (const step of entry.path.slice(0, -1)) holder = holder[step] as Record<string | number, unknown>;
      holder[entry.path[entry.path.length - 1]] = array;
    }
    return { ok: true, state: state as unknown as ImageState, bytes: image.byteLength };
  } catch (error) {
    return { ok: false, reason: `cannot decode it: ${(error as Error).message}` };
  }
}

/** The header and where the body starts, checked for what the rest of the read relies on (offsets inside the file, known types); else why not. */
function readHeader(image: Uint8Array): { header: Header; bodyStart: number } | string {
  const bytes = Buffer.from(image.buffer, image.byteOffset, image.byteLength);
  if (bytes.length < MAGIC.length + 4 + DIGEST_BYTES || !bytes.subarray(0, MAGIC.length).equals(MAGIC)) return 'not a compiled image';
  const length = bytes.readUInt32LE(MAGIC.length);
  let header: Header;
  try {
    header = JSON.parse(bytes.toString('utf8', MAGIC.length + 4, MAGIC.length + 4 + length)) as Header;
  } catch {
    return 'its header is not readable (torn or corrupt)';
  }
  if (header.format !== FORMAT) return `its format is ${String(header.format)}, not ${FORMAT}`;
  const bodyStart = align8(MAGIC.length + 4 + length);
  if (bodyStart + header.digestAt !== bytes.length - DIGEST_BYTES)
    return `it is ${bytes.length} bytes, its header says ${bodyStart + header.digestAt + DIGEST_BYTES} (torn)`;
  const inside = (offset: number, size: number): boolean =>
    Number.isSafeInteger(offset) && Number.isSafeInteger(size) && offset >= 0 && size >= 0 && offset + size <= header.digestAt;
  if (!inside(header.skeleton.offset, header.skeleton.bytes)) return 'its skeleton lies outside the file';
  for (const entry of header.arrays) {
    const Type = Object.hasOwn(TYPED_ARRAYS, entry.type) ? TYPED_ARRAYS[entry.type] : undefined;
    if (Type === undefined || !inside(entry.offset, entry.bytes) || entry.offset % 8 !== 0 || entry.bytes % Type.BYTES_PER_ELEMENT !== 0)
      return `its array at ${entry.path.join('.')} is not where an array can be`;
  }
  return { header, bodyStart };
}
