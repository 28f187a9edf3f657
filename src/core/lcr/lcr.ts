import { markCarrierBlocks } from '../blocking/block-rules.js';
import { addPercentFloor, mulNano } from '../money/nano.js';
import type { CarrierEligibility, CompiledSnapshot, LcrConfig, RateIndex } from '../snapshot/model.js';
import { sellingDeck } from '../snapshot/retail.js';
import type { Currency } from '../snapshot/schema.js';
import { deepestNode } from '../trie/prefix-trie.js';
import { DeckMatcher } from './rate-match.js';

/**
 * Least-cost routing over the compiled snapshot.
 *
 * Basis of comparison: the cost of a 60-second answered call, in the customer
 * deck's currency. For a per_minute row that is its rate, for a per_call row
 * its flat charge, so both compare by their rate value; billing increments do
 * not change a one-minute call. Costs are exact nano-units (1e-9); conversion
 * uses the newest exchange rate in force, rounded half-up at 1e-9.
 *
 * Margin protection (lcr_config for the sell deck, else the global row, else
 * block at break-even): with block_if_cost_exceeds_sell and an acceptable loss
 * of 0, a carrier is excluded when cost >= sell; with a loss L > 0, when
 * cost > sell * (1 + L/100).
 *
 * One classification serves both callers: `evaluate` (every candidate, for
 * lcr/lookup and the simulator) and `cheapest` (call/route's hot path, which
 * allocates nothing and does not sort).
 */

export type CandidateStatus =
  'ok' | CarrierEligibility | 'no_rate' | 'no_exchange_rate' | 'cost_exceeds_sell' | 'blocked' | 'already_tried' | 'all_gateways_tried';

export interface Candidate {
  carrier: number;
  status: CandidateStatus;
  /** Position of the matched cost row in the rate index, -1 when none. */
  costRow: number;
  /** Cost in the carrier deck's currency, nano-units (NaN without a rate). */
  originalCostNano: number;
  /** Cost converted to the customer currency, nano-units (NaN when unknown). */
  costNano: number;
  exchangeRate: ExchangeRateInForce | null;
  blockRuleId: number | null;
}

export interface ExchangeRateInForce {
  /** Decimal string as configured (of the opposite pair when `inverse`). */
  rate: string;
  rateNano: number;
  /** True when only the opposite pair exists and we divide by it. */
  inverse: boolean;
}

export interface LcrResult {
  sellDeck: number;
  sellRow: number;
  sellNano: number;
  config: LcrConfig | null;
  /** Allowed candidates first (cheapest, then lowest carrier id), then the excluded ones. */
  candidates: Candidate[];
  noMatchReason: string | null;
}

export interface LcrQuery {
  /** Customer trunk index; its active sell deck is the one priced against. */
  trunk: number;
  /** Price against this deck instead of the trunk's (drouting export, per deck). */
  sellDeck?: number;
  /** Normalised DNIS, tech prefix already stripped. */
  dnis: string;
  /**
   * The trie node `dnis` reaches in this engine's snapshot (deepestNode), when the caller already knows it
   * (knownNode). Absent or -1: walked here.
   */
  dnisNode?: number;
  ani: string;
  /**
   * `ani` '' for a caller number that is not usable (normalizeAni gave up on it): the readings of its digits
   * (blockingNumbers) carrier ANI rules hold it to, as callerBlock holds it to customer rules. Otherwise "6188123x"
   * got past a carrier's rule for 6188123 to that carrier.
   */
  callerReadings?: readonly string[];
  triedCarrierIds: readonly number[];
  triedGatewayIds: readonly number[];
  now: number;
}

/**
 * What call/auth knows of a retail call's number (CallAuthAllowed): its node in the rate trie of `dnisRates`,
 * the serving rates when auth ran, found when the translation was set up (retail-index.ts). call/decide hands
 * it to admission and route, which use it instead of walking the digits again.
 */
export interface KnownDnisNode {
  dnisNode?: number;
  dnisRates?: RateIndex;
}

/** The known node while the rates it was found in still serve (admission may wait, a snapshot may swap in), else -1: walk. */
export function knownNode(known: KnownDnisNode, rates: RateIndex): number {
  return known.dnisRates === rates && known.dnisNode !== undefined ? known.dnisNode : -1;
}

