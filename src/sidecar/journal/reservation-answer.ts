import { formatMicro, parseMicro } from '../../core/money/micro.js';

/** Which answer an admission gave (and a repeated Call-ID gets again): call/admit's or call-admit/check's. */
export type AnswerKind = 'admit' | 'check';

/**
 * What an admission answered, rendered from the reservation's figures: the
 * node keeps those figures (not the text) for every live and recently
 * finished call, and a repeated Call-ID gets the same bytes again.
 * `call/admit` answers the schema's CallAdmitResult plus
 * `max_duration_seconds`; `call-admit/check` its own shape.
 */
export function renderAnswer(kind: AnswerKind, headroomMicro: number, maxDurationSeconds: number | null): string {
  return answerWithHeadroom(kind, formatMicro(headroomMicro), maxDurationSeconds);
}

/** renderAnswer with the headroom already written by formatMicro (the journal keeps that text: held-reservation.ts). */
export function answerWithHeadroom(kind: AnswerKind, headroom: string, maxDurationSeconds: number | null): string {
  // A template, not JSON.stringify of an object (every admitted call pays for this): formatMicro writes only
  // digits, '-' and '.', which need no quoting, and a duration is an integer or null. test/unit/encode.test.ts
  // pins the bytes to JSON.stringify's.
  return kind === 'admit'
    ? `{"allowed":true,"headroom":"${headroom}","reject_code":null,"reject_reason":null,"max_duration_seconds":${maxDurationSeconds === null ? 'null' : maxDurationSeconds}}`
    : `{"allowed":true,"headroom":"${headroom}","message":"call admitted"}`;
}

/** The figures back from an answer the journal stored (start-up). */
export function parseStoredAnswer(text: string): { kind: AnswerKind; headroomMicro: number } {
  const answer = JSON.parse(text) as { headroom?: unknown; message?: unknown };
  const headroomMicro = typeof answer.headroom === 'string' ? parseMicro(answer.headroom) : NaN;
  if (Number.isNaN(headroomMicro)) throw new Error(`stored admission answer without a headroom: ${text.slice(0, 200)}`);
  return { kind: 'message' in answer ? 'check' : 'admit', headroomMicro };
}
