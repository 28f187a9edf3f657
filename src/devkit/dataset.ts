/**
 * Synthetic wholesale routing data with realistic shapes: country codes with
 * mobile and geographic ranges, overlapping prefixes across decks, mixed
 * currencies, a few per-call rows, rate changes dated in the past and in the
 * future, shared customer IPs told apart by tech prefix, block rules.
 * Deterministic for a given seed, so runs compare.
 *
 *   node dist/bench/dataset.js --size demo --out data/demo.msgpack [--version N] [--seed S] [--traffic file.json] [--port-limit N]
 *
 * --port-limit gives every customer trunk that port_limit: the benchmark's admissions never hang up, and at
 * the generated limits most of them would be refused for the trunk's ports instead of measured admitted.
 */
import { writeFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { encodeSnapshot } from '../core/snapshot/codec.js';
import type {
  BlockRuleRow,
  CarrierGatewayRow,
  CarrierTrunkRow,
  CustomerTrunkRow,
  RateColumns,
  RateDeckRow,
  SnapshotTables,
  TrunkIpAuthRow,
} from '../core/snapshot/schema.js';

export interface DatasetSize {
  carrierDecks: number;
  customerDecks: number;
  /** Distinct prefixes in the numbering universe; a deck covers 60-95% of it. */
  prefixes: number;
  customerTrunks: number;
  cidrs: number;
  blockRules: number;
}

export const SIZES: Record<string, DatasetSize> = {
  small: { carrierDecks: 4, customerDecks: 2, prefixes: 400, customerTrunks: 20, cidrs: 40, blockRules: 20 },
  demo: { carrierDecks: 12, customerDecks: 4, prefixes: 20_000, customerTrunks: 300, cidrs: 2_000, blockRules: 300 },
  // ~2M rate rows over 40 carrier decks (plus customer decks), 100k CIDRs.
  wholesale: { carrierDecks: 40, customerDecks: 6, prefixes: 52_000, customerTrunks: 4_000, cidrs: 100_000, blockRules: 5_000 },
};

/** What a load driver needs to send realistic calls against the dataset. */
export interface TrafficHints {
  /** [source_ip, tech_prefix, customer_trunk_id] of active trunks with IP auth. */
  callers: [string, string, number][];
  /** Dialled numbers (no tech prefix) that match the customer decks. */
  numbers: string[];
  /** The customer accounts, for a control plane that holds their balances. */
  accounts: SnapshotTables['customer_accounts'];
}

export interface Dataset {
  tables: SnapshotTables;
  traffic: TrafficHints;
}

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const COUNTRY_CODES = [
  '1',
  '7',
  '20',
  '27',
  '30',
  '31',
  '32',
  '33',
  '34',
  '36',
  '39',
  '40',
  '41',
  '43',
  '44',
  '45',
  '46',
  '47',
  '48',
  '49',
  '51',
  '52',
  '53',
  '54',
  '55',
  '56',
  '57',
  '58',
  '60',
  '61',
  '62',
  '63',
  '64',
  '65',
  '66',
  '81',
  '82',
  '84',
  '86',
  '90',
  '91',
  '92',
  '93',
  '94',
  '95',
  '98',
  '212',
  '213',
  '216',
  '218',
  '220',
  '221',
  '225',
  '233',
  '234',
  '254',
  '255',
  '256',
  '263',
  '351',
  '352',
  '353',
  '354',
  '355',
  '356',
  '357',
  '358',
  '359',
  '370',
  '371',
  '372',
  '380',
  '381',
  '385',
  '386',
  '420',
  '421',
  '852',
  '853',
  '855',
  '856',
  '880',
  '886',
  '960',
  '961',
  '962',
  '963',
  '964',
  '965',
  '966',
  '971',
  '972',
  '973',
  '974',
  '975',
  '976',
  '977',
  '992',
  '993',
  '994',
  '995',
  '996',
  '998',
];

export function generateDataset(size: DatasetSize, seed = 42): Dataset {
  const random = mulberry32(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)];
  const digits = (n: number): string => {
    let text = '';
    for (let i = 0; i < n; i++) text += String(Math.floor(random() * 10));
    return text;
  };

  // Numbering universe: each country gets ranges one to five digits deeper; mobile ranges are the deep ones.
  const universe = new Set<string>(COUNTRY_CODES);
  while (universe.size < size.prefixes) {
    const country = pick(COUNTRY_CODES);
    universe.add(country + digits(1 + Math.floor(random() * 5)));
  }
  const prefixes = [...universe];
  const baseRate = new Map<string, number>(); // micro-units per minute, by prefix
  for (const prefix of prefixes) baseRate.set(prefix, 2_000 + Math.floor(random() * 120_000));

  const rateDecks: RateDeckRow[] = [];
  const now = Date.now();
  const day = 86_400_000;
  const rows: { deck: number; prefix: string; rate: number; type: number; inc0: number; inc1: number; effective: number; name: number }[] =
    [];
  const destinationNames = COUNTRY_CODES.map((code) => `Country ${code}`);
  const countryOf = (prefix: string): number => {
    for (let length = 3; length >= 1; length--) {
      const index = COUNTRY_CODES.indexOf(prefix.slice(0, length));
      if (index >= 0) return index;
    }
    return 0;
  };
  const addDeck = (id: number, type: 'customer' | 'carrier', markup: number, coverage: number): void => {
    const currency = type === 'carrier' && random() < 0.3 ? 'USD' : 'AUD';
    rateDecks.push({ id, name: `${type === 'customer' ? 'Sell' : 'Cost'} deck ${id}`, deck_type: type, currency });
    for (const prefix of prefixes) {
      if (random() > coverage) continue;
      const noise = 0.85 + random() * 0.3;
      let rate = Math.round((baseRate.get(prefix)! * markup * noise) / (currency === 'USD' ? 1.5 : 1));
      const perCall = random() < 0.01;
      if (perCall) rate = 50_000 + Math.floor(random() * 200_000);
      const increments = pick([
        [1, 1],
        [6, 6],
        [30, 6],
        [60, 60],
        [0, 0],
      ]);
      const row = {
        deck: id,
        prefix,
        rate,
        type: perCall ? 1 : 0,
        inc0: increments[0],
        inc1: increments[1],
        effective: now - 30 * day,
        name: countryOf(prefix),
      };
      rows.push(row);
      if (random() < 0.02) rows.push({ ...row, rate: Math.round(rate * 1.1), effective: now + 7 * day }); // announced price change
    }
  };
  for (let i = 1; i <= size.customerDecks; i++) addDeck(i, 'customer', 1.35, 0.98);
  for (let i = 1; i <= size.carrierDecks; i++) addDeck(100 + i, 'carrier', 1, 0.6 + random() * 0.35);

  const rates: RateColumns = {
    rate_deck_id: new Uint32Array(rows.length),
    prefix_digits: '',
    prefix_end: new Uint32Array(rows.length),
    destination_name: new Uint32Array(rows.length),
    destination_names: destinationNames,
    rate_text: '',
    rate_end: new Uint32Array(rows.length),
    rate_type: new Uint8Array(rows.length),
    billing_increment_initial: new Uint16Array(rows.length),
    billing_increment_step: new Uint16Array(rows.length),
    effective_at: new Float64Array(rows.length),
  };
  const prefixText: string[] = [];
  const rateText: string[] = [];
  let prefixLength = 0;
  let rateLength = 0;
  rows.forEach((row, i) => {
    rates.rate_deck_id[i] = row.deck;
    prefixText.push(row.prefix);
    rates.prefix_end[i] = prefixLength += row.prefix.length;
    rates.destination_name[i] = row.name;
    const rate = `${Math.floor(row.rate / 1e6)}.${String(row.rate % 1e6).padStart(6, '0')}`;
    rateText.push(rate);
    rates.rate_end[i] = rateLength += rate.length;
    rates.rate_type[i] = row.type;
    rates.billing_increment_initial[i] = row.inc0;
    rates.billing_increment_step[i] = row.inc1;
    rates.effective_at[i] = row.effective;
  });
  rates.prefix_digits = prefixText.join('');
  rates.rate_text = rateText.join('');

  const carriers: CarrierTrunkRow[] = [];
  const gateways: CarrierGatewayRow[] = [];
  for (let i = 1; i <= size.carrierDecks; i++) {
    const id = 1000 + i;
    carriers.push({
      id,
      name: `Carrier ${i}`,
      status: random() < 0.05 ? 'suspended' : 'active',
      currency: 'AUD',
      cps_limit: 50,
      port_limit: 500,
      per_minute_rate_limit: 3000,
      sip_trusted: false,
      rtpengine_enabled: false,
      multi_ip_mode: random() < 0.5 ? 'load_balance' : 'failover',
      tech_prefix: null,
      billing_increment_initial: 1,
      billing_increment_step: 1,
      decimal_precision: 4,
      rounding_direction: 'standard',
    });
    const gatewayCount = 1 + Math.floor(random() * 3);
    for (let g = 0; g < gatewayCount; g++) {
      gateways.push({
        id: id * 10 + g,
        carrier_trunk_id: id,
        ip_address: random() < 0.1 ? `2001:db8:${i.toString(16)}::${g + 1}` : `198.51.${i}.${10 + g}`,
        port: 5060,
        weight: 1 + Math.floor(random() * 3),
        priority: g + 1,
        status: 'active',
      });
    }
  }

  const accounts = Array.from({ length: Math.ceil(size.customerTrunks / 3) }, (_, i) => ({
    id: i + 1,
    name: `Customer ${i + 1}`,
    status: 'active' as const,
    currency: 'AUD' as const,
    billing_mode: random() < 0.5 ? ('prepaid' as const) : ('postpaid' as const),
    credit_limit: '5000.00',
    warning_threshold: '100.00',
    auto_cutoff_enabled: false,
    auto_cutoff_behaviour: 'block_new' as const,
  }));
  const trunks: CustomerTrunkRow[] = [];
  const ipAuth: TrunkIpAuthRow[] = [];
  const callers: [string, string, number][] = [];
  for (let i = 1; i <= size.customerTrunks; i++) {
    const techPrefix = i % 4 === 0 ? String(1000 + (i % 9000)) : null;
    trunks.push({
      id: 10_000 + i,
      customer_account_id: 1 + Math.floor((i - 1) / 3),
      name: `Trunk ${i}`,
      status: random() < 0.03 ? 'suspended' : 'active',
      currency: 'AUD',
      cps_limit: 20,
      port_limit: 60,
      per_minute_rate_limit: 600,
      billing_mode: 'postpaid',
      credit_limit: null,
      tech_prefix: techPrefix,
      sip_trusted: random() < 0.2,
      rtpengine_enabled: random() < 0.1,
      billing_increment_initial: pick([1, 6, 60]),
      billing_increment_step: pick([1, 6, 60]),
      decimal_precision: pick([4, 5, 6]),
      rounding_direction: pick(['up', 'down', 'standard']),
    });
  }
  let ipAuthId = 1;
  for (let i = 0; ipAuth.length < size.cidrs; i++) {
    const trunk = trunks[i % trunks.length];
    // Trunks sharing a /32 differ by tech prefix: consecutive trunks 4k-1 and 4k share an address.
    const octets = [100 + ((i >> 16) & 63), (i >> 8) & 255, i & 255, 1 + (i % 200)];
    const length = pick([32, 32, 30, 29, 28, 24]);
    const cidr = `${octets.join('.')}/${length}`;
    ipAuth.push({ id: ipAuthId++, trunk_type: 'customer', trunk_id: trunk.id, cidr });
    if (trunk.status === 'active' && length === 32 && callers.length < 5000)
      callers.push([octets.join('.'), trunk.tech_prefix ?? '', trunk.id]);
  }
  const blockRules: BlockRuleRow[] = [];
  for (let i = 1; i <= size.blockRules; i++) {
    const scoped = random() < 0.7;
    blockRules.push({
      id: i,
      scope: scoped ? 'customer_trunk' : 'global',
      scope_id: scoped ? pick(trunks).id : null,
      block_type: pick(['ani', 'dnis', 'number_code']),
      pattern: pick(prefixes) + digits(4 + Math.floor(random() * 4)),
      match_type: random() < 0.5 ? 'exact' : 'prefix',
      sip_response_code: 403,
      is_active: true,
    });
  }
  const allowlist = [];
  let allowId = 1;
  for (let deck = 1; deck <= size.customerDecks; deck++) {
    for (const carrier of carriers) if (random() < 0.8) allowlist.push({ id: allowId++, rate_deck_id: deck, carrier_trunk_id: carrier.id });
  }
  const numbers: string[] = [];
  for (let i = 0; i < 20_000; i++) {
    const prefix = pick(prefixes);
    numbers.push(prefix + digits(Math.max(0, 11 - prefix.length)));
  }
  const assignedAt = new Date(now - 60 * day).toISOString();
  return {
    tables: {
      customer_accounts: accounts,
      customer_trunks: trunks,
      trunk_ip_auth: ipAuth,
      sip_registrations: trunks.slice(0, 50).map((trunk, i) => ({
        id: i + 1,
        customer_trunk_id: trunk.id,
        username: `trunk${trunk.id}`,
        domain: 'sip.example.net',
        password_hash: '0'.repeat(32),
        hash_algorithm: 'md5',
        status: 'active',
      })),
      block_rules: blockRules,
      rate_decks: rateDecks,
      rate_deck_rates: rates,
      customer_trunk_rate_decks: trunks.map((trunk, i) => ({
        id: i + 1,
        customer_trunk_id: trunk.id,
        rate_deck_id: 1 + (i % size.customerDecks),
        is_active: true,
        assigned_at: assignedAt,
      })),
      carrier_trunk_rate_decks: carriers.map((carrier, i) => ({
        id: i + 1,
        carrier_trunk_id: carrier.id,
        rate_deck_id: 101 + i,
        is_active: true,
        assigned_at: assignedAt,
      })),
      rate_deck_allowlist: allowlist,
      carrier_trunks: carriers,
      carrier_gateways: gateways,
      failover_rules: carriers.flatMap((carrier, i) => [
        { id: i * 3 + 1, carrier_trunk_id: carrier.id, sip_code: 486, action: 'return_to_customer' as const },
        { id: i * 3 + 2, carrier_trunk_id: carrier.id, sip_code: 404, action: 'return_to_customer' as const },
        { id: i * 3 + 3, carrier_trunk_id: carrier.id, sip_code: 503, action: 'retry_next' as const },
      ]),
      lcr_config: [{ id: 1, rate_deck_id: null, block_if_cost_exceeds_sell: true, acceptable_loss_pct: '5.00', cache_ttl_seconds: 300 }],
      exchange_rates: [
        { id: 1, from_currency: 'USD', to_currency: 'AUD', rate: '1.520000', effective_at: new Date(now - 90 * day).toISOString() },
        { id: 2, from_currency: 'USD', to_currency: 'AUD', rate: '1.545000', effective_at: new Date(now - 10 * day).toISOString() },
      ],
    },
    traffic: { callers, numbers, accounts },
  };
}