/**
 * A retail call's sell deck, when its partner product names one (issue 19): `sellDeckId` is the deck's id;
 * absent, the call sells with its trunk's assigned deck. call/auth also hands on the deck's dense index, which
 * the product was compiled to (retail.ts), with `sellDeckRates`, the rates of the snapshot it indexes: decks are
 * not a live table, so an index holds while those rates serve; a request naming the deck by id only (the
 * separate endpoints, a CDR) is found by it.
 */
export interface KnownSellDeck {
  sellDeckId?: number;
  sellDeck?: number;
  sellDeckRates?: RateIndex;
}

/** The deck (dense index, -1: none in this snapshot) a call to `trunk` sells with: its product's when named, else the trunk's. */
export function sellDeckOf(known: KnownSellDeck, snapshot: CompiledSnapshot, trunkSellDeck: number): number {
  if (known.sellDeckId === undefined) return trunkSellDeck;
  if (known.sellDeckRates === snapshot.rates && known.sellDeck !== undefined) return known.sellDeck;
  return sellingDeck(snapshot, known.sellDeckId);
}

/** Classification codes (indexes into STATUS_NAMES); 0 is ok. */
const OK = 0;
const STATUS_NAMES: readonly CandidateStatus[] = [
  'ok',
  'carrier_not_active',
  'no_cost_deck',
  'no_active_gateway',
  'no_rate',
  'no_exchange_rate',
  'blocked',
  'cost_exceeds_sell',
  'already_tried',
  'all_gateways_tried',
];
const ELIGIBILITY_CODE: Record<CarrierEligibility, number> = { ok: OK, carrier_not_active: 1, no_cost_deck: 2, no_active_gateway: 3 };
const NO_RATE = 4;
const NO_EXCHANGE_RATE = 5;
const BLOCKED = 6;
const COST_EXCEEDS_SELL = 7;
const ALREADY_TRIED = 8;
const ALL_GATEWAYS_TRIED = 9;
const EMPTY_ORDER = new Int32Array(0);
const NO_IDS: readonly number[] = Object.freeze([]);
/** Bound on cached (deck, prefix) entries; beyond it the cache starts over. */
const ROUTE_CACHE_LIMIT = 200_000;
/**
 * Bound on the bytes of admission's per-deck row tables (4 per trie node and deck); decks beyond it keep
 * their rows in the Map. A deck's table is a tenth of the trie's own children array, so a few sell decks fit.
 */
const ROW_TABLE_BYTES = 64 * 1024 * 1024;

/**
 * The live tables the route and row caches do not read. The caches hold, per sell deck and prefix, what
 * depends only on rates, decks, carriers, allowlists, LCR config and exchange rates; the customer trunk (its
 * sell deck is looked up per call), its account, who may call and block rules are checked per call against
 * the serving snapshot. A change to anything else, or to a table added later, starts the caches afresh.
 */
const TABLES_THE_CACHES_DO_NOT_READ: ReadonlySet<string> = new Set([
  'customer_accounts',
  'customer_trunks',
  'trunk_ip_auth',
  'sip_registrations',
  'block_rules',
  // Calls through an access number are routed on the product's trunk, looked up per call like any trunk's.
  'retail_products',
  'call_translations',
]);

/** Whether the caches of an engine stay right after live changes to `changedTables` (see LcrEngine's constructor). */
export function routeCachesOutlive(changedTables: Iterable<string>): boolean {
  for (const table of changedTables) if (!TABLES_THE_CACHES_DO_NOT_READ.has(table)) return false;
  return true;
}

