import { parseHostAllowlist, type HostAllowlist } from './hosts.js';
import { prepareFileRoots, type FileRoots } from './paths.js';

/**
 * What the control plane may touch on a node's behalf, fixed by the operator at start and never by the
 * admin API: files under `--node-files-root`, requests to `--node-hosts`. targets.ts holds every node
 * address to it.
 */
export interface NodePolicy {
  files: FileRoots;
  hosts: HostAllowlist;
}

export function loadNodePolicy(roots: readonly string[], hosts: string): NodePolicy {
  return { files: prepareFileRoots(roots), hosts: parseHostAllowlist(hosts) };
}
