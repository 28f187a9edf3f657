import { api } from './api.js';
import { badge, el, table } from './dom.js';
import { seconds, timeElement } from './format.js';

/** What GET /api/console/network answers (sync/console/network-routes.ts). */
interface NetworkNode {
  id: number;
  hostname: string;
  region: string | null;
  status: string;
  sidecar_address: string | null;
  sidecar: {
    up: boolean;
    error: string | null;
    health: {
      status: string;
      snapshot_version: number | null;
      snapshot_age_seconds: number | null;
      uptime_seconds: number;
      delta_seq?: number | null;
    } | null;
  };
  metrics: {
    decisions_per_second: number | null;
    p99_ms: number | null;
    p99_over: boolean;
    sampled_at: string | null;
    error: string | null;
  };
  money: { last_seq: number; updated_at: string; leases_held: number } | null;
  last_sync: {
    sidecar: { success: boolean; version: number | null; duration_ms: number; error: string | null } | null;
    reload: { success: boolean; skipped: boolean; error: string | null } | null;
  };
}
interface Network {
  checked_at: string;
  lease_valid_seconds: number;
  last_sync: { finished_at: string; snapshot_version: number; warnings: string[] } | null;
  /** The centre's last live change (issue 18). */
  delta_seq: number;
  nodes: NetworkNode[];
}

/** How often the page asks again: a node that goes down shows within this. */
export const REFRESH_SECONDS = 5;

function sidecarCell(node: NetworkNode): Node {
  if (node.sidecar.up)
    return badge(
      node.sidecar.health?.status === 'ok' ? 'up' : (node.sidecar.health?.status ?? 'up'),
      node.sidecar.health?.status === 'ok' ? 'good' : 'bad',
    );
  return el('span', {}, badge('down', 'bad'), ' ', el('small', {}, node.sidecar.error ?? ''));
}

/** The last sync's drouting write and MI reload on the node's OpenSIPS (separate from the sidecar's push). */
function droutingCell(node: NetworkNode): Node {
  const reload = node.last_sync.reload;
  if (reload === null) return el('span', { class: 'muted' }, '—');
  if (reload.success) return badge(reload.skipped ? 'unchanged' : 'reloaded', 'good');
  return el('span', {}, badge('failed', 'bad'), ' ', el('small', {}, reload.error ?? ''));
}

function lastSyncCell(node: NetworkNode): Node {
  const result = node.last_sync.sidecar;
  if (result === null) return el('span', { class: 'muted' }, 'not in a sync since start');
  if (result.success) return el('span', {}, badge('ok', 'good'), ` v${String(result.version ?? '?')} in ${result.duration_ms} ms`);
  return el('span', {}, badge('failed', 'bad'), ' ', el('small', {}, result.error ?? ''));
}

/** Decisions per second and p99 over the last minute, from the centre's samples of the node's metrics. */
function loadCell(node: NetworkNode): Node {
  const figures = node.metrics;
  if (figures.decisions_per_second === null) return el('span', { class: 'muted' }, figures.error === null ? 'sampling…' : 'no metrics');
  const p99 =
    figures.p99_ms === null
      ? 'no requests'
      : `p99 ${figures.p99_over ? '>' : '≤'} ${figures.p99_ms < 1 ? figures.p99_ms.toFixed(3) : figures.p99_ms} ms`;
  return el('span', {}, `${figures.decisions_per_second}/s `, el('small', {}, p99));
}

/** The node's last money round as the centre's ledger has it; silent past the lease validity (its leases lapse). */
function moneyCell(node: NetworkNode, leaseValidSeconds: number, now: number): { cell: Node; silent: boolean } {
  if (node.money === null) return { cell: el('span', { class: 'muted' }, 'no round yet'), silent: false };
  const silent = now - Date.parse(node.money.updated_at) > leaseValidSeconds * 1000;
  return {
    cell: el(
      'span',
      {},
      silent ? badge('silent', 'bad') : '',
      silent ? ' ' : '',
      timeElement(node.money.updated_at),
      el('br', {}),
      el('small', {}, `round #${node.money.last_seq} · ${node.money.leases_held} lease${node.money.leases_held === 1 ? '' : 's'}`),
    ),
    silent,
  };
}