export class LcrEngine {
  /** ROW_TABLE_BYTES; the tests lower it to hold decks with and without a table to the same rows. */
  static rowTableBytes = ROW_TABLE_BYTES;
  readonly matcher: DeckMatcher;
  private readonly blockStamp: Int32Array;
  private readonly blockedRule: Int32Array;
  private generation = 0;
  // Per-call state set by prepare(), read by classify(): one decision runs at a time.
  private sellDeck = -1;
  private sellRow = -1;
  private sellCurrency: Currency = 'AUD';
  private maxCostNano = 0;
  private anyBlocked = false;
  private foreignCurrency: Currency | null = null;
  private foreignRate: ExchangeRateInForce | null = null;
  // call/route's cache: per (sell deck, deepest trie node the number reaches), the carriers that pass
  // every check not tied to the call (eligibility, rate, exchange rate, margin), in LCR order. Numbers
  // that reach the same node match the same rows in every deck, so they share the entry. Rows and
  // exchange rates take effect over time: the cache holds for [cacheFrom, cacheUntil), the span
  // without an effective_at, and is dropped when a call falls outside it.
  private readonly routeCache: Map<number, Int32Array>;
  /** Admission's price lookup: the deck's row per (deck, deepest node), for the same span. */
  private readonly rowCache: Map<number, number>;
  /**
   * The same for the decks admission prices from (sell decks, while ROW_TABLE_BYTES allows): per trie node,
   * 0 not looked up yet, else 2 + the row (1: no row). One typed-array read where the Map's lookup touched
   * its buckets and entries, cold after the rest of a request: most of what the lookup cost (issue 16).
   * A deck with a table has its rows looked up and cached there, by rowNow and rowsAt alike; null: a deck
   * the budget had no room for (its rows in the Map); undefined: not priced by rowNow in this span.
   */
  private readonly rowTables: (Int32Array | null | undefined)[];
  private cacheFrom = Number.POSITIVE_INFINITY;
  private cacheUntil = Number.NEGATIVE_INFINITY;
  /** rowsAt's answer. */
  readonly pair = new Int32Array(2);
  // Outputs of the last classify().
  private costRow = -1;
  private originalCostNano = NaN;
  private costNano = NaN;
  private exchangeRate: ExchangeRateInForce | null = null;

  /**
   * `carryCachesFrom`: the engine of the snapshot this one replaced, when only tables the caches do not read
   * changed between them (routeCachesOutlive): its caches are taken over rather than started empty, so a
   * stream of live changes to block rules or trunks does not send every route back to the trie walk.
   */
  constructor(
    private readonly snapshot: CompiledSnapshot,
    carryCachesFrom: LcrEngine | null = null,
  ) {
    this.matcher = new DeckMatcher(snapshot.decks.length);
    this.blockStamp = new Int32Array(snapshot.carriers.length);
    this.blockedRule = new Int32Array(snapshot.carriers.length);
    this.routeCache = carryCachesFrom?.routeCache ?? new Map<number, Int32Array>();
    this.rowCache = carryCachesFrom?.rowCache ?? new Map<number, number>();
    // Carried with the Map: the same span and trie (both are keyed by trie node).
    this.rowTables = carryCachesFrom?.rowTables ?? [];
    if (carryCachesFrom !== null) {
      this.cacheFrom = carryCachesFrom.cacheFrom;
      this.cacheUntil = carryCachesFrom.cacheUntil;
    }
  }

  /** Entries in call/route's cache (for tests and metrics). */
  get routeCacheSize(): number {
    return this.routeCache.size;
  }

  /** Every allowlisted carrier with its verdict, allowed ones first by cost. */
  evaluate(query: LcrQuery): LcrResult {
    const noMatchReason = this.prepare(query);
    const sellDeck = this.sellDeck;
    const result: LcrResult = {
      sellDeck,
      sellRow: this.sellRow,
      sellNano: this.sellRow >= 0 ? this.snapshot.rates.rateNano[this.sellRow] : NaN,
      config: sellDeck >= 0 ? this.snapshot.decks[sellDeck].lcrConfig : null,
      candidates: [],
      noMatchReason,
    };
    if (noMatchReason !== null) return result;
    const { carriers } = this.snapshot;
    for (const carrier of this.snapshot.decks[sellDeck].allowedCarriers) {
      const status = this.classify(carrier, query);
      result.candidates.push({
        carrier,
        status: STATUS_NAMES[status],
        costRow: this.costRow,
        originalCostNano: this.originalCostNano,
        costNano: this.costNano,
        exchangeRate: this.exchangeRate,
        blockRuleId: status === BLOCKED ? this.blockedRule[carrier] : null,
      });
    }
    result.candidates.sort((a, b) => rankOf(a) - rankOf(b) || compareCost(a, b) || carriers[a.carrier].id - carriers[b.carrier].id);
    if (result.candidates[0].status !== 'ok') result.noMatchReason = 'no_carrier_available';
    return result;
  }

