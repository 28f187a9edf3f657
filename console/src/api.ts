/** The console's calls to the control plane it is served by (same origin, so the same allowlist). */
export interface ApiError {
  error: string;
  reason_code?: string;
  status: number;
}

export type ApiAnswer<T> = { ok: true; body: T } | { ok: false; error: ApiError };

export async function api<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<ApiAnswer<T>> {
  let response: Response;
  try {
    response = await fetch(path, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (error) {
    return { ok: false, error: { error: `the control plane did not answer (${String(error)})`, status: 0 } };
  }
  const parsed = (await response.json().catch(() => null)) as unknown;
  if (response.ok) return { ok: true, body: parsed as T };
  const failure = (parsed ?? {}) as Partial<ApiError>;
  return {
    ok: false,
    error: { error: failure.error ?? `HTTP ${response.status}`, reason_code: failure.reason_code, status: response.status },
  };
}
