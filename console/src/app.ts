import { el } from './dom.js';
import { showNetwork } from './network.js';
import { showSimulator } from './simulator.js';

/** The console's pages, one per hash (#network, #simulator): links work with the keyboard and the back button. */
const PAGES: Record<string, { title: string; show: (root: HTMLElement) => () => void }> = {
  network: { title: 'Network', show: showNetwork },
  simulator: { title: 'Route simulator', show: showSimulator },
};

let leave: () => void = () => undefined;

function route(): void {
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
  main.replaceChildren(el('h1', { tabindex: '-1' }, page.title), content);
  leave = page.show(content);
}

window.addEventListener('hashchange', route);
route();
