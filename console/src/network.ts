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
    health: { status: string; snapshot_version: number | null; snapshot_age_seconds: number | null; uptime_seconds: number } | null;
  };
  last_sync: {
    sidecar: { success: boolean; version: number | null; duration_ms: number; error: string | null } | null;
    reload: { success: boolean; skipped: boolean; error: string | null } | null;
  };
}
interface Network {
  checked_at: string;
  last_sync: { finished_at: string; snapshot_version: number; warnings: string[] } | null;
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
  const rows = network.nodes.map((node) => [
    el('strong', {}, node.hostname),
    document.createTextNode(node.region ?? '—'),
    document.createTextNode(node.status),
    sidecarCell(node),
    document.createTextNode(
      node.sidecar.health?.snapshot_version === null || node.sidecar.health === null ? '—' : `v${node.sidecar.health.snapshot_version}`,
    ),
    document.createTextNode(seconds(node.sidecar.health?.snapshot_age_seconds)),
    document.createTextNode(seconds(node.sidecar.health?.uptime_seconds)),
    lastSyncCell(node),
    droutingCell(node),
  ]);
  const nodes = table(
    'OpenSIPS nodes',
    ['Node', 'Region', 'Status', 'Sidecar', 'Snapshot', 'Snapshot age', 'Uptime', 'Last sync', 'Drouting reload'],
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
    if (!node.sidecar.up) row.classList.add('down');
  });
  root.replaceChildren(
    summary,
    el(
      'p',
      { role: 'status', class: down > 0 ? 'alert' : 'ok' },
      down > 0 ? `${down} of ${network.nodes.length} sidecars down` : `All ${network.nodes.length} sidecars up`,
    ),
    nodes,
  );
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
