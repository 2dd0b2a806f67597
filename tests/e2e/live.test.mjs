// The live view's WebSocket protocol (shared API.md "Live view") against the real worker:
// the token as the first message, the `available` body at once and after every change
// (coalesced to at most four a second, nothing while nothing changes), the close codes
// (4401 bad or revoked token, 4400 a first message that is not {"token"}, 4408 no token
// within 10 s, 4429 past the failed-token limit), isolation between users and providers,
// changes nobody wrote (expiry, a timed pause ending, a waiter admitted), 426 without an
// upgrade, and a reconnect after a server restart. Prints the write -> message
// latencies, the messages each change produced per open socket and the coalescing counts.
//
// The client is tests/support/live.mjs (a minimal RFC 6455 client on node:http).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { assertCodeError, assertPlainError } from '../support/assertions.mjs';
import { admin, pub, req } from '../support/client.mjs';
import { accountPath, completeJob, issueToken, mustRegister, registerJob, setupUser } from '../support/fixtures.mjs';
import { connectLive, livePath, openLive, openSocket, PUBLIC_BASE } from '../support/live.mjs';
import { sleep, startWorker } from '../support/server.mjs';

const PROVIDERS = ['kling', 'dreamina', 'minimax', 'pixverse', 'runwayml'];
/** Time a change may take to reach a socket (the contract: "within a second"; generous). */
const PUSH_BOUND_MS = 2000;

let w;
const workers = [];
const clients = [];
const figures = { latency: [], perChange: [], coalescing: [] };

before(async () => {
  w = await startWorker();
  workers.push(w);
});

after(async () => {
  for (const c of clients) c.destroy();
  const l = [...figures.latency].sort((a, b) => a - b);
  if (l.length) {
    console.log(
      `[live] write -> socket message latency over ${l.length} changes: min ${l[0].toFixed(1)} ms, ` +
        `median ${l[Math.floor(l.length / 2)].toFixed(1)} ms, max ${l[l.length - 1].toFixed(1)} ms`,
    );
  }
  if (figures.perChange.length) console.log(`[live] messages per change per socket: ${figures.perChange.join('; ')}`);
  for (const c of figures.coalescing) console.log(`[live] coalescing: ${c}`);
  await Promise.all(workers.map((x) => x.stop()));
});

// ---------------------------------------------------------------------------------------
// Helpers

/** connectLive, remembered for cleanup. */
async function live(url, provider, token, opts) {
  const c = await connectLive(url, provider, token, opts);
  clients.push(c);
  return c;
}

/** openLive (nothing sent), remembered for cleanup. */
async function raw(url, provider) {
  const c = await openLive(url, provider);
  clients.push(c);
  return c;
}

/** An upgrade the worker must refuse: { status, headers, text, json } of its answer. */
async function refusedUpgrade(path, headers = {}) {
  try {
    const c = await openSocket(w.url, path, { headers });
    c.destroy();
  } catch (err) {
    if (!err.status) throw err;
    assert.ok(err.status < 500, `${path} -> ${err.status}: ${err.text}`);
    let json;
    try {
      json = JSON.parse(err.text);
    } catch {
      /* not JSON */
    }
    return { status: err.status, headers: new Headers(err.headers), text: err.text, json };
  }
  assert.fail(`${path}: upgraded (101) with ${JSON.stringify(headers)}`);
}

function available(url, token, provider) {
  return pub(url, token, 'GET', `${PUBLIC_BASE[provider]}/available`);
}

const secs = (mmss) => {
  const m = /^(\d+):(\d\d)$/.exec(mmss);
  return m ? Number(m[1]) * 60 + Number(m[2]) : NaN;
};

/**
 * Where two `available` bodies differ (null when they do not), `elapsed` and
 * `elapsedSeconds` allowed to have grown by up to `tol` seconds from `a` (the pushed one)
 * to `b` (the GET made after it).
 */
function bodyDiff(a, b, tol = 3, at = 'body') {
  const J = JSON.stringify;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return `${at}: ${J(a)} vs ${J(b)}`;
    for (let i = 0; i < a.length; i++) {
      const d = bodyDiff(a[i], b[i], tol, `${at}[${i}]`);
      if (d) return d;
    }
    return null;
  }
  if (a && b && typeof a === 'object' && typeof b === 'object') {
    const ka = Object.keys(a).sort();
    const kb = Object.keys(b).sort();
    if (J(ka) !== J(kb)) return `${at}: keys ${J(ka)} vs ${J(kb)}`;
    for (const k of ka) {
      if (k === 'elapsed' || k === 'elapsedSeconds') {
        const x = k === 'elapsed' ? secs(a[k]) : a[k];
        const y = k === 'elapsed' ? secs(b[k]) : b[k];
        if (!(Number.isFinite(x) && Number.isFinite(y) && y - x >= -1 && y - x <= tol)) return `${at}.${k}: ${J(a[k])} vs ${J(b[k])}`;
        continue;
      }
      const d = bodyDiff(a[k], b[k], tol, `${at}.${k}`);
      if (d) return d;
    }
    return null;
  }
  return a === b ? null : `${at}: ${J(a)} vs ${J(b)}`;
}

