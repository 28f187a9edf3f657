import { jsonNumber as num, jsonNumberOrNull as numOrNull } from '../../core/json/number.js';
import { COMMA, QUOTE, type JsonBytes } from '../../core/json/json-bytes.js';
import { quoteJson } from '../../core/json/quote.js';
import { formatMicro } from '../../core/money/micro.js';
import type { Currency, DecimalPrecision, RoundingDirection } from '../../core/snapshot/schema.js';
import { isoInstant as iso } from '../../core/time/iso-instant.js';

/**
 * A rated CDR as the node keeps it: one object per CDR, its figures as numbers and the rated sides as rating
 * made them. It is the money journal's op (appended as a short JSON array, not with its texts embedded: their
 * CRC, UTF-8 write and flattening were a tenth of a CDR's event loop), the committing CDR, and the duplicate
 * check's entry until money.db has it. The texts made of it — the settlement the centre receives, the answer,
 * the fingerprint a resend is compared by — are written where they are needed: the settlement at ingest for
 * the outbox, the answer once for the request, all three when money.db's row is read (a resend, a restart's
 * outbox); money.db keeps the figures (its `rated` column: this op's bytes).
 */
export interface RatedSide {
  rateDeckId: number | null;
  billableSeconds: number;
  cost: string;
  currency: Currency;
  precision: DecimalPrecision;
  rounding: RoundingDirection;
}

export interface RatedCdr {
  op: 'rated';
  /** The node's CDR id (node_cdr_id), handed out in order. */
  id: number;
  sipCallId: string;
  customerTrunkId: number;
  /** The customer trunk's account (customer_account_id, money.db's account_id). */
  accountId: number;
  carrierTrunkId: number;
  carrierGatewayId: number;
  ani: string;
  dnis: string;
  /** Epoch ms. */
  startMs: number;
  answerMs: number | null;
  endMs: number;
  durationSeconds: number;
  sipResponseCode: number | null;
  customer: RatedSide;
  vendor: RatedSide;
  /** The customer cost in the billed account's currency: what it is debited. */
  accountCharge: string;
  accountCurrency: Currency;
  chargeMicro: number;
  /** When the node took it, epoch ms. */
  createdAt: number;
  /** What the call's reservation held (null: it held none). */
  reservedMicro: number | null;
  /** Of the charge, what no reservation covered (0 for accounts not held to a limit). */
  uncoveredMicro: number;
  /** The partner retail account billed (a call through an access number); null: a wholesale call. */
  retailAccountId: number | null;
  /** The retail account the request named (part of its fingerprint); null: none. */
  namedRetailAccountId: number | null;
  /** The sell deck the request named (`customer_rate_deck_id`, part of its fingerprint); null: none (the trunk's). */
  namedRateDeckId: number | null;
}

/**
 * The figures that make a CDR what it is: a resend carries the same ones. The bytes are JSON.stringify's of
 * the array (fingerprints journalled before are compared with these): numbers are whole and finite (the
 * request parser's), so only the two strings need JSON's quoting.
 */
export function fingerprintText(
  customerTrunkId: number,
  carrierTrunkId: number,
  carrierGatewayId: number,
  ani: string,
  dnis: string,
  startMs: number,
  answerMs: number | null,
  endMs: number,
  durationSeconds: number,
  sipResponseCode: number | null,
  namedRetailAccountId: number | null | undefined,
  namedRateDeckId: number | null | undefined,
): string {
  const retail = namedRetailAccountId ?? null;
  const deck = namedRateDeckId ?? null;
  return (
    `[${customerTrunkId},${carrierTrunkId},${carrierGatewayId},${quoteJson(ani)},${quoteJson(dnis)},` +
    `${startMs},${answerMs},${endMs},${durationSeconds},${sipResponseCode}` +
    // Each only when named (the deck after the account, null when only the deck is), so a CDR naming neither has
    // the fingerprint it had before the fields existed, and one naming the account only, before the deck (journals keep them).
    (deck !== null ? `,${retail},${deck}]` : retail !== null ? `,${retail}]` : ']')
  );
}

export function fingerprintOf(cdr: RatedCdr): string {
  return fingerprintText(
    cdr.customerTrunkId,
    cdr.carrierTrunkId,
    cdr.carrierGatewayId,
    cdr.ani,
    cdr.dnis,
    cdr.startMs,
    cdr.answerMs,
    cdr.endMs,
    cdr.durationSeconds,
    cdr.sipResponseCode,
    cdr.namedRetailAccountId,
    cdr.namedRateDeckId,
  );
}

