import type { IncomingRequest } from '../core/http/server.js';
import { jsonPost } from './requests.js';
import type { ConfigStore, Row } from '../../sync/store/config-store.js';

/**
 * A partner tenant and one product in a store, and a request to a partner route as the listener hands it over:
 * what a test or a bench that drives the partner routes in-process (without HTTP) sets up.
 */
export async function insertPartnerTenant(
  config: ConfigStore,
  tenant: { tenant_id: string; name: string; operations: string },
  product: Row & { product_id: string; currency: string },
): Promise<Row> {
  const now = new Date().toISOString();
  const row = await config.insert('partner_tenants', { ...tenant, status: 'active', created_at: now, updated_at: now });
  await config.insert('partner_products', {
    requires_pin: 0,
    ...product,
    partner_tenant_id: row.id,
    status: 'active',
    created_at: now,
    updated_at: now,
  });
  return row;
}

/** A JSON POST to `path` with the bearer token and headers given. */
export function partnerRequest(path: string, body: unknown, token: string, headers: Record<string, string>): IncomingRequest {
  return { ...jsonPost(path, body), authorization: `Bearer ${token}`, headers };
}