/** Asserts that message `m` is {"type":"available","body":…} with the body of `r` (a GET). */
function assertMatches(m, r, what) {
  assert.ok(m.json && typeof m.json === 'object', `${what}: message is not JSON: ${m.text}`);
  assert.deepEqual(Object.keys(m.json).sort(), ['body', 'type'], `${what}: ${m.text}`);
  assert.equal(m.json.type, 'available');
  assert.equal(r.status, 200, r.text);
  const d = bodyDiff(m.json.body, r.json);
  assert.equal(d, null, `${what}: pushed body differs from GET …/available: ${d}\n pushed: ${JSON.stringify(m.json.body)}\n GET:    ${r.text}`);
}

/** Registration bodies and the id to complete/cancel them by, per provider. */
const ACCOUNT = { kling: 'a@x.com', dreamina: 'US:a@x.com', minimax: 'acct-a', pixverse: 'a@x.com', runwayml: 'a@x.com' };
function jobBody(provider, n, account) {
  const acct = account ?? ACCOUNT[provider];
  switch (provider) {
    case 'kling':
      return { id: n, email: acct };
    case 'dreamina':
      return { submitId: `s${n}`, model: 'seedance-1.0-pro', account: acct, jobid: `job-${n}` };
    case 'minimax':
      return { videoId: `v${n}`, account: acct };
    case 'pixverse':
      return { id: `p${n}`, type: 'video', email: acct };
    case 'runwayml':
      return { taskId: `t-${n}`, email: acct, replyRef: `ref-${n}` };
  }
  throw new Error(provider);
}
const jobId = (provider, job) => ({ kling: job.id, dreamina: job.jobid, minimax: job.videoId ?? job.imageId, pixverse: job.id, runwayml: job.taskId })[provider];

/** Messages each socket received since its mark, once quiet for `quietMs`. */
async function settle(socks, marks, quietMs = 800) {
  let last = -1;
  let lastChange = performance.now();
  for (;;) {
    const n = socks.reduce((s, c) => s + c.messages.length, 0);
    if (n !== last) {
      last = n;
      lastChange = performance.now();
    } else if (performance.now() - lastChange >= quietMs) {
      return socks.map((c, i) => c.messages.length - marks[i]);
    }
    await sleep(50);
  }
}

/**
 * Runs `change`, waits for the next message on every socket in `socks`, then for quiet;
 * asserts one message per socket within PUSH_BOUND_MS whose body is GET …/available now.
 * Returns the latency (ms) from just before the write to the first socket's message.
 */
async function expectPush(socks, token, provider, what, change, url = w.url) {
  const marks = socks.map((c) => c.mark());
  const t0 = performance.now();
  await change();
  const msgs = await Promise.all(socks.map((c, i) => c.message(marks[i], { timeout: PUSH_BOUND_MS + 3000, message: `the push after ${what}` })));
  const lat = msgs.map((m) => m.t - t0);
  for (const l of lat) assert.ok(l <= PUSH_BOUND_MS, `${what}: message ${l.toFixed(0)} ms after the write (bound ${PUSH_BOUND_MS} ms)`);
  const counts = await settle(socks, marks);
  const r = await available(url, token, provider);
  for (const [i, c] of socks.entries()) assertMatches(c.messages[c.messages.length - 1], r, `${provider} ${what} (socket ${i})`);
  figures.latency.push(lat[0]); // one figure per change (the first socket's)
  figures.perChange.push(`${provider} ${what}: ${counts.join('/')}`);
  for (const n of counts) assert.equal(n, 1, `${what}: one message per socket per change, got ${counts.join(', ')}`);
  return lat[0];
}

// ---------------------------------------------------------------------------------------

