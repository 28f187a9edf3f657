import { api } from './api.js';
import { el, table } from './dom.js';
import { money, timeElement } from './format.js';

/** GET /api/rate-decks and GET /api/console/rates?number= (sync/console/read-routes.ts). */
interface Deck {
  id: number;
  name: string;
  deck_type: string;
  currency: string;
  description: string | null;
}
interface DeckRate {
  rate_deck_id: number;
  name: string;
  deck_type: string;
  currency: string;
  rate: {
    prefix: string;
    destination_name: string;
    rate_per_minute: string;
    rate_type: string;
    billing_increment_initial: number | null;
    billing_increment_step: number | null;
    effective_at: string;
  } | null;
}
/** What POST /api/rate-decks/{id}/rates/csv answers (sync/admin/rate-import.ts), refused or imported. */
interface ImportAnswer {
  message?: string;
  error?: string;
  count?: number;
  errors?: string[] | null;
  imported?: number;
  updated?: number;
}

function field(label: string, input: HTMLInputElement | HTMLSelectElement): HTMLElement {
  return el('div', { class: 'field' }, el('label', { for: input.id }, label), input);
}

/**
 * The upload goes through XMLHttpRequest, the one browser API that reports a request body's progress: a rate
 * sheet is megabytes, and the bar shows it leaving; then "importing" until the control plane answers.
 */
function upload(
  deckId: string,
  file: File,
  progress: HTMLProgressElement,
  status: HTMLElement,
): Promise<{ status: number; body: ImportAnswer }> {
  return new Promise((resolve) => {
    const form = new FormData();
    form.append('file', file);
    const request = new XMLHttpRequest();
    request.open('POST', `/api/rate-decks/${encodeURIComponent(deckId)}/rates/csv`);
    request.upload.addEventListener('progress', (event) => {
      if (!event.lengthComputable) return;
      progress.max = event.total;
      progress.value = event.loaded;
      status.textContent = `Uploading ${Math.round((event.loaded / event.total) * 100)}%`;
    });
    request.upload.addEventListener('load', () => {
      progress.removeAttribute('value');
      status.textContent = 'Uploaded; importing…';
    });
    request.addEventListener('load', () => {
      let body: ImportAnswer = {};
      try {
        body = JSON.parse(request.responseText) as ImportAnswer;
      } catch {
        body = { error: `HTTP ${request.status}` };
      }
      resolve({ status: request.status, body });
    });
    request.addEventListener('error', () => resolve({ status: 0, body: { error: 'the control plane did not answer' } }));
    request.send(form);
  });
}

function lookupForm(output: HTMLElement): HTMLElement {
  const number = el('input', { id: 'rate-number', name: 'number', type: 'text', inputmode: 'tel', required: '', autocomplete: 'off' });
  const form = el('form', { id: 'rate-lookup' }, field('Number', number), el('button', { type: 'submit' }, 'Look up'));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    output.replaceChildren(el('p', { role: 'status' }, 'Looking up…'));
    void api<{ number: string; data: DeckRate[] }>('GET', `/api/console/rates?number=${encodeURIComponent(number.value.trim())}`).then(
      (answer) => {
        if (!answer.ok) {
          output.replaceChildren(
            el('p', { role: 'alert', class: 'alert' }, `${answer.error.reason_code ?? answer.error.status}: ${answer.error.error}`),
          );
          return;
        }
        const now = Date.now();
        const rates = table(
          `${answer.body.number} in each deck`,
          ['Deck', 'Type', 'Prefix', 'Destination', 'Rate', 'Increments', 'Effective'],
          answer.body.data.map((deck) => [
            el('strong', {}, deck.name),
            document.createTextNode(deck.deck_type),
            document.createTextNode(deck.rate?.prefix ?? '—'),
            document.createTextNode(deck.rate?.destination_name ?? 'no rate'),
            document.createTextNode(
              deck.rate === null
                ? '—'
                : `${money(deck.rate.rate_per_minute, deck.currency)}${deck.rate.rate_type === 'per_call' ? ' per call' : '/min'}`,
            ),
            document.createTextNode(
              deck.rate === null ? '—' : `${deck.rate.billing_increment_initial ?? 1}/${deck.rate.billing_increment_step ?? 1}`,
            ),
            deck.rate === null
              ? document.createTextNode('—')
              : el('span', {}, Date.parse(deck.rate.effective_at) > now ? 'from ' : '', timeElement(deck.rate.effective_at)),
          ]),
          { id: 'number-rates' },
        );
        rates.querySelectorAll('tbody tr').forEach((row, index) => row.setAttribute('data-deck', answer.body.data[index].name));
        output.replaceChildren(rates);
      },
    );
  });
  return form;
}

