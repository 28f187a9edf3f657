import { parseIPv4 } from '../net/ip.js';
import { parseDigestAlgorithm } from '../digest/digest.js';
import { buildPrefixTrieFromText, permute } from '../trie/prefix-trie.js';
import { parseNano } from '../money/nano.js';
import { parseMicro } from '../money/micro.js';
import {
  registrationKey,
  type CarrierEligibility,
  type CarrierTrunk,
  type CompiledSnapshot,
  type CustomerAccount,
  type CustomerTrunk,
  type ExchangeRateVersion,
  type Gateway,
  type LcrConfig,
  type RateDeck,
  type RateIndex,
  type SipRegistration,
  type Trunk,
} from './model.js';
import type { LiveTable } from './delta.js';
import type { FailoverAction, SmallTables, Snapshot, SnapshotTables, TrunkRow } from './schema.js';
import { compileRetail } from './retail-index.js';
import { compileIpAuth, reviseIpAuth } from './ip-auth.js';
import { blockRuleCount, compileBlockRules, reviseBlockRules } from './block-rule-index.js';
import { idPosition } from './rows.js';

/**
 * The compiler: a validated snapshot's tables into the indexes of the compiled model (model.ts). Runs in
 * the sidecar's compile worker and in the control plane's drouting worker.
 */
export interface CompileResult {
  compiled: CompiledSnapshot;
  /** Buffers to transfer (not copy) to the main thread. */
  transfer: ArrayBuffer[];
}

const BUILT_IN_LCR_CONFIG: LcrConfig = {
  id: null,
  rateDeckId: null,
  blockIfCostExceedsSell: true,
  acceptableLossPct: '0',
  acceptableLossPctNano: 0,
  cacheTtlSeconds: 300,
};

/** Compiles a validated snapshot (see validateSnapshot). Pure: same snapshot, same result. */
export function compileSnapshot(snapshot: Snapshot): CompileResult {
  const tables = snapshot.tables;
  const { decks, deckById } = compileDecks(tables);
  const { carriers, carrierById } = compileCarriers(tables, deckById);
  fillAllowlists(decks, tables, carriers, carrierById);
  const { customerTrunks, customerTrunkById } = compileCustomerTrunks(tables, deckById);
  const rates = compileRates(tables, deckById);
  const blockRules = compileBlockRules(tables, customerTrunkById, carrierById);
  const exchangeRates = compileExchangeRates(tables);
  const ipAuth = compileIpAuth(tables, customerTrunks, customerTrunkById);
  const retail = compileRetail(tables, { rateTrie: rates.trie, deckById, decks });
  const compiled: CompiledSnapshot = {
    version: snapshot.version,
    createdAt: snapshot.created_at,
    createdAtMs: Date.parse(snapshot.created_at),
    checksum: snapshot.checksum,
    deltaSeq: tables.delta_seq ?? 0,
    accounts: compileAccounts(tables),
    customerTrunks,
    customerTrunkById,
    carriers,
    carrierById,
    decks,
    deckById,
    ipAuth,
    registrations: compileRegistrations(tables, customerTrunks, customerTrunkById),
    rates,
    blockRules,
    exchangeRates,
    defaultLcrConfig: lcrConfigs(tables)(null),
    effectiveTimes: distinctTimes(rates.effectiveAt, exchangeRates),
    retail,
    counts: {
      customer_trunks: customerTrunks.length,
      carrier_trunks: carriers.length,
      rate_decks: decks.length,
      rate_rows: rates.deck.length,
      trie_nodes: rates.trie.nodeCount,
      trunk_ip_auth: tables.trunk_ip_auth.length,
      block_rules: blockRules.ruleId.length,
      access_numbers: retail.accessNumbers.size,
      call_translations: retail.translationCount,
    },
  };
  return { compiled, transfer: collectBuffers(compiled) };
}

