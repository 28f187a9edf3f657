import { api } from './api.js';
import { badge, el, table } from './dom.js';
import { money, timeElement } from './format.js';

/** The sidecar's route simulator answer (src/sidecar/simulator/route-simulator.ts), the parts the page shows. */
interface Carrier {
  carrier_trunk_id: number;
  carrier_name: string;
  allowed: boolean;
  carrier_gateway_id: number | null;
  destination_uri: string | null;
  customer_currency: string;
  retail_cost: string;
  wholesale_currency: string;
  wholesale_cost?: string;
  converted_wholesale_cost?: string;
  margin_amount?: string;
  excluded_reason: string | null;
}
interface Simulation {
  allowed: boolean;
  customer_currency: string;
  customer_rate: string;
  retail_cost: string;
  normalized_dnis: string;
  duration_seconds: number;
  selected_carrier_trunk_id: number | null;
  selected_gateway_id: number | null;
  reject_code: number | null;
  reject_reason: string | null;
  no_match_reason: string | null;
  checks: { name: string; passed: boolean; reject_code: number | null; reject_reason: string | null }[];
  carriers: Carrier[];
}
interface NodeRow {
  id: number;
  hostname: string;
}

function field(label: string, input: HTMLInputElement | HTMLSelectElement): HTMLElement {
  return el('div', { class: 'field' }, el('label', { for: input.id }, label), input);
}

function input(id: string, attributes: Record<string, string>): HTMLInputElement {
  return el('input', { id, name: id, ...attributes });
}

function renderResult(result: Simulation, askedAt: string): Node {
  const chosen = result.carriers.find((carrier) => carrier.carrier_trunk_id === result.selected_carrier_trunk_id);
  const verdict = result.allowed
    ? el(
        'p',
        { class: 'verdict ok', id: 'verdict' },
        badge('routed', 'good'),
        ' via ',
        el('strong', {}, chosen?.carrier_name ?? `carrier trunk ${result.selected_carrier_trunk_id}`),
        ` (gateway ${String(result.selected_gateway_id)}${chosen?.destination_uri ? `, ${chosen.destination_uri}` : ''})`,
      )
    : el(
        'p',
        { class: 'verdict alert', id: 'verdict' },
        badge('refused', 'bad'),
        ` ${String(result.reject_code ?? '')} ${result.reject_reason ?? result.no_match_reason ?? ''}`,
      );
  const checks = table(
    'Checks',
    ['Check', 'Result', 'Refusal'],
    result.checks.map((check) => [
      document.createTextNode(check.name),
      badge(check.passed ? 'pass' : 'fail', check.passed ? 'good' : 'bad'),
      document.createTextNode(check.passed ? '' : `${String(check.reject_code)} ${check.reject_reason ?? ''}`),
    ]),
    { id: 'checks' },
  );
  const carriers = table(
    'Candidates in LCR order',
    ['#', 'Carrier', 'Cost', 'Sell', 'Margin', 'Outcome'],
    result.carriers.map((carrier, index) => [
      document.createTextNode(String(index + 1)),
      el('span', {}, el('strong', {}, carrier.carrier_name), el('small', {}, ` trunk ${carrier.carrier_trunk_id}`)),
      document.createTextNode(money(carrier.wholesale_cost, carrier.wholesale_currency)),
      document.createTextNode(money(carrier.retail_cost, carrier.customer_currency)),
      document.createTextNode(money(carrier.margin_amount, carrier.customer_currency)),
      carrier.carrier_trunk_id === result.selected_carrier_trunk_id
        ? badge('chosen', 'good')
        : carrier.excluded_reason === null
          ? badge('fallback', 'neutral')
          : el('span', {}, badge('excluded', 'bad'), ` ${carrier.excluded_reason}`),
    ]),
    { id: 'carriers' },
  );
  carriers.querySelectorAll('tbody tr').forEach((row, index) => row.setAttribute('data-carrier', result.carriers[index].carrier_name));
  return el(
    'section',
    { 'aria-live': 'polite', id: 'result' },
    verdict,
    el(
      'p',
      { class: 'muted' },
      `${result.normalized_dnis} for ${result.duration_seconds} s at ${money(result.customer_rate, result.customer_currency)}/min: ${money(result.retail_cost, result.customer_currency)} · simulated `,
      // The moment simulated: the one asked for, or now.
      timeElement(askedAt),
    ),
    checks,
    carriers,
  );
}

/** Shows the Route simulator page in `root`: asks the chosen node's sidecar, as the live path would route now. */
export function showSimulator(root: HTMLElement): () => void {
  const node = el('select', { id: 'node', name: 'node', required: '' });
  const form = el(
    'form',
    { id: 'simulate', 'aria-describedby': 'simulate-note' },
    field('Node', node),
    field('Customer trunk', input('customer_trunk_id', { type: 'number', min: '1', required: '', inputmode: 'numeric' })),
    field('Number dialled', input('dnis', { type: 'text', required: '', inputmode: 'tel', autocomplete: 'off' })),
    field('Caller number (optional)', input('ani', { type: 'text', inputmode: 'tel', autocomplete: 'off' })),
    field('Duration (seconds)', input('duration_seconds', { type: 'number', min: '1', value: '60', required: '' })),
    // In the operator's zone, as every time on the console; empty: now.
    field('Time (optional, your time zone)', input('at', { type: 'datetime-local', step: '1' })),
    el('button', { type: 'submit' }, 'Simulate'),
  );
  const output = el('div', {});
  root.replaceChildren(
    el(
      'p',
      { id: 'simulate-note', class: 'muted' },
      'Every check and candidate as the node’s sidecar would route this call now, with the snapshot it serves.',
    ),
    form,
    output,
  );
  void api<{ data: NodeRow[] }>('GET', '/api/opensips-nodes?limit=1000').then((answer) => {
    if (!answer.ok) {
      output.replaceChildren(el('p', { role: 'alert', class: 'alert' }, `Cannot list the nodes: ${answer.error.error}`));
      return;
    }
    node.replaceChildren(...answer.body.data.map((row) => el('option', { value: String(row.id) }, row.hostname)));
  });
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const body = {
      customer_trunk_id: Number(data.get('customer_trunk_id')),
      dnis: String(data.get('dnis')).trim(),
      ani: String(data.get('ani') ?? '').trim(),
      duration_seconds: Number(data.get('duration_seconds')),
    };
    const at = String(data.get('at') ?? '');
    if (at !== '') Object.assign(body, { at: new Date(at).toISOString() });
    output.replaceChildren(el('p', { role: 'status' }, 'Asking the sidecar…'));
    const askedAt = at === '' ? new Date().toISOString() : new Date(at).toISOString();
    void api<Simulation>('POST', `/api/console/nodes/${encodeURIComponent(String(data.get('node')))}/route-simulator`, body).then(
      (answer) => {
        output.replaceChildren(
          answer.ok
            ? renderResult(answer.body, askedAt)
            : el(
                'p',
                { role: 'alert', class: 'alert', id: 'simulate-error' },
                `${answer.error.reason_code ?? answer.error.status}: ${answer.error.error}`,
              ),
        );
      },
    );
  });
  return () => undefined;
}