  /** Index of the cheapest allowed carrier (ties: lowest id), or -1. The same verdicts as evaluate(). */
  cheapest(query: LcrQuery): number {
    const { snapshot } = this;
    const sellDeck = query.sellDeck ?? snapshot.customerTrunks[query.trunk].sellDeck;
    if (sellDeck < 0) return -1;
    if (query.now < this.cacheFrom || query.now >= this.cacheUntil) this.resetCache(query.now);
    const node = query.dnisNode !== undefined && query.dnisNode >= 0 ? query.dnisNode : this.deepestNode(query.dnis);
    const key = sellDeck * snapshot.rates.trie.nodeCount + node;
    let ordered = this.routeCache.get(key);
    if (ordered === undefined) {
      ordered = this.orderByPathChecks(query);
      if (this.routeCache.size >= ROUTE_CACHE_LIMIT) this.routeCache.clear();
      this.routeCache.set(key, ordered);
      // The walk matched the sell deck's row too: call/admit, which prices this call next, finds it cached.
      if (this.rowTables[sellDeck] === undefined) this.newRowTable(sellDeck);
      this.cacheRow(sellDeck, node, this.sellRow);
    } else if (ordered.length > 0) {
      this.markBlocks(query);
    }
    for (let i = 0; i < ordered.length; i++) {
      if (this.passesCallChecks(ordered[i], query) === OK) return ordered[i];
    }
    return -1;
  }

  /**
   * The row of the longest prefix of `digits` in force now in one deck (what matchDeckRow finds), cached as
   * call/route's carriers are: admission prices every INVITE from the sell deck. `digitsNode`: the digits'
   * trie node when known (knownNode), else -1.
   */
  rowNow(deck: number, digits: string, now: number, digitsNode = -1): number {
    if (now < this.cacheFrom || now >= this.cacheUntil) this.resetCache(now);
    const node = digitsNode >= 0 ? digitsNode : this.deepestNode(digits);
    if (this.rowTables[deck] === undefined) this.newRowTable(deck);
    const cached = this.cachedRow(deck, node);
    if (cached !== undefined) return cached;
    const row = DeckMatcher.matchOne(this.snapshot.rates, deck, digits, now);
    this.cacheRow(deck, node, row);
    return row;
  }

  /** A row table for `deck` if the budget has room for one (null: the deck's rows stay in the Map). */
  private newRowTable(deck: number): Int32Array | null {
    const nodeCount = this.snapshot.rates.trie.nodeCount;
    let tables = 0;
    for (const table of this.rowTables) if (table) tables++;
    // Rows rowsAt put in the Map for this deck before stay there unread until the span ends: as right, only idle.
    const table = (tables + 1) * nodeCount * 4 > LcrEngine.rowTableBytes ? null : new Int32Array(nodeCount);
    this.rowTables[deck] = table;
    return table;
  }

  /** The cached row of `deck` at `node`; undefined: not looked up in this span. */
  private cachedRow(deck: number, node: number): number | undefined {
    const table = this.rowTables[deck];
    if (!table) return this.rowCache.get(deck * this.snapshot.rates.trie.nodeCount + node);
    const cached = table[node];
    return cached === 0 ? undefined : cached - 2;
  }

  /**
   * rowNow for a past moment (a CDR's start): from the cache when it falls in the span the cache holds for,
   * else walked without touching the cache, so that rating a call from before the last rate change does
   * not drop the caches the live calls are routed from.
   */
  rowAt(deck: number, digits: string, at: number): number {
    if (this.cacheFrom === Number.POSITIVE_INFINITY || (at >= this.cacheFrom && at < this.cacheUntil)) return this.rowNow(deck, digits, at);
    return DeckMatcher.matchOne(this.snapshot.rates, deck, digits, at);
  }