/**
 * A compiled snapshot after live changes to `changed` (src/core/snapshot/live.ts): a new object sharing every
 * index the change does not reach with `previous` (the rate trie above all), and new ones for those it does,
 * rebuilt from `tables` (the node's copy of every table but the rates, the change applied). `previous` is
 * left as it was: requests holding it keep a whole, consistent snapshot. No live table names a deck or a
 * carrier's dense index differently, so the rate index and the carriers stay valid.
 */
export function recompileLive(
  previous: CompiledSnapshot,
  previousTables: SmallTables,
  tables: SmallTables,
  changed: ReadonlyMap<LiveTable, ReadonlySet<number>>,
  deltaSeq: number,
): CompiledSnapshot {
  const next: CompiledSnapshot = { ...previous, deltaSeq, counts: { ...previous.counts } };
  const trunksChanged = changed.has('customer_accounts') || changed.has('customer_trunks');
  if (changed.has('customer_accounts')) next.accounts = compileAccounts(tables);
  // The CIDR index and the registrations hold the active trunks by dense index: unchanged while no trunk came,
  // went or changed whether it may call (a limit or a name changed), they are kept, not rebuilt.
  let callersChanged = false;
  // The trunks (dense indexes) that started or stopped being allowed to call, their indexes unmoved: only the
  // touched ones can have, unless an account changed. Found without comparing every trunk: 4,000 trunks
  // compared cost a CIDR delta most of a millisecond.
  const flipped: number[] = [];
  if (trunksChanged) {
    const touched = changed.get('customer_trunks');
    const onlyTouched = !changed.has('customer_accounts') && sameIdsAfter(previous.customerTrunkById, tables.customer_trunks, touched);
    const { customerTrunks, customerTrunkById } = onlyTouched
      ? recompileCustomerTrunks(previous, tables, touched!)
      : compileCustomerTrunks(tables, previous.deckById);
    if (sameIndexes(previous.customerTrunkById, customerTrunkById)) {
      const candidates = onlyTouched ? [...touched!].map((id) => customerTrunkById.get(id)!) : customerTrunks.keys();
      for (const index of candidates) if (customerTrunks[index].active !== previous.customerTrunks[index].active) flipped.push(index);
      callersChanged = flipped.length > 0;
    } else callersChanged = true; // indexes moved: the CIDR index is built afresh below
    next.customerTrunks = customerTrunks;
    next.customerTrunkById = customerTrunkById;
    next.counts.customer_trunks = customerTrunks.length;
  }
  if (callersChanged || changed.has('sip_registrations'))
    next.registrations = compileRegistrations(tables, next.customerTrunks, next.customerTrunkById);
  // The CIDR index changes by the networks that came or went (ip-auth.ts), unless trunks' dense indexes moved.
  if (!sameIndexes(previous.customerTrunkById, next.customerTrunkById))
    next.ipAuth = compileIpAuth(tables, next.customerTrunks, next.customerTrunkById);
  else if (callersChanged || changed.has('trunk_ip_auth'))
    next.ipAuth = reviseIpAuth(previous, previousTables, next, tables, changed.get('trunk_ip_auth'), flipped);
  // A carrier's trunk row, gateways and failover rules make one compiled carrier; carriers nothing touched are reused.
  if (changed.has('carrier_trunks') || changed.has('carrier_gateways') || changed.has('failover_rules')) {
    const { carriers, carrierById } = compileCarriers(tables, previous.deckById, { previousTables, compiled: previous });
    next.carriers = carriers;
    next.carrierById = carrierById;
    next.counts.carrier_trunks = carriers.length;
  }
  // Block rules and allowlists hold trunks and carriers by dense index: rebuilt when one came or went, as well
  // as when a rule or an allowlist row changed; a carrier's limit or gateway change leaves them as they were.
  const carriersMoved = !sameIndexes(previous.carrierById, next.carrierById);
  if (carriersMoved || !sameIndexes(previous.customerTrunkById, next.customerTrunkById))
    next.blockRules = compileBlockRules(tables, next.customerTrunkById, next.carrierById);
  else if (changed.has('block_rules'))
    // The rules changed ride an overlay on the built trie (block-rule-index.ts), not 5,000 rules built again.
    next.blockRules =
      reviseBlockRules(previous.blockRules, tables, changed.get('block_rules')!, next.customerTrunkById, next.carrierById) ??
      compileBlockRules(tables, next.customerTrunkById, next.carrierById);
  if (changed.has('exchange_rates')) {
    next.exchangeRates = compileExchangeRates(tables);
    // A time no longer any rate's only makes the route cache start over once more than it needs: harmless.
    next.effectiveTimes = distinctTimes(previous.effectiveTimes, next.exchangeRates);
  }
  const allowlistsChanged = changed.has('rate_deck_allowlist') || carriersMoved;
  if (allowlistsChanged || changed.has('lcr_config')) {
    // New deck objects (the old snapshot's stay as they were); the rate index names decks by the same dense index.
    const lcrConfigOf = lcrConfigs(tables);
    next.defaultLcrConfig = lcrConfigOf(null);
    next.decks = previous.decks.map((deck) => ({
      ...deck,
      allowedCarriers: allowlistsChanged ? [] : deck.allowedCarriers,
      lcrConfig: changed.has('lcr_config') ? lcrConfigOf(deck.id) : deck.lcrConfig,
    }));
    if (allowlistsChanged) fillAllowlists(next.decks, tables, next.carriers, next.carrierById);
  }
  next.counts.trunk_ip_auth = tables.trunk_ip_auth.length;
  next.counts.block_rules = blockRuleCount(next.blockRules);
  return next;
}

