import { el } from './dom.js';
import { showAccounts } from './accounts.js';
import { showLive } from './live.js';
import { showNetwork } from './network.js';
import { showRates } from './rates.js';
import { showSimulator } from './simulator.js';
import { showSync } from './sync.js';

/** The console's pages, one per hash (#network, #sync, …): links work with the keyboard and the back button. */
const PAGES: Record<string, { title: string; show: (root: HTMLElement) => () => void }> = {
  network: { title: 'Network', show: showNetwork },
  sync: { title: 'Sync', show: showSync },
  simulator: { title: 'Route simulator', show: showSimulator },
  accounts: { title: 'Accounts', show: showAccounts },
  rates: { title: 'Rates', show: showRates },
  live: { title: 'Live', show: showLive },
};

let leave: () => void = () => undefined;

function route(moveFocus: boolean): void {
  const name = location.hash.replace(/^#/, '') in PAGES ? location.hash.replace(/^#/, '') : 'network';
  const page = PAGES[name];
  leave();
  document.title = `${page.title} · Operator console`;
  document.querySelectorAll('nav a').forEach((link) => {
    if (link.getAttribute('href') === `#${name}`) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  });
  const main = document.getElementById('main') as HTMLElement;
  const content = el('div', {});
  const heading = el('h1', { tabindex: '-1' }, page.title);
  main.replaceChildren(heading, content);
  // A keyboard or screen-reader user who chose a page lands on its heading, not back at the top of the nav.
  if (moveFocus) heading.focus();
  leave = page.show(content);
}

window.addEventListener('hashchange', () => route(true));
route(false);
