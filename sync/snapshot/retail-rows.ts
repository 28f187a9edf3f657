import type { CallTranslationRow, RetailProductRow } from '../../src/core/snapshot/retail.js';
import type { Currency } from '../../src/core/snapshot/schema.js';
import type { Row } from '../store/config-store.js';

/**
 * The partner API's rows as the nodes hold them (src/core/snapshot/retail.ts): one mapping for the snapshot
 * (build.ts) and the live deltas (sync/deltas/log.ts), so a node that follows the channel holds what the next
 * snapshot would give it.
 */

/** A product is live (its access numbers take calls) while it and its tenant are active; null when it is not. */
export function retailProductRow(product: Row, tenantActive: boolean): RetailProductRow | null {
  if (product.status !== 'active' || !tenantActive) return null;
  return {
    id: product.id as number,
    customer_trunk_id: product.customer_trunk_id as number | null,
    rate_deck_id: product.rate_deck_id as number | null,
    currency: product.currency as Currency,
    access_numbers: typeof product.access_numbers === 'string' && product.access_numbers !== '' ? product.access_numbers.split(',') : [],
  };
}

/** A setup_call translation; an ended one is sent with its end as expires_at (delete_account ends them so). */
export function callTranslationRow(row: Row): CallTranslationRow {
  return {
    id: row.id as number,
    retail_account_id: row.retail_account_id as number,
    partner_product_id: row.partner_product_id as number,
    a_number: row.a_number as string,
    access_number: row.access_number as string,
    b_number: row.b_number as string,
    expires_at: row.expires_at as string,
  };
}