/** Whether the trunks after a change are the same ids as before (`touched` only updated, none came or went). */
function sameIdsAfter(before: Map<number, number>, rows: readonly { id: number }[], touched: ReadonlySet<number> | undefined): boolean {
  if (rows.length !== before.size) return false;
  for (const id of touched ?? []) if (!before.has(id) || rows[idPosition(rows, id)]?.id !== id) return false;
  return true;
}

/**
 * The customer trunks after changes to `touched` rows only (no account changed, none came or went): the
 * others' compiled entries are reused, each touched one compiled again. A limit change on a world of many
 * trunks then costs its own row, not every trunk's.
 */
function recompileCustomerTrunks(
  previous: CompiledSnapshot,
  tables: Pick<SnapshotTables, 'customer_accounts' | 'customer_trunks'>,
  touched: ReadonlySet<number>,
): { customerTrunks: CustomerTrunk[]; customerTrunkById: Map<number, number> } {
  const customerTrunks = previous.customerTrunks.slice();
  for (const id of touched) {
    const index = previous.customerTrunkById.get(id)!;
    // The node's tables are in id order (live.ts): binary searches, not scans of every trunk and account.
    const row = tables.customer_trunks[idPosition(tables.customer_trunks, id)];
    const account = tables.customer_accounts[idPosition(tables.customer_accounts, row.customer_account_id)];
    customerTrunks[index] = compileCustomerTrunk(row, account, previous.customerTrunks[index].sellDeck);
  }
  return { customerTrunks, customerTrunkById: previous.customerTrunkById };
}

function sameIndexes(a: Map<number, number>, b: Map<number, number>): boolean {
  if (a === b) return true;
  if (a.size !== b.size) return false;
  for (const [id, index] of a) if (b.get(id) !== index) return false;
  return true;
}

function fillAllowlists(
  decks: RateDeck[],
  tables: Pick<SnapshotTables, 'rate_deck_allowlist'>,
  carriers: CarrierTrunk[],
  carrierById: Map<number, number>,
): void {
  const deckById = new Map(decks.map((deck, index) => [deck.id, index]));
  for (const row of tables.rate_deck_allowlist) {
    const carrier = carrierById.get(row.carrier_trunk_id);
    const deck = deckById.get(row.rate_deck_id);
    if (carrier !== undefined && deck !== undefined && !decks[deck].allowedCarriers.includes(carrier)) {
      decks[deck].allowedCarriers.push(carrier);
    }
  }
  for (const deck of decks) deck.allowedCarriers.sort((a, b) => carriers[a].id - carriers[b].id);
}

