import { RequestError } from '../../src/core/http/errors.js';
import type { ConfigStore, Row } from '../store/config-store.js';

/**
 * Editing a rate (PUT /api/rate-decks/{id}/rates/{rate_id}) without repricing calls already made. The
 * contract: an update "does not retroactively change CDRs that have already been generated. The new rate
 * applies to future calls only." A CDR can arrive long after its call (OpenSIPS's spool, a node that was
 * cut off), and the sidecar rates it at the row in force when the call started; so a rate already in
 * force keeps its old terms as a history row, in force until the edit, and takes the new ones from the
 * edit on (or from the body's effective_at, if that is later). The snapshot carries both rows.
 */

/** What decides a call's price: changing one of these on a rate in force makes a new version. */
const PRICE_TERMS = ['rate_per_minute', 'rate_type', 'billing_increment_initial', 'billing_increment_step', 'effective_at'] as const;

/** Columns only the store uses: the API shows a rate as the contract does. */
/** (rate_deck_update_id: the rate-deck update that brought the rate, sync/rate-deck-updates/.) */
export const RATE_HISTORY_COLUMNS = ['superseded_by', 'superseded_at', 'rate_deck_update_id'] as const;

export async function reviseRate(store: ConfigStore, current: Row, changes: Row, now: Date = new Date()): Promise<Row> {
  const id = current.id as number;
  const nowMs = now.getTime();
  // Strictly before now: a rate that took effect this millisecond has rated no call yet.
  const inForce = Date.parse(current.effective_at as string) < nowMs;
  if (!inForce) return (await store.update('rate_deck_rates', id, changes))!;
  if (changes.prefix !== undefined && changes.prefix !== current.prefix)
    throw new RequestError(
      'invalid_field',
      `prefix cannot change on rate ${id}: it is in force, and calls to ${current.prefix as string} were rated by it; add a rate for ${changes.prefix as string} instead`,
    );
  const repriced = PRICE_TERMS.some((name) => changes[name] !== undefined && changes[name] !== current[name]);
  // A new destination name prices nothing: edited in place.
  if (!repriced) return (await store.update('rate_deck_rates', id, changes))!;

  // Editing a rate a newer one has replaced would change only calls already made.
  const { rows } = await store.list('rate_deck_rates', {
    where: { rate_deck_id: current.rate_deck_id as number, prefix: current.prefix as string },
    limit: null,
    offset: 0,
  });
  const startedMs = Date.parse(current.effective_at as string);
  const newer = rows.find((row) => {
    const effectiveMs = Date.parse(row.effective_at as string);
    return row.id !== id && effectiveMs > startedMs && effectiveMs <= nowMs;
  });
  if (newer !== undefined) {
    const replacement = (newer.superseded_by as number | null) ?? (newer.id as number);
    throw new RequestError(
      'invalid_field',
      `rate ${id} is no longer in force: rate ${replacement} replaced it from ${String(newer.effective_at)}; edit that one`,
    );
  }
  // The new terms apply to calls that start after the edit, or from a later effective_at the body names;
  // an earlier one (a client resending the rate's own effective_at) cannot reach back to calls already made.
  const requested = changes.effective_at as string | undefined;
  const effectiveAt = requested !== undefined && Date.parse(requested) > nowMs ? requested : now.toISOString();
  return (await store.reviseRate(id, { ...changes, effective_at: effectiveAt }))!;
}
