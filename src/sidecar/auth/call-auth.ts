import { findCustomerBlock, type BlockHit } from '../../core/blocking/block-rules.js';
import { refusalFields, type RefusalCode } from '../../core/errors/catalogue.js';
import type { DecisionEngine } from '../engine/engine.js';
import { blockingNumbers, isRoutableDnis, normalizeAni, normalizeNumber } from '../../core/numbers/normalize.js';
import { registrationKey, type BlockRuleIndex, type CustomerTrunk } from '../../core/snapshot/model.js';
import type { KnownDnisNode, KnownSellDeck } from '../../core/lcr/lcr.js';
import { lookupCidr } from '../../core/net/cidr-index.js';
import type { LivePorts } from '../limits/live-ports.js';
import { callAccess } from '../retail/access-numbers.js';

/** POST /api/opensips/call/auth, validated. */
export interface CallAuthRequest {
  source_ip: string;
  call_id: string | null;
  ani: string | null;
  dnis: string | null;
  ruri: string | null;
  pai: string | null;
  ppi: string | null;
  rpid: string | null;
  username: string | null;
  domain: string | null;
}

/**
 * `dnisNode`/`dnisRates` (KnownDnisNode) and `sellDeck`/`sellDeckRates` (KnownSellDeck) are not answered (the
 * encoders leave them out): a retail call's translated number's rate-trie node and its product's sell deck,
 * which call/decide hands to admission and route. `sellDeckId` is never set here: the answer's
 * `customer_rate_deck_id` is that id.
 */
export interface CallAuthAllowed extends KnownDnisNode, Omit<KnownSellDeck, 'sellDeckId'> {
  allowed: true;
  trunk_type: 'customer';
  customer_trunk_id: number;
  ani: string;
  dnis: string;
  cps_limit: number;
  port_limit: number;
  per_minute_rate_limit: number;
  sip_trusted: boolean;
  rtpengine_enabled: boolean;
  /**
   * A call to a partner product's access number with a live setup_call translation: the retail account
   * billed for it. `customer_trunk_id` is then the product's trunk and `dnis` the translated number.
   */
  retail_account_id?: number;
  /**
   * That call's sell deck, when its product names one (else the trunk's assigned deck): the script passes it on
   * to call/route, call/reroute and the CDR (and call/admit, with the separate endpoints), which price, route
   * and rate the call with it.
   */
  customer_rate_deck_id?: number;
}

export interface CallAuthRejected {
  allowed: false;
  reject_code: number;
  reject_reason: string;
  reason_code: RefusalCode;
  /** Present once the trunk is known (blocked, unusable number, ports full), for the CDR of the refused call. */
  trunk_type?: 'customer';
  customer_trunk_id?: number;
}

export type CallAuthDecision = CallAuthAllowed | CallAuthRejected;
export type CallAuthOutcome = 'allowed' | 'not_authorised' | 'invalid_dnis' | 'blocked' | 'port_limit' | 'no_call_translation';

export interface CallIdentity {
  trunk: number;
  /** DNIS digits with the trunk's tech prefix removed. */
  dnis: string;
}

/**
 * Finds the calling trunk. The most specific CIDR holding the source address
 * decides; trunks sharing it are told apart by tech prefix (the longest prefix
 * the dialled digits start with, else the trunk without one). A less specific
 * CIDR is consulted only when no trunk of a more specific one fits. Without an
 * IP match, a REGISTER-authenticated trunk is identified by username/domain.
 */
export function identifyCaller(
  engine: DecisionEngine,
  sourceIp: string,
  dialled: string,
  username: string | null,
  domain: string | null,
): CallIdentity | null {
  const { snapshot, cidrMatches } = engine;
  const networks = lookupCidr(snapshot.ipAuth, sourceIp, cidrMatches);
  for (let network = 0; network < networks; network++) {
    let chosen = -1;
    let chosenPrefix = -1;
    const end = cidrMatches.groupEnds[network];
    for (let i = network === 0 ? 0 : cidrMatches.groupEnds[network - 1]; i < end; i++) {
      const trunk = cidrMatches.values[i];
      const prefix = snapshot.customerTrunks[trunk].techPrefix;
      // Equal prefixes on one network are a configuration conflict: the lower trunk id (index) wins, always.
      if ((prefix.length > chosenPrefix || (prefix.length === chosenPrefix && trunk < chosen)) && dialled.startsWith(prefix)) {
        chosen = trunk;
        chosenPrefix = prefix.length;
      }
    }
    if (chosen >= 0) return { trunk: chosen, dnis: dialled.slice(chosenPrefix) };
  }
  if (username !== null && username !== '') {
    const registration = findRegistration(engine, username, domain);
    if (registration !== null) {
      const trunk = snapshot.customerTrunks[registration];
      return { trunk: registration, dnis: dialled.startsWith(trunk.techPrefix) ? dialled.slice(trunk.techPrefix.length) : dialled };
    }
  }
  return null;
}

