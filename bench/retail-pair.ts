/**
 * A retail call's decisions beside the same call made wholesale (issue 19's target), in CPU time: micro.js's
 * pair (same trunk, the same 20,000 set-up callers, 100,000 live translations; wholesale dials the translated
 * number itself) with each kind run in turn, a whole pass over the callers a block, and each block's cost read
 * from the process's CPU time (getrusage) rather than the clock, so other processes on a shared machine add
 * no time of their own (they still cost caches). Kinds alternate within each round; the figure is the median
 * over rounds, µs a call (the first round fills the route caches: the median leaves it out).
 *
 *   auth → route, wholesale / retail: call/decide's in-memory chain as micro.js has it (admission left out)
 *   auth → price → route: the same with admission's price of the call (priceCall, as admitCall asks it: the
 *     part of admission that reads the number) between them; the reservation itself is left out (it books
 *     against the node's credit journal, a customer account's or a retail account's)
 *   auth, wholesale / retail: call/auth alone
 *   lookup: callAccess alone (access number, translation, expiry) as call/auth asks it, the retail call's own step
 *
 *   node --expose-gc dist/bench/retail-pair.js [--rounds 15]
 *
 * Instructions a call, on a shared machine: one kind alone (`--only 'auth → route, retail'`), its passes cut
 * apart by `--dump-before='node::CPUUsage*'`. The dataset's generation and compile take too long under
 * callgrind, so it runs uninstrumented until the bench, `--hold`, says so and waits for SIGUSR2:
 *
 *   valgrind --tool=callgrind --instr-atstart=no --separate-threads=yes --dump-before='node::CPUUsage*' \
 *     --callgrind-out-file=/tmp/cg/LABEL.%p node --single-threaded dist/bench/retail-pair.js --only KIND --rounds 3 --hold
 *   # on "held PID" (stderr): callgrind_control -i on PID; kill -USR2 PID
 *   # a call's instructions: a pass's `summary:` (LABEL.PID.N-01, N past the first) / 20,000
 */
import { benchArgs } from './bench-args.js';
import type { CallAuthDecision } from '../src/sidecar/auth/call-auth.js';
import { LivePorts } from '../src/sidecar/limits/live-ports.js';
import { DecisionEngine } from '../src/sidecar/engine/engine.js';
import { callAccess } from '../src/sidecar/retail/access-numbers.js';
import { knownNode } from '../src/core/lcr/lcr.js';
import { priceCall } from '../src/sidecar/admission/pricing.js';
import { firstAttempt } from '../src/sidecar/call/decide.js';
import { routeCall } from '../src/sidecar/routing/route.js';
import { decodeSnapshot, encodeSnapshot } from '../src/core/snapshot/codec.js';
import { compileSnapshot } from '../src/core/snapshot/compile.js';
import { generateDataset, SIZES } from '../src/devkit/dataset.js';
import { ACCESS_NUMBER, addRetail, deciders, flat, RETAIL_TRANSLATIONS, retailCaller } from './micro.js';

const { values } = benchArgs({
  options: { rounds: { type: 'string', default: '15' }, only: { type: 'string' }, hold: { type: 'boolean', default: false } },
});
const dataset = generateDataset(SIZES.wholesale);
addRetail(dataset);
const decoded = decodeSnapshot(encodeSnapshot(dataset.tables, 1), 0);
if (!decoded.ok) throw new Error(decoded.reason);
const { compiled, transfer } = compileSnapshot(decoded.snapshot);
// As in the sidecar: the compiled snapshot reaches the main thread through structured clone.
const engine = new DecisionEngine(structuredClone(compiled, { transfer }));
(globalThis as { gc?: () => void }).gc?.();