function render(root: HTMLElement, network: Network): void {
  const summary = el(
    'p',
    { class: 'summary' },
    'Checked ',
    timeElement(network.checked_at),
    network.last_sync === null
      ? ' · no sync since the control plane started'
      : el('span', {}, ` · last sync: snapshot v${network.last_sync.snapshot_version}, `, timeElement(network.last_sync.finished_at)),
  );
  const down = network.nodes.filter((node) => !node.sidecar.up).length;
  const now = Date.parse(network.checked_at);
  const money = network.nodes.map((node) => moneyCell(node, network.lease_valid_seconds, now));
  // Behind: up, but serving an older snapshot than the last sync pushed.
  const behind = network.nodes.map(
    (node) =>
      network.last_sync !== null &&
      node.sidecar.health !== null &&
      (node.sidecar.health.snapshot_version ?? 0) < network.last_sync.snapshot_version,
  );
  const behindCount = behind.filter(Boolean).length;
  const rows = network.nodes.map((node, index) => [
    el('strong', {}, node.hostname),
    document.createTextNode(node.region ?? '—'),
    document.createTextNode(node.status),
    sidecarCell(node),
    el(
      'span',
      {},
      node.sidecar.health?.snapshot_version === null || node.sidecar.health === null ? '—' : `v${node.sidecar.health.snapshot_version}`,
      // Said in words too, not by the row's colour alone.
      behind[index] ? ' ' : '',
      behind[index] ? badge('behind', 'bad') : '',
    ),
    document.createTextNode(seconds(node.sidecar.health?.snapshot_age_seconds)),
    liveChangesCell(node, network.delta_seq),
    document.createTextNode(seconds(node.sidecar.health?.uptime_seconds)),
    loadCell(node),
    money[index].cell,
    lastSyncCell(node),
    droutingCell(node),
  ]);
  const nodes = table(
    'OpenSIPS nodes',
    [
      'Node',
      'Region',
      'Status',
      'Sidecar',
      'Snapshot',
      'Snapshot age',
      'Live changes',
      'Uptime',
      'Decisions',
      'Money round',
      'Last sync',
      'Drouting reload',
    ],
    rows,
    {
      id: 'nodes',
    },
  );
  // A row per node, marked so a down node stands out (and tests can find it by name).
  nodes.querySelectorAll('tbody tr').forEach((row, index) => {
    const node = network.nodes[index];
    row.setAttribute('data-node', node.hostname);
    row.setAttribute('data-state', node.sidecar.up ? 'up' : 'down');
    if (!node.sidecar.up || money[index].silent) row.classList.add('down');
    else if (behind[index]) row.classList.add('behind');
    if (behind[index]) row.setAttribute('data-behind', 'true');
  });
  root.replaceChildren(
    summary,
    el(
      'p',
      { role: 'status', class: down > 0 || behindCount > 0 ? 'alert' : 'ok' },
      (down > 0 ? `${down} of ${network.nodes.length} sidecars down` : `All ${network.nodes.length} sidecars up`) +
        (behindCount > 0 ? ` · ${behindCount} behind the last sync` : ''),
    ),
    nodes,
  );
}

/**
 * The live change the node has applied, and how far behind the centre's last one it is: a lag seen at one
 * refresh is usually a change in flight; one that stays is a node whose channel is cut.
 */
function liveChangesCell(node: NetworkNode, centreSeq: number): Node {
  const applied = node.sidecar.health?.delta_seq;
  if (applied === undefined || applied === null) return document.createTextNode('—');
  if (applied >= centreSeq) return document.createTextNode(`#${applied}`);
  return el('span', {}, `#${applied} `, badge(`${centreSeq - applied} behind`, 'bad'));
}

/** Shows the Network page in `root` and refreshes it until the returned function is called. */
export function showNetwork(root: HTMLElement): () => void {
  root.replaceChildren(el('p', {}, 'Loading…'));
  let stopped = false;
  const refresh = async (): Promise<void> => {
    const answer = await api<Network>('GET', '/api/console/network');
    if (stopped) return;
    if (answer.ok) render(root, answer.body);
    else root.replaceChildren(el('p', { role: 'alert', class: 'alert' }, `Cannot read the network: ${answer.error.error}`));
  };
  void refresh();
  const timer = window.setInterval(() => void refresh(), REFRESH_SECONDS * 1000);
  return () => {
    stopped = true;
    window.clearInterval(timer);
  };
}