/**
 * cdrs/ingest's 201 body, in the contract's field order. Every string here is this process's own, from
 * closed alphabets (amounts from the money formatters: digits, a sign, a point; currencies from the schema's
 * set), so they are quoted as they are; test/unit/encode.test.ts pins the bytes to JSON.stringify's.
 */
export function answerText(cdr: RatedCdr): string {
  const { customer, vendor, reservedMicro, uncoveredMicro } = cdr;
  return (
    `{"cdr_id":${cdr.id},"customer_cost":"${customer.cost}","customer_currency":"${customer.currency}",` +
    `"vendor_cost":"${vendor.cost}","vendor_currency":"${vendor.currency}",` +
    // false: billed, but beyond what was reserved for it (`uncovered`).
    `"reconciled":${uncoveredMicro === 0},` +
    // The charge less what was reserved: negative when part of the reservation went back.
    `"adjustment":${reservedMicro === null ? 'null' : `"${formatMicro(cdr.chargeMicro - reservedMicro, 4)}"`},` +
    `"uncovered":"${formatMicro(uncoveredMicro, 4)}"}`
  );
}

/**
 * The SettlementCdr (core/protocol/node-sync.ts) as the centre receives it, in the field order nodes have
 * always sent. Only the fields a request supplies (sip_call_id, ani, dnis) can hold a character JSON escapes:
 * the times are written by isoInstant, the amounts by the money formatters, currencies and rounding directions
 * are the schema's closed sets; those are quoted as they are. test/unit/encode.test.ts pins the bytes to
 * JSON.stringify's of the object.
 */
export function settlementText(cdr: RatedCdr): string {
  const c = cdr.customer;
  const v = cdr.vendor;
  return (
    `{"sip_call_id":${quoteJson(cdr.sipCallId)},"customer_trunk_id":${num(cdr.customerTrunkId)},"customer_account_id":${num(cdr.accountId)},` +
    `"carrier_trunk_id":${num(cdr.carrierTrunkId)},"carrier_gateway_id":${num(cdr.carrierGatewayId)},"ani":${quoteJson(cdr.ani)},"dnis":${quoteJson(cdr.dnis)},` +
    `"start_time":"${iso(cdr.startMs)}","answer_time":${cdr.answerMs === null ? 'null' : `"${iso(cdr.answerMs)}"`},"end_time":"${iso(cdr.endMs)}",` +
    `"duration_seconds":${num(cdr.durationSeconds)},"sip_response_code":${numOrNull(cdr.sipResponseCode)},` +
    `"billable_duration_customer":${num(c.billableSeconds)},"billable_duration_vendor":${num(v.billableSeconds)},` +
    `"customer_rate_deck_id":${numOrNull(c.rateDeckId)},"carrier_rate_deck_id":${numOrNull(v.rateDeckId)},` +
    `"customer_cost":"${c.cost}","customer_currency":"${c.currency}",` +
    `"customer_decimal_precision":${num(c.precision)},"customer_rounding_direction":"${c.rounding}",` +
    `"vendor_cost":"${v.cost}","vendor_currency":"${v.currency}",` +
    `"vendor_decimal_precision":${num(v.precision)},"vendor_rounding_direction":"${v.rounding}",` +
    `"account_charge":"${cdr.accountCharge}","account_currency":"${cdr.accountCurrency}","created_at":"${iso(cdr.createdAt)}",` +
    `"uncovered":"${formatMicro(cdr.uncoveredMicro)}","node_cdr_id":${num(cdr.id)}` +
    // Only on a call through an access number: every other settlement's bytes stay as they were.
    (cdr.retailAccountId === null ? '}' : `,"retail_account_id":${num(cdr.retailAccountId)}}`)
  );
}

/** A rated side's figures in the op's array: deck, billable seconds, cost, currency, precision, rounding. */
function writeSide(out: JsonBytes, s: RatedSide): void {
  out.numberOrNull(s.rateDeckId);
  out.char(COMMA);
  out.number(s.billableSeconds);
  out.char(COMMA);
  out.char(QUOTE);
  out.raw(s.cost);
  out.char(QUOTE);
  out.char(COMMA);
  out.char(QUOTE);
  out.raw(s.currency);
  out.char(QUOTE);
  out.char(COMMA);
  out.number(s.precision);
  out.char(COMMA);
  out.char(QUOTE);
  out.raw(s.rounding);
  out.char(QUOTE);
}