  /**
   * rowAt for two decks and one number (a CDR's sell and cost decks): the number's trie node found once and,
   * for what the cache does not hold, one walk down its digits for both decks, where two rowAt calls walk
   * twice (the walk visits every deck's rows on the way: most of what rating a CDR cost). A deck < 0 has
   * no row (-1). The rows land in `pair` ([first, second]), valid until the next call.
   */
  rowsAt(first: number, second: number, digits: string, at: number): void {
    const pair = this.pair;
    const cached = this.cacheFrom === Number.POSITIVE_INFINITY || (at >= this.cacheFrom && at < this.cacheUntil);
    let node = 0;
    let firstRow: number | undefined = -1;
    let secondRow: number | undefined = -1;
    if (cached) {
      if (at < this.cacheFrom || at >= this.cacheUntil) this.resetCache(at);
      node = this.deepestNode(digits);
      if (first >= 0) firstRow = this.cachedRow(first, node);
      if (second >= 0) secondRow = this.cachedRow(second, node);
    } else {
      firstRow = first >= 0 ? undefined : -1;
      secondRow = second >= 0 ? undefined : -1;
    }
    if (firstRow === undefined || secondRow === undefined) {
      const { matcher } = this;
      matcher.begin();
      if (firstRow === undefined) matcher.want(first);
      if (secondRow === undefined) matcher.want(second);
      matcher.walk(this.snapshot.rates, digits, at);
      if (firstRow === undefined) {
        firstRow = matcher.match(first);
        if (cached) this.cacheRow(first, node, firstRow);
      }
      if (secondRow === undefined) {
        secondRow = matcher.match(second);
        if (cached) this.cacheRow(second, node, secondRow);
      }
    }
    pair[0] = firstRow;
    pair[1] = secondRow;
  }

  private cacheRow(deck: number, node: number, row: number): void {
    const table = this.rowTables[deck];
    if (table) {
      table[node] = row + 2;
      return;
    }
    if (this.rowCache.size >= ROUTE_CACHE_LIMIT) this.rowCache.clear();
    this.rowCache.set(deck * this.snapshot.rates.trie.nodeCount + node, row);
  }

  /** The trie node a number's digits lead to (where the rate walk would stop). */
  private deepestNode(digits: string): number {
    return deepestNode(this.snapshot.rates.trie, digits);
  }

