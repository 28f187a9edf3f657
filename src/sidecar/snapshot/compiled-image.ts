/** The compiled image of the node's newest stored snapshot, beside sidecar.db in its data directory. */
export const COMPILED_IMAGE_FILE = 'sidecar.compiled';
