import { RequestError } from '../../src/core/http/errors.js';
import type { ConfigStore, Row } from '../store/config-store.js';

/**
 * A rate deck assigned to trunks keeps the kind those trunks need: a carrier deck turned customer while a
 * carrier trunk holds it makes a store every snapshot build refuses, so every routing sync after it fails.
 * Every assignment row counts, active or not, as every one goes into the snapshot.
 */
export async function mustFitAssignments(store: ConfigStore, deck: Row): Promise<void> {
  const other = deck.deck_type === 'customer' ? 'carrier' : 'customer';
  const { rows } = await store.list(`${other}_trunk_rate_decks`, { where: { rate_deck_id: deck.id as number }, limit: 1, offset: 0 });
  if (rows.length > 0)
    throw new RequestError(
      'reference_mismatch',
      `rate deck ${deck.id as number} is assigned to ${other} trunk ${rows[0][`${other}_trunk_id`] as number}; it stays a ${other} deck while assigned`,
    );
}

/**
 * A rate deck a partner product sells with (issue 19: its rate_deck_id prices, routes and rates the product's
 * calls) stays a customer deck in the product's currency, as the product's own write had to find it
 * (crud.ts mustFitProduct): its calls are billed to retail accounts in the product's currency. A closed
 * product takes no calls, and is checked again if it is reopened.
 */
export async function mustFitProducts(store: ConfigStore, deck: Row): Promise<void> {
  const { rows } = await store.list('partner_products', { where: { rate_deck_id: deck.id as number }, limit: null, offset: 0 });
  const product = rows.find((row) => row.status !== 'closed' && (deck.deck_type !== 'customer' || row.currency !== deck.currency));
  if (product !== undefined)
    throw new RequestError(
      'reference_mismatch',
      `rate deck ${deck.id as number} is partner product ${product.id as number}'s (${String(product.product_id)}) sell deck; ` +
        `it stays a customer deck in ${String(product.currency)} while the product names it`,
    );
}