describe('live view: handshake', () => {
  test('GET without Upgrade -> 426 JSON in the provider\'s error shape; another method -> 405', async () => {
    const { token } = await setupUser(w.url, { kling: { 'a@x.com': 1 } });
    const shape = (p, r, what) => {
      assert.match(r.headers.get('content-type') ?? '', /application\/json/, `${p} ${what}: ${r.text}`);
      if (p === 'dreamina') assertPlainError(r, 426);
      else assertCodeError(r, 426);
    };
    for (const p of PROVIDERS) {
      for (const headers of [{}, { authorization: `Bearer ${token}` }]) shape(p, await req(w.url, 'GET', livePath(p), { headers }), 'plain GET');
      // An upgrade to something else than websocket (fetch cannot send one: raw socket).
      shape(p, await refusedUpgrade(livePath(p), { upgrade: 'h2c' }), 'Upgrade: h2c');
      const post = await req(w.url, 'POST', livePath(p), { body: {} });
      assert.equal(post.status, 405, `POST ${livePath(p)}: ${post.text}`);
      assert.match(post.headers.get('allow') ?? '', /GET/);
    }
    // The v1 path of PixVerse is not a live view.
    const wrong = await refusedUpgrade('/v1/pixverse/scheduler/live');
    assert.equal(wrong.status, 404, wrong.text);
  });

  test('{"token": good} -> at once {"type":"available","body": <GET …/available>} on every provider', async (t) => {
    const { user, token } = await setupUser(w.url, {
      kling: { 'a@x.com': 3, 'b@x.com': 2 },
      dreamina: { 'US:a@x.com': 2, 'JP:b@x.com': 1 },
      minimax: { 'acct-a': 2, 'acct-b': 1 },
      pixverse: { 'a@x.com': 4 },
      runwayml: { 'a@x.com': 2, 'b@x.com': 1 },
    });
    for (const p of PROVIDERS) {
      await mustRegister(w.url, user, p, jobBody(p, 1));
      await mustRegister(w.url, user, p, jobBody(p, 2));
    }
    await mustRegister(w.url, user, 'minimax', { imageId: 'img-1', account: 'acct-a' });
    const times = [];
    for (const p of PROVIDERS) {
      const c = await live(w.url, p, token);
      times.push(`${p} ${(c.messages[0].t - c.helloAt).toFixed(1)} ms`);
      const r = await available(w.url, token, p);
      assertMatches(c.messages[0], r, `${p} first message`);
      if (p === 'runwayml') {
        // No time fields: the message is the GET's body byte for byte.
        assert.equal(c.messages[0].text, `{"type":"available","body":${r.text}}`);
      }
      const body = c.messages[0].json.body;
      const n = p === 'dreamina' ? body.total : body.executing.length;
      assert.equal(n, p === 'minimax' ? 3 : 2, `${p}: ${c.messages[0].text}`);
      c.close();
    }
    t.diagnostic(`token -> first message: ${times.join(', ')}`);
    console.log(`[live] token -> first message: ${times.join(', ')}`);
  });

  test('a user with no account gets the empty body; a message after the token is ignored', async () => {
    const { user, token } = await setupUser(w.url, {});
    const c = await live(w.url, 'kling', token);
    assert.equal(c.messages[0].text, '{"type":"available","body":{"executing":[],"available":[]}}');
    const d = await live(w.url, 'dreamina', token);
    assert.equal(d.messages[0].text, '{"type":"available","body":{"executing":{},"total":0,"available":[]}}');
    // Anything sent after the token: ignored, the socket stays and still gets changes.
    c.send('{"token":"something else"}');
    c.send('not json');
    await sleep(500);
    assert.equal(c.closed, null, 'still open');
    await expectPush([c], token, 'kling', 'first account', () => admin(w.url, 'PUT', accountPath(user, 'kling', 'a@x.com'), { maxJobs: 2 }));
  });

  test('a bad token -> close 4401', async () => {
    const { token } = await setupUser(w.url, {});
    for (const bad of ['nope', token + 'x', '']) {
      const c = await raw(w.url, 'kling');
      c.send(JSON.stringify({ token: bad }));
      const { code } = await c.waitClose({ timeout: 10_000 });
      assert.equal(code, 4401, `token ${JSON.stringify(bad)}`);
      assert.equal(c.messages.length, 0, 'no message before the close');
    }
    const p = await raw(w.url, 'pixverse');
    p.send(JSON.stringify({ token: 'nope' }));
    assert.equal((await p.waitClose({ timeout: 10_000 })).code, 4401);
  });

  test('a first message that is not {"token"} -> close 4400', async () => {
    const { token } = await setupUser(w.url, {});
    for (const hello of ['hello', token, '{}', '[]', `["${token}"]`, '{"token":5}', '{"token":null}', '{"tok":"x"}', `{"token":"${token}"`]) {
      const c = await raw(w.url, 'dreamina');
      c.send(hello);
      const { code } = await c.waitClose({ timeout: 10_000 });
      assert.equal(code, 4400, `first message ${hello}`);
      assert.equal(c.messages.length, 0);
    }
  });

  test('no first message within 10 s -> close 4408; a socket that sent its token stays open and, idle that long, still gets pushes', async (t) => {
    const { user, token } = await setupUser(w.url, { kling: { 'a@x.com': 2 } });
    const c = await raw(w.url, 'minimax');
    const t0 = performance.now();
    const good = await live(w.url, 'kling', token);
    const { code } = await c.waitClose({ timeout: 40_000 });
    const took = performance.now() - t0;
    t.diagnostic(`closed ${code} after ${took.toFixed(0)} ms`);
    console.log(`[live] no token: closed ${code} after ${took.toFixed(0)} ms`);
    assert.equal(code, 4408);
    assert.ok(took >= 9000 && took <= 30_000, `closed after ${took.toFixed(0)} ms (10 s expected)`);
    assert.equal(c.messages.length, 0);
    // The socket that did send its token: not closed by the hello timeout, and still
    // followed after 10 s without any traffic.
    await sleep(1000);
    assert.equal(good.closed, null, 'the authenticated socket is still open');
    assert.equal(good.messages.length, 1);
    await expectPush([good], token, 'kling', 'register after 11 s idle', () => mustRegister(w.url, user, 'kling', { id: 1 }));
  });
});