function uploadForm(decks: Deck[], reloadDecks: () => void): HTMLElement {
  const deck = el(
    'select',
    { id: 'upload-deck', name: 'deck', required: '' },
    ...decks.map((row) => el('option', { value: String(row.id) }, `${row.name} (${row.currency})`)),
  );
  const file = el('input', { id: 'rate-file', name: 'file', type: 'file', accept: '.csv,text/csv', required: '' });
  const progress = el('progress', { id: 'upload-progress', hidden: '' });
  const status = el('span', { role: 'status', id: 'upload-status' });
  const result = el('div', { id: 'upload-result', 'aria-live': 'polite' });
  const form = el(
    'form',
    { id: 'rate-upload' },
    field('Deck', deck),
    field('Rate sheet (CSV)', file),
    el('button', { type: 'submit' }, 'Upload'),
    el('div', { class: 'field' }, progress, status),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const chosen = file.files?.[0];
    if (chosen === undefined) return;
    progress.hidden = false;
    result.replaceChildren();
    void upload(deck.value, chosen, progress, status).then(({ status: code, body }) => {
      progress.hidden = true;
      if (code === 201) {
        status.textContent = '';
        result.replaceChildren(
          el(
            'p',
            { class: 'ok', role: 'status' },
            `Imported ${body.imported ?? 0} new and ${body.updated ?? 0} changed rate(s) into ${deck.selectedOptions.item(0)?.textContent ?? 'the deck'}.`,
          ),
        );
        reloadDecks();
        return;
      }
      status.textContent = '';
      const lines = body.errors ?? [];
      result.replaceChildren(
        el('p', { class: 'alert', role: 'alert' }, `${body.message ?? body.error ?? `HTTP ${code}`}`),
        lines.length === 0
          ? ''
          : el('ul', { id: 'upload-errors', class: 'errors' }, ...lines.slice(0, 200).map((line) => el('li', {}, line))),
        lines.length > 200 ? el('p', { class: 'muted' }, `and ${lines.length - 200} more`) : '',
      );
    });
  });
  return el('div', {}, form, result);
}

/** Shows the Rates page: the decks, a number's rate in each, and a CSV upload into one of them. */
export function showRates(root: HTMLElement): () => void {
  const lookupOutput = el('div', {});
  const decksArea = el('div', {}, el('p', {}, 'Loading…'));
  const uploadArea = el('section', { 'aria-labelledby': 'upload-heading' });
  root.replaceChildren(
    el('h2', {}, 'A number’s rate'),
    lookupForm(lookupOutput),
    lookupOutput,
    el('h2', { id: 'upload-heading' }, 'Upload a rate sheet'),
    uploadArea,
    decksArea,
  );
  const loadDecks = (first: boolean): void => {
    void api<{ data: Deck[] }>('GET', '/api/rate-decks?limit=1000').then((answer) => {
      if (!answer.ok) {
        decksArea.replaceChildren(el('p', { role: 'alert', class: 'alert' }, `Cannot list the decks: ${answer.error.error}`));
        return;
      }
      if (first) uploadArea.replaceChildren(uploadForm(answer.body.data, () => loadDecks(false)));
      decksArea.replaceChildren(
        table(
          'Rate decks',
          ['Deck', 'Type', 'Currency', 'Description'],
          answer.body.data.map((deck) => [
            el('strong', {}, deck.name),
            document.createTextNode(deck.deck_type),
            document.createTextNode(deck.currency),
            document.createTextNode(deck.description ?? ''),
          ]),
          { id: 'decks' },
        ),
      );
    });
  };
  loadDecks(true);
  return () => undefined;
}
