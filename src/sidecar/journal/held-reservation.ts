import { embeddedJson } from '../../core/json/embedded.js';
import { COMMA, QUOTE, type JsonBytes } from '../../core/json/json-bytes.js';
import type { EntityType } from '../../core/protocol/node-sync.js';
import { answerWithHeadroom, type AnswerKind } from './reservation-answer.js';

/**
 * A reservation as the node journals it since 2026-12-07: its figures, without the admission's answer text.
 * The answer is made of three of them (renderAnswer: the kind, the headroom, the maximum duration), so
 * money.db's answer column is written from them on the applier's thread (answerOf) instead of the event
 * loop copying the text into every record: the `reserve` op it replaces embedded it, and was the longest
 * part of every admission's record. Logs written before still hold `reserve` ops, read and applied as ever.
 */
export interface HeldReservation {
  op: 'held';
  id: number;
  callId: string;
  entityType: EntityType;
  entityId: number;
  amountMicro: number;
  maxDuration: number | null;
  /** Epoch ms. */
  createdAt: number;
  /** Epoch ms (in the record: the milliseconds after createdAt, a small integer, which is quicker to write). */
  expiresAt: number;
  /** Which answer the call got: call/admit's or call-admit/check's. */
  answerKind: AnswerKind;
  /** The headroom the answer gave, as it wrote it (formatMicro's text: the answer is made of it, and writing the number would cost the event loop a double's conversion). */
  headroom: string;
  /** A sliced call's SliceTerms as JSON; null: the whole call is reserved. */
  slice: string | null;
  /** The customer trunk whose port the call holds; null: none. */
  trunkId: number | null;
}

/** The answer the admission gave, as money.db keeps it (a repeated Call-ID after a restart gets it again). */
export function answerOf(held: HeldReservation): string {
  return answerWithHeadroom(held.answerKind, held.headroom, held.maxDuration);
}

/**
 * The op in a log record: the figures as one JSON array, in the order below (`v`), the expiry as milliseconds
 * after createdAt. The headroom is formatMicro's text, quoted like the Call-ID (no escaping needed for its
 * digits, sign and point, but nothing is trusted to be so here). The slice terms are JSON.stringify's text of
 * an object, so they go in as the value they are (decodeHeldOp gives the text back). The entity type and the
 * answer kind are closed sets, written as they are. The order is the format: a change to it is a new op name,
 * and this one stays readable. Written straight into the record's bytes (JsonBytes): one is written for every
 * admission.
 */
export function writeHeldOp(out: JsonBytes, held: HeldReservation): void {
  out.raw('{"op":"held","v":[');
  out.number(held.id);
  out.char(COMMA);
  out.string(held.callId);
  out.char(COMMA);
  out.char(QUOTE);
  out.raw(held.entityType);
  out.char(QUOTE);
  out.char(COMMA);
  out.number(held.entityId);
  out.char(COMMA);
  out.number(held.amountMicro);
  out.char(COMMA);
  out.numberOrNull(held.maxDuration);
  out.char(COMMA);
  out.number(held.createdAt);
  out.char(COMMA);
  out.number(held.expiresAt - held.createdAt);
  out.char(COMMA);
  out.char(QUOTE);
  out.raw(held.answerKind);
  out.char(QUOTE);
  out.char(COMMA);
  out.string(held.headroom);
  out.char(COMMA);
  out.raw(held.slice === null ? 'null' : embeddedJson(held.slice));
  out.char(COMMA);
  out.numberOrNull(held.trunkId);
  out.raw(']}');
}

/** writeHeldOp's array back to the reservation it was written from. */
export function decodeHeldOp(v: unknown[]): HeldReservation {
  const slice = v[10];
  return {
    op: 'held',
    id: v[0] as number,
    callId: v[1] as string,
    entityType: v[2] as EntityType,
    entityId: v[3] as number,
    amountMicro: v[4] as number,
    maxDuration: v[5] as number | null,
    createdAt: v[6] as number,
    expiresAt: (v[6] as number) + (v[7] as number),
    answerKind: v[8] as AnswerKind,
    headroom: v[9] as string,
    slice: slice === null || typeof slice === 'string' ? slice : JSON.stringify(slice),
    trunkId: v[11] as number | null,
  };
}