describe('live view: pushes', () => {
  test('every change -> one message per socket within ~1 s whose body is GET …/available after it (Kling, 3 sockets)', async (t) => {
    const { user, token } = await setupUser(w.url, { kling: { 'a@x.com': 2, 'b@x.com': 3 } });
    const socks = [await live(w.url, 'kling', token), await live(w.url, 'kling', token), await live(w.url, 'kling', token)];
    const lat = [];
    const K = (p) => `/admin/v1/users/${user}/kling${p}`;
    const step = async (what, fn) => lat.push([what, await expectPush(socks, token, 'kling', what, fn)]);
    await step('register', () => mustRegister(w.url, user, 'kling', { id: 101, email: 'a@x.com' }));
    await step('register (auto account)', () => mustRegister(w.url, user, 'kling', { id: 102 }));
    await step('complete', async () => assert.equal((await completeJob(w.url, user, 'kling', 101)).status, 200));
    await step('cancel (public DELETE)', async () => assert.equal((await pub(w.url, token, 'DELETE', '/v1/kling/scheduler/102')).status, 204));
    await step('register', () => mustRegister(w.url, user, 'kling', { id: 103, email: 'a@x.com' }));
    await step('pause', async () => assert.equal((await admin(w.url, 'POST', K('/accounts/a%40x.com/pause'), { reason: 'maintenance' })).status, 200));
    const paused = socks[0].messages.at(-1).json.body.available.find((a) => a.email === 'a@x.com');
    assert.deepEqual(paused, { email: 'a@x.com', maxJobs: 2, executing: 1, available: 0 });
    await step('resume', async () => assert.equal((await admin(w.url, 'POST', K('/accounts/a%40x.com/resume'))).status, 200));
    await step('maxJobs change', () => admin(w.url, 'PUT', accountPath(user, 'kling', 'b@x.com'), { maxJobs: 7 }));
    assert.equal(socks[0].messages.at(-1).json.body.available.find((a) => a.email === 'b@x.com').maxJobs, 7);
    await step('account added', () => admin(w.url, 'PUT', accountPath(user, 'kling', 'c@x.com'), { maxJobs: 1 }));
    await step('account removed', async () => assert.equal((await admin(w.url, 'DELETE', accountPath(user, 'kling', 'c@x.com'))).status, 204));
    await step('failed completion', async () => assert.equal((await completeJob(w.url, user, 'kling', 103, { status: 'failed' })).status, 200));
    assert.equal(socks[0].messages.at(-1).json.body.executing.length, 0);
    const line = lat.map(([k, v]) => `${k} ${v.toFixed(0)}`).join(', ');
    t.diagnostic(`write -> message (ms): ${line}`);
    console.log(`[live] kling write -> message (ms): ${line}`);
  });

  test('push cost: 20 sockets of one user, each change -> exactly one message on each', async (t) => {
    const { user, token } = await setupUser(w.url, { kling: { 'a@x.com': 5 } });
    const socks = [];
    for (let i = 0; i < 20; i++) socks.push(await live(w.url, 'kling', token));
    const spread = [];
    for (const [what, fn] of [
      ['register', () => mustRegister(w.url, user, 'kling', { id: 1 })],
      ['maxJobs change', () => admin(w.url, 'PUT', accountPath(user, 'kling', 'a@x.com'), { maxJobs: 4 })],
      ['complete', async () => assert.equal((await completeJob(w.url, user, 'kling', 1)).status, 200)],
    ]) {
      const marks = socks.map((c) => c.mark());
      const t0 = performance.now();
      await expectPush(socks, token, 'kling', `${what} (20 sockets)`, fn);
      const lat = socks.map((c, i) => c.messages[marks[i]].t - t0).sort((a, b) => a - b);
      spread.push(`${what} ${lat[0].toFixed(0)}..${lat.at(-1).toFixed(0)}`);
    }
    const line = `20 sockets, write -> message on each (first..last socket, ms): ${spread.join(', ')}`;
    t.diagnostic(line);
    console.log(`[live] ${line}`);
  });

  test('every provider pushes register / complete / maxJobs changes (PixVerse on /v2)', async (t) => {
    const { user, token } = await setupUser(w.url, {
      dreamina: { 'US:a@x.com': 2 },
      minimax: { 'acct-a': 2 },
      pixverse: { 'a@x.com': 2 },
      runwayml: { 'a@x.com': 2 },
    });
    const out = [];
    for (const p of ['dreamina', 'minimax', 'pixverse', 'runwayml']) {
      const c = await live(w.url, p, token);
      let job;
      const a = await expectPush([c], token, p, 'register', async () => {
        job = await mustRegister(w.url, user, p, jobBody(p, 7));
      });
      const b = await expectPush([c], token, p, 'complete', async () => assert.equal((await completeJob(w.url, user, p, jobId(p, job))).status, 200));
      const m = await expectPush([c], token, p, 'maxJobs change', () => admin(w.url, 'PUT', accountPath(user, p, ACCOUNT[p]), { maxJobs: 1 }));
      out.push(`${p} ${a.toFixed(0)}/${b.toFixed(0)}/${m.toFixed(0)}`);
      if (p === 'minimax') {
        // An image job is listed (a change to the body) though it takes no slot.
        await expectPush([c], token, p, 'image job', () => mustRegister(w.url, user, p, { imageId: 'img-9', account: 'acct-a' }));
        const body = c.messages.at(-1).json.body;
        assert.deepEqual(body.executing.map((j) => j.imageId), ['img-9']);
        assert.deepEqual(body.available, [{ account: 'acct-a', maxJobs: 1, executing: 0, available: 1 }]);
      }
    }
    t.diagnostic(`register/complete/maxJobs -> message (ms): ${out.join(', ')}`);
    console.log(`[live] register/complete/maxJobs -> message (ms): ${out.join(', ')}`);
  });

  test('silence: no message for 3 s while nothing changes (jobs executing, reads going on)', async () => {
    const { user, token } = await setupUser(w.url, { kling: { 'a@x.com': 3 }, dreamina: { 'US:a@x.com': 2 } });
    await mustRegister(w.url, user, 'kling', { id: 1, email: 'a@x.com' });
    await mustRegister(w.url, user, 'dreamina', jobBody('dreamina', 1));
    const k = await live(w.url, 'kling', token);
    const d = await live(w.url, 'dreamina', token);
    const end = performance.now() + 3500;
    // Reads are not changes (lists never push); elapsed time counting is not a change.
    while (performance.now() < end) {
      for (const path of ['/v1/kling/scheduler', '/v1/kling/scheduler/available', '/v1/dreamina/scheduler', '/v1/dreamina/scheduler/available']) {
        assert.equal((await pub(w.url, token, 'GET', path)).status, 200);
      }
      assert.equal((await admin(w.url, 'GET', `/admin/v1/users/${user}/kling/accounts`)).status, 200);
      assert.equal((await admin(w.url, 'GET', `/admin/v1/users/${user}/kling/jobs`)).status, 200);
      await sleep(400);
    }
    assert.equal(k.messages.length, 1, `kling: ${k.messages.slice(1).map((m) => m.text).join('\n')}`);
    assert.equal(d.messages.length, 1, `dreamina: ${d.messages.slice(1).map((m) => m.text).join('\n')}`);
    assert.equal(k.closed, null);
  });

  test('silence: rejected writes (409, 404, 429, 400) change nothing and push nothing', async () => {
    const { user, token } = await setupUser(w.url, { kling: { 'a@x.com': 1 } });
    await mustRegister(w.url, user, 'kling', { id: 1, email: 'a@x.com' });
    const k = await live(w.url, 'kling', token);
    assert.equal((await registerJob(w.url, user, 'kling', { id: 1, email: 'a@x.com' })).status, 409);
    assert.equal((await registerJob(w.url, user, 'kling', { id: 2, email: 'a@x.com' })).status, 429);
    assert.equal((await registerJob(w.url, user, 'kling', { id: 3, email: 'zz@x.com' })).status, 404);
    assert.equal((await registerJob(w.url, user, 'kling', { id: -3 })).status, 400);
    assert.equal((await completeJob(w.url, user, 'kling', 99)).status, 404);
    assert.equal((await pub(w.url, token, 'DELETE', '/v1/kling/scheduler/98')).status, 404);
    assert.equal((await admin(w.url, 'POST', `/admin/v1/users/${user}/kling/accounts/nobody%40x.com/pause`)).status, 404);
    await sleep(2000);
    assert.equal(k.messages.length, 1, `pushes after rejected writes: ${k.messages.slice(1).map((m) => m.text).join('\n')}`);
  });

  /** Per-socket figures of the messages got since `mark`: per 1 s window from the first, gaps. */
  function rate(got) {
    const windows = [];
    for (const m of got) {
      const k = Math.floor((m.t - got[0].t) / 1000);
      windows[k] = (windows[k] ?? 0) + 1;
    }
    const perWindow = Array.from(windows, (n) => n ?? 0);
    const gaps = got.slice(1).map((m, j) => Math.round(m.t - got[j].t));
    // The shortest time any 5 consecutive messages took: at most 4 a second means at
    // least 1000 ms (the server spaces its pushes >= 250 ms apart when it sends them;
    // delivery may shift one by some ms, hence the 100 ms allowance below).
    let span5 = Infinity;
    for (let i = 0; i + 4 < got.length; i++) span5 = Math.min(span5, Math.round(got[i + 4].t - got[i].t));
    return { perWindow, gaps, span5 };
  }

  /**
   * At most 4 messages a second: no 1 s window (counted from the first message) holds
   * more than 4, unless delivery jitter alone explains a fifth (any 5 consecutive
   * messages still span >= 900 ms, which is asserted always).
   */
  function assertRate({ perWindow, span5 }, line) {
    assert.ok(span5 >= 900, `5 messages within ${span5} ms (at most 4 a second): ${line}`);
    for (const n of perWindow) assert.ok(n <= 5, `at most 4 messages a second: ${line}`);
  }

  test('coalescing: 20 registrations + completions fired at once -> at most 4 messages a second; the last is the final state', async (t) => {
    const { user, token } = await setupUser(w.url, { kling: { 'a@x.com': 50, 'b@x.com': 50 } });
    const socks = [await live(w.url, 'kling', token), await live(w.url, 'kling', token)];
    const marks = socks.map((c) => c.mark());
    const t0 = performance.now();
    const ids = Array.from({ length: 20 }, (_, i) => 500 + i);
    // 20 registrations at once; each job is completed as soon as it is registered,
    // except the last three, which stay.
    let writes = 0;
    await Promise.all(
      ids.map(async (id, i) => {
        await mustRegister(w.url, user, 'kling', { id });
        writes++;
        if (i < 17) {
          assert.equal((await completeJob(w.url, user, 'kling', id)).status, 200);
          writes++;
        }
      }),
    );
    const writesMs = performance.now() - t0;
    const counts = await settle(socks, marks, 1500);
    const r = await available(w.url, token, 'kling');
    assert.deepEqual(r.json.executing.map((j) => j.id).sort(), [517, 518, 519]);
    for (const [i, c] of socks.entries()) {
      const got = c.messages.slice(marks[i]);
      assert.ok(got.length >= 1, 'at least one message');
      assertMatches(got.at(-1), r, `socket ${i}: the last message`);
      const rt = rate(got);
      const line = `burst, socket ${i}: ${writes} writes in ${writesMs.toFixed(0)} ms -> ${got.length} messages; per 1 s window ${JSON.stringify(rt.perWindow)}; gaps (ms) ${JSON.stringify(rt.gaps)}`;
      t.diagnostic(line);
      figures.coalescing.push(line);
      assertRate(rt, line);
      assert.ok(got.length < writes, line);
    }
    assert.equal(counts[0], counts[1], 'both sockets got the same pushes');
  });

  test('coalescing under a steady stream of writes for 4 s: at most 4 a second, and no starvation', async (t) => {
    const { user, token } = await setupUser(w.url, { kling: { 'a@x.com': 50 } });
    const c = await live(w.url, 'kling', token);
    const mark = c.mark();
    const t0 = performance.now();
    let writes = 0;
    let id = 1000;
    // One writer, back to back: register, complete, register, ... for 4 s; the last
    // registration stays.
    while (performance.now() - t0 < 4000) {
      id++;
      await mustRegister(w.url, user, 'kling', { id });
      writes++;
      assert.equal((await completeJob(w.url, user, 'kling', id)).status, 200);
      writes++;
    }
    await mustRegister(w.url, user, 'kling', { id: 9999 });
    writes++;
    const writesMs = performance.now() - t0;
    await settle([c], [mark], 1500);
    const got = c.messages.slice(mark);
    const r = await available(w.url, token, 'kling');
    assert.deepEqual(r.json.executing.map((j) => j.id), [9999]);
    assertMatches(got.at(-1), r, 'the last message');
    const rt = rate(got);
    const { gaps } = rt;
    const line = `steady: ${writes} writes in ${writesMs.toFixed(0)} ms -> ${got.length} messages; per 1 s window ${JSON.stringify(rt.perWindow)}; shortest span of 5 messages ${rt.span5} ms; gaps (ms) ${JSON.stringify(gaps)}`;
    t.diagnostic(line);
    figures.coalescing.push(line);
    assertRate(rt, line);
    // Changes keep being pushed while writes go on (each within about a second).
    assert.ok(Math.max(...gaps) <= 1500, `a gap of ${Math.max(...gaps)} ms between pushes during steady writes: ${line}`);
    assert.ok(got.length >= 8, `pushes while writes go on: ${line}`);
  });
});

