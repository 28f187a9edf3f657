import assert from 'node:assert/strict';
import { eventually, type MoneyWorld } from './money-world.js';
import type { SidecarProcess } from './sidecar.js';

/**
 * Asking the nodes of a live world (money-world.ts: a control plane and sidecars following its delta log) what
 * they answer now, and waiting until every one answers as a live change says. Shared by the process tests of
 * live changes; every wait is for a condition, never for time.
 */

/** An address of trunk 10's CIDR in the fixture world (test/fixtures/routing.ts). */
export const TRUNK_10_SOURCE = '203.0.113.5';
/** A mobile number the fixture world's decks route. */
export const MOBILE = '61400123456';

export async function auth(node: SidecarProcess, sourceIp: string, dnis = MOBILE): Promise<Record<string, any>> {
  const answer = await node.post('/api/opensips/call/auth', {
    source_ip: sourceIp,
    call_id: `live-${Math.random()}`,
    ani: '6125550100',
    dnis,
  });
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  return answer.body as Record<string, any>;
}

export async function lcrCarriers(node: SidecarProcess): Promise<number[]> {
  const answer = await node.post('/api/lcr/lookup', { customer_trunk_id: 10, dnis: MOBILE });
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  return (answer.body.carriers as { carrier_trunk_id: number }[]).map((carrier) => carrier.carrier_trunk_id);
}

/** The carrier call/route picks first: answered from the route cache once warm. */
export async function routedCarrier(node: SidecarProcess): Promise<number> {
  const answer = await node.post('/api/opensips/call/route', {
    customer_trunk_id: 10,
    ani: '6125550100',
    dnis: MOBILE,
    attempt: 1,
    tried_carrier_trunk_ids: [],
  });
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  return answer.body.carrier_trunk_id as number;
}

export async function deltaSeq(node: SidecarProcess): Promise<number> {
  const health = await node.get('/api/health');
  return health.body.delta_seq as number;
}

export async function lastSeq(world: MoneyWorld): Promise<number> {
  const status = await world.control.get('/api/opensips/deltas');
  assert.equal(status.status, 200, status.text);
  return status.body.last_seq as number;
}

/** Every node has applied everything the centre has committed. */
export async function allCaughtUp(world: MoneyWorld, nodes: SidecarProcess[] = world.sidecars, ms = 20_000): Promise<number> {
  const last = await lastSeq(world);
  await eventually(async () => {
    for (const node of nodes) assert.equal(await deltaSeq(node), last, `${node.url} at the centre's last delta`);
  }, ms);
  return last;
}

/** Each of `nodes` answers `check` (waited for: a delta takes a round trip). */
export async function onEvery(nodes: SidecarProcess[], check: (node: SidecarProcess) => Promise<void>): Promise<void> {
  await Promise.all(nodes.map((node) => eventually(() => check(node), 10_000)));
}

export async function admin(world: MoneyWorld, method: string, path: string, body?: unknown): Promise<any> {
  const answer = await world.control.send(method, path, body);
  assert.ok(answer.status >= 200 && answer.status < 300, `${method} ${path}: ${answer.status} ${JSON.stringify(answer.body)}`);
  return answer.body;
}
