import assert from 'node:assert/strict';
import { Decimal } from '../../src/core/money/decimal.js';
import type { FakeOpensipsMi } from '../../src/devkit/fake-opensips-mi.js';
import type { MoneyWorld } from './money-world.js';
import type { SidecarProcess } from './sidecar.js';

/**
 * Prepaid in slices with real processes: a control plane, nodes started with --opensips-mi pointing at the
 * MI test double (it speaks OpenSIPS 3.6's dlg_list and dlg_end_dlg) and 12-second slices. Calls come in
 * through call/decide with the dialog id the script sends; CDRs go in as OpenSIPS would send them when the
 * dialog ends. The mobile rate is 0.0250/min billed 6/6 with one 0.0001 of rounding slack: a slice of 12 s
 * is 12 billable seconds, 0.0051 reserved.
 *
 * A call that cannot buy its next slice is ended SLICE_END_MARGIN_MS ahead of its paid time. The CDR's end
 * is when the MI call reached OpenSIPS, stamped in whole seconds from an answer the test takes as the moment
 * it sent the INVITE: the call stays within what it paid for while the upkeep tick, the MI call and the
 * admission's own round trip together are late by less than the margin less a second. With the default
 * margin of 8-s slices (2 s) a starved sidecar on a loaded machine once ended a call 1 s too late; 4.5 s
 * allows 3.5 s, and still ends every call within its last paid 6-s increment, which the CDRs show.
 */
export const SLICE_SECONDS = 12;
export const SLICE_END_MARGIN_MS = 4500;
export const SLICE_ARGS = ['--slice-seconds', String(SLICE_SECONDS), '--slice-end-margin-ms', String(SLICE_END_MARGIN_MS)];
/** The least a call is admitted with when the balance left is short of a slice: one 6-s increment, 0.0026. */
export const LEAST_SLICE_COST = new Decimal('0.0026');
/**
 * The longest any call on a balance can last: every slice bought at the least cost, all of them by one call, and
 * a slice's margin. Ended calls keep their reservations until their CDRs, so the calls share what the balance
 * buys; but how they share it is up to the nodes' leases: a call on a node with lease to spare keeps buying
 * slices while the others' nodes refuse (seen: 46 s on an idle machine, past a minute on a loaded one).
 */
export function longestCallMs(balance: string): number {
  const leastSlices = new Decimal(balance).div(LEAST_SLICE_COST).floor().toNumber();
  return (leastSlices * 6 + SLICE_SECONDS) * 1000;
}

/**
 * A call ended for want of its next slice, as its CDR's answer shows it: charged no more than its node held
 * for it, and cut in its last paid increment, not a slice or an increment early (what the node held and did
 * not charge is less than one 6-s increment, the 0.0001 of slack at most when the cut came on time).
 */
export function assertCutAtItsPaidTime(callId: string, answer: Record<string, unknown>): void {
  const adjustment = new Decimal(answer.adjustment as string);
  assert.ok(adjustment.lessThanOrEqualTo(0), `${callId} charged beyond its reservation: ${adjustment.toFixed()}`);
  assert.ok(adjustment.negated().lessThan(LEAST_SLICE_COST), `${callId} ended before its last paid increment: ${adjustment.toFixed()}`);
}

export interface Admitted {
  node: number;
  callId: string;
  admittedAt: number;
  maxDuration: number;
}

export const invite = (callId: string, dialogId: string): Record<string, unknown> => ({
  source_ip: '203.0.113.77',
  call_id: callId,
  dialog_id: dialogId,
  ani: '6125550100',
  dnis: '61400123456',
});

/** The CDR OpenSIPS sends when the dialog ends: answered at once (the worst case for the account), ended when MI ended it. */
export function cdr(call: Admitted, endedAt: number): Record<string, unknown> {
  // OpenSIPS stamps whole seconds ($Ts): the answer's second floored, the end's second floored.
  const answer = Math.floor(call.admittedAt / 1000);
  const end = Math.floor(endedAt / 1000);
  return {
    sip_call_id: call.callId,
    customer_trunk_id: 10,
    carrier_trunk_id: 21,
    carrier_gateway_id: 211,
    ani: '6125550100',
    dnis: '61400123456',
    start_time: new Date(answer * 1000).toISOString(),
    answer_time: new Date(answer * 1000).toISOString(),
    end_time: new Date(end * 1000).toISOString(),
    duration_seconds: end - answer,
    sip_response_code: 200,
  };
}

export async function credit(world: MoneyWorld, amount: string): Promise<void> {
  const answer = await world.control.post('/api/balances/customer/1/balance/credit', { amount, description: 'slices test' });
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
}

export async function balance(world: MoneyWorld): Promise<{ balance: string; reserved: string }> {
  return (await world.control.get('/api/balances/customer/1/balance')).body as { balance: string; reserved: string };
}

export async function decide(
  node: SidecarProcess,
  mi: FakeOpensipsMi,
  index: number,
  callId: string,
  dialogId: string,
): Promise<Admitted | null> {
  mi.openDialog(callId, dialogId);
  const admittedAt = Date.now();
  const answer = await node.post('/api/opensips/call/decide', invite(callId, dialogId));
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  if (answer.body.allowed !== true) {
    assert.equal(answer.body.stage, 'admit', JSON.stringify(answer.body));
    mi.hangUp(callId);
    return null;
  }
  return { node: index, callId, admittedAt, maxDuration: answer.body.admit.max_duration_seconds as number };
}