describe('live view: isolation', () => {
  test("user B's sockets never get A's changes (same account names); a Kling socket gets nothing from Dreamina", async () => {
    const accounts = { kling: { 'same@x.com': 3 }, dreamina: { 'US:same@x.com': 3 } };
    const A = await setupUser(w.url, accounts, 'A');
    const B = await setupUser(w.url, accounts, 'B');
    const aK = await live(w.url, 'kling', A.token);
    const aD = await live(w.url, 'dreamina', A.token);
    const bK = await live(w.url, 'kling', B.token);
    const bD = await live(w.url, 'dreamina', B.token);
    const all = [aK, aD, bK, bD];
    // B's first bodies are B's own (the same as A's: nothing yet).
    assert.deepEqual(bK.messages[0].json.body, { executing: [], available: [{ email: 'same@x.com', maxJobs: 3, executing: 0, available: 3 }] });

    // A's Kling changes: only A's Kling socket hears them.
    let marks = all.map((c) => c.mark());
    await mustRegister(w.url, A.user, 'kling', { id: 1, email: 'same@x.com' });
    await aK.message(marks[0], { timeout: PUSH_BOUND_MS + 3000 });
    await admin(w.url, 'POST', `/admin/v1/users/${A.user}/kling/accounts/same%40x.com/pause`);
    await admin(w.url, 'PUT', accountPath(A.user, 'kling', 'same@x.com'), { maxJobs: 5 });
    assert.equal((await completeJob(w.url, A.user, 'kling', 1)).status, 200);
    let got = await settle(all, marks, 1500);
    assert.ok(got[0] >= 1, 'A kling heard its changes');
    assert.deepEqual(got.slice(1), [0, 0, 0], `A dreamina, B kling, B dreamina must hear nothing: ${got}`);

    // A's Dreamina changes: only A's Dreamina socket.
    marks = all.map((c) => c.mark());
    const j = await mustRegister(w.url, A.user, 'dreamina', jobBody('dreamina', 1, 'US:same@x.com'));
    await aD.message(marks[1], { timeout: PUSH_BOUND_MS + 3000 });
    assert.equal((await completeJob(w.url, A.user, 'dreamina', j.jobid)).status, 200);
    got = await settle(all, marks, 1500);
    assert.ok(got[1] >= 1, 'A dreamina heard its changes');
    assert.deepEqual([got[0], got[2], got[3]], [0, 0, 0], `A kling, B kling, B dreamina must hear nothing: ${got}`);

    // And the other way round: B's change reaches B only, with B's own state.
    marks = all.map((c) => c.mark());
    await mustRegister(w.url, B.user, 'kling', { id: 1, email: 'same@x.com' });
    await bK.message(marks[2], { timeout: PUSH_BOUND_MS + 3000 });
    got = await settle(all, marks, 1500);
    assert.deepEqual(got, [0, 0, 1, 0], `only B kling: ${got}`);
    assertMatches(bK.messages.at(-1), await available(w.url, B.token, 'kling'), 'B kling');
    assert.deepEqual(bK.messages.at(-1).json.body.available, [{ email: 'same@x.com', maxJobs: 3, executing: 1, available: 2 }]);
  });
});

