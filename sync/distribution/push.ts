import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

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
  /** http(s)://host:port, or an absolute directory path. */
  address: string;
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
}

export const DEFAULT_PUSH: PushOptions = { timeoutMs: 15_000, attempts: 3, backoffMs: 500 };

async function pushOnce(
  target: SidecarTarget,
  bytes: Uint8Array,
  version: number,
  timeoutMs: number,
): Promise<{ version: number | null; retryable: boolean; error: string | null }> {
  if (!/^https?:\/\//.test(target.address)) {
    await mkdir(target.address, { recursive: true });
    const temporary = join(target.address, `.routing-${version}.msgpack.tmp`);
    await writeFile(temporary, bytes);
    await rename(temporary, join(target.address, 'routing.msgpack')); // the sidecar sees a whole file or none
    return { version: null, retryable: false, error: null };
  }
  const tokens = target.pushTokens ?? [];
  let response: Response;
  for (let index = 0; ; index++) {
    const token = tokens.at(index);
    response = await fetch(`${target.address.replace(/\/$/, '')}/api/snapshot`, {
      method: 'PUT',
      headers: { 'content-type': 'application/msgpack', ...(token === undefined ? {} : { authorization: `Bearer ${token}` }) },
      body: bytes,
      signal: AbortSignal.timeout(timeoutMs),
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
  if (response.ok) return { version: answer.version ?? null, retryable: false, error: null };
  // The node already serves this version or a newer one: nothing to do.
  if (response.status === 409 && (answer.serving_version ?? 0) >= version)
    return { version: answer.serving_version ?? null, retryable: false, error: null };
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
      const outcome = await pushOnce(target, bytes, version, options.timeoutMs);
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
