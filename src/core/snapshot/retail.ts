import { CURRENCIES, type Currency } from './schema.js';

/**
 * The partner API's part of the routing snapshot (issue 19): each active product's access numbers and the
 * trunk and sell deck its calls use, and the setup_call translations live when the snapshot was built.
 * Both tables are optional, so a snapshot from before them (and a test's fixture) is still whole: it then
 * has no access numbers. Compiled into retail-index.ts; what the sidecar does with them is src/sidecar/retail/access-numbers.ts.
 */
export interface RetailProductRow {
  /** partner_products.id. */
  id: number;
  customer_trunk_id: number | null;
  rate_deck_id: number | null;
  currency: Currency;
  /** Digits, as calls present them (the admin API keeps them so). */
  access_numbers: string[];
}

export interface CallTranslationRow {
  /** setup_call's insertId. */
  id: number;
  retail_account_id: number;
  partner_product_id: number;
  a_number: string;
  access_number: string;
  b_number: string;
  /** ISO time; the translation is not used from then on. */
  expires_at: string;
}

export interface RetailTables {
  retail_products?: RetailProductRow[];
  call_translations?: CallTranslationRow[];
}

export interface RetailProduct {
  id: number;
  customerTrunkId: number | null;
  rateDeckId: number | null;
  /**
   * The sell deck its calls are priced, routed and rated with, as the snapshot's dense deck index, found when the
   * product is compiled or applied (decks are not a live table, so the index holds for the snapshot's life):
   * null when the product names no deck (its calls use the trunk's assigned deck), -1 when the deck it names is
   * not in the snapshot (its calls are refused no_rate_deck rather than sold at another deck's rates).
   */
  sellDeck: number | null;
  currency: Currency;
}

export interface CallTranslation {
  id: number;
  retailAccountId: number;
  productId: number;
  accessNumber: string;
  bNumber: string;
  expiresAtMs: number;
  /**
   * The trie node the b-number reaches in the rates of the snapshot holding the translation (deepestNode, as
   * call/route and admission walk it), found when the translation is compiled; -1 when not known.
   */
  bNumberNode: number;
}

export function compileTranslation(row: CallTranslationRow): CallTranslation {
  return {
    id: row.id,
    retailAccountId: row.retail_account_id,
    productId: row.partner_product_id,
    accessNumber: row.access_number,
    bNumber: row.b_number,
    expiresAtMs: Date.parse(row.expires_at),
    bNumberNode: -1,
  };
}

/** The snapshot's decks a product may sell with: deck id -> dense index, and each deck's kind. */
export interface SellDecks {
  deckById: ReadonlyMap<number, number>;
  decks: readonly { deckType: 'customer' | 'carrier' }[];
}

/**
 * The dense index of the deck `id` names as a sell deck, -1 when the snapshot has none: a carrier deck sells nothing
 * (the admin API refuses one for a product), as a deck the snapshot lacks.
 */
export function sellingDeck({ deckById, decks }: SellDecks, id: number): number {
  const deck = deckById.get(id);
  return deck !== undefined && decks[deck].deckType === 'customer' ? deck : -1;
}

export function compileProduct(row: RetailProductRow, decks: SellDecks): RetailProduct {
  const sellDeck = row.rate_deck_id === null ? null : sellingDeck(decks, row.rate_deck_id);
  return { id: row.id, customerTrunkId: row.customer_trunk_id, rateDeckId: row.rate_deck_id, sellDeck, currency: row.currency };
}

const DIGITS = /^[0-9]{1,32}$/;
const isId = (value: unknown): boolean => typeof value === 'number' && Number.isSafeInteger(value) && value >= 1;
const isIdOrNull = (value: unknown): boolean => value === null || isId(value);
const isDigits = (value: unknown): boolean => typeof value === 'string' && DIGITS.test(value);

/** The retail tables' shape, when present (they come off the wire: nothing is assumed); null: fine. One access number belongs to one product. */
export function retailProblem(tables: RetailTables): string | null {
  const products: unknown = tables.retail_products;
  const translations: unknown = tables.call_translations;
  if (products !== undefined) {
    if (!Array.isArray(products)) return 'retail_products is not a table';
    const owner = new Map<string, number>();
    for (const [index, item] of (products as unknown[]).entries()) {
      const row = (typeof item === 'object' && item !== null ? item : {}) as Record<string, unknown>;
      const currencyOk = (CURRENCIES as readonly unknown[]).includes(row.currency);
      if (!isId(row.id) || !isIdOrNull(row.customer_trunk_id) || !isIdOrNull(row.rate_deck_id) || !currencyOk)
        return `retail_products[${index}] is invalid`;
      const numbers: unknown = row.access_numbers;
      if (!Array.isArray(numbers) || !numbers.every(isDigits)) return `retail_products[${index}].access_numbers must be digit strings`;
      for (const number of numbers as string[]) {
        const other = owner.get(number);
        if (other !== undefined && other !== row.id) return `access number ${number} belongs to products ${other} and ${row.id as number}`;
        owner.set(number, row.id as number);
      }
    }
  }
  if (translations !== undefined) {
    if (!Array.isArray(translations)) return 'call_translations is not a table';
    for (const [index, item] of (translations as unknown[]).entries()) {
      const row = (typeof item === 'object' && item !== null ? item : {}) as Record<string, unknown>;
      if (!isId(row.id) || !isId(row.retail_account_id) || !isId(row.partner_product_id)) return `call_translations[${index}] is invalid`;
      if (!isDigits(row.a_number) || !isDigits(row.access_number) || !isDigits(row.b_number))
        return `call_translations[${index}]: numbers must be digit strings`;
      if (typeof row.expires_at !== 'string' || Number.isNaN(Date.parse(row.expires_at)))
        return `call_translations[${index}].expires_at is not a time`;
    }
  }
  return null;
}