  /** Starts a cache for the span around `now` in which no rate row or exchange rate takes effect. */
  private resetCache(now: number): void {
    this.routeCache.clear();
    this.rowCache.clear();
    // Emptied in place, as the Map is: an engine that carried them over shares them.
    this.rowTables.length = 0;
    const times = this.snapshot.effectiveTimes;
    // First time after now (binary search over the compile worker's sorted list).
    let low = 0;
    let high = times.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (times[middle] <= now) low = middle + 1;
      else high = middle;
    }
    this.cacheFrom = low > 0 ? times[low - 1] : Number.NEGATIVE_INFINITY;
    this.cacheUntil = low < times.length ? times[low] : Number.POSITIVE_INFINITY;
  }

  /** Runs the walk and the call-independent checks; allowed carriers in LCR order (cost, then id). */
  private orderByPathChecks(query: LcrQuery): Int32Array {
    if (this.prepare(query) !== null) return EMPTY_ORDER;
    const { carriers } = this.snapshot;
    const passing: { carrier: number; cost: number; id: number }[] = [];
    for (const carrier of this.snapshot.decks[this.sellDeck].allowedCarriers) {
      if (this.classifyPath(carrier, query) === OK) passing.push({ carrier, cost: this.costNano, id: carriers[carrier].id });
    }
    passing.sort((a, b) => a.cost - b.cost || a.id - b.id);
    return Int32Array.from(passing, (entry) => entry.carrier);
  }

  /**
   * The allowed carriers' ids in LCR order (cost, then id), without building candidate objects:
   * the drouting export asks this for hundreds of thousands of prefixes. Same verdicts as evaluate().
   */
  orderedCarrierIds(query: LcrQuery): number[] {
    return this.prepare(query) === null ? this.allowedIdsInOrder(query) : [];
  }

  /**
   * The drouting export's question for several sell decks at once: one walk down the prefix for all of
   * them, then each deck's allowed carrier ids in LCR order. Same verdicts as orderedCarrierIds().
   */
  orderedCarrierIdsByDeck(prefix: string, sellDecks: readonly number[], now: number): number[][] {
    const { snapshot, matcher } = this;
    matcher.begin();
    for (const deck of sellDecks) this.wantDecksOf(deck);
    matcher.walk(snapshot.rates, prefix, now);
    const query: LcrQuery = { trunk: -1, dnis: prefix, ani: '', triedCarrierIds: NO_IDS, triedGatewayIds: NO_IDS, now };
    this.anyBlocked = markCarrierBlocks(snapshot.blockRules, query.ani, prefix, this.blockStamp, this.blockedRule, ++this.generation);
    return sellDecks.map((deck) => (this.selectSellDeck(deck) === null ? this.allowedIdsInOrder(query) : []));
  }

  private allowedIdsInOrder(query: LcrQuery): number[] {
    const { carriers } = this.snapshot;
    const allowed: { id: number; cost: number }[] = [];
    for (const carrier of this.snapshot.decks[this.sellDeck].allowedCarriers) {
      if (this.classify(carrier, query) === OK) allowed.push({ id: carriers[carrier].id, cost: this.costNano });
    }
    if (allowed.length > 1) allowed.sort((a, b) => a.cost - b.cost || a.id - b.id);
    return allowed.map((entry) => entry.id);
  }

  /** Matches the sell deck and every candidate cost deck in one walk; null when routing can go on, else why not. */
  private prepare(query: LcrQuery): string | null {
    const { snapshot, matcher } = this;
    const sellDeckIndex = query.sellDeck ?? snapshot.customerTrunks[query.trunk].sellDeck;
    this.sellDeck = sellDeckIndex;
    this.sellRow = -1;
    if (sellDeckIndex < 0) return 'no_rate_deck_assigned';
    matcher.begin();
    this.wantDecksOf(sellDeckIndex);
    matcher.walk(snapshot.rates, query.dnis, query.now);
    const notRoutable = this.selectSellDeck(sellDeckIndex);
    if (notRoutable !== null) return notRoutable;
    this.markBlocks(query);
    return null;
  }

  /** The carriers the call's block rules exclude, by its DNIS and caller (or the readings of an unusable caller's digits). */
  private markBlocks(query: LcrQuery): void {
    const rules = this.snapshot.blockRules;
    const generation = ++this.generation;
    this.anyBlocked = markCarrierBlocks(rules, query.ani, query.dnis, this.blockStamp, this.blockedRule, generation);
    const readings = query.callerReadings;
    if (query.ani !== '' || readings === undefined) return;
    // Rare (an unusable caller number): the DNIS is walked again with each reading, its marks the same.
    for (let i = 0; i < readings.length; i++)
      if (markCarrierBlocks(rules, readings[i], query.dnis, this.blockStamp, this.blockedRule, generation)) this.anyBlocked = true;
  }

  /** The decks a walk must match for this sell deck: itself and its eligible carriers' cost decks. */
  private wantDecksOf(sellDeckIndex: number): void {
    const { snapshot, matcher } = this;
    matcher.want(sellDeckIndex);
    const allowed = snapshot.decks[sellDeckIndex].allowedCarriers;
    for (let i = 0; i < allowed.length; i++) {
      const carrier = snapshot.carriers[allowed[i]];
      if (carrier.eligibility === 'ok') matcher.want(carrier.costDeck);
    }
  }

  /** After the walk: prices against this sell deck; null when routing can go on, else why not. */
  private selectSellDeck(sellDeckIndex: number): string | null {
    const { snapshot } = this;
    const sellDeck = snapshot.decks[sellDeckIndex];
    this.sellDeck = sellDeckIndex;
    this.sellRow = this.matcher.match(sellDeckIndex);
    if (this.sellRow < 0) return 'no_active_rate_match';
    if (sellDeck.allowedCarriers.length === 0) return 'empty_allowlist';
    this.sellCurrency = sellDeck.currency;
    this.maxCostNano = marginCeiling(snapshot.rates.rateNano[this.sellRow], sellDeck.lcrConfig);
    this.foreignCurrency = null;
    this.foreignRate = null;
    return null;
  }

  private classify(index: number, query: LcrQuery): number {
    const path = this.classifyPath(index, query);
    if (path === OK) return this.passesCallChecks(index, query);
    // A block rule is the reason an operator most needs to see, even when the price would also exclude the carrier.
    if (path === COST_EXCEEDS_SELL && this.anyBlocked && this.blockStamp[index] === this.generation) return BLOCKED;
    return path;
  }

  /** Checks that depend only on the number's prefix and the time: eligibility, rate, exchange rate, margin. */
  private classifyPath(index: number, query: LcrQuery): number {
    const carrier = this.snapshot.carriers[index];
    this.costRow = -1;
    this.originalCostNano = NaN;
    this.costNano = NaN;
    this.exchangeRate = null;
    if (carrier.eligibility !== 'ok') return ELIGIBILITY_CODE[carrier.eligibility];
    const row = this.matcher.match(carrier.costDeck);
    if (row < 0) return NO_RATE;
    this.costRow = row;
    this.originalCostNano = this.snapshot.rates.rateNano[row];
    const currency = this.snapshot.decks[carrier.costDeck].currency;
    if (currency === this.sellCurrency) {
      this.costNano = this.originalCostNano;
    } else {
      if (this.foreignCurrency !== currency) {
        this.foreignCurrency = currency;
        this.foreignRate = exchangeRateInForce(this.snapshot, currency, this.sellCurrency, query.now);
      }
      if (this.foreignRate === null) return NO_EXCHANGE_RATE;
      this.exchangeRate = this.foreignRate;
      this.costNano = mulNano(this.originalCostNano, this.foreignRate.rateNano);
    }
    if (this.costNano > this.maxCostNano) return COST_EXCEEDS_SELL;
    return OK;
  }

  /** Checks that depend on this call: carrier-scope block rules on its numbers, carriers and gateways already tried. */
  private passesCallChecks(index: number, query: LcrQuery): number {
    const carrier = this.snapshot.carriers[index];
    if (this.anyBlocked && this.blockStamp[index] === this.generation) return BLOCKED;
    if (query.triedCarrierIds.length > 0 && query.triedCarrierIds.includes(carrier.id)) return ALREADY_TRIED;
    if (query.triedGatewayIds.length > 0 && carrier.gateways.every((gateway) => query.triedGatewayIds.includes(gateway.id)))
      return ALL_GATEWAYS_TRIED;
    return OK;
  }
}

