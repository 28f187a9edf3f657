import { mkdir, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { writePrivateFile } from '../../src/core/files/private-file.js';
import type { SidecarAddress } from '../nodes/targets.js';

/**
 * Sends a snapshot to every node's sidecar: an HTTP PUT to
 * `http://host:port` (the sidecar answers with the version it now serves), or
 * an atomic file drop into a directory the sidecar watches. Nodes go in
 * parallel, each with its own timeout and retries, so one slow or dead node
 * holds up nobody; each gets its own result.
 */
export interface SidecarTarget {
  nodeId: number;
  hostname: string;
  /** Checked against the node policy (sync/nodes/targets.ts): an allowed URL, or a resolved directory under a root. */
  address: SidecarAddress;
  /**
   * Bearer tokens the sidecar may check the push against (the node's push token, then the previous one
   * while a rotation is under way: the node may still hold the old secret). Empty: none issued, sent bare.
   */
  pushTokens?: readonly string[];
}

export interface SidecarResult {
  node_id: number;
  hostname: string;
  success: boolean;
  /** The version the sidecar says it serves after the push (HTTP targets). */
  version: number | null;
  attempts: number;
  duration_ms: number;
  error: string | null;
}

export interface PushOptions {
  timeoutMs: number;
  attempts: number;
  /** Delay before retry n (1-based): backoffMs * n. */
  backoffMs: number;
  /**
   * `PUT /api/snapshot?force=1`: the node takes this version even when it serves a newer one, and drops
   * its stored newer ones. The way back for a node that was handed a version ahead of the centre's.
   */
  force?: boolean;
}

export const DEFAULT_PUSH: PushOptions = { timeoutMs: 15_000, attempts: 3, backoffMs: 500 };

async function pushOnce(
  target: SidecarTarget,
  bytes: Uint8Array,
  version: number,
  options: PushOptions,
): Promise<{ version: number | null; retryable: boolean; error: string | null }> {
  const address = target.address;
  if (address.kind === 'directory') {
    // Under a node files root (checked before the push); the drop carries every HA1, so owner-only.
    await mkdir(address.path, { recursive: true });
    const temporary = join(address.path, `.routing-${version}.msgpack.tmp`);
    await writePrivateFile(temporary, bytes);
    await rename(temporary, join(address.path, 'routing.msgpack')); // the sidecar sees a whole file or none
    return { version: null, retryable: false, error: null };
  }
  const tokens = target.pushTokens ?? [];
  let response: Response;
  for (let index = 0; ; index++) {
    const token = tokens.at(index);
    response = await fetch(`${address.url.replace(/\/$/, '')}/api/snapshot${options.force === true ? '?force=1' : ''}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/msgpack', ...(token === undefined ? {} : { authorization: `Bearer ${token}` }) },
      body: bytes,
      signal: AbortSignal.timeout(options.timeoutMs),
      // The host was checked; a redirect would send the snapshot (HA1s included) to one that was not.
      redirect: 'error',
    });
    // Refused with the current token during a rotation: the node still holds the previous secret.
    if (response.status !== 401 || index + 1 >= tokens.length) break;
    await response.body?.cancel();
  }
  const answer = (await response.json().catch(() => ({}))) as {
    version?: number;
    error?: string;
    reason_code?: string;
    serving_version?: number;
  };
  // Taken only when the node says it serves the version pushed: the centre's versions are the only authority.
  if (response.ok) {
    if (answer.version === version) return { version, retryable: false, error: null };
    return { version: null, retryable: false, error: `the node answered version ${String(answer.version)} to a push of ${version}` };
  }
  if (response.status === 409 && answer.serving_version === version) return { version, retryable: false, error: null }; // an earlier attempt got there
  if (response.status === 409 && (answer.serving_version ?? 0) > version)
    return {
      version: null,
      retryable: false,
      error:
        `the node serves version ${answer.serving_version}, ahead of the control plane's ${version}, and refuses the control plane's snapshots ` +
        '(a snapshot was put to it directly): POST /api/opensips/routing/sync?force=1 makes it take this one',
    };
  const error = `HTTP ${response.status}${answer.reason_code === undefined ? '' : ` ${answer.reason_code}`}: ${answer.error ?? 'no reason given'}`;
  // A refused snapshot (422) will be refused again; a busy or failing node (5xx) may take it on retry.
  return { version: null, retryable: response.status >= 500, error };
}

export async function pushToSidecar(
  target: SidecarTarget,
  bytes: Uint8Array,
  version: number,
  options: PushOptions = DEFAULT_PUSH,
): Promise<SidecarResult> {
  const started = performance.now();
  let lastError = 'not attempted';
  let attempt = 0;
  while (attempt < options.attempts) {
    attempt++;
    try {
      const outcome = await pushOnce(target, bytes, version, options);
      if (outcome.error === null) {
        return {
          node_id: target.nodeId,
          hostname: target.hostname,
          success: true,
          version: outcome.version,
          attempts: attempt,
          duration_ms: Math.round(performance.now() - started),
          error: null,
        };
      }
      lastError = outcome.error;
      if (!outcome.retryable) break;
    } catch (error) {
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      const detail = cause?.code ?? cause?.message;
      lastError =
        (error as Error).name === 'TimeoutError'
          ? `timed out after ${options.timeoutMs} ms`
          : `${(error as Error).message}${detail === undefined ? '' : ` (${detail})`}`;
    }
    if (attempt < options.attempts) await new Promise((resolve) => setTimeout(resolve, options.backoffMs * attempt));
  }
  return {
    node_id: target.nodeId,
    hostname: target.hostname,
    success: false,
    version: null,
    attempts: attempt,
    duration_ms: Math.round(performance.now() - started),
    error: lastError,
  };
}

export function pushToAll(
  targets: readonly SidecarTarget[],
  bytes: Uint8Array,
  version: number,
  options: PushOptions = DEFAULT_PUSH,
): Promise<SidecarResult[]> {
  return Promise.all(targets.map((target) => pushToSidecar(target, bytes, version, options)));
}
