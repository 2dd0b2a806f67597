// The live-view page (src/page/index.html) in headless Chromium, against the fake live
// server (tests/browser/fake-live-server.mjs), which speaks the protocol of shared
// API.md "Live view". Run: node --test tests/browser/page.test.mjs
// Needs /usr/bin/chromium (scripts/setup.sh) and playwright-core (npm ci).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { demoBodies, emptyBodies, PROVIDERS, startFakeLiveServer } from './fake-live-server.mjs';
import { launchBrowser, openPage } from './page.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const secs = (mmss) => {
  const [m, s] = mmss.split(':').map(Number);
  return m * 60 + s;
};
const ELAPSED = /^\d{2,}:\d{2}$/;

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

/** A fresh fake server with the demo data and a page on it, token entered, all live. */
async function livePage(opts = {}) {
  const srv = await startFakeLiveServer({ bodies: demoBodies(), ...opts });
  const pg = await openPage(srv.url, { browser });
  await pg.enterToken('good-token');
  await pg.waitForState('live');
  return { srv, pg };
}

describe('live view page', () => {
  test('without a token: nothing connects; the token goes to sessionStorage only, and first on each socket', async () => {
    const srv = await startFakeLiveServer({ bodies: demoBodies() });
    const pg = await openPage(srv.url, { browser });
    try {
      const s0 = await pg.state();
      assert.deepEqual(Object.keys(s0.providers), PROVIDERS);
      for (const p of PROVIDERS) assert.equal(s0.providers[p].state, 'idle');
      await sleep(300);
      assert.equal(srv.upgrades.length, 0, 'no socket before a token');

      await pg.enterToken('  tok-123  ');
      await pg.waitForState('live');
      const sent = srv.tokens.map((t) => t.provider).sort();
      assert.deepEqual(sent, [...PROVIDERS].sort(), 'one socket per provider');
      for (const t of srv.tokens) assert.equal(t.raw, '{"token":"tok-123"}', 'first message is the token, trimmed');

      const store = await pg.page.evaluate(() => ({
        session: sessionStorage.getItem('scheduler.token'),
        local: localStorage.length,
        url: location.href,
      }));
      assert.equal(store.session, 'tok-123');
      assert.equal(store.local, 0, 'nothing in localStorage');
      assert.ok(!store.url.includes('tok-123'), 'token not in the URL');

      // A reload in the same tab reconnects with the stored token.
      await pg.page.reload();
      await pg.waitForState('live');
      assert.equal(srv.tokens.length, 10);

      // Forget: storage cleared, sockets closed, back to idle.
      await pg.forgetToken();
      await pg.waitForState('idle');
      assert.equal(await pg.page.evaluate(() => sessionStorage.getItem('scheduler.token')), null);
      await pg.waitFor(() => srv.peers().length === 0, { message: 'sockets closed' });
      assert.equal(await pg.page.inputValue('[data-token-input]'), '');
      assert.deepEqual(pg.errors, []);
    } finally {
      await pg.close();
      await srv.close();
    }
  });

  test('first render shows every provider, its accounts, and jobs where they belong', async () => {
    const { srv, pg } = await livePage();
    try {
      const { providers: p } = await pg.state();
      const acct = (prov, name) => p[prov].accounts.find((a) => a.account === name);

      // Kling: jobs under their account (items carry email), ascending accounts.
      assert.deepEqual(p.kling.accounts.map((a) => a.account), ['render2@acme.io', 'studio@acme.io']);
      assert.deepEqual(
        { e: acct('kling', 'studio@acme.io').executing, m: acct('kling', 'studio@acme.io').maxJobs, a: acct('kling', 'studio@acme.io').available },
        { e: 2, m: 5, a: 3 },
      );
      assert.deepEqual(acct('kling', 'studio@acme.io').jobs.map((j) => j.id), ['781245', '781302']);
      assert.deepEqual(acct('kling', 'render2@acme.io').jobs.map((j) => j.id), ['781311']);
      assert.deepEqual(p.kling.jobs, []);
      assert.match(acct('kling', 'studio@acme.io').jobs[0].elapsed, /^62:0\d$/, 'minutes past 59 stay minutes');

      // Dreamina: grouped by account key; model shown.
      const lee = acct('dreamina', 'US:lee@acme.io');
      assert.deepEqual(lee.jobs.map((j) => j.tag), ['seedance-1.0-lite', 'seedream-3.0']);
      assert.equal(lee.jobs[0].id, 'j0418122901377v-u12345-US:lee@acme.io:dreamina');
      assert.match(lee.jobs[0].elapsed, /^13:3\d$/); // elapsedSeconds 812
      assert.equal(acct('dreamina', 'JP:mika@acme.io').jobs.length, 1);

      // MiniMax / PixVerse / RunwayML: provider-level list.
      assert.deepEqual(p.minimax.jobs.map((j) => [j.id, j.tag]), [
        ['318042219454821', 'video'],
        ['img-55e1c0', 'image'],
        ['318042270001123', 'video'],
      ]);
      assert.deepEqual(acct('minimax', 'acme-spare'), { account: 'acme-spare', executing: 0, maxJobs: 2, available: 0, jobs: [] });
      assert.deepEqual(p.pixverse.jobs.map((j) => j.tag), ['video', 'music']);
      assert.equal(p.runwayml.jobs.length, 1);
      assert.equal(p.runwayml.jobs[0].elapsedSource, 'seen', 'RunwayML has no time: time since first seen');
      for (const prov of PROVIDERS) {
        for (const j of [...p[prov].jobs, ...p[prov].accounts.flatMap((a) => a.jobs)]) assert.match(j.elapsed, ELAPSED);
        assert.equal(p[prov].empty, false);
      }
      assert.equal(p.kling.summary, '3 running · 5 free');
      assert.equal((await pg.state()).title, '(12) Scheduler');
      assert.deepEqual(pg.errors, []);
    } finally {
      await pg.close();
      await srv.close();
    }
  });

  test('a pushed change appears; a provider without accounts says so; server strings stay text', async () => {
    const { srv, pg } = await livePage();
    try {
      const kling = structuredClone(srv.bodies.kling);
      kling.executing.push({ id: 990001, email: 'render2@acme.io', started: new Date().toISOString(), elapsed: '00:00' });
      kling.available[0] = { email: 'render2@acme.io', maxJobs: 3, executing: 2, available: 1 };
      srv.push('kling', kling);
      const s = await pg.waitFor(
        (s) => s.providers.kling.accounts[0].executing === 2 && s.providers.kling.accounts[0].jobs.some((j) => j.id === '990001'),
        { message: 'the pushed kling job' },
      );
      assert.equal(s.providers.kling.accounts[0].available, 1);

      srv.push('pixverse', emptyBodies().pixverse);
      await pg.waitFor((s) => s.providers.pixverse.empty && s.providers.pixverse.accounts.length === 0, { message: 'empty pixverse' });
      assert.match(await pg.page.textContent('[data-provider=pixverse] [data-empty]'), /no accounts configured/);

      const evil = '<img src=x onerror="window.__pwned=1">';
      srv.push('minimax', {
        executing: [{ videoId: evil, started: new Date().toISOString(), elapsed: '00:01', replyRef: '<b>x</b>' }],
        available: [{ account: evil, maxJobs: 1, executing: 1, available: 0 }],
      });
      const m = await pg.waitFor((s) => s.providers.minimax.accounts[0]?.account === evil, { message: 'escaped account' });
      assert.equal(m.providers.minimax.jobs[0].id, evil);
      assert.equal(await pg.page.locator('[data-provider=minimax] img, [data-provider=minimax] b').count(), 0);
      assert.equal(await pg.page.evaluate(() => window.__pwned), undefined);
      assert.deepEqual(pg.errors, []);
    } finally {
      await pg.close();
      await srv.close();
    }
  });

  test('elapsed counts up locally from the server value, and from first sight without one', async () => {
    const { srv, pg } = await livePage();
    try {
      const job = (s) => s.providers.kling.accounts[1].jobs[0];
      const runway = (s) => s.providers.runwayml.jobs[0];
      const a = await pg.state();
      assert.match(job(a).elapsed, /^62:0[5-6]$/);
      const b = await pg.waitFor((s) => secs(job(s).elapsed) >= secs(job(a).elapsed) + 2, { timeout: 5000, message: 'kling clock +2 s' });
      assert.match(job(b).elapsed, ELAPSED);
      assert.ok(secs(runway(b).elapsed) >= 1, 'runway clock runs');

      // A push with a new server value restarts from it (no trust in `started`).
      const kling = structuredClone(srv.bodies.kling);
      kling.executing[0].elapsed = '00:59';
      kling.executing[0].started = '2000-01-01T00:00:00.000Z';
      srv.push('kling', kling);
      await pg.waitFor((s) => job(s).elapsed === '00:59' || job(s).elapsed === '01:00', { message: 'server value applied' });
      const c = await pg.waitFor((s) => job(s).elapsed === '01:01', { timeout: 4000, message: '01:01' });
      assert.equal(job(c).elapsedSource, 'server');
      // The RunwayML job keeps its first-seen time across pushes of the same job.
      srv.push('runwayml', srv.bodies.runwayml);
      await sleep(300);
      assert.ok(secs(runway(await pg.state()).elapsed) >= secs(runway(c).elapsed));
    } finally {
      await pg.close();
      await srv.close();
    }
  });

  test('a refused token (close 4401) shows "token refused" and stops reconnecting until a new token', async () => {
    const srv = await startFakeLiveServer({ bodies: demoBodies() });
    const pg = await openPage(srv.url, { browser });
    try {
      await pg.enterToken('bad');
      const s = await pg.waitForState('refused');
      assert.match(s.notice, /token refused/i);
      for (const p of PROVIDERS) assert.equal(s.providers[p].status, 'token refused');
      const attempts = srv.upgrades.length;
      assert.equal(attempts, 5);
      await sleep(1500);
      assert.equal(srv.upgrades.length, attempts, 'no reconnect after 4401');

      await pg.enterToken('good');
      const ok = await pg.waitForState('live');
      assert.equal(ok.notice, null);
      assert.deepEqual(pg.errors.filter((e) => !/WebSocket/.test(e)), []);
    } finally {
      await pg.close();
      await srv.close();
    }
  });

  test('server gone: reconnecting with backoff; back: live again with the new data', async () => {
    const { srv, pg } = await livePage();
    const port = srv.port;
    let srv2;
    try {
      await srv.close();
      await pg.waitForState('reconnecting', undefined, { message: 'reconnecting after the server went away' });
      assert.match((await pg.state()).providers.kling.status, /^reconnecting/);
      // The last data stays on screen meanwhile.
      assert.equal((await pg.state()).providers.kling.accounts.length, 2);

      // Up again, but refusing upgrades (503) for a while: the page backs off.
      srv2 = await startFakeLiveServer({ port, bodies: emptyBodies(), rejectUpgrades: true });
      await sleep(3500);
      const perProvider = srv2.upgrades.filter((u) => u.provider === 'kling').length;
      assert.ok(perProvider >= 1 && perProvider <= 4, `backoff: ${perProvider} kling attempts in 3.5 s`);

      srv2.setRejectUpgrades(false);
      const bodies = emptyBodies();
      bodies.kling = { executing: [], available: [{ email: 'new@acme.io', maxJobs: 1, executing: 0, available: 1 }] };
      srv2.push('kling', bodies.kling);
      const s = await pg.waitForState('live', undefined, { timeout: 15_000 });
      assert.deepEqual(s.providers.kling.accounts.map((a) => a.account), ['new@acme.io']);
      assert.equal(s.providers.dreamina.empty, true);
      assert.deepEqual(pg.errors.filter((e) => !/WebSocket/.test(e)), []);
    } finally {
      await pg.close();
      await srv2?.close();
    }
  });

  test('phone width: nothing overflows sideways', async () => {
    const srv = await startFakeLiveServer({ bodies: demoBodies() });
    const pg = await openPage(srv.url, { browser, viewport: { width: 360, height: 740 }, isMobile: true });
    try {
      await pg.enterToken('good');
      await pg.waitForState('live');
      const w = await pg.page.evaluate(() => [innerWidth, document.documentElement.scrollWidth]);
      assert.equal(w[1], w[0], `page is ${w[1]} px wide in a ${w[0]} px viewport`);
    } finally {
      await pg.close();
      await srv.close();
    }
  });
});