function compileCustomerTrunks(
  tables: Pick<SnapshotTables, 'customer_accounts' | 'customer_trunks' | 'customer_trunk_rate_decks'>,
  deckById: Map<number, number>,
): { customerTrunks: CustomerTrunk[]; customerTrunkById: Map<number, number> } {
  const accounts = new Map(tables.customer_accounts.map((account) => [account.id, account]));
  const sellDeckOf = activeAssignments(tables.customer_trunk_rate_decks.map((row) => ({ ...row, trunk_id: row.customer_trunk_id })));
  const customerTrunks: CustomerTrunk[] = [];
  const customerTrunkById = new Map<number, number>();
  for (const row of [...tables.customer_trunks].sort((a, b) => a.id - b.id)) {
    const deckId = sellDeckOf.get(row.id);
    customerTrunkById.set(row.id, customerTrunks.length);
    customerTrunks.push(
      compileCustomerTrunk(row, accounts.get(row.customer_account_id)!, deckId === undefined ? -1 : (deckById.get(deckId) ?? -1)),
    );
  }
  return { customerTrunks, customerTrunkById };
}

function compileCustomerTrunk(
  row: SnapshotTables['customer_trunks'][number],
  account: SnapshotTables['customer_accounts'][number],
  sellDeck: number,
): CustomerTrunk {
  // The trunk's own fields added in place, not spread into a new literal: a spread's copy took a hidden class
  // of its own for nearly every trunk (292 of 300 in the demo world), so every read of a trunk field on the call
  // path (admission reads nine) was megamorphic. Every trunk compiled here now shares one (docs/performance-log.md).
  return Object.assign(compileTrunk(row), {
    accountId: account.id,
    accountName: account.name,
    accountStatus: account.status,
    active: row.status === 'active' && account.status === 'active',
    billingMode: account.billing_mode,
    techPrefix: row.tech_prefix ?? '',
    sellDeck,
  });
}

function compileRegistrations(
  tables: Pick<SnapshotTables, 'sip_registrations'>,
  customerTrunks: CustomerTrunk[],
  customerTrunkById: Map<number, number>,
): Map<string, SipRegistration> {
  const registrations = new Map<string, SipRegistration>();
  for (const row of tables.sip_registrations) {
    const trunk = customerTrunkById.get(row.customer_trunk_id)!;
    if (row.status !== 'active' || !customerTrunks[trunk].active) continue;
    registrations.set(registrationKey(row.username, row.domain), {
      id: row.id,
      customerTrunk: trunk,
      ha1: row.password_hash.toLowerCase(),
      algorithm: parseDigestAlgorithm(row.hash_algorithm)!,
    });
  }
  return registrations;
}

function compileExchangeRates(tables: Pick<SnapshotTables, 'exchange_rates'>): Map<string, ExchangeRateVersion[]> {
  const exchangeRates = new Map<string, ExchangeRateVersion[]>();
  for (const row of tables.exchange_rates) {
    const key = `${row.from_currency}>${row.to_currency}`;
    const versions = exchangeRates.get(key) ?? [];
    versions.push({ effectiveAt: Date.parse(row.effective_at), rate: row.rate, rateNano: parseNano(row.rate) });
    exchangeRates.set(key, versions);
  }
  for (const versions of exchangeRates.values()) versions.sort((a, b) => b.effectiveAt - a.effectiveAt);
  return exchangeRates;
}

