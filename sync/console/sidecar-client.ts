import { checkSidecarAddress } from '../nodes/targets.js';
import type { NodePolicy } from '../nodes/policy.js';

/**
 * The console's reads from a node's sidecar: only to the node's own `sidecar_address`, checked against the
 * node hosts the control plane was started with (as a sync checks it), never to an address a request names.
 */
export type SidecarReach =
  | { ok: true; status: number; body: unknown }
  /**
   * `not_allowed`: the stored address is outside --node-hosts; `not_http`: none, or a drop directory (nothing
   * to ask: the node's configuration, not a failure); `unreachable`: it did not answer, or not with JSON.
   */
  | { ok: false; why: 'not_allowed' | 'not_http' | 'unreachable'; error: string };

/** A silent sidecar must not hold the Network page: it is shown as down instead. */
export const SIDECAR_READ_TIMEOUT_MS = 5_000;

export async function sidecarRequest(
  policy: NodePolicy,
  address: string | null,
  path: string,
  /** `text`: the body is handed back as text (the sidecar's Prometheus metrics), not parsed as JSON. */
  init: { method: 'GET' | 'POST'; body?: Uint8Array; timeoutMs?: number; text?: boolean } = { method: 'GET' },
): Promise<SidecarReach> {
  const checked = await checkSidecarAddress(policy, address);
  if (!checked.ok) return { ok: false, why: 'not_allowed', error: checked.message };
  if (checked.sidecar === null) return { ok: false, why: 'not_http', error: 'no sidecar_address configured' };
  if (checked.sidecar.kind !== 'http')
    return { ok: false, why: 'not_http', error: 'sidecar_address is a drop directory: no HTTP API to ask' };
  const url = new URL(path, checked.sidecar.url);
  try {
    const response = await fetch(url, {
      method: init.method,
      body: init.body,
      headers: init.body === undefined ? {} : { 'content-type': 'application/json' },
      redirect: 'error',
      signal: AbortSignal.timeout(init.timeoutMs ?? SIDECAR_READ_TIMEOUT_MS),
    });
    const text = await response.text();
    if (init.text === true) return { ok: true, status: response.status, body: text };
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      return { ok: false, why: 'unreachable', error: `the sidecar answered ${response.status} with a body that is not JSON` };
    }
    return { ok: true, status: response.status, body };
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause?.code;
    return { ok: false, why: 'unreachable', error: cause ?? (error instanceof Error ? error.message : String(error)) };
  }
}