function cli(): void {
  const { values } = parseArgs({
    options: {
      size: { type: 'string', default: 'demo' },
      out: { type: 'string' },
      version: { type: 'string' },
      seed: { type: 'string', default: '42' },
      traffic: { type: 'string' },
      'port-limit': { type: 'string' },
    },
  });
  const size = SIZES[values.size] as DatasetSize | undefined;
  if (size === undefined || values.out === undefined) {
    process.stderr.write(
      `usage: dataset --size ${Object.keys(SIZES).join('|')} --out FILE [--version N] [--seed S] [--traffic FILE] [--port-limit N]\n`,
    );
    process.exit(2);
  }
  const started = performance.now();
  const dataset = generateDataset(size, Number(values.seed));
  if (values['port-limit'] !== undefined)
    for (const trunk of dataset.tables.customer_trunks) trunk.port_limit = Number(values['port-limit']);
  const bytes = encodeSnapshot(dataset.tables, Number(values.version ?? Math.floor(Date.now() / 1000)));
  mkdirSync(dirname(values.out), { recursive: true });
  writeFileSync(values.out, bytes);
  if (values.traffic !== undefined) writeFileSync(values.traffic, JSON.stringify(dataset.traffic));
  process.stdout.write(
    `${values.size}: ${dataset.tables.rate_deck_rates.prefix_end.length} rate rows, ${dataset.tables.trunk_ip_auth.length} CIDRs, ` +
      `${dataset.tables.customer_trunks.length} trunks -> ${values.out} (${(bytes.byteLength / 1e6).toFixed(1)} MB, ${((performance.now() - started) / 1000).toFixed(1)} s)\n`,
  );
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) cli();