function rankOf(candidate: Candidate): number {
  return candidate.status === 'ok' ? 0 : 1;
}

function compareCost(a: Candidate, b: Candidate): number {
  const aKnown = !Number.isNaN(a.costNano);
  const bKnown = !Number.isNaN(b.costNano);
  if (aKnown && bKnown) return a.costNano - b.costNano;
  return aKnown === bKnown ? 0 : aKnown ? -1 : 1;
}

/** The highest carrier cost (nano) the margin rules let through for this sell rate. */
export function marginCeiling(sellNano: number, config: LcrConfig): number {
  if (!config.blockIfCostExceedsSell) return Number.POSITIVE_INFINITY;
  if (config.acceptableLossPctNano === 0) return sellNano - 1; // cost >= sell is blocked
  return addPercentFloor(sellNano, config.acceptableLossPctNano);
}

/** Newest exchange rate in force for from->to, falling back to the inverse of to->from. */
export function exchangeRateInForce(snapshot: CompiledSnapshot, from: Currency, to: Currency, now: number): ExchangeRateInForce | null {
  const direct = newestInForce(snapshot, `${from}>${to}`, now);
  if (direct !== null) return { rate: direct.rate, rateNano: direct.rateNano, inverse: false };
  const opposite = newestInForce(snapshot, `${to}>${from}`, now);
  if (opposite === null) return null;
  // 1 / rate at nano precision, rounded half-up.
  const inverseNano = Number((10n ** 18n + BigInt(opposite.rateNano) / 2n) / BigInt(opposite.rateNano));
  return { rate: opposite.rate, rateNano: inverseNano, inverse: true };
}

function newestInForce(snapshot: CompiledSnapshot, pair: string, now: number): { rate: string; rateNano: number } | null {
  const versions = snapshot.exchangeRates.get(pair);
  if (versions === undefined) return null;
  for (const version of versions) if (version.effectiveAt <= now) return version;
  return null;
}
