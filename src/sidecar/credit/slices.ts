import type { Logger } from 'pino';
import { MiError, miCall, type MiAddress } from '../../core/mi/client.js';
import type { SidecarMetrics } from '../metrics/metrics.js';
import type { NodeCredit, SliceAction } from './node-credit.js';
import type { SliceTerms } from './reservation-table.js';

/**
 * Prepaid in slices, as Diameter credit control and CGRateS sessions grant usage: admission reserves what
 * the first few minutes cost (the slice), not the longest call the balance allows, so one account's
 * balance is not tied up for hours by each call it makes. While the call lasts the node buys the next
 * slice from its lease ahead of time (NodeCredit.renewSlice); when the next one cannot be paid, the call
 * is ended through the node's OpenSIPS MI (`dlg_end_dlg`, with the dialog id, $DLG_did, the script
 * sent at admission) before its paid time runs out. OpenSIPS then sends BYE both ways and runs the
 * script's hangup route, which sends the CDR. Paid time counts from the admission, so ringing uses some
 * of it and the answered call can never outlast what is reserved: no overspend.
 *
 * Each slice also asks OpenSIPS whether the call's dialog still exists (`dlg_list`): a call whose CDR
 * never reached the node gives its reservation back within a slice, not hours later.
 *
 * Slices need the MI: without one (or without a dialog id) admission reserves the whole call as before.
 */
export const DEFAULT_SLICE_SECONDS = 300;
/** A call short of its next slice asks the centre again this often until its paid time is nearly up. */
export const SLICE_RETRY_MS = 1000;
const MI_TIMEOUT_MS = 1000;
const END_RETRY_MS = 250;
/** A call that cannot be ended is tried again more and more slowly, down to this often: it may take until its cap. */
const END_RETRY_MAX_MS = 5000;

/** How long before its paid time runs out a sliced call buys its next slice: early enough for a round with the centre when the lease is short. */
export function renewLeadMs(sliceSeconds: number): number {
  return Math.min(30_000, (sliceSeconds * 1000) / 2);
}

/** When a sliced call buys its next slice. */
export function renewAt(terms: Pick<SliceTerms, 'paidUntil'>, sliceSeconds: number): number {
  return terms.paidUntil - renewLeadMs(sliceSeconds);
}

/**
 * How long before its paid time a call that could not buy its next slice is ended, unless the node is given
 * --slice-end-margin-ms: the upkeep tick, the MI round trip and the BYEs (the CDR's end is when OpenSIPS has
 * them answered; a party that does not answer holds it for tm's fr_timeout, 5 s in the shipped script), and
 * the whole-second timestamps of the CDR. 6 s, a quarter of a slice for short ones.
 */
export function defaultEndMarginMs(sliceSeconds: number): number {
  return Math.min(6_000, (sliceSeconds * 1000) / 4);
}

/** When a call that could not buy its next slice is ended: `marginMs` ahead of its paid time. */
export function endAt(terms: Pick<SliceTerms, 'paidUntil'>, marginMs: number): number {
  return terms.paidUntil - marginMs;
}

/**
 * OpenSIPS 3.6 answers a dialog it does not have with MI error 404 ("No such dialog" from dlg_list,
 * "Requested Dialog not found" from dlg_end_dlg; modules/dialog/dlg_hash.c, dlg_req_within.c).
 */
function notFound(error: unknown): boolean {
  return error instanceof MiError && error.code === 'RPC' && /^MI error 404\b/.test(error.message);
}

/** dlg_list with a callid answers {"Dialog": {..., "state": n}}; state 5 is a deleted dialog. */
function ended(result: unknown): boolean {
  const dialog = result !== null && typeof result === 'object' ? (result as { Dialog?: { state?: unknown } }).Dialog : undefined;
  return dialog === undefined || dialog.state === 5;
}

/** Talks to the node's OpenSIPS for NodeCredit's sliced calls: ends those out of credit, finds those already gone. */
export class SliceKeeper {
  /** A probe of the MI is under way. */
  private probing = false;

  constructor(
    private readonly credit: NodeCredit,
    private readonly mi: MiAddress,
    private readonly metrics: SidecarMetrics,
    private readonly log: Logger,
  ) {}

  /**
   * Asks the MI for anything (`uptime`): any JSON-RPC answer, an error included, says it answers. While it does
   * not, admission reserves whole calls (NodeCredit.slicesEnforceable): a sliced call is capped only at what the
   * whole balance affords, so calls admitted in slices that could not be ended would each run up to that, and
   * together past the balance. The upkeep calls this every few seconds.
   */
  probe(): void {
    if (this.probing) return;
    this.probing = true;
    miCall(this.mi, 'uptime', null, MI_TIMEOUT_MS)
      .then(
        () => this.answered(true, null),
        (error: unknown) => this.answered(error instanceof MiError && error.code === 'RPC', error),
      )
      .finally(() => (this.probing = false));
  }

