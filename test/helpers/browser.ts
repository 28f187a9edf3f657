import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';

/**
 * Headless Chromium for the console's end-to-end tests: Debian's own build (`apt-get install chromium`, which
 * .ci/run does when it is missing), driven by playwright-core, so no browser is downloaded by npm.
 */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** test/artifacts/ in the source tree (the tests run from dist/test/…): screenshots to look at after a run. */
export const ARTIFACTS = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'test', 'artifacts');

export function launchBrowser(): Promise<Browser> {
  // --no-sandbox: CI and these machines run as root, where Chromium's sandbox refuses to start.
  return chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
}

/** A page that records every console error and uncaught exception, for "loads with no console error". */
export async function watchedPage(browser: Browser): Promise<{ page: Page; errors: string[] }> {
  const page = await browser.newPage({ viewport: { width: 1366, height: 800 }, locale: 'en-AU', timezoneId: 'Australia/Sydney' });
  const errors: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(message.text());
  });
  page.on('pageerror', (error) => errors.push(error.message));
  return { page, errors };
}

export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
}
