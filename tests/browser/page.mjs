// Drives the live-view page (src/page/index.html) in headless Chromium through
// playwright-core. The browser is Debian's /usr/bin/chromium (scripts/setup.sh installs
// it); playwright-core never downloads one. Every launch gets a fresh, temporary
// user-data directory (playwright's own, removed on close), so nothing carries over
// between tests: no sessionStorage, no cache.
//
//   const pg = await openPage(url);            // { viewport, colorScheme } optional
//   await pg.enterToken('tok');                // fills the field and submits
//   const s = await pg.state();                // what the page shows (see below)
//   await pg.waitFor((s) => s.providers.kling.state === 'live');
//   await pg.screenshot('docs/page.png');
//   await pg.close();
//
// state() reads only the page's data hooks (documented at the top of index.html):
//   { notice: string|null, title,
//     providers: { kling: { state, status, summary, empty,
//       accounts: [{ account, executing, maxJobs, available, jobs: [job] }],
//       jobs: [job] } } }                       // jobs = the provider-level list
//   job = { id, elapsed, elapsedSource: 'server'|'seen'|'none', tag: string|null }

import fs from 'node:fs';
import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Launches Chromium (once per call; close() ends it). */
export async function launchBrowser() {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: run scripts/setup.sh (it installs Debian's chromium)`);
  }
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
}

/**
 * Opens `url` in a new browser. Options: viewport ({width, height}, default 1200x800),
 * colorScheme ('light' | 'dark'), deviceScaleFactor, isMobile, browser (reuse one).
 */
export async function openPage(url, { viewport = { width: 1200, height: 800 }, colorScheme = 'light', deviceScaleFactor = 1, isMobile = false, browser } = {}) {
  const own = !browser;
  browser ||= await launchBrowser();
  const context = await browser.newContext({ viewport, colorScheme, deviceScaleFactor, isMobile, hasTouch: isMobile });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
  await page.goto(url);
  return new LivePage(browser, context, page, errors, own);
}

export class LivePage {
  constructor(browser, context, page, errors, ownsBrowser) {
    this.browser = browser;
    this.context = context;
    this.page = page;
    /** Uncaught page errors and console errors, for tests to assert on. */
    this.errors = errors;
    this.ownsBrowser = ownsBrowser;
  }

  /** Types a token into the field and submits the form (connects every provider). */
  async enterToken(token) {
    await this.page.fill('[data-token-input]', token);
    await this.page.click('[data-token-form] button[type=submit]');
  }

  /** Presses "forget token". */
  async forgetToken() {
    await this.page.click('[data-token-forget]');
  }

  /** What the page shows, read from its data hooks. */
  async state() {
    return this.page.evaluate(() => {
      const job = (li) => {
        const el = li.querySelector('[data-elapsed]');
        const tag = li.querySelector('[data-tag]');
        return {
          id: li.dataset.jobId,
          elapsed: el ? el.textContent : null,
          elapsedSource: el ? el.dataset.elapsed : null,
          tag: tag ? tag.textContent : null,
        };
      };
      const providers = {};
      for (const sec of document.querySelectorAll('section[data-provider]')) {
        providers[sec.dataset.provider] = {
          state: sec.dataset.state,
          empty: !!sec.querySelector('[data-empty]'),
          status: sec.querySelector('[data-status]')?.textContent ?? '',
          summary: sec.querySelector('[data-summary]')?.textContent ?? '',
          accounts: [...sec.querySelectorAll('[data-account]')].map((a) => ({
            account: a.dataset.account,
            executing: Number(a.dataset.executing),
            maxJobs: Number(a.dataset.maxJobs),
            available: Number(a.dataset.available),
            jobs: [...a.querySelectorAll('[data-job-id]')].map(job),
          })),
          jobs: [...sec.querySelectorAll('[data-jobs] [data-job-id]')].map(job),
        };
      }
      const n = document.querySelector('[data-notice]');
      return { notice: n && !n.hidden ? n.textContent : null, title: document.title, providers };
    });
  }

  /**
   * Polls state() until predicate(state) is truthy; returns that state. Throws after
   * `timeout` ms with `message` and the last state seen.
   */
  async waitFor(predicate, { timeout = 10_000, interval = 100, message = 'condition' } = {}) {
    const end = Date.now() + timeout;
    let last;
    for (;;) {
      last = await this.state();
      if (predicate(last)) return last;
      if (Date.now() > end) {
        throw new Error(`timed out after ${timeout} ms waiting for ${message}; last state:\n${JSON.stringify(last, null, 1)}`);
      }
      await new Promise((r) => setTimeout(r, interval));
    }
  }

  /** Waits until every provider (or those named) is in `state`. */
  waitForState(state, providers, opts = {}) {
    return this.waitFor(
      (s) => (providers || Object.keys(s.providers)).every((p) => s.providers[p]?.state === state),
      { message: `state ${state}`, ...opts },
    );
  }

  /** Screenshot of the page (full length by default) to `path`. */
  async screenshot(path, { fullPage = true } = {}) {
    await this.page.screenshot({ path, fullPage });
  }

  async close() {
    await this.context.close().catch(() => {});
    if (this.ownsBrowser) await this.browser.close().catch(() => {});
  }
}