  private answered(answers: boolean, error: unknown): void {
    if (answers === this.credit.slicesEnforceable) return;
    this.credit.slicesEnforceable = answers;
    if (answers) this.log.info('OpenSIPS MI answers again: prepaid calls are reserved in slices again');
    else
      this.log.warn({ err: error }, 'OpenSIPS MI does not answer: prepaid calls are reserved whole until it does (no call could be ended)');
  }

  act(actions: SliceAction[]): void {
    for (const action of actions) void (action.kind === 'end' ? this.end(action) : this.check(action));
  }

  /** The id of the dialog OpenSIPS has for this Call-ID; null: none; undefined: it could not be asked. */
  private async listedDialogId(callId: string): Promise<string | null | undefined> {
    try {
      const result = await miCall(this.mi, 'dlg_list', { callid: callId }, MI_TIMEOUT_MS);
      if (ended(result)) return null;
      const id = (result as { Dialog: { ID?: unknown } }).Dialog.ID;
      return typeof id === 'string' ? id : undefined;
    } catch (error) {
      return notFound(error) ? null : undefined;
    }
  }

  private async check(action: SliceAction): Promise<void> {
    let gone: boolean;
    try {
      gone = ended(await miCall(this.mi, 'dlg_list', { callid: action.callId }, MI_TIMEOUT_MS));
    } catch (error) {
      gone = notFound(error);
      // Unreachable MI: the call keeps its slices (they are paid for); it ends with its CDR or its credit.
      if (!gone) this.log.warn({ err: error, call_id: action.callId }, 'could not ask OpenSIPS for a sliced call');
    }
    if (gone && this.credit.dialogGone(action.slot, action.id, Date.now())) {
      this.metrics.sliceEvents.inc({ event: 'gone' });
      this.log.info({ call_id: action.callId }, 'sliced call no longer in OpenSIPS and no CDR came: reservation ended');
    }
  }

  /**
   * Ends the call, retrying a failed MI call (a busy OpenSIPS, a timeout, an MI down) until its reservation
   * lapses, which for a call being ended is when its dialog's cap has surely ended it. Past its paid time the
   * call runs unpaid, so it is not given up then: each retry that lands cuts the overrun its CDR will be charged
   * (a first failure that once ended the tries left calls running until they hung up; giving up a grace period
   * past the paid time left them running until their cap, hours on a large balance, whatever the MI did after).
   * Once the call is ended (or found gone), its reservation waits a grace period for the CDR, no longer.
   */
  private async end(action: SliceAction): Promise<void> {
    const fields = { call_id: action.callId, dialog_id: action.dialogId, paid_until: new Date(action.paidUntil).toISOString() };
    let overdue = false;
    let dialogId = action.dialogId;
    let retryMs = END_RETRY_MS;
    for (;;) {
      // A call whose CDR (or release) came while the end was being retried has ended: not tried again. Its Call-ID
      // may be a new call's by then (a UA or carrier reusing them), which the lookup below would have ended.
      if (!this.credit.holds(action.slot, action.id)) {
        this.log.info(fields, 'sliced call to end holds no reservation any more (its CDR or release came): not ended');
        return;
      }
      try {
        await miCall(this.mi, 'dlg_end_dlg', { dialog_id: dialogId }, MI_TIMEOUT_MS);
        this.credit.endedOverMi(action.slot, action.id, Date.now());
        this.metrics.sliceEvents.inc({ event: 'ended' });
        this.log.info({ ...fields, ended_dialog_id: dialogId, late: overdue }, 'call ended over MI: its next slice could not be paid');
        return;
      } catch (error) {
        if (notFound(error)) {
          // OpenSIPS has no dialog by that id: the call ended on its own meanwhile, or its dialog is under
          // another id (one taken over from a replication peer is given a new one): taken as ended, that call
          // ran on unpaid until its cap. Its Call-ID says which: ended under the id OpenSIPS lists for it.
          const listed = await this.listedDialogId(action.callId);
          if (listed === null) {
            this.credit.endedOverMi(action.slot, action.id, Date.now());
            return;
          }
          if (listed !== undefined && listed !== dialogId) {
            this.log.warn(
              { ...fields, listed_dialog_id: listed },
              'sliced call to end is under another dialog id in OpenSIPS: ending that one',
            );
            dialogId = listed;
            continue;
          }
        }
        const now = Date.now();
        if (now + retryMs >= action.expiresAt) {
          this.metrics.sliceEvents.inc({ event: 'end_failed' });
          this.log.error({ ...fields, err: error }, 'could not end a call whose credit ran out: its CDR is charged all the same');
          return;
        }
        if (!overdue && now >= action.paidUntil) {
          overdue = true;
          this.log.warn({ ...fields, err: error }, 'a call past its paid time could not be ended yet: still trying');
        }
        await new Promise((resolve) => setTimeout(resolve, retryMs));
        retryMs = Math.min(END_RETRY_MAX_MS, 2 * retryMs);
      }
    }
  }
}