function compileTrunk(row: TrunkRow): Trunk {
  return {
    id: row.id,
    name: row.name,
    status: row.status,
    currency: row.currency,
    cpsLimit: row.cps_limit,
    portLimit: row.port_limit,
    perMinuteRateLimit: row.per_minute_rate_limit,
    sipTrusted: row.sip_trusted,
    rtpengineEnabled: row.rtpengine_enabled,
    incrementInitial: row.billing_increment_initial,
    incrementStep: row.billing_increment_step,
    decimalPrecision: row.decimal_precision,
    roundingDirection: row.rounding_direction,
  };
}

/** The active assignment per trunk: the newest active row (assigned_at, then id) supersedes older ones. */
function activeAssignments(
  rows: { trunk_id: number; rate_deck_id: number; is_active: boolean; assigned_at: string; id: number }[],
): Map<number, number> {
  const best = new Map<number, { at: number; id: number; deck: number }>();
  for (const row of rows) {
    if (!row.is_active) continue;
    const at = Date.parse(row.assigned_at);
    const current = best.get(row.trunk_id);
    if (current === undefined || at > current.at || (at === current.at && row.id > current.id)) {
      best.set(row.trunk_id, { at, id: row.id, deck: row.rate_deck_id });
    }
  }
  return new Map([...best].map(([trunk, assignment]) => [trunk, assignment.deck]));
}

function toLcrConfig(row: SnapshotTables['lcr_config'][number]): LcrConfig {
  return {
    id: row.id,
    rateDeckId: row.rate_deck_id,
    blockIfCostExceedsSell: row.block_if_cost_exceeds_sell,
    acceptableLossPct: row.acceptable_loss_pct,
    acceptableLossPctNano: Math.max(0, parseNano(row.acceptable_loss_pct)),
    cacheTtlSeconds: row.cache_ttl_seconds,
  };
}

/**
 * The LCR config in force per deck id (null: the system-wide one): a deck's own row with the highest id, else
 * the system-wide row with the highest id, else the built-in default.
 */
function lcrConfigs(tables: Pick<SnapshotTables, 'lcr_config'>): (deckId: number | null) => LcrConfig {
  let global: SnapshotTables['lcr_config'][number] | undefined;
  const overrides = new Map<number, SnapshotTables['lcr_config'][number]>();
  for (const row of tables.lcr_config) {
    if (row.rate_deck_id === null) {
      if (global === undefined || row.id > global.id) global = row;
      continue;
    }
    const current = overrides.get(row.rate_deck_id);
    if (current === undefined || row.id > current.id) overrides.set(row.rate_deck_id, row);
  }
  const fallback = global === undefined ? BUILT_IN_LCR_CONFIG : toLcrConfig(global);
  return (deckId) => {
    const override = deckId === null ? undefined : overrides.get(deckId);
    return override === undefined ? fallback : toLcrConfig(override);
  };
}

function compileDecks(tables: SnapshotTables): { decks: RateDeck[]; deckById: Map<number, number> } {
  const lcrConfigOf = lcrConfigs(tables);
  const decks: RateDeck[] = [];
  const deckById = new Map<number, number>();
  for (const row of [...tables.rate_decks].sort((a, b) => a.id - b.id)) {
    deckById.set(row.id, decks.length);
    decks.push({
      id: row.id,
      name: row.name,
      deckType: row.deck_type,
      currency: row.currency,
      allowedCarriers: [],
      lcrConfig: lcrConfigOf(row.id),
    });
  }
  return { decks, deckById };
}

/**
 * The carriers, in id order. `reuse`: a compiled snapshot whose carriers were compiled from the same rows
 * (the cost deck assignments are not live): a carrier whose trunk row, gateways and failover rules are the
 * same objects as then is taken over, not compiled again (a live change copies only the rows it changes).
 */
