import { mkdirSync, realpathSync } from 'node:fs';
import { lstat, realpath } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';

/**
 * The directories under which the control plane may touch files on a node's behalf (`--node-files-root`):
 * a sidecar's snapshot drop directory, an MI FIFO, a drouting SQLite file. Without them an admin-API caller
 * could make the centre write any file it can (a FIFO path that is /etc/hosts, a drop directory that is
 * `../../somewhere`, a drouting_db that is a sidecar's money.db).
 *
 * A path is judged by where it really leads: the deepest part of it that exists is resolved with
 * realpath (symlinks followed, `..` taken as the kernel takes it), the rest appended; the result must lie
 * inside a root, itself resolved the same way at start. Callers then use the resolved path, never the
 * text they were given, so what is checked is what is opened.
 */
export interface FileRoots {
  /** Real paths of the roots. */
  roots: readonly string[];
  /** As configured, for messages. */
  text: string;
}

/** Creates each root (the operator named it) and resolves it; a root that cannot be made fails the start. */
export function prepareFileRoots(paths: readonly string[]): FileRoots {
  const roots = paths.map((path) => {
    const absolute = resolve(path);
    mkdirSync(absolute, { recursive: true });
    return realpathSync(absolute);
  });
  return { roots, text: roots.join(', ') };
}

export function insideRoot(roots: FileRoots, path: string): boolean {
  return roots.roots.some((root) => {
    const rest = relative(root, path);
    return rest === '' || (rest !== '..' && !rest.startsWith(`..${sep}`) && !isAbsolute(rest));
  });
}

/** Where `text` really leads: realpath of its deepest existing ancestor plus the missing rest. */
export async function realTarget(text: string): Promise<string> {
  const missing: string[] = [];
  let current = resolve(text);
  for (;;) {
    try {
      return join(await realpath(current), ...missing.reverse());
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw error;
      // A symlink whose target is missing: mkdir or open through it would land wherever it points.
      if (
        await lstat(current).then(
          (info) => info.isSymbolicLink(),
          () => false,
        )
      )
        throw Object.assign(new Error(`${current} is a symlink to nothing`), { code: 'EDANGLING' });
      const parent = resolve(current, '..');
      if (parent === current) throw error;
      missing.push(current.slice(parent.length).replace(/^\//, ''));
      current = parent;
    }
  }
}

/** The resolved path of `text` when it lies under a root; a reason otherwise. */
export async function pathUnderRoots(roots: FileRoots, text: string): Promise<{ path: string } | { refused: string }> {
  if (!isAbsolute(text)) return { refused: 'must be an absolute path' };
  if (text.includes('\0')) return { refused: 'must not contain a NUL byte' };
  let path: string;
  try {
    path = await realTarget(text);
  } catch (error) {
    return { refused: `cannot be resolved (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})` };
  }
  if (!insideRoot(roots, path))
    return { refused: `leads to ${path}, outside the node files roots the control plane was started with (${roots.text})` };
  return { path };
}