describe('live view: revocation', () => {
  test("revoking a token closes its sockets with 4401 within ~2 s; the user's other token stays", async (t) => {
    const { user, token } = await setupUser(w.url, { kling: { 'a@x.com': 2 }, pixverse: { 'a@x.com': 2 } });
    const other = await issueToken(w.url, user);
    const mine = [await live(w.url, 'kling', token), await live(w.url, 'pixverse', token), await live(w.url, 'runwayml', token)];
    const kept = await live(w.url, 'kling', other);
    const t0 = performance.now();
    assert.equal((await admin(w.url, 'POST', '/admin/v1/tokens/revoke', { token })).status, 204);
    const closes = await Promise.all(mine.map((c) => c.waitClose({ timeout: 10_000 })));
    const took = closes.map((c) => c.t - t0);
    t.diagnostic(`revoke -> close (ms): ${took.map((x) => x.toFixed(0)).join(', ')}`);
    console.log(`[live] revoke -> close 4401 (kling, pixverse, runwayml) ms: ${took.map((x) => x.toFixed(0)).join(', ')}`);
    for (const [i, c] of closes.entries()) {
      assert.equal(c.code, 4401, `socket ${i}`);
      assert.ok(took[i] <= 2500, `socket ${i} closed ${took[i].toFixed(0)} ms after the revoke`);
    }
    // The revoked token opens nothing any more.
    const again = await raw(w.url, 'kling');
    again.send(JSON.stringify({ token }));
    assert.equal((await again.waitClose({ timeout: 10_000 })).code, 4401);
    // The other token's socket is still open and still gets changes.
    assert.equal(kept.closed, null);
    await expectPush([kept], other, 'kling', 'register after a revoke', () => mustRegister(w.url, user, 'kling', { id: 5 }));
  });
});

