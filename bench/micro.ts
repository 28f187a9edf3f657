/**
 * In-process decision time over a generated dataset: compile time, memory,
 * and the median cost of one call/auth and one call/route decision, measured
 * in batches (a batch's mean per call; the median over batches keeps GC and
 * VM stalls out of the figure).
 *
 *   node --expose-gc dist/bench/micro.js --size wholesale
 */
import { benchArgs } from './bench-args.js';
import { authorizeCall, type CallAuthDecision } from '../src/sidecar/auth/call-auth.js';
import { LivePorts } from '../src/sidecar/limits/live-ports.js';
import { DecisionEngine } from '../src/sidecar/engine/engine.js';
import { firstRoute } from './bench-world.js';
import { firstAttempt } from '../src/sidecar/call/decide.js';
import { routeCall } from '../src/sidecar/routing/route.js';
import { decodeSnapshot, encodeSnapshot } from '../src/core/snapshot/codec.js';
import { compileSnapshot } from '../src/core/snapshot/compile.js';
import { validateSnapshot } from '../src/core/snapshot/validate.js';
import { generateDataset, SIZES, type Dataset } from '../src/devkit/dataset.js';
import { callAuthRequest } from '../src/devkit/requests.js';

export interface MicroResult {
  size: string;
  rateRows: number;
  cidrs: number;
  snapshotMB: number;
  decodeSeconds: number;
  validateSeconds: number;
  compileSeconds: number;
  rssMB: number;
  heapUsedMB: number;
  authMedianMicros: number;
  /** call/auth of a call through a partner product's access number (RETAIL_TRANSLATIONS live), same run. */
  retailAuthMedianMicros: number;
  routeMedianMicros: number;
  routeAllowedShare: number;
  /** call/auth of the same calls made wholesale: the same trunk's callers dialling the translated numbers. */
  sameTrunkAuthMedianMicros: number;
  /**
   * call/decide's in-memory chain, auth then the first route (of the translated number, on the product's trunk,
   * for a retail call), per call, wholesale (the same callers dialling those numbers on that trunk) and retail
   * in the same run. Admission is left out: it reserves
   * against the node's credit journal (call-mix.js measures the whole handler).
   */
  decisionMedianMicros: number;
  retailDecisionMedianMicros: number;
}

function medianOfBatches(batches: number, batchSize: number, run: (i: number) => void): number {
  const perCall: number[] = [];
  let i = 0;
  for (let b = 0; b < batches; b++) {
    const started = performance.now();
    for (let n = 0; n < batchSize; n++) run(i++);
    perCall.push(((performance.now() - started) * 1000) / batchSize);
  }
  perCall.sort((a, b) => a - b);
  return Math.round(perCall[Math.floor(perCall.length / 2)] * 100) / 100;
}

/** A partner with many callers set up at once: what a retail call's lookups run against. */
export const RETAIL_TRANSLATIONS = 100_000;
export const ACCESS_NUMBER = '61280000000';
export const retailCaller = (i: number): string => `6125${String(5_000_000 + (i % RETAIL_TRANSLATIONS))}`;

/** One partner product on the first caller's trunk, and RETAIL_TRANSLATIONS live translations through it. */
export function addRetail(dataset: Dataset): void {
  const [, , trunkId] = dataset.traffic.callers[0];
  const trunk = dataset.tables.customer_trunks.find((row) => row.id === trunkId)!;
  // The product names its trunk's own sell deck: the same prices as the wholesale call, by the path a product
  // with a deck of its own takes (the deck carried from auth to admission, the route and the CDR).
  const sellDeck = dataset.tables.customer_trunk_rate_decks.find((row) => row.customer_trunk_id === trunkId)!.rate_deck_id;
  dataset.tables.retail_products = [
    { id: 1, customer_trunk_id: trunkId, rate_deck_id: sellDeck, currency: trunk.currency, access_numbers: [ACCESS_NUMBER] },
  ];
  const expires = new Date(Date.now() + 86_400_000).toISOString();
  dataset.tables.call_translations = Array.from({ length: RETAIL_TRANSLATIONS }, (_, i) => ({
    id: i + 1,
    retail_account_id: 1 + (i % 5_000),
    partner_product_id: 1,
    a_number: retailCaller(i),
    access_number: ACCESS_NUMBER,
    b_number: dataset.traffic.numbers[i % dataset.traffic.numbers.length],
    expires_at: expires,
  }));
}

/** A string as the request parser hands it over: flat, its own copy. */
export const flat = (text: string): string => JSON.parse(JSON.stringify(text)) as string;

/** call/auth of a request with these numbers, and call/decide's in-memory chain (auth, then the first route of what auth answered, as decide.ts asks it: false if either refuses). */
export function deciders(
  engine: DecisionEngine,
  ports: LivePorts,
  now: number,
): { authorize: (ip: string, ani: string, dnis: string) => CallAuthDecision; decide: (ip: string, ani: string, dnis: string) => boolean } {
  const authorize = (ip: string, ani: string, dnis: string): CallAuthDecision =>
    authorizeCall(engine, callAuthRequest(ip, { ani, dnis }), ports, now).decision;
  const decide = (ip: string, ani: string, dnis: string): boolean => {
    const caller = authorize(ip, ani, dnis);
    // The route step as call/decide asks it (firstAttempt: what auth knows of a retail number's route goes along).
    return caller.allowed && routeCall(engine, firstAttempt(caller), now).decision.allowed;
  };
  return { authorize, decide };
}

