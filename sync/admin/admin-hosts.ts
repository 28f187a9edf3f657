import { namesThisServer, parseHostnames } from '../../src/core/http/host-names.js';

/**
 * The Host headers an operator's request to the admin API, the console and an address-admitted GET /metrics
 * may carry (docs/operations.md, HTTP edges): an IP literal, `localhost`, or a name given with
 * `--admin-hostnames` (src/core/http/host-names.ts says why: DNS rebinding).
 */

/** `--admin-hostnames`: comma-separated names the console is reached by. */
export function parseAdminHostnames(text: string): string[] {
  return parseHostnames(text, '--admin-hostnames');
}

/** Whether a Host header (any port) names this control plane. */
export const namesControlPlane: (host: string, names: ReadonlySet<string>) => boolean = namesThisServer;