function compileCarriers(
  tables: Pick<SnapshotTables, 'carrier_trunks' | 'carrier_gateways' | 'failover_rules' | 'carrier_trunk_rate_decks'>,
  deckById: Map<number, number>,
  reuse: { previousTables: SmallTables; compiled: CompiledSnapshot } | null = null,
): { carriers: CarrierTrunk[]; carrierById: Map<number, number> } {
  const costDeckOf = activeAssignments(tables.carrier_trunk_rate_decks.map((row) => ({ ...row, trunk_id: row.carrier_trunk_id })));
  const gatewayRowsOf = rowsByCarrier(tables.carrier_gateways);
  const failoverRowsOf = rowsByCarrier(tables.failover_rules);
  const unchanged = reuse === null ? null : unchangedCarriers(reuse.previousTables, tables, gatewayRowsOf, failoverRowsOf);
  const carriers: CarrierTrunk[] = [];
  const carrierById = new Map<number, number>();
  for (const row of [...tables.carrier_trunks].sort((a, b) => a.id - b.id)) {
    carrierById.set(row.id, carriers.length);
    if (unchanged?.has(row) === true) {
      carriers.push(reuse!.compiled.carriers[reuse!.compiled.carrierById.get(row.id)!]);
      continue;
    }
    const gateways: Gateway[] = [];
    for (const gateway of gatewayRowsOf.get(row.id) ?? []) {
      if (gateway.status !== 'active') continue;
      const host = parseIPv4(gateway.ip_address) >= 0 ? gateway.ip_address : `[${gateway.ip_address.replace(/^\[|\]$/g, '')}]`;
      gateways.push({ id: gateway.id, hostPort: `${host}:${gateway.port}`, weight: gateway.weight, priority: gateway.priority });
    }
    gateways.sort((a, b) => a.priority - b.priority || a.id - b.id);
    const failoverRules = new Map<number, FailoverAction>();
    for (const rule of failoverRowsOf.get(row.id) ?? []) failoverRules.set(rule.sip_code, rule.action);
    const deckId = costDeckOf.get(row.id);
    const costDeck = deckId === undefined ? -1 : (deckById.get(deckId) ?? -1);
    let eligibility: CarrierEligibility = 'ok';
    if (row.status !== 'active') eligibility = 'carrier_not_active';
    else if (costDeck < 0) eligibility = 'no_cost_deck';
    else if (gateways.length === 0) eligibility = 'no_active_gateway';
    // In place, as for customer trunks (compileCustomerTrunk): one hidden class for every carrier.
    carriers.push(Object.assign(compileTrunk(row), { multiIpMode: row.multi_ip_mode, costDeck, gateways, eligibility, failoverRules }));
  }
  return { carriers, carrierById };
}

function rowsByCarrier<Row extends { carrier_trunk_id: number }>(rows: readonly Row[]): Map<number, Row[]> {
  const byCarrier = new Map<number, Row[]>();
  for (const row of rows) {
    const list = byCarrier.get(row.carrier_trunk_id);
    if (list === undefined) byCarrier.set(row.carrier_trunk_id, [row]);
    else list.push(row);
  }
  return byCarrier;
}

/** The carrier trunk rows (by identity) whose row, gateway rows and failover rows are all as in `before`. */
function unchangedCarriers(
  before: SmallTables,
  after: Pick<SnapshotTables, 'carrier_trunks' | 'carrier_gateways' | 'failover_rules'>,
  gatewaysAfter: Map<number, SnapshotTables['carrier_gateways']>,
  failoverAfter: Map<number, SnapshotTables['failover_rules']>,
): Set<unknown> {
  const gatewaysBefore = rowsByCarrier(before.carrier_gateways);
  const failoverBefore = rowsByCarrier(before.failover_rules);
  const same = (a: readonly unknown[] = [], b: readonly unknown[] = []): boolean =>
    a.length === b.length && a.every((row, i) => row === b[i]);
  const rowsBefore = new Set<unknown>(before.carrier_trunks);
  const unchanged = new Set<unknown>();
  for (const row of after.carrier_trunks) {
    if (
      rowsBefore.has(row) &&
      same(gatewaysBefore.get(row.id), gatewaysAfter.get(row.id)) &&
      same(failoverBefore.get(row.id), failoverAfter.get(row.id))
    )
      unchanged.add(row);
  }
  return unchanged;
}

