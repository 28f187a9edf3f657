import { registrationKey, type CompiledSnapshot } from '../../src/snapshot/compile.js';
import { LcrEngine } from '../../src/lcr/lcr.js';

/**
 * OpenSIPS drouting rows that route as the sidecar's LCR does, so a node can
 * keep routing with do_routing() while its sidecar is down. The rules are
 * computed with the sidecar's own LCR engine (src/lcr), over the same
 * compiled snapshot: they cannot disagree on anything drouting can express.
 *
 * - One drouting group per customer sell deck (groupid = rate deck id): trunks
 *   sharing a deck route alike.
 * - A rule for every prefix where the LCR order can change: the prefixes of
 *   the sell deck and of its allowlisted carriers' cost decks. A prefix whose
 *   order equals the order of its nearest ancestor with a rule is left out,
 *   since drouting's longest-prefix match falls back to that ancestor anyway.
 * - Each rule's gwlist is `#carrier` ids in LCR order, sort_alg N (keep order);
 *   each carrier lists its gateways by priority (sort_alg N) for failover
 *   carriers, or with weights (sort_alg W) for load-balanced ones.
 *
 * What drouting cannot express, and the sidecar still does: carrier-scope
 * block rules on a number or caller, tried-carrier bookkeeping beyond
 * use_next_gw(), and rates dated in the future (the rules hold what is in
 * force at build time; the next sync moves them on).
 */

export interface DrGateway {
  gwid: string;
  type: number;
  address: string;
  strip: number;
  pri_prefix: string | null;
  attrs: string | null;
  probe_mode: number;
  state: number;
  socket: string | null;
  description: string | null;
}

export interface DrCarrier {
  carrierid: string;
  gwlist: string;
  flags: number;
  sort_alg: string;
  state: number;
  attrs: string | null;
  description: string | null;
}

export interface DrRule {
  groupid: string;
  prefix: string;
  timerec: string | null;
  priority: number;
  routeid: string | null;
  gwlist: string;
  sort_alg: string;
  sort_profile: number | null;
  attrs: string | null;
  description: string | null;
}

export interface DrGroup {
  username: string;
  domain: string | null;
  groupid: number;
  description: string | null;
}

export interface DroutingData {
  gateways: DrGateway[];
  carriers: DrCarrier[];
  rules: DrRule[];
  groups: DrGroup[];
}

export const gatewayId = (id: number): string => `gw${id}`;
export const carrierId = (id: number): string => `cr${id}`;

interface PrefixDecks {
  prefix: string;
  /** Decks with a rate row at exactly this prefix. */
  decks: Set<number>;
}

/** Every prefix in the rate trie with the decks that have a row there, shortest first (one walk for all decks). */
function allPrefixes(snapshot: CompiledSnapshot): PrefixDecks[] {
  const { children, termStart } = snapshot.rates.trie;
  const deckOf = snapshot.rates.deck;
  const found: PrefixDecks[] = [];
  const stack: [number, string][] = [[0, '']];
  while (stack.length > 0) {
    const [node, prefix] = stack.pop()!;
    if (termStart[node + 1] > termStart[node]) {
      const decks = new Set<number>();
      for (let term = termStart[node]; term < termStart[node + 1]; term++) decks.add(deckOf[term]);
      found.push({ prefix, decks });
    }
    for (let digit = 9; digit >= 0; digit--) {
      const child = children[node * 10 + digit];
      if (child !== 0) stack.push([child, prefix + String(digit)]);
    }
  }
  return found.sort((a, b) => a.prefix.length - b.prefix.length || (a.prefix < b.prefix ? -1 : 1));
}

/** Lets other work (uploads to sidecars, admin requests) run during a long build. */
const breather = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export async function buildDroutingData(snapshot: CompiledSnapshot, now: number): Promise<DroutingData> {
  const gateways: DrGateway[] = [];
  const carriers: DrCarrier[] = [];
  for (const carrier of snapshot.carriers) {
    if (carrier.gateways.length === 0) continue;
    for (const gateway of carrier.gateways) {
      gateways.push({
        gwid: gatewayId(gateway.id), type: 0, address: gateway.hostPort, strip: 0, pri_prefix: null,
        attrs: String(carrier.id), probe_mode: 0, state: 0, socket: null, description: carrier.name,
      });
    }
    const weighted = carrier.multiIpMode === 'load_balance';
    carriers.push({
      carrierid: carrierId(carrier.id),
      gwlist: carrier.gateways.map((gateway) => (weighted ? `${gatewayId(gateway.id)}=${gateway.weight}` : gatewayId(gateway.id))).join(','),
      flags: 0,
      sort_alg: weighted ? 'W' : 'N',
      state: carrier.status === 'active' ? 0 : 1,
      attrs: String(carrier.id),
      description: carrier.name,
    });
  }

  const engine = new LcrEngine(snapshot);
  const rules: DrRule[] = [];
  const prefixes = allPrefixes(snapshot);
  let evaluations = 0;
  const usedDecks = new Set(snapshot.customerTrunks.filter((trunk) => trunk.active && trunk.sellDeck >= 0).map((trunk) => trunk.sellDeck));
  for (const sellDeck of [...usedDecks].sort((a, b) => snapshot.decks[a].id - snapshot.decks[b].id)) {
    const deck = snapshot.decks[sellDeck];
    const relevant = new Set<number>([sellDeck]);
    for (const carrier of deck.allowedCarriers) if (snapshot.carriers[carrier].costDeck >= 0) relevant.add(snapshot.carriers[carrier].costDeck);
    const emitted = new Map<string, string>(); // prefix -> gwlist
    for (const { prefix, decks } of prefixes) {
      let touches = false;
      for (const deckIndex of decks) if (relevant.has(deckIndex)) touches = true;
      if (!touches) continue;
      if (++evaluations % 500 === 0) await breather();
      const ordered = engine.orderedCarrierIds({ trunk: -1, sellDeck, dnis: prefix, ani: '', triedCarrierIds: [], triedGatewayIds: [], now });
      const gwlist = ordered.map((id) => `#${carrierId(id)}`).join(',');
      let inherited: string | undefined;
      for (let length = prefix.length - 1; length > 0 && inherited === undefined; length--) inherited = emitted.get(prefix.slice(0, length));
      if ((inherited ?? '') === gwlist) continue; // same answer as the rule drouting would fall back to
      emitted.set(prefix, gwlist);
      rules.push({
        groupid: String(deck.id), prefix, timerec: null, priority: 0, routeid: null, gwlist, sort_alg: 'N', sort_profile: null,
        attrs: null, description: `${deck.name} ${prefix}`,
      });
    }
  }

  const groups: DrGroup[] = [];
  for (const [key, registration] of snapshot.registrations) {
    const trunk = snapshot.customerTrunks[registration.customerTrunk];
    if (trunk.sellDeck < 0) continue;
    const [username, domain] = key.split('\u0000');
    groups.push({ username, domain, groupid: snapshot.decks[trunk.sellDeck].id, description: `customer trunk ${trunk.id}` });
  }
  groups.sort((a, b) => (registrationKey(a.username, a.domain ?? '') < registrationKey(b.username, b.domain ?? '') ? -1 : 1));
  return { gateways, carriers, rules, groups };
}
