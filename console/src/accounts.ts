import { api } from './api.js';
import { badge, el, table } from './dom.js';
import { money, timeElement } from './format.js';

/** The admin API's records the page shows (GET /api/customer-accounts, the balance, transactions, CDR search). */
interface Account {
  id: number;
  name: string;
  username: string;
  status: string;
  currency: string;
  billing_mode: string;
}
interface Balance {
  balance: string;
  reserved: string;
  currency: string;
  billing_mode: string;
  credit_limit: string | null;
  headroom: string | null;
  updated_at: string;
  uncovered: string;
}
interface Transaction {
  id: number;
  transaction_type: string;
  amount: string;
  balance_after: string;
  currency: string;
  description: string | null;
  created_at: string;
}
interface Cdr {
  sip_call_id: string;
  start_time: string;
  dnis: string;
  duration_seconds: number;
  billable_duration_customer: number;
  customer_cost: string;
  customer_currency: string;
  sip_response_code: number | null;
  status: string;
}
interface Lease {
  node: string;
  amount: string;
  updated_at: string;
}

/** The same shape the ledger accepts: a positive decimal with at most six places. */
const AMOUNT = /^[0-9]{1,12}(\.[0-9]{1,6})?$/;

function field(label: string, input: HTMLInputElement | HTMLSelectElement): HTMLElement {
  return el('div', { class: 'field' }, el('label', { for: input.id }, label), input);
}

function matches(account: Account, query: string): boolean {
  const wanted = query.trim().toLowerCase();
  if (wanted === '') return true;
  return String(account.id) === wanted || account.name.toLowerCase().includes(wanted) || account.username.toLowerCase().includes(wanted);
}

async function loadAccount(account: Account, detail: HTMLElement, notice: Node | null = null): Promise<void> {
  const base = `/api/balances/customer/${account.id}`;
  const [balance, transactions, leases, cdrs] = await Promise.all([
    api<Balance>('GET', `${base}/balance`),
    api<{ data: Transaction[] }>('GET', `${base}/transactions?limit=10`),
    api<{ data: Lease[] }>('GET', `/api/console/accounts/customer/${account.id}/leases`),
    api<Cdr[]>('GET', `/api/cdrs/search?customer_account_id=${account.id}&limit=10`),
  ]);
  if (!balance.ok) {
    detail.replaceChildren(el('p', { role: 'alert', class: 'alert' }, `Cannot read the balance: ${balance.error.error}`));
    return;
  }
  const currency = balance.body.currency;
  const figures = el(
    'dl',
    { class: 'figures', id: 'balance' },
    el('dt', {}, 'Balance'),
    el('dd', { id: 'balance-amount' }, money(balance.body.balance, currency)),
    el('dt', {}, 'Reserved by calls'),
    el('dd', {}, money(balance.body.reserved, currency)),
    el('dt', {}, 'Headroom'),
    el('dd', {}, balance.body.headroom === null ? 'unlimited' : money(balance.body.headroom, currency)),
    el('dt', {}, 'Credit limit'),
    el('dd', {}, balance.body.credit_limit === null ? '—' : money(balance.body.credit_limit, currency)),
    el('dt', {}, 'Updated'),
    el('dd', {}, timeElement(balance.body.updated_at)),
  );
  const leaseTable = leases.ok
    ? table(
        'Leases held by nodes',
        ['Node', 'Amount', 'Since'],
        leases.body.data.map((lease) => [
          document.createTextNode(lease.node),
          document.createTextNode(money(lease.amount, currency)),
          timeElement(lease.updated_at),
        ]),
        { id: 'leases' },
      )
    : el('p', { class: 'alert' }, `Cannot read the leases: ${leases.error.error}`);
  const transactionTable = transactions.ok
    ? table(
        'Recent transactions',
        ['When', 'Type', 'Amount', 'Balance after', 'Description'],
        transactions.body.data.map((row) => [
          timeElement(row.created_at),
          document.createTextNode(row.transaction_type),
          document.createTextNode(money(row.amount, row.currency)),
          document.createTextNode(money(row.balance_after, row.currency)),
          document.createTextNode(row.description ?? ''),
        ]),
        { id: 'transactions' },
      )
    : el('p', { class: 'alert' }, `Cannot read the transactions: ${transactions.error.error}`);
  const cdrTable = cdrs.ok
    ? table(
        'Recent CDRs',
        ['Start', 'Number', 'Duration', 'Billed', 'Charge', 'Result'],
        cdrs.body.map((cdr) => [
          timeElement(cdr.start_time),
          document.createTextNode(cdr.dnis),
          document.createTextNode(`${cdr.duration_seconds} s`),
          document.createTextNode(`${cdr.billable_duration_customer} s`),
          document.createTextNode(money(cdr.customer_cost, cdr.customer_currency)),
          document.createTextNode(cdr.status === 'answered' ? 'answered' : `unanswered ${String(cdr.sip_response_code ?? '')}`),
        ]),
        { id: 'cdrs' },
      )
    : el('p', { class: 'alert' }, `Cannot read the CDRs: ${cdrs.error.error}`);
  detail.replaceChildren(
    el(
      'h2',
      {},
      `${account.name} `,
      el('small', {}, `#${account.id} · ${account.username} · ${account.billing_mode} · ${account.currency}`),
    ),
    notice ?? '',
    figures,
    moneyForm(account, currency, detail),
    leaseTable,
    transactionTable,
    cdrTable,
  );
}