function compileRates(tables: SnapshotTables, deckById: Map<number, number>): RateIndex {
  const columns = tables.rate_deck_rates;
  const count = columns.prefix_end.length;
  const { trie, order } = buildPrefixTrieFromText(columns.prefix_digits, columns.prefix_end);
  const deckOfRow = new Int32Array(count);
  for (let i = 0; i < count; i++) deckOfRow[i] = deckById.get(columns.rate_deck_id[i])!;
  // Within a node: by deck, newest effective_at first, so a lookup takes the first effective row per deck.
  const { termStart } = trie;
  for (let node = 0; node < trie.nodeCount; node++) {
    const start = termStart[node];
    const end = termStart[node + 1];
    for (let i = start + 1; i < end; i++) {
      const item = order[i];
      let j = i - 1;
      while (j >= start && compareRateRows(order[j], item, deckOfRow, columns.effective_at) > 0) {
        order[j + 1] = order[j];
        j--;
      }
      order[j + 1] = item;
    }
  }
  const rateNano = new Float64Array(count);
  const { rate_text: rateText, rate_end: rateEnd } = columns;
  for (let i = 0; i < count; i++) {
    const row = order[i];
    rateNano[i] = parseNano(rateText, row === 0 ? 0 : rateEnd[row - 1], rateEnd[row]);
  }
  return {
    trie,
    deck: permute(deckOfRow, order, (n) => new Int32Array(n)),
    rateNano,
    effectiveAt: permute(columns.effective_at, order, (n) => new Float64Array(n)),
    rateType: permute(columns.rate_type, order, (n) => new Uint8Array(n)),
    incrementInitial: permute(columns.billing_increment_initial, order, (n) => new Uint16Array(n)),
    incrementStep: permute(columns.billing_increment_step, order, (n) => new Uint16Array(n)),
    destination: permute(columns.destination_name, order, (n) => new Uint32Array(n)),
    destinationNames: columns.destination_names,
  };
}

function compareRateRows(a: number, b: number, deckOfRow: Int32Array, effectiveAt: Float64Array): number {
  return deckOfRow[a] - deckOfRow[b] || effectiveAt[b] - effectiveAt[a] || b - a;
}

function compileAccounts(tables: Pick<SnapshotTables, 'customer_accounts'>): Map<number, CustomerAccount> {
  const accounts = new Map<number, CustomerAccount>();
  for (const row of tables.customer_accounts) {
    accounts.set(row.id, {
      id: row.id,
      status: row.status,
      currency: row.currency,
      billingMode: row.billing_mode,
      enforcesHeadroom: row.billing_mode === 'prepaid' || row.auto_cutoff_enabled,
      autoCutoffBehaviour: row.auto_cutoff_behaviour,
      warningThresholdMicro: row.warning_threshold === null ? NaN : parseMicro(row.warning_threshold),
    });
  }
  return accounts;
}

function distinctTimes(rateTimes: Float64Array, exchangeRates: Map<string, ExchangeRateVersion[]>): Float64Array {
  const times = new Set<number>(rateTimes);
  for (const versions of exchangeRates.values()) for (const version of versions) times.add(version.effectiveAt);
  return Float64Array.from(times).sort();
}

function collectBuffers(compiled: CompiledSnapshot): ArrayBuffer[] {
  const buffers = new Set<ArrayBuffer>();
  const visit = (value: unknown): void => {
    if (ArrayBuffer.isView(value)) {
      if (value.buffer instanceof ArrayBuffer && value.byteOffset === 0 && value.byteLength === value.buffer.byteLength)
        buffers.add(value.buffer);
      return;
    }
    if (typeof value === 'object' && value !== null && !(value instanceof Map) && !Array.isArray(value)) {
      for (const field of Object.values(value)) visit(field);
    }
  };
  visit(compiled);
  return [...buffers];
}