const { callers, numbers } = dataset.traffic;
const now = Date.now();
const [ip, prefix] = callers[0];
const CALLERS = 20_000;
const aNumbers = Array.from({ length: CALLERS }, (_, i) => flat(retailCaller(i * 7919)));
const dialledAccess = flat(prefix + ACCESS_NUMBER);
const dialledDirect = Array.from({ length: CALLERS }, (_, k) =>
  flat(prefix + numbers[((k * 7919) % RETAIL_TRANSLATIONS) % numbers.length]),
);
const { authorize: authorizeFrom, decide: decideFrom } = deciders(engine, new LivePorts(), now);
const trunk = engine.snapshot.customerTrunks[engine.customerTrunkIndex(callers[0][2])];
// The product's currency is its trunk's (addRetail), so both kinds are priced in the trunk account's.
const currency = engine.snapshot.accounts.get(trunk.accountId)!.currency;
const decidePriced = (ani: string, dnis: string): boolean => {
  const caller = authorizeFrom(ip, ani, dnis);
  return (
    caller.allowed &&
    priceCall(engine, trunk, currency, caller.dnis, now, knownNode(caller, engine.snapshot.rates)).ok &&
    routeCall(engine, firstAttempt(caller), now).decision.allowed
  );
};
const authorize = (ani: string, dnis: string): CallAuthDecision => authorizeFrom(ip, ani, dnis);
const decide = (ani: string, dnis: string): boolean => decideFrom(ip, ani, dnis);
let routed = 0;
const allKinds: Record<string, (k: number) => void> = {
  'auth → route, wholesale': (k) => void (routed += decide(aNumbers[k], dialledDirect[k]) ? 1 : 0),
  'auth → route, retail': (k) => void (routed += decide(aNumbers[k], dialledAccess) ? 1 : 0),
  'auth → price → route, wholesale': (k) => void (routed += decidePriced(aNumbers[k], dialledDirect[k]) ? 1 : 0),
  'auth → price → route, retail': (k) => void (routed += decidePriced(aNumbers[k], dialledAccess) ? 1 : 0),
  'auth, wholesale': (k) => {
    if (!authorize(aNumbers[k], dialledDirect[k]).allowed) throw new Error('a wholesale call was refused');
  },
  'auth, retail': (k) => {
    if (!authorize(aNumbers[k], dialledAccess).allowed) throw new Error('a set-up retail call was refused');
  },
  lookup: (k) => {
    if (callAccess(engine.snapshot.retail, aNumbers[k], ACCESS_NUMBER, now).kind !== 'translated') throw new Error('no translation');
  },
};

const only = values.only;
if (only !== undefined && !(only in allKinds)) throw new Error(`--only: one of ${Object.keys(allKinds).join(', ')}`);
const kinds = only === undefined ? allKinds : { [only]: allKinds[only] };
if (values.hold) {
  // Warmed up first, so the instrumented passes run optimised code, as the timed ones do after their first round.
  for (const run of Object.values(kinds)) for (let k = 0; k < CALLERS; k++) run(k);
  routed = 0;
  process.stderr.write(`held ${process.pid}\n`);
  // A signal's listener alone keeps no process alive: the timer does, until it comes.
  const alive = setInterval(() => undefined, 1 << 30);
  await new Promise((resume) => process.once('SIGUSR2', resume));
  clearInterval(alive);
}

const cpuNanos = (): number => {
  const { user, system } = process.cpuUsage();
  return (user + system) * 1000;
};
// The kinds that count a routed call (auth alone and the lookup do not).
const routing = Object.keys(kinds).filter((name) => name.includes('route')).length;
const perCall: Record<string, number[]> = Object.fromEntries(Object.keys(kinds).map((name) => [name, []]));
for (let round = 0; round < Number(values.rounds); round++) {
  for (const [name, run] of Object.entries(kinds)) {
    const started = cpuNanos();
    for (let k = 0; k < CALLERS; k++) run(k);
    perCall[name].push((cpuNanos() - started) / 1000 / CALLERS);
  }
}
const median = (list: number[]): number => Math.round([...list].sort((a, b) => a - b)[Math.floor(list.length / 2)] * 1000) / 1000;
const result = Object.fromEntries(Object.entries(perCall).map(([name, list]) => [name, median(list)]));
process.stdout.write(`${JSON.stringify({ ...result, routedShare: routed / (CALLERS * routing * Number(values.rounds)) })}\n`);