/** Credit or debit in two steps: the form names the change, a second button confirms it (or Cancel backs out). */
function moneyForm(account: Account, currency: string, detail: HTMLElement): HTMLElement {
  const kind = el(
    'select',
    { id: 'operation', name: 'operation' },
    el('option', { value: 'credit' }, 'Credit'),
    el('option', { value: 'debit' }, 'Debit'),
  );
  const amount = el('input', {
    id: 'amount',
    name: 'amount',
    type: 'text',
    inputmode: 'decimal',
    required: '',
    autocomplete: 'off',
    placeholder: '10.00',
  });
  const description = el('input', { id: 'description', name: 'description', type: 'text', maxlength: '1024', autocomplete: 'off' });
  const confirmArea = el('div', { id: 'confirm-area', 'aria-live': 'polite' });
  const form = el(
    'form',
    { id: 'money-form' },
    field('Operation', kind),
    field(`Amount (${currency})`, amount),
    field('Description (optional)', description),
    el('button', { type: 'submit' }, 'Review…'),
    confirmArea,
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const value = amount.value.trim();
    if (!AMOUNT.test(value) || /^0+(\.0+)?$/.test(value)) {
      confirmArea.replaceChildren(el('p', { role: 'alert', class: 'alert' }, 'Enter a positive amount such as 10.00.'));
      return;
    }
    const operation = kind.value as 'credit' | 'debit';
    const confirm = el('button', { type: 'button', id: 'confirm' }, `Confirm ${operation} of ${money(value, currency)}`);
    const cancel = el('button', { type: 'button', class: 'secondary' }, 'Cancel');
    confirmArea.replaceChildren(
      el(
        'p',
        {},
        `${operation === 'credit' ? 'Credit' : 'Debit'} ${money(value, currency)} ${operation === 'credit' ? 'to' : 'from'} ${account.name}?`,
      ),
      confirm,
      ' ',
      cancel,
    );
    confirm.focus();
    cancel.addEventListener('click', () => {
      confirmArea.replaceChildren();
      amount.focus();
    });
    confirm.addEventListener('click', () => {
      confirm.disabled = true;
      const body = description.value.trim() === '' ? { amount: value } : { amount: value, description: description.value.trim() };
      void api<{ message: string }>('POST', `/api/balances/customer/${account.id}/balance/${operation}`, body).then((answer) => {
        if (!answer.ok) {
          confirmArea.replaceChildren(
            el('p', { role: 'alert', class: 'alert' }, `${answer.error.reason_code ?? answer.error.status}: ${answer.error.error}`),
          );
          return;
        }
        // Read back from the ledger, so what is shown is what it now holds, not what the page expects.
        void loadAccount(account, detail, el('p', { role: 'status', class: 'ok' }, `${answer.body.message}: ${money(value, currency)}`));
      });
    });
  });
  return form;
}

/** Shows the Accounts page: search customer accounts, then one account's money, leases, transactions and CDRs. */
export function showAccounts(root: HTMLElement): () => void {
  const search = el('input', { id: 'account-search', name: 'q', type: 'search', autocomplete: 'off', placeholder: 'name, login or id' });
  const results = el('div', {});
  const detail = el('section', { id: 'account', 'aria-live': 'polite' });
  root.replaceChildren(
    el('form', { role: 'search', id: 'account-search-form' }, field('Search customer accounts', search)),
    results,
    detail,
  );
  let accounts: Account[] = [];
  const show = (): void => {
    const found = accounts.filter((account) => matches(account, search.value)).slice(0, 50);
    const list = table(
      `${found.length} account${found.length === 1 ? '' : 's'}`,
      ['Account', 'Login', 'Status', 'Billing', 'Currency'],
      found.map((account) => {
        const open = el('button', { type: 'button', class: 'link' }, account.name);
        open.addEventListener('click', () => {
          detail.replaceChildren(el('p', {}, 'Loading…'));
          void loadAccount(account, detail);
        });
        return [
          open,
          document.createTextNode(account.username),
          account.status === 'active' ? badge(account.status, 'good') : badge(account.status, 'bad'),
          document.createTextNode(account.billing_mode),
          document.createTextNode(account.currency),
        ];
      }),
      { id: 'accounts' },
    );
    list.querySelectorAll('tbody tr').forEach((row, index) => row.setAttribute('data-account', String(found[index].id)));
    results.replaceChildren(list);
  };
  search.addEventListener('input', show);
  search.form?.addEventListener('submit', (event) => event.preventDefault());
  void api<{ data: Account[] }>('GET', '/api/customer-accounts?limit=10000').then((answer) => {
    if (!answer.ok) {
      results.replaceChildren(el('p', { role: 'alert', class: 'alert' }, `Cannot list the accounts: ${answer.error.error}`));
      return;
    }
    accounts = answer.body.data;
    show();
  });
  return () => undefined;
}