export function runMicro(sizeName: string): MicroResult {
  const dataset = generateDataset(SIZES[sizeName]);
  addRetail(dataset);
  const bytes = encodeSnapshot(dataset.tables, 1);
  const tables = dataset.tables;
  const rateRows = tables.rate_deck_rates.prefix_end.length;
  const cidrs = tables.trunk_ip_auth.length;
  dataset.tables = undefined as never; // let the generator's copy go before measuring memory

  let started = performance.now();
  const decoded = decodeSnapshot(bytes, 0);
  if (!decoded.ok) throw new Error(decoded.reason);
  const decodeSeconds = (performance.now() - started) / 1000;
  started = performance.now();
  const valid = validateSnapshot(decoded.snapshot.tables);
  if (!valid.ok) throw new Error(valid.reason);
  const validateSeconds = (performance.now() - started) / 1000;
  started = performance.now();
  const { compiled, transfer } = compileSnapshot(decoded.snapshot);
  const compileSeconds = (performance.now() - started) / 1000;
  // As in the sidecar: the compiled snapshot reaches the main thread through structured clone (buffers transferred).
  const engine = new DecisionEngine(structuredClone(compiled, { transfer }));
  (decoded as { snapshot: unknown }).snapshot = null;
  (globalThis as { gc?: () => void }).gc?.();
  const memory = process.memoryUsage();

  const { callers, numbers } = dataset.traffic;
  const now = Date.now();
  const { authorize, decide } = deciders(engine, new LivePorts(), now);
  const auth = (ip: string, ani: string, dnis: string): boolean => authorize(ip, ani, dnis).allowed;
  const authMedianMicros = medianOfBatches(200, 2000, (i) => {
    const [ip, techPrefix] = callers[i % callers.length];
    auth(ip, '61255500100', techPrefix + numbers[i % numbers.length]);
  });
  // The same trunk's network dialling the access number, a different set-up caller each time. The numbers
  // are made before, flat, as the request parser hands them over (a string built per call would be measured).
  const [retailIp, retailPrefix] = callers[0];
  const retailCallers = Array.from({ length: 20_000 }, (_, i) => flat(retailCaller(i * 7919)));
  const dialledAccess = retailPrefix + ACCESS_NUMBER;
  const retailAuthMedianMicros = medianOfBatches(200, 2000, (i) => {
    // Every one is translated: a refusal would be measuring the cheaper path.
    if (!auth(retailIp, retailCallers[i % retailCallers.length], dialledAccess)) throw new Error('a set-up retail call was refused');
  });
  // The same calls made wholesale: each set-up caller on the same trunk dialling its translation's number itself,
  // so both chains route the same numbers on the same deck and differ only by the access number's lookups.
  const dialledDirect = Array.from({ length: retailCallers.length }, (_, k) =>
    flat(retailPrefix + dataset.traffic.numbers[((k * 7919) % RETAIL_TRANSLATIONS) % numbers.length]),
  );
  const sameTrunkAuthMedianMicros = medianOfBatches(200, 2000, (i) => {
    const k = i % retailCallers.length;
    if (!auth(retailIp, retailCallers[k], dialledDirect[k])) throw new Error('a wholesale call was refused');
  });
  const decisionMedianMicros = medianOfBatches(200, 2000, (i) => {
    const k = i % retailCallers.length;
    decide(retailIp, retailCallers[k], dialledDirect[k]);
  });
  const retailDecisionMedianMicros = medianOfBatches(200, 2000, (i) => {
    decide(retailIp, retailCallers[i % retailCallers.length], dialledAccess);
  });
  let allowed = 0;
  let total = 0;
  const routeMedianMicros = medianOfBatches(200, 2000, (i) => {
    const [, , trunkId] = callers[i % callers.length];
    const decision = firstRoute(engine, trunkId, numbers[(i * 7) % numbers.length], now, '61255500100');
    total++;
    if (decision.allowed) allowed++;
  });
  return {
    size: sizeName,
    rateRows,
    cidrs,
    snapshotMB: Math.round(bytes.byteLength / 1e5) / 10,
    decodeSeconds: Math.round(decodeSeconds * 100) / 100,
    validateSeconds: Math.round(validateSeconds * 100) / 100,
    compileSeconds: Math.round(compileSeconds * 100) / 100,
    rssMB: Math.round(memory.rss / 1e6),
    heapUsedMB: Math.round(memory.heapUsed / 1e6),
    authMedianMicros,
    retailAuthMedianMicros,
    routeMedianMicros,
    routeAllowedShare: Math.round((allowed / total) * 100) / 100,
    sameTrunkAuthMedianMicros,
    decisionMedianMicros,
    retailDecisionMedianMicros,
  };
}

if (process.argv[1]?.endsWith('micro.js') === true) {
  const { values } = benchArgs({ options: { size: { type: 'string', default: 'wholesale' } } });
  process.stdout.write(`${JSON.stringify(runMicro(values.size))}\n`);
}