function findRegistration(engine: DecisionEngine, username: string, domain: string | null): number | null {
  const { registrations } = engine.snapshot;
  if (domain !== null && domain !== '') return registrations.get(registrationKey(username, domain))?.customerTrunk ?? null;
  return null;
}

/** The caller's number: a trusted trunk's asserted identity (PAI, then PPI, then RPID) wins over From. */
export function callerNumber(trunk: CustomerTrunk, request: Pick<CallAuthRequest, 'ani' | 'pai' | 'ppi' | 'rpid'>): string {
  if (trunk.sipTrusted) {
    for (const header of [request.pai, request.ppi, request.rpid]) {
      const asserted = normalizeAni(header);
      if (asserted !== '') return asserted;
    }
  }
  return normalizeAni(request.ani);
}

/**
 * The block rule a call to `dnis` on trunk `index` meets, if any. Its caller is held to the rules by its number,
 * or when that is '' (withheld, or not a usable number) by every reading of the digits From still has
 * (blockingNumbers). Otherwise a blocked caller got through by making the number unusable ("61881234567890123",
 * "6188123x", "x6188123", "%2B6188123"), and it reached the carrier so.
 */
export function callerBlock(
  rules: BlockRuleIndex,
  index: number,
  ani: string,
  request: Pick<CallAuthRequest, 'ani'>,
  dnis: string,
): BlockHit | null {
  if (ani !== '') return findCustomerBlock(rules, index, ani, dnis);
  const numbers = blockingNumbers(request.ani);
  if (numbers.length === 0) return findCustomerBlock(rules, index, '', dnis);
  for (const number of numbers) {
    const block = findCustomerBlock(rules, index, number, dnis);
    if (block !== null) return block;
  }
  return null;
}

/**
 * `ports`: the node's live calls per trunk. A trunk with all its ports taken is refused here (503, so the
 * customer can try elsewhere) after the block rules, which refuse for good; admission checks again where
 * the port is taken (credit/node-credit.ts).
 */
export function authorizeCall(
  engine: DecisionEngine,
  request: CallAuthRequest,
  ports: LivePorts,
  /** When a translation's expiry is judged (the request's time; callers pass theirs). */
  now: number = Date.now(),
): { decision: CallAuthDecision; outcome: CallAuthOutcome } {
  const dialled = normalizeNumber(request.dnis ?? request.ruri ?? '');
  if (dialled === null) return unusableDialled(engine, request);
  const identity = identifyCaller(engine, request.source_ip, dialled, request.username, request.domain);
  if (identity === null) {
    return { decision: { allowed: false, ...refusalFields('source_ip_not_authorised') }, outcome: 'not_authorised' };
  }
  const trunk = engine.snapshot.customerTrunks[identity.trunk];
  if (!isRoutableDnis(identity.dnis)) {
    return {
      decision: { allowed: false, ...refusalFields('invalid_dnis'), trunk_type: 'customer', customer_trunk_id: trunk.id },
      outcome: 'invalid_dnis',
    };
  }
  const ani = callerNumber(trunk, request);
  // A partner product's access number: the call goes where the caller's live translation says, as a call of
  // the product's trunk billed to the retail account; without one (unknown caller, expired, account closed) it
  // goes nowhere.
  // Read before the next call's lookup (callAccess): nothing here waits.
  const access = callAccess(engine.snapshot.retail, ani, identity.dnis, now);
  if (access.kind === 'no_translation')
    return {
      decision: { allowed: false, ...refusalFields('no_call_translation'), trunk_type: 'customer', customer_trunk_id: trunk.id },
      outcome: 'no_call_translation',
    };
  if (access.kind === 'translated') {
    const productTrunk = engine.customerTrunkIndex(access.product.customerTrunkId ?? 0);
    if (productTrunk < 0 || !engine.snapshot.customerTrunks[productTrunk].active)
      return { decision: { allowed: false, ...refusalFields('customer_trunk_not_active') }, outcome: 'not_authorised' };
    const { translation, product } = access;
    const refused = refusalOn(engine, productTrunk, ani, request, translation.bNumber, ports);
    if (refused !== null) return refused;
    const retailTrunk = engine.snapshot.customerTrunks[productTrunk];
    const rates = engine.snapshot.rates;
    // Made whole in one literal, every retail call in one shape: its six retail fields added one by one to the
    // ordinary answer cost transitions and an out-of-object property store on every call (retail-pair,
    // 2026-12-08). The node and deck are what the translation and product were compiled to: nothing looked up
    // per call. A node of -1 (not known) and a product without a deck read as absent (knownNode, sellDeckOf).
    const decision: CallAuthAllowed = {
      allowed: true,
      trunk_type: 'customer',
      customer_trunk_id: retailTrunk.id,
      ani,
      dnis: translation.bNumber,
      cps_limit: retailTrunk.cpsLimit,
      port_limit: retailTrunk.portLimit,
      per_minute_rate_limit: retailTrunk.perMinuteRateLimit,
      sip_trusted: retailTrunk.sipTrusted,
      rtpengine_enabled: retailTrunk.rtpengineEnabled,
      retail_account_id: translation.retailAccountId,
      dnisNode: translation.bNumberNode,
      dnisRates: rates,
      customer_rate_deck_id: product.rateDeckId ?? undefined,
      sellDeck: product.sellDeck ?? undefined,
      sellDeckRates: rates,
    };
    return { decision, outcome: 'allowed' };
  }
  return (
    refusalOn(engine, identity.trunk, ani, request, identity.dnis, ports) ?? {
      decision: {
        allowed: true,
        trunk_type: 'customer',
        customer_trunk_id: trunk.id,
        ani,
        dnis: identity.dnis,
        cps_limit: trunk.cpsLimit,
        port_limit: trunk.portLimit,
        per_minute_rate_limit: trunk.perMinuteRateLimit,
        sip_trusted: trunk.sipTrusted,
        rtpengine_enabled: trunk.rtpengineEnabled,
      },
      outcome: 'allowed',
    }
  );
}

