import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Engine } from './engines.js';
import { startMoneyWorld, type MoneyWorld } from './money-world.js';
import { makePartnerKey, partnerCaller, partnerControlArgs, partnerUrlOf } from './partner.js';

/**
 * The fixture money world with the partner API on (tokens from a local JWKS file), tenant `acme` and its
 * product `prepaid_au` whose calls use trunk 10 and sell deck 1 (AUD), on one access number.
 */
export interface PartnerWorld {
  world: MoneyWorld;
  tenantId: number;
  productId: number;
  /** A partner API call with a fresh Idempotency-Key. */
  partner: (operation: string, body: Record<string, unknown>) => Promise<{ status: number; body: any; text: string }>;
  /** A new account of prepaid_au, topped up by `topup` unless null; its code. */
  account: (topup: number | null) => Promise<string>;
}

/** `engine`: the centre's store (money-world.ts: on PostgreSQL a database of the world's own, dropped by its stop); SQLite by default. */
export async function startPartnerWorld(
  accessNumber: string,
  sidecars: number,
  engine: Engine = 'sqlite',
  /** More of the control plane's arguments (a metrics token file, say). */
  controlArgs: string[] = [],
): Promise<PartnerWorld> {
  const key = await makePartnerKey('world-key');
  const jwks = join(mkdtempSync(join(tmpdir(), 'partner-world-')), 'jwks.json');
  writeFileSync(jwks, JSON.stringify({ keys: [key.jwk] }));
  const world = await startMoneyWorld({ sidecars, engine, controlArgs: [...partnerControlArgs(jwks), ...controlArgs] });
  const tenant = await world.control.post('/api/partner-tenants', { tenant_id: 'acme', name: 'Acme' });
  assert.equal(tenant.status, 201, JSON.stringify(tenant.body));
  const product = await world.control.post('/api/partner-products', {
    partner_tenant_id: tenant.body.id,
    product_id: 'prepaid_au',
    currency: 'AUD',
    customer_trunk_id: 10,
    rate_deck_id: 1,
    access_numbers: `+${accessNumber}`,
    requires_pin: false,
  });
  assert.equal(product.status, 201, JSON.stringify(product.body));
  const partner = partnerCaller(partnerUrlOf(world.control.logs), key);
  const account: PartnerWorld['account'] = async (topup) => {
    const created = await partner('create_account', { product_id: 'prepaid_au' });
    assert.equal(created.status, 201, created.text);
    const code = created.body.account_code_12 as string;
    if (topup !== null) assert.equal((await partner('topup', { account: code, amount: topup })).status, 200);
    return code;
  };
  return { world, tenantId: tenant.body.id as number, productId: product.body.id as number, partner, account };
}
