import { registrationKey, type CompiledSnapshot } from '../../src/core/snapshot/model.js';
import { LcrEngine } from '../../src/core/lcr/lcr.js';
import type { TrunkIpAuthRow } from '../../src/core/snapshot/schema.js';

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

/**
 * A row of the permissions module's `address` table: which drouting group (and customer trunk) a source
 * address belongs to, so the script can route with do_routing() when the sidecar does not answer.
 */
export interface DrAddress {
  grp: number;
  ip: string;
  mask: number;
  port: number;
  proto: string;
  pattern: string | null;
  /** The customer trunk id. */
  context_info: string;
}

export interface DroutingData {
  gateways: DrGateway[];
  carriers: DrCarrier[];
  rules: DrRule[];
  groups: DrGroup[];
  addresses: DrAddress[];
}

/**
 * The widths of OpenSIPS's columns these values go into (scripts/{mysql,postgres}/drouting-create.sql): a
 * MySQL/MariaDB in strict mode or a PostgreSQL refuses a longer value, and with it the node's whole write,
 * while the admin API takes names of 255 characters and SIP usernames as long. So every row is built to
 * fit, for every engine alike (one checksum): descriptions, which only an operator reads, are cut short;
 * gateway lists keep their first entries whole (the cheapest carriers, the first gateways); a registration
 * whose username or domain cannot be stored is left out, and so is a source address whose group (its sell deck's
 * id) is above `address.grp`'s SMALLINT (PostgreSQL's, signed, the narrower): their trunks get 503 while the
 * sidecar is away.
 */
const WIDTH = { description: 128, gwlist: 255, username: 64, domain: 128, addressGroup: 32_767 } as const;

/** At most `width` characters (code points: what CHAR/VARCHAR count), for a description. */
function clipped(text: string): string {
  if (text.length <= WIDTH.description) return text;
  return [...text].slice(0, WIDTH.description).join('');
}

/** A comma-separated list of at most WIDTH.gwlist characters, cut after its last whole entry that fits. */
function fittedList(list: string): string {
  if (list.length <= WIDTH.gwlist) return list;
  const cut = list.lastIndexOf(',', WIDTH.gwlist);
  return cut <= 0 ? '' : list.slice(0, cut);
}

export const gatewayId = (id: number): string => `gw${id}`;
export const carrierId = (id: number): string => `cr${id}`;

function addressRows(snapshot: CompiledSnapshot, ipAuth: readonly TrunkIpAuthRow[]): DrAddress[] {
  const rows: DrAddress[] = [];
  for (const auth of ipAuth) {
    if (auth.trunk_type !== 'customer') continue;
    const index = snapshot.customerTrunkById.get(auth.trunk_id);
    if (index === undefined) continue;
    const trunk = snapshot.customerTrunks[index];
    if (!trunk.active || trunk.sellDeck < 0) continue;
    // Only accounts whose spending is not limited: without the sidecar nothing can hold a prepaid (or
    // cut-off) account to its balance, so their calls get 503 in degraded mode instead of going through free.
    if (snapshot.accounts.get(trunk.accountId)?.enforcesHeadroom !== false) continue;
    // Nor trunks identified by a tech prefix: the script's degraded path cannot strip it, so the dialled
    // digits went to drouting with it ("99" + 61400123456 matched Kyrgyzstan's 996), were relayed so and
    // billed at that route's rate. Their calls get 503 while the sidecar is away, as registered trunks' do.
    if (trunk.techPrefix !== '') continue;
    if (snapshot.decks[trunk.sellDeck].id > WIDTH.addressGroup) continue; // see WIDTH
    const [ip, length] = auth.cidr.split('/');
    rows.push({
      grp: snapshot.decks[trunk.sellDeck].id,
      ip,
      mask: Number(length),
      port: 0,
      proto: 'any',
      pattern: null,
      context_info: String(trunk.id),
    });
  }
  return rows.sort(
    (a, b) => b.mask - a.mask || (a.ip < b.ip ? -1 : a.ip > b.ip ? 1 : 0) || Number(a.context_info) - Number(b.context_info),
  );
}

/** Lets other work (uploads to sidecars, admin requests) run during a long build. */
const breather = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * `ipAuth`: the snapshot's trunk_ip_auth rows (the compiled snapshot keeps only its CIDR index), for the
 * `address` rows: the CIDRs of each active customer trunk of an account without a spending limit, in its
 * sell deck's group, most specific first.
 */