/**
 * A dialled "number" that is not one (junk DNIS, or none): 484 whoever calls, but no tech prefix can be read from
 * it, so the trunk is named (for the refused call's CDR) only when the source address alone tells it: every
 * network holding it is that one trunk's. Read as digits, the junk would fall through the tech-prefix trunks of a
 * network to a less specific network's trunk without one, and the refusal named a trunk the call may not be
 * of. An address no trunk claims is looked up by registration, as identifyCaller does; neither: not authorised.
 */
function unusableDialled(engine: DecisionEngine, request: CallAuthRequest): { decision: CallAuthDecision; outcome: CallAuthOutcome } {
  const trunk = trunkOfAddress(engine, request.source_ip, request.username, request.domain);
  if (trunk === NOT_CLAIMED)
    return { decision: { allowed: false, ...refusalFields('source_ip_not_authorised') }, outcome: 'not_authorised' };
  const decision: CallAuthRejected = { allowed: false, ...refusalFields('invalid_dnis') };
  if (trunk !== SEVERAL_TRUNKS) {
    decision.trunk_type = 'customer';
    decision.customer_trunk_id = engine.snapshot.customerTrunks[trunk].id;
  }
  return { decision, outcome: 'invalid_dnis' };
}

const NOT_CLAIMED = -1;
const SEVERAL_TRUNKS = -2;

/** The trunk index the source address (or registration) alone names, NOT_CLAIMED, or SEVERAL_TRUNKS. */
function trunkOfAddress(engine: DecisionEngine, sourceIp: string, username: string | null, domain: string | null): number {
  const { cidrMatches } = engine;
  const networks = lookupCidr(engine.snapshot.ipAuth, sourceIp, cidrMatches);
  const trunks = networks > 0 ? cidrMatches.groupEnds[networks - 1] : 0;
  if (trunks > 0) {
    const only = cidrMatches.values[0];
    for (let i = 1; i < trunks; i++) if (cidrMatches.values[i] !== only) return SEVERAL_TRUNKS;
    return only;
  }
  if (username === null || username === '') return NOT_CLAIMED;
  return findRegistration(engine, username, domain) ?? NOT_CLAIMED;
}

/**
 * Why the call may not go on as trunk `index`'s, to `dnis`: a block rule or the trunk's ports; null: it may.
 * `request`: the caller's number as sent, which block rules read when `ani` is '' (callerBlock).
 */
function refusalOn(
  engine: DecisionEngine,
  index: number,
  ani: string,
  request: Pick<CallAuthRequest, 'ani'>,
  dnis: string,
  ports: LivePorts,
): { decision: CallAuthRejected; outcome: CallAuthOutcome } | null {
  const trunk = engine.snapshot.customerTrunks[index];
  const block = callerBlock(engine.snapshot.blockRules, index, ani, request, dnis);
  if (block !== null) {
    return {
      decision: {
        allowed: false,
        ...refusalFields(block.number === 'ani' ? 'ani_blocked' : 'dnis_blocked', block.sipCode),
        trunk_type: 'customer',
        customer_trunk_id: trunk.id,
      },
      outcome: 'blocked',
    };
  }
  if (ports.full(trunk.id, trunk.portLimit)) {
    return {
      decision: { allowed: false, ...refusalFields('port_limit_reached'), trunk_type: 'customer', customer_trunk_id: trunk.id },
      outcome: 'port_limit',
    };
  }
  return null;
}