describe('live view: changes nobody wrote', () => {
  test('a job expiring, a timed pause ending and a waiting registration admitted are pushed too', async (t) => {
    const w1 = await startWorker({ vars: { JOB_TIMEOUT_SECONDS: '3' } });
    workers.push(w1);
    const { user, token } = await setupUser(w1.url, { kling: { 'a@x.com': 1 }, runwayml: { 'r@x.com': 1 } });
    const k = await live(w1.url, 'kling', token);
    const r = await live(w1.url, 'runwayml', token);

    // Expiry: pushed when the account's alarm expires the job (3 s after its start).
    // Timed from before the registration: expectPush also waits out a settle window.
    const registered = performance.now();
    await expectPush([k], token, 'kling', 'register (expires in 3 s)', () => mustRegister(w1.url, user, 'kling', { id: 1 }), w1.url);
    let mark = k.mark();
    const expired = await k.until(() => k.messages.slice(mark).find((m) => m.json.body.executing.length === 0), { timeout: 20_000, message: 'the push of the expiry' });
    const expiryMs = expired.t - registered;
    assertMatches(expired, await available(w1.url, token, 'kling'), 'after the expiry');
    assert.deepEqual(expired.json.body.available, [{ email: 'a@x.com', maxJobs: 1, executing: 0, available: 1 }]);
    assert.ok(expiryMs >= 2900, `expiry pushed ${expiryMs.toFixed(0)} ms after the registration was sent`);

    // A timed pause: pushed when it starts and when it ends by itself.
    const paused = performance.now();
    await expectPush([r], token, 'runwayml', 'pause for 2 s', () => admin(w1.url, 'POST', `/admin/v1/users/${user}/runwayml/accounts/r%40x.com/pause`, { seconds: 2 }), w1.url);
    assert.equal(r.messages.at(-1).json.body.available[0].available, 0);
    mark = r.mark();
    const resumed = await r.until(() => r.messages.slice(mark).find((m) => m.json.body.available[0].available === 1), { timeout: 20_000, message: 'the push of the pause end' });
    const resumeMs = resumed.t - paused;
    assertMatches(resumed, await available(w1.url, token, 'runwayml'), 'after the pause ended');

    // A registration waiting for a slot: admitted when the slot frees; the last push shows it.
    await mustRegister(w1.url, user, 'runwayml', { taskId: 'first' });
    await settle([r], [r.mark()], 600);
    mark = r.mark();
    const waiting = registerJob(w1.url, user, 'runwayml', { taskId: 'waiter', waitSeconds: 20 });
    await sleep(500);
    assert.equal(r.messages.length, mark, 'a registration still waiting is no change');
    assert.equal((await completeJob(w1.url, user, 'runwayml', 'first')).status, 200);
    assert.equal((await waiting).status, 201);
    await settle([r], [mark], 800);
    assert.deepEqual(r.messages.at(-1).json.body.executing.map((j) => j.taskId), ['waiter']);
    assertMatches(r.messages.at(-1), await available(w1.url, token, 'runwayml'), 'after the waiter was admitted');
    const line = `expiry pushed ${expiryMs.toFixed(0)} ms after the registration (timeout 3 s); timed pause (2 s) end pushed ${resumeMs.toFixed(0)} ms after the pause; complete + waiter admitted: ${r.messages.length - mark} message(s)`;
    t.diagnostic(line);
    console.log(`[live] ${line}`);
  });
});