export async function buildDroutingData(
  snapshot: CompiledSnapshot,
  now: number,
  ipAuth: readonly TrunkIpAuthRow[] = [],
): Promise<DroutingData> {
  const gateways: DrGateway[] = [];
  const carriers: DrCarrier[] = [];
  for (const carrier of snapshot.carriers) {
    if (carrier.gateways.length === 0) continue;
    for (const gateway of carrier.gateways) {
      gateways.push({
        gwid: gatewayId(gateway.id),
        type: 0,
        address: gateway.hostPort,
        strip: 0,
        pri_prefix: null,
        attrs: String(carrier.id),
        probe_mode: 0,
        state: 0,
        socket: null,
        description: clipped(carrier.name),
      });
    }
    const weighted = carrier.multiIpMode === 'load_balance';
    carriers.push({
      carrierid: carrierId(carrier.id),
      gwlist: fittedList(
        carrier.gateways.map((gateway) => (weighted ? `${gatewayId(gateway.id)}=${gateway.weight}` : gatewayId(gateway.id))).join(','),
      ),
      flags: 0,
      sort_alg: weighted ? 'W' : 'N',
      state: carrier.status === 'active' ? 0 : 1,
      attrs: String(carrier.id),
      description: clipped(carrier.name),
    });
  }

  const rules = await buildRules(snapshot, now);
  const groups: DrGroup[] = [];
  for (const [key, registration] of snapshot.registrations) {
    const trunk = snapshot.customerTrunks[registration.customerTrunk];
    if (trunk.sellDeck < 0) continue;
    const [username, domain] = key.split('\u0000');
    if (username.length > WIDTH.username || domain.length > WIDTH.domain) continue;
    groups.push({ username, domain, groupid: snapshot.decks[trunk.sellDeck].id, description: `customer trunk ${trunk.id}` });
  }
  groups.sort((a, b) => (registrationKey(a.username, a.domain ?? '') < registrationKey(b.username, b.domain ?? '') ? -1 : 1));
  return { gateways, carriers, rules, groups, addresses: addressRows(snapshot, ipAuth) };
}

/**
 * The rules of every used sell deck in one depth-first walk of the rate trie. At each prefix where some
 * deck has a row, one LCR walk serves every sell deck that prefix concerns (its own rows or its carriers'
 * cost rows); a deck gets a rule there unless the order equals the one inherited from its nearest ruled
 * ancestor. Rules come out per deck (by deck id), shortest prefix first.
 */
async function buildRules(snapshot: CompiledSnapshot, now: number): Promise<DrRule[]> {
  const engine = new LcrEngine(snapshot);
  const { children, termStart, nodeCount } = snapshot.rates.trie;
  const deckOf = snapshot.rates.deck;
  const sellDecks = [
    ...new Set(snapshot.customerTrunks.filter((trunk) => trunk.active && trunk.sellDeck >= 0).map((trunk) => trunk.sellDeck)),
  ].sort((a, b) => snapshot.decks[a].id - snapshot.decks[b].id);
  // relevant[s][d]: deck d's rows can change sell deck s's order (its own rows, or an allowlisted carrier's cost deck).
  const relevant = sellDecks.map((sellDeck) => {
    const decks = new Uint8Array(snapshot.decks.length);
    decks[sellDeck] = 1;
    for (const carrier of snapshot.decks[sellDeck].allowedCarriers)
      if (snapshot.carriers[carrier].costDeck >= 0) decks[snapshot.carriers[carrier].costDeck] = 1;
    return decks;
  });
  const rulesByDeck: DrRule[][] = sellDecks.map(() => []);
  // Per sell deck, the ruled ancestors of the node being visited: their depths and gwlists.
  const ruledDepths: number[][] = sellDecks.map(() => []);
  const ruledLists: string[][] = sellDecks.map(() => []);
  const present = new Int32Array(snapshot.decks.length).fill(-1);
  const concerned: number[] = [];
  const concernedIndexes: number[] = [];
  // The walk's stack: at most nine siblings wait per level, so the trie's node count bounds it.
  const nodes = new Int32Array(nodeCount);
  const prefixes: string[] = [''];
  let top = 1;
  let evaluations = 0;
  while (top > 0) {
    const node = nodes[--top];
    const prefix = prefixes[top];
    const depth = prefix.length;
    for (let s = 0; s < sellDecks.length; s++) {
      const stack = ruledDepths[s];
      while (stack.length > 0 && stack[stack.length - 1] >= depth) {
        stack.pop();
        ruledLists[s].pop();
      }
    }
    if (termStart[node + 1] > termStart[node]) {
      for (let term = termStart[node]; term < termStart[node + 1]; term++) present[deckOf[term]] = node;
      concerned.length = 0;
      concernedIndexes.length = 0;
      for (let s = 0; s < sellDecks.length; s++) {
        for (let deck = 0; deck < present.length; deck++) {
          if (present[deck] === node && relevant[s][deck] === 1) {
            concerned.push(sellDecks[s]);
            concernedIndexes.push(s);
            break;
          }
        }
      }
      if (concerned.length > 0) {
        if (++evaluations % 500 === 0) await breather();
        const orders = engine.orderedCarrierIdsByDeck(prefix, concerned, now);
        for (let i = 0; i < concerned.length; i++) {
          const s = concernedIndexes[i];
          const gwlist = fittedList(orders[i].map((id) => `#${carrierId(id)}`).join(','));
          const lists = ruledLists[s];
          if ((lists.length > 0 ? lists[lists.length - 1] : '') === gwlist) continue; // drouting falls back to the same answer
          ruledDepths[s].push(depth);
          lists.push(gwlist);
          const deck = snapshot.decks[concerned[i]];
          rulesByDeck[s].push({
            groupid: String(deck.id),
            prefix,
            timerec: null,
            priority: 0,
            routeid: null,
            gwlist,
            sort_alg: 'N',
            sort_profile: null,
            attrs: null,
            description: clipped(`${deck.name} ${prefix}`),
          });
        }
      }
    }
    for (let digit = 9; digit >= 0; digit--) {
      const child = children[node * 10 + digit];
      if (child === 0) continue;
      nodes[top] = child;
      prefixes[top++] = prefix + String(digit);
    }
  }
  return rulesByDeck.flatMap((rules) => rules.sort((a, b) => a.prefix.length - b.prefix.length || (a.prefix < b.prefix ? -1 : 1)));
}