/**
 * The op in a log record: the figures as one JSON array, in the order below (`v`), a fifth of the settlement's
 * length. The order is the format: a change to it is a new op name, and this one stays readable; only a figure
 * appended at the end (namedRateDeckId, read as null from records without it) keeps the name. Written
 * straight into the record's bytes (JsonBytes), as a reservation's is: one for every CDR. The costs and the
 * account charge are the money formatters' text and the currencies and roundings the schema's closed sets,
 * written as they are, as the template before this did.
 */
export function writeRatedOp(out: JsonBytes, cdr: RatedCdr): void {
  out.raw('{"op":"rated","v":[');
  out.number(cdr.id);
  out.char(COMMA);
  out.string(cdr.sipCallId);
  out.char(COMMA);
  out.number(cdr.customerTrunkId);
  out.char(COMMA);
  out.number(cdr.accountId);
  out.char(COMMA);
  out.number(cdr.carrierTrunkId);
  out.char(COMMA);
  out.number(cdr.carrierGatewayId);
  out.char(COMMA);
  out.string(cdr.ani);
  out.char(COMMA);
  out.string(cdr.dnis);
  out.char(COMMA);
  out.number(cdr.startMs);
  out.char(COMMA);
  out.numberOrNull(cdr.answerMs);
  out.char(COMMA);
  out.number(cdr.endMs);
  out.char(COMMA);
  out.number(cdr.durationSeconds);
  out.char(COMMA);
  out.numberOrNull(cdr.sipResponseCode);
  out.char(COMMA);
  writeSide(out, cdr.customer);
  out.char(COMMA);
  writeSide(out, cdr.vendor);
  out.char(COMMA);
  out.char(QUOTE);
  out.raw(cdr.accountCharge);
  out.char(QUOTE);
  out.char(COMMA);
  out.char(QUOTE);
  out.raw(cdr.accountCurrency);
  out.char(QUOTE);
  out.char(COMMA);
  out.number(cdr.chargeMicro);
  out.char(COMMA);
  out.number(cdr.createdAt);
  out.char(COMMA);
  out.numberOrNull(cdr.reservedMicro);
  out.char(COMMA);
  out.number(cdr.uncoveredMicro);
  out.char(COMMA);
  out.numberOrNull(cdr.retailAccountId);
  out.char(COMMA);
  out.numberOrNull(cdr.namedRetailAccountId);
  out.char(COMMA);
  out.numberOrNull(cdr.namedRateDeckId);
  out.raw(']}');
}

function sideOf(v: unknown[], at: number): RatedSide {
  return {
    rateDeckId: v[at] as number | null,
    billableSeconds: v[at + 1] as number,
    cost: v[at + 2] as string,
    currency: v[at + 3] as Currency,
    precision: v[at + 4] as DecimalPrecision,
    rounding: v[at + 5] as RoundingDirection,
  };
}

/** writeRatedOp's array back to the CDR it was written from. */
export function decodeRatedOp(v: unknown[]): RatedCdr {
  return {
    op: 'rated',
    id: v[0] as number,
    sipCallId: v[1] as string,
    customerTrunkId: v[2] as number,
    accountId: v[3] as number,
    carrierTrunkId: v[4] as number,
    carrierGatewayId: v[5] as number,
    ani: v[6] as string,
    dnis: v[7] as string,
    startMs: v[8] as number,
    answerMs: v[9] as number | null,
    endMs: v[10] as number,
    durationSeconds: v[11] as number,
    sipResponseCode: v[12] as number | null,
    customer: sideOf(v, 13),
    vendor: sideOf(v, 19),
    accountCharge: v[25] as string,
    accountCurrency: v[26] as Currency,
    chargeMicro: v[27] as number,
    createdAt: v[28] as number,
    reservedMicro: v[29] as number | null,
    uncoveredMicro: v[30] as number,
    retailAccountId: v[31] as number | null,
    namedRetailAccountId: v[32] as number | null,
    // Records written before the field hold 33 figures.
    namedRateDeckId: (v[33] as number | null | undefined) ?? null,
  };
}

/** A CDR as money.db's \`rated\` column holds it (writeRatedOp's bytes) back to the CDR. */
export function decodeRatedBytes(bytes: Uint8Array): RatedCdr {
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
  return decodeRatedOp((JSON.parse(text) as { v: unknown[] }).v);
}