describe('live view: throttling', () => {
  test('past 30 failed tokens a minute from one address -> close 4429; a good token still connects', async () => {
    // Its own worker: the failures count against the client address (all tests here
    // come from 127.0.0.1), and would throttle the other tests' bad tokens.
    const w1 = await startWorker();
    workers.push(w1);
    const { token } = await setupUser(w1.url, { kling: { 'a@x.com': 1 } });
    const codes = [];
    for (let i = 0; i < 33; i++) {
      const c = await raw(w1.url, i % 2 ? 'kling' : 'pixverse');
      c.send(JSON.stringify({ token: `guess-${i}` }));
      codes.push((await c.waitClose({ timeout: 10_000 })).code);
    }
    assert.deepEqual(codes.slice(0, 30), Array(30).fill(4401), codes.join(' '));
    assert.deepEqual(codes.slice(30), [4429, 4429, 4429], codes.join(' '));
    const ok = await live(w1.url, 'kling', token);
    assert.equal(ok.messages[0].json.type, 'available');
  });
});

describe('live view: restart', () => {
  test('after a crash and a restart on the same state, a client reconnects and gets the current body; changes push again', async () => {
    const w1 = await startWorker();
    workers.push(w1);
    const { user, token } = await setupUser(w1.url, { kling: { 'a@x.com': 3 }, pixverse: { 'p@x.com': 2 } });
    await mustRegister(w1.url, user, 'kling', { id: 1, email: 'a@x.com' });
    await mustRegister(w1.url, user, 'pixverse', { id: 'p1', type: 'music' });
    const before = await live(w1.url, 'kling', token);
    const beforeP = await live(w1.url, 'pixverse', token);
    assert.equal(before.messages[0].json.body.executing.length, 1);

    assert.equal(await w1.kill(), true);
    const gone = await before.waitClose({ timeout: 15_000 });
    assert.notEqual(gone.code, 4401, 'a crash is not a refused token');
    const w2 = await startWorker({ persistDir: w1.persistDir });
    workers.push(w2);

    const k = await live(w2.url, 'kling', token);
    assertMatches(k.messages[0], await available(w2.url, token, 'kling'), 'kling after the restart');
    assert.deepEqual(k.messages[0].json.body.executing.map((j) => j.id), [1]);
    const p = await live(w2.url, 'pixverse', token);
    assertMatches(p.messages[0], await available(w2.url, token, 'pixverse'), 'pixverse after the restart');
    assert.deepEqual(p.messages[0].json.body.executing.map((j) => [j.id, j.type]), [['p1', 'music']]);
    // The subscriptions of the sockets lost in the crash do not get in the way.
    await expectPush([k], token, 'kling', 'register after the restart', () => mustRegister(w2.url, user, 'kling', { id: 2 }), w2.url);
    await expectPush([p], token, 'pixverse', 'complete after the restart', async () => assert.equal((await completeJob(w2.url, user, 'pixverse', 'p1')).status, 200), w2.url);
    assert.equal(beforeP.messages.length, 1);
  });
});
