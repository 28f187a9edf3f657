import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Where the compiled processes and the repository's folders are, seen from the build (dist/src/devkit/):
 * the one place tests, benches and the demo take them from.
 */
const HERE = fileURLToPath(new URL('.', import.meta.url));
/** The build's root (dist/). */
export const DIST = join(HERE, '..', '..');
/** The repository's root. */
export const REPO = join(DIST, '..');
export const SIDECAR_MAIN = join(DIST, 'src', 'sidecar', 'main.js');
export const CONTROL_MAIN = join(DIST, 'sync', 'main.js');
/** The dataset generator as a command (benches run it in its own process). */
export const DATASET_CLI = join(HERE, 'dataset.js');
