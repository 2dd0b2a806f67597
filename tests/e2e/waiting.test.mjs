// Waiting for a slot, pausing accounts and progress reports (API.md "More operator
// routes", "Waiting for a slot", "Lifecycle"), tested for real against wrangler dev:
// when a slot frees (completion, cancel, expiry, maxJobs raise, resume, a timed pause
// ending) the oldest waiter that can use it gets it within about a second; waiters are
// served in arrival order; a new registration never overtakes a waiter that can use the
// slot; a waiter whose client went away is never admitted; a paused account takes no
// new job; progress restarts a job's timeout; admission stays exact under concurrency.
//
// Two workers: `w` with the default JOB_TIMEOUT_SECONDS and `short` with 3 s (expiry
// and progress). Every test uses its own user. A waiter's place in the queue cannot be
// observed through the API, so where the order matters the test lets a moment pass
// after sending a waiter (QUEUE_SETTLE_MS) before the next step.
//
// A client that goes away: locally, neither workerd nor wrangler dev cancels a request
// whose client disconnected (Cloudflare does), so `w` runs behind the hang-up stand-in
// (tests/support/hang-up/), which cancels a request inside workerd after the time the
// test gives, exactly as the edge cancels one whose client left.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { STARTED_RE, assertCodeError, assertKeys, assertKlingItem } from '../support/assertions.mjs';
import { admin, check, isDevProxyDropAnswer, pub, requestInit } from '../support/client.mjs';
import { accountPath, completeJob, mustRegister, registerJob, setupUser } from '../support/fixtures.mjs';
import { startReceiver } from '../support/receiver.mjs';
import { ADMIN_TOKEN, sleep, startWorker } from '../support/server.mjs';

let w; // JOB_TIMEOUT_SECONDS default (7200)
let short; // JOB_TIMEOUT_SECONDS=3
let hook;
before(async () => {
  [w, short, hook] = await Promise.all([
    startWorker({ hangUps: true }),
    startWorker({ vars: { JOB_TIMEOUT_SECONDS: '3', WEBHOOK_RETRY_SCHEDULE: '1,1' } }),
    startReceiver(),
  ]);
});
after(async () => {
  await Promise.all([w?.stop(), short?.stop(), hook?.close()]);
});

const CAPACITY_429 = { error: 'All accounts are at maxJobs capacity', code: 429 };
/** The contract: a freed slot reaches the waiter "within one second"; the bound allows for a busy machine. */
const ADMIT_BOUND_MS = 1500;
/** Time given to a waiter's request to reach the worker and join the queue. */
const QUEUE_SETTLE_MS = 800;

/** Freed-slot -> 201 latencies measured in this file, printed at the end. */
const latencies = [];
after(() => {
  if (latencies.length) {
    console.log(`[waiting] freed slot -> waiter's 201: ${latencies.map(([what, ms]) => `${what} ${ms} ms`).join(', ')}`);
  }
});
function recordLatency(t, what, ms) {
  latencies.push([what, ms]);
  t.diagnostic(`${what}: slot freed -> 201 in ${ms} ms`);
}

// ---------------------------------------------------------------------------------------
// Helpers

/**
 * Sends a registration that may wait (its answer may take up to waitSeconds) and
 * returns at once a handle: { promise (resolves { status, json, text, sentAt, at } or,
 * when its client hung up, { aborted: true, sentAt, at }), settled, result }. Like
 * client.req, asserts no 5xx and resends once what wrangler dev's own proxy dropped.
 * hangUpAfterMs (only on `w`, behind the hang-up stand-in): the request is cancelled
 * in workerd that long after it arrived, as when its client disconnects.
 */
function waiter(url, user, provider, body, { hangUpAfterMs } = {}) {
  const path = `/admin/v1/users/${user}/${provider}/jobs`;
  const init = requestInit('POST', { body, token: ADMIN_TOKEN });
  if (hangUpAfterMs !== undefined) init.headers = { ...init.headers, 'x-test-hang-up-after-ms': String(hangUpAfterMs) };
  const sentAt = Date.now();
  const timeout = AbortSignal.timeout(90_000);
  const once = async () => {
    const res = await fetch(url + path, { ...init, signal: timeout });
    const text = await res.clone().text();
    return { res, dropped: isDevProxyDropAnswer(res, text) };
  };
  const h = { settled: false, result: undefined };
  h.promise = (async () => {
    let { res, dropped } = await once();
    if (dropped) {
      console.error(`[harness] POST ${path}: wrangler dev's proxy dropped the request (503); resent`);
      ({ res } = await once());
    }
    const r = await check(res, `POST ${path} ${JSON.stringify(body)}`, url);
    if (hangUpAfterMs !== undefined && r.status === 499 && r.json?.hungUp === true) {
      return { aborted: true, sentAt, at: Date.now() };
    }
    return { ...r, sentAt, at: Date.now() };
  })();
  h.promise.then(
    (r) => {
      h.settled = true;
      h.result = r;
    },
    () => {
      h.settled = true;
    },
  );
  return h;
}

async function waitUntil(what, fn, timeoutMs = 20_000, everyMs = 100) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await sleep(everyMs);
  }
}

/** Asserts the waiter `h` is still waiting (no answer yet). */
function assertWaiting(h, what) {
  assert.equal(h.settled, false, `${what} should still be waiting, got ${JSON.stringify(h.result)}`);
}

/** The operator's jobs list (every executing job of the user, with progress). */
async function jobs(url, user, provider = 'kling') {
  const r = await admin(url, 'GET', `/admin/v1/users/${user}/${provider}/jobs`);
  assert.equal(r.status, 200, r.text);
  return r.json;
}

async function accounts(url, user, provider = 'kling') {
  const r = await admin(url, 'GET', `/admin/v1/users/${user}/${provider}/accounts`);
  assert.equal(r.status, 200, r.text);
  return r.json;
}

async function available(url, token) {
  const r = await pub(url, token, 'GET', '/v1/kling/scheduler/available');
  assert.equal(r.status, 200, r.text);
  return r.json;
}

function pause(url, user, account, body, provider = 'kling') {
  return admin(url, 'POST', `${accountPath(user, provider, account)}/pause`, body);
}
function resume(url, user, account, provider = 'kling') {
  return admin(url, 'POST', `${accountPath(user, provider, account)}/resume`);
}
function progress(url, user, id, body, provider = 'kling') {
  return admin(url, 'POST', `/admin/v1/users/${user}/${provider}/jobs/${encodeURIComponent(String(id))}/progress`, body);
}

/** A waiter's 201: the Kling item plus "account", on `account` when given. */
function assertAdmitted(r, id, account) {
  assert.equal(r.status, 201, `waiter ${id}: ${r.text ?? JSON.stringify(r)}`);
  assertKlingItem(r.json, { withAccount: true });
  assert.equal(r.json.id, id);
  if (account) assert.equal(r.json.account, account);
}

/**
 * Fills the user's Kling account `account` with `n` jobs (ids from `firstId`); returns
 * their ids.
 */
async function fill(url, user, account, n, firstId) {
  const ids = [];
  for (let i = 0; i < n; i++) {
    await mustRegister(url, user, 'kling', { id: firstId + i, email: account });
    ids.push(firstId + i);
  }
  return ids;
}

// ---------------------------------------------------------------------------------------

describe('a freed slot goes to the oldest waiter', () => {
  test('a waiter is admitted within ~1 s of a completion', async (t) => {
    const { user } = await setupUser(w.url, { kling: { 'a@x.com': 1 } });
    await fill(w.url, user, 'a@x.com', 1, 1);
    const h = waiter(w.url, user, 'kling', { id: 2, waitSeconds: 30 });
    await sleep(QUEUE_SETTLE_MS);
    assertWaiting(h, 'the waiter on a full account');

    const sent = Date.now();
    const c = await completeJob(w.url, user, 'kling', 1);
    const t0 = Date.now();
    assert.equal(c.status, 200, c.text);
    const r = await h.promise;
    assertAdmitted(r, 2, 'a@x.com');
    recordLatency(t, 'completion', r.at - t0);
    assert.ok(r.at - t0 < ADMIT_BOUND_MS, `201 came ${r.at - t0} ms after the completion's answer`);
    // started defaults to the admission time, not the time the request arrived.
    assert.ok(Date.parse(r.json.started) >= sent - 50, `started ${r.json.started} is before the slot freed`);
    assert.deepEqual((await jobs(w.url, user)).map((j) => j.id), [2]);
  });

  test('FIFO: five waiters are admitted in arrival order as slots free one at a time', async () => {
    const { user } = await setupUser(w.url, { kling: { 'a@x.com': 1 } });
    await fill(w.url, user, 'a@x.com', 1, 100);
    const hs = [];
    for (let i = 1; i <= 5; i++) {
      hs.push(waiter(w.url, user, 'kling', { id: 100 + i, waitSeconds: 40 }));
      await sleep(150);
    }
    await sleep(QUEUE_SETTLE_MS);
    const order = [];
    let running = 100;
    for (let k = 0; k < 5; k++) {
      assert.equal((await completeJob(w.url, user, 'kling', running)).status, 200);
      // Exactly one waiter is admitted per freed slot: wait for it.
      const next = await waitUntil(`an admission after freeing slot ${k + 1}`, () => {
        const done = hs.filter((h) => h.settled && !order.includes(h));
        return done.length ? done : undefined;
      });
      assert.equal(next.length, 1, `one slot freed, ${next.length} waiters answered`);
      const r = next[0].result;
      assert.equal(r.status, 201, r.text);
      order.push(next[0]);
      running = r.json.id;
      // Those behind it keep waiting.
      for (const h of hs) if (!order.includes(h)) assertWaiting(h, `waiter ${hs.indexOf(h) + 1}`);
    }
    assert.deepEqual(
      order.map((h) => h.result.json.id),
      [101, 102, 103, 104, 105],
      'admission order = arrival order',
    );
  });

  test('a waiter that runs out of time gets the capacity 429 after ~waitSeconds, not earlier', async () => {
    const { user } = await setupUser(w.url, { kling: { 'a@x.com': 1 } });
    await fill(w.url, user, 'a@x.com', 1, 1);
    const h = waiter(w.url, user, 'kling', { id: 2, waitSeconds: 2 });
    const r = await h.promise;
    const took = r.at - r.sentAt;
    assert.equal(r.status, 429, r.text);
    assert.deepEqual(r.json, CAPACITY_429);
    assert.ok(took >= 1900, `429 after ${took} ms, waitSeconds 2`);
    assert.ok(took < 2000 + 3000, `429 after ${took} ms, waitSeconds 2`);
    // It is gone: a slot freed now goes to a new registration.
    assert.equal((await completeJob(w.url, user, 'kling', 1)).status, 200);
    await mustRegister(w.url, user, 'kling', { id: 3 });
    assert.deepEqual((await jobs(w.url, user)).map((j) => j.id), [3]);
  });
});

describe('a waiter whose client went away is never admitted', () => {
  /** Samples the user's jobs list for `ms`, asserting `id` never shows. */
  async function neverListed(user, token, id, ms) {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      assert.ok(!(await jobs(w.url, user)).some((j) => j.id === id), `aborted waiter ${id} is listed (operator jobs)`);
      const pubList = (await pub(w.url, token, 'GET', '/v1/kling/scheduler')).json;
      assert.ok(!pubList.some((j) => j.id === id), `aborted waiter ${id} is listed (public list)`);
      await sleep(150);
    }
  }

  /** One look: `id` (an aborted waiter) is not executing. */
  async function notAdmitted(user, id) {
    const l = await jobs(w.url, user);
    assert.ok(
      !l.some((j) => j.id === id),
      `the waiter ${id} whose client aborted was admitted after it went away: ${JSON.stringify(l)}`,
    );
  }

  test('aborted after ~1 s, slot freed 3 s later: a later waiter and then a new registration get it', async (t) => {
    const { user, token } = await setupUser(w.url, { kling: { 'a@x.com': 1 } });
    await fill(w.url, user, 'a@x.com', 1, 1);
    const gone = waiter(w.url, user, 'kling', { id: 666, waitSeconds: 30 }, { hangUpAfterMs: 1000 });
    await sleep(700);
    assertWaiting(gone, 'the waiter before its abort');
    assert.equal((await gone.promise).aborted, true);
    await sleep(3000);

    // A later waiter, then the slot frees: the later waiter gets it, the aborted never.
    const later = waiter(w.url, user, 'kling', { id: 2, waitSeconds: 8 });
    await sleep(QUEUE_SETTLE_MS);
    assertWaiting(later, 'the later waiter');
    assert.equal((await completeJob(w.url, user, 'kling', 1)).status, 200);
    const t0 = Date.now();
    const r = await later.promise;
    await notAdmitted(user, 666);
    assertAdmitted(r, 2, 'a@x.com');
    recordLatency(t, 'completion (after an aborted waiter)', r.at - t0);
    assert.ok(r.at - t0 < ADMIT_BOUND_MS, `the later waiter's 201 came ${r.at - t0} ms after the completion`);
    await neverListed(user, token, 666, 1500);

    // And once that slot frees again, a plain registration gets it: no ghost holds it.
    assert.equal((await completeJob(w.url, user, 'kling', 2)).status, 200);
    await mustRegister(w.url, user, 'kling', { id: 3, waitSeconds: 0 });
    await neverListed(user, token, 666, 2500);
    assert.deepEqual((await jobs(w.url, user)).map((j) => j.id), [3]);
  });

  test('aborted just before the slot frees: the slot is not lost, the next waiter gets it', async (t) => {
    const { user, token } = await setupUser(w.url, { kling: { 'a@x.com': 1 } });
    await fill(w.url, user, 'a@x.com', 1, 1);
    const gone = waiter(w.url, user, 'kling', { id: 667, waitSeconds: 30 }, { hangUpAfterMs: 2 * QUEUE_SETTLE_MS + 300 });
    await sleep(QUEUE_SETTLE_MS);
    const next = waiter(w.url, user, 'kling', { id: 2, waitSeconds: 10 });
    await sleep(QUEUE_SETTLE_MS);
    assertWaiting(gone, 'the first waiter');
    assertWaiting(next, 'the second waiter');
    assert.equal((await gone.promise).aborted, true);
    // The first waiter may still hold its place for its lease (~1.5-2.5 s): the slot may
    // be reserved for it meanwhile, but it must not be admitted, and the slot must reach
    // the second waiter once the place is dropped.
    await sleep(200);
    assert.equal((await completeJob(w.url, user, 'kling', 1)).status, 200);
    const t0 = Date.now();
    const r = await next.promise;
    await notAdmitted(user, 667);
    assertAdmitted(r, 2, 'a@x.com');
    t.diagnostic(`slot freed 200 ms after the first waiter's abort -> second waiter's 201 in ${r.at - t0} ms`);
    assert.ok(r.at - t0 < 4000, `the second waiter's 201 came ${r.at - t0} ms after the completion`);
    await neverListed(user, token, 667, 2500);
  });
});

describe('who may take a freed slot', () => {
  test('a waiter naming a full account waits while another account is free; it gets its account when it frees', async (t) => {
    const { user } = await setupUser(w.url, { kling: { 'a@x.com': 1, 'b@x.com': 1 } });
    await fill(w.url, user, 'a@x.com', 1, 1);
    const named = waiter(w.url, user, 'kling', { id: 2, email: 'a@x.com', waitSeconds: 30 });
    await sleep(QUEUE_SETTLE_MS);
    // An unnamed registration goes to the free account at once (the waiter cannot use it).
    const auto = await registerJob(w.url, user, 'kling', { id: 3 });
    assert.equal(auto.status, 201, auto.text);
    assert.equal(auto.json.account, 'b@x.com');
    await sleep(500);
    assertWaiting(named, 'the waiter naming a@x.com');

    assert.equal((await completeJob(w.url, user, 'kling', 1)).status, 200);
    const t0 = Date.now();
    const r = await named.promise;
    assertAdmitted(r, 2, 'a@x.com');
    recordLatency(t, 'completion (named waiter)', r.at - t0);
    assert.ok(r.at - t0 < ADMIT_BOUND_MS, `${r.at - t0} ms`);
  });

  test('a new registration does not overtake a waiter that can use the freed slot', async () => {
    const { user } = await setupUser(w.url, { kling: { 'a@x.com': 1 } });
    await fill(w.url, user, 'a@x.com', 1, 1);
    const h = waiter(w.url, user, 'kling', { id: 2, waitSeconds: 30 });
    await sleep(QUEUE_SETTLE_MS);
    // The completion and a new registration at once, then another right after.
    const [c, racing] = await Promise.all([
      completeJob(w.url, user, 'kling', 1),
      registerJob(w.url, user, 'kling', { id: 3, waitSeconds: 0 }),
    ]);
    assert.equal(c.status, 200);
    const after = await registerJob(w.url, user, 'kling', { id: 4, waitSeconds: 0 });
    assert.equal(racing.status, 429, `registration sent with the completion: ${racing.text}`);
    assert.deepEqual(racing.json, CAPACITY_429);
    assert.equal(after.status, 429, `registration right after the completion: ${after.text}`);
    assertAdmitted(await h.promise, 2, 'a@x.com');
    assert.deepEqual((await jobs(w.url, user)).map((j) => j.id), [2]);
  });

  test('a slot no waiter can use goes to a new registration (waiter names a, b frees)', async () => {
    const { user } = await setupUser(w.url, { kling: { 'a@x.com': 1, 'b@x.com': 1 } });
    await fill(w.url, user, 'a@x.com', 1, 1);
    await fill(w.url, user, 'b@x.com', 1, 11);
    const h = waiter(w.url, user, 'kling', { id: 2, email: 'a@x.com', waitSeconds: 30 });
    await sleep(QUEUE_SETTLE_MS);
    assert.equal((await completeJob(w.url, user, 'kling', 11)).status, 200);
    const r = await registerJob(w.url, user, 'kling', { id: 12, waitSeconds: 0 });
    assert.equal(r.status, 201, r.text);
    assert.equal(r.json.account, 'b@x.com');
    await sleep(300);
    assertWaiting(h, 'the waiter naming a@x.com');
    assert.equal((await completeJob(w.url, user, 'kling', 1)).status, 200);
    assertAdmitted(await h.promise, 2, 'a@x.com');
  });

  test('a MiniMax image job (takes no slot) is admitted at once while video waiters wait', async () => {
    const { user } = await setupUser(w.url, { minimax: { acct1: 1 } });
    await mustRegister(w.url, user, 'minimax', { videoId: 'v1' });
    const h = waiter(w.url, user, 'minimax', { videoId: 'v2', waitSeconds: 30 });
    await sleep(QUEUE_SETTLE_MS);
    const img = await registerJob(w.url, user, 'minimax', { imageId: 'i1', waitSeconds: 0 });
    assert.equal(img.status, 201, img.text);
    assertWaiting(h, 'the video waiter');
    assert.equal((await completeJob(w.url, user, 'minimax', 'v1')).status, 200);
    const r = await h.promise;
    assert.equal(r.status, 201, r.text);
    assert.equal(r.json.videoId, 'v2');
  });
});

describe('every way a slot frees admits a waiter', () => {
  /** A user with one full Kling account (maxJobs 1, job 1) and a waiter (id 2) queued. */
  async function fullWithWaiter(url = w.url, { started } = {}) {
    const { user, token } = await setupUser(url, { kling: { 'a@x.com': 1 } });
    await mustRegister(url, user, 'kling', { id: 1, ...(started ? { started } : {}) });
    const h = waiter(url, user, 'kling', { id: 2, waitSeconds: 30 });
    await sleep(QUEUE_SETTLE_MS);
    assertWaiting(h, 'the waiter');
    return { user, token, h };
  }

  test('public cancel (DELETE)', async (t) => {
    const { token, h } = await fullWithWaiter();
    const d = await pub(w.url, token, 'DELETE', '/v1/kling/scheduler/1');
    const t0 = Date.now();
    assert.equal(d.status, 204);
    const r = await h.promise;
    assertAdmitted(r, 2, 'a@x.com');
    recordLatency(t, 'public cancel', r.at - t0);
    assert.ok(r.at - t0 < ADMIT_BOUND_MS, `${r.at - t0} ms`);
  });

  test('raising maxJobs (PUT)', async (t) => {
    const { user, h } = await fullWithWaiter();
    const p = await admin(w.url, 'PUT', accountPath(user, 'kling', 'a@x.com'), { maxJobs: 2 });
    const t0 = Date.now();
    assert.equal(p.status, 200);
    const r = await h.promise;
    assertAdmitted(r, 2, 'a@x.com');
    recordLatency(t, 'maxJobs raise', r.at - t0);
    assert.ok(r.at - t0 < ADMIT_BOUND_MS, `${r.at - t0} ms`);
    assert.deepEqual((await jobs(w.url, user)).map((j) => j.id), [1, 2]);
  });

  test('expiry of a back-dated job (JOB_TIMEOUT_SECONDS=3)', async (t) => {
    // Started 1 s ago: it expires ~2 s after registration.
    const startedMs = Date.now() - 1000;
    const { user, h } = await fullWithWaiter(short.url, { started: new Date(startedMs).toISOString() });
    const deadline = startedMs + 3000;
    const r = await h.promise;
    assertAdmitted(r, 2, 'a@x.com');
    recordLatency(t, 'expiry', r.at - deadline);
    assert.ok(r.at >= deadline - 100, `admitted ${deadline - r.at} ms before the job's timeout`);
    assert.ok(r.at - deadline < 1000 + ADMIT_BOUND_MS, `admitted ${r.at - deadline} ms after the job's timeout`);
    assert.deepEqual((await jobs(short.url, user)).map((j) => j.id), [2]);
  });

  test('resume of a paused account', async (t) => {
    const { user } = await setupUser(w.url, { kling: { 'a@x.com': 1 } });
    assert.equal((await pause(w.url, user, 'a@x.com', {})).status, 200);
    const h = waiter(w.url, user, 'kling', { id: 2, waitSeconds: 30 });
    await sleep(QUEUE_SETTLE_MS + 500);
    assertWaiting(h, 'the waiter while the only account is paused');
    const res = await resume(w.url, user, 'a@x.com');
    const t0 = Date.now();
    assert.equal(res.status, 200, res.text);
    const r = await h.promise;
    assertAdmitted(r, 2, 'a@x.com');
    recordLatency(t, 'resume', r.at - t0);
    assert.ok(r.at - t0 < ADMIT_BOUND_MS, `${r.at - t0} ms`);
  });

  test('a timed pause ending ({"seconds": 2})', async (t) => {
    const { user } = await setupUser(w.url, { kling: { 'a@x.com': 1 } });
    const p = await pause(w.url, user, 'a@x.com', { seconds: 2 });
    const pausedAt = Date.now();
    assert.equal(p.status, 200, p.text);
    const end = Date.parse(p.json.pausedUntil);
    assert.ok(Math.abs(end - (pausedAt + 2000)) < 2000, `pausedUntil ${p.json.pausedUntil}`);
    const h = waiter(w.url, user, 'kling', { id: 2, waitSeconds: 30 });
    const r = await h.promise;
    assertAdmitted(r, 2, 'a@x.com');
    recordLatency(t, 'timed pause end', r.at - end);
    assert.ok(r.at >= end - 100, `admitted ${end - r.at} ms before the pause ended`);
    assert.ok(r.at - end < 1000 + ADMIT_BOUND_MS, `admitted ${r.at - end} ms after the pause ended`);
  });
});

describe('pausing an account', () => {
  test('paused: skipped by the automatic choice, named -> 429, available 0, running jobs go on; resume undoes it', async () => {
    const { user, token } = await setupUser(w.url, { kling: { 'a@x.com': 3, 'b@x.com': 1 } });
    await mustRegister(w.url, user, 'kling', { id: 1, email: 'a@x.com' });

    const p = await pause(w.url, user, 'a@x.com', { reason: 'quota exceeded' });
    assert.equal(p.status, 200, p.text);
    assert.deepEqual(p.json, { account: 'a@x.com', maxJobs: 3, executing: 1, paused: true, reason: 'quota exceeded' });
    const rows = await accounts(w.url, user);
    assert.deepEqual(rows, [
      { account: 'a@x.com', maxJobs: 3, executing: 1, paused: true, reason: 'quota exceeded' },
      { account: 'b@x.com', maxJobs: 1, executing: 0, paused: false },
    ]);

    // a@x.com has 2 free slots, b@x.com 1: the automatic choice still skips a.
    const auto = await registerJob(w.url, user, 'kling', { id: 2 });
    assert.equal(auto.status, 201, auto.text);
    assert.equal(auto.json.account, 'b@x.com');
    const full = await registerJob(w.url, user, 'kling', { id: 3 });
    assert.equal(full.status, 429);
    assert.deepEqual(full.json, CAPACITY_429);
    assertCodeError(await registerJob(w.url, user, 'kling', { id: 4, email: 'a@x.com' }), 429, 'Account a@x.com is paused');

    const av = await available(w.url, token);
    assert.deepEqual(av.available, [
      { email: 'a@x.com', maxJobs: 3, executing: 1, available: 0 },
      { email: 'b@x.com', maxJobs: 1, executing: 1, available: 0 },
    ]);
    // Its running job goes on: listed, and completable.
    assert.deepEqual(av.executing.map((j) => j.id), [1, 2]);
    assert.ok((await jobs(w.url, user)).some((j) => j.id === 1 && j.account === 'a@x.com'));
    const c = await completeJob(w.url, user, 'kling', 1);
    assert.equal(c.status, 200, c.text);
    assert.equal(c.json.account, 'a@x.com');
    assertCodeError(await registerJob(w.url, user, 'kling', { id: 5, email: 'a@x.com' }), 429, 'Account a@x.com is paused');

    // A timed pause over it: pausedUntil shows.
    const before = Date.now();
    const timed = await pause(w.url, user, 'a@x.com', { seconds: 600 });
    assert.equal(timed.status, 200, timed.text);
    assert.equal(timed.json.paused, true);
    assert.match(timed.json.pausedUntil, STARTED_RE);
    const until = Date.parse(timed.json.pausedUntil);
    assert.ok(until >= before + 598_000 && until <= Date.now() + 602_000, `pausedUntil ${timed.json.pausedUntil}`);
    const row = (await accounts(w.url, user)).find((x) => x.account === 'a@x.com');
    assert.equal(row.pausedUntil, timed.json.pausedUntil);

    const res = await resume(w.url, user, 'a@x.com');
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json, { account: 'a@x.com', maxJobs: 3, executing: 0, paused: false });
    assert.deepEqual(await accounts(w.url, user), [
      { account: 'a@x.com', maxJobs: 3, executing: 0, paused: false },
      { account: 'b@x.com', maxJobs: 1, executing: 1, paused: false },
    ]);
    assert.equal((await available(w.url, token)).available[0].available, 3);
    const named = await registerJob(w.url, user, 'kling', { id: 6, email: 'a@x.com' });
    assert.equal(named.status, 201, named.text);
    assert.equal((await registerJob(w.url, user, 'kling', { id: 7 })).json.account, 'a@x.com');
    // Resuming an account that is not paused is harmless.
    assert.equal((await resume(w.url, user, 'b@x.com')).json.paused, false);
  });

  test('pause/resume of an unconfigured account -> 404; bad bodies -> 400; an empty body is fine', async () => {
    const { user } = await setupUser(w.url, { kling: { 'a@x.com': 2 } });
    assertCodeError(await pause(w.url, user, 'zz@x.com', {}), 404, 'Account not configured');
    assertCodeError(await resume(w.url, user, 'zz@x.com'), 404, 'Account not configured');
    for (const body of [
      { seconds: 0 },
      { seconds: 604801 },
      { seconds: '5' },
      { seconds: 1.5 },
      { seconds: -1 },
      { reason: 'r'.repeat(257) },
      { reason: 5 },
      '[]',
      '{"seconds":',
    ]) {
      const r = await pause(w.url, user, 'a@x.com', body);
      assertCodeError(r, 400);
    }
    // None of those paused it.
    assert.equal((await accounts(w.url, user))[0].paused, false);
    const longest = await pause(w.url, user, 'a@x.com', { seconds: 604800, reason: 'r'.repeat(256) });
    assert.equal(longest.status, 200, longest.text);
    assert.equal(longest.json.reason.length, 256);
    const empty = await admin(w.url, 'POST', `${accountPath(user, 'kling', 'a@x.com')}/pause`);
    assert.equal(empty.status, 200, empty.text);
    assert.equal(empty.json.paused, true);
  });

  test('a named waiter on a paused account waits (no immediate 429) and gets the slot on resume', async () => {
    const { user } = await setupUser(w.url, { kling: { 'a@x.com': 1, 'b@x.com': 1 } });
    assert.equal((await pause(w.url, user, 'a@x.com', { reason: 'x' })).status, 200);
    const h = waiter(w.url, user, 'kling', { id: 2, email: 'a@x.com', waitSeconds: 30 });
    await sleep(QUEUE_SETTLE_MS + 500);
    assertWaiting(h, 'the waiter naming a paused account');
    assert.equal((await resume(w.url, user, 'a@x.com')).status, 200);
    assertAdmitted(await h.promise, 2, 'a@x.com');
  });
});

describe('progress reports', () => {
  test('POST …/progress: 200 with lastProgress and progress, shown by GET …/jobs; 404/400', async () => {
    const { user } = await setupUser(w.url, { kling: { 'a@x.com': 2 } });
    await mustRegister(w.url, user, 'kling', { id: 1 });
    await mustRegister(w.url, user, 'kling', { id: 2 });
    const before = Date.now();
    const r = await progress(w.url, user, 1, { progress: 40 });
    assert.equal(r.status, 200, r.text);
    assertKeys(r.json, ['id', 'email', 'started', 'elapsed', 'account', 'lastProgress', 'progress']);
    assert.equal(r.json.id, 1);
    assert.equal(r.json.progress, 40);
    assert.match(r.json.lastProgress, STARTED_RE);
    assert.ok(Date.parse(r.json.lastProgress) >= before - 50 && Date.parse(r.json.lastProgress) <= Date.now() + 50);

    const listed = await jobs(w.url, user);
    assert.deepEqual(listed.map((j) => j.id), [1, 2]);
    assert.deepEqual(listed[0], r.json);
    assert.ok(!('lastProgress' in listed[1]) && !('progress' in listed[1]), 'no progress reported for job 2');

    // An empty body is a report without a figure: lastProgress moves on.
    await sleep(20);
    const bare = await admin(w.url, 'POST', `/admin/v1/users/${user}/kling/jobs/2/progress`);
    assert.equal(bare.status, 200, bare.text);
    assert.match(bare.json.lastProgress, STARTED_RE);
    assert.ok(!('progress' in bare.json), bare.text);
    const again = await progress(w.url, user, 1, { progress: 100 });
    assert.equal(again.status, 200);
    assert.equal(again.json.progress, 100);
    assert.ok(again.json.lastProgress >= r.json.lastProgress);

    assertCodeError(await progress(w.url, user, 999, { progress: 1 }), 404);
    for (const body of [{ progress: 101 }, { progress: -1 }, { progress: 40.5 }, { progress: '40' }]) {
      assertCodeError(await progress(w.url, user, 1, body), 400);
    }
    // The public list does not show progress.
    assert.equal((await completeJob(w.url, user, 'kling', 1)).status, 200);
    assertCodeError(await progress(w.url, user, 1, { progress: 1 }), 404);
  });

  test('progress restarts the timeout: reported every ~1.5 s the job outlives JOB_TIMEOUT_SECONDS=3, then expires ~3 s after its last report', async (t) => {
    const receiver = await startReceiver();
    t.after(() => receiver.close());
    const { user, token } = await setupUser(short.url, { kling: { 'a@x.com': 1 } });
    const startedAt = Date.now();
    await mustRegister(short.url, user, 'kling', { id: 7, replyUrl: `${receiver.url}/p`, replyRef: 'r7' });
    let lastReport = 0;
    let pct = 0;
    while (Date.now() - startedAt < 6500) {
      await sleep(1500 - ((Date.now() - startedAt) % 1500));
      pct += 10;
      const r = await progress(short.url, user, 7, { progress: pct });
      assert.equal(r.status, 200, `progress at +${Date.now() - startedAt} ms: ${r.text}`);
      lastReport = Date.now();
    }
    // Over 6 s after its start, twice the timeout: still executing.
    assert.ok(Date.now() - startedAt >= 6000);
    const still = await jobs(short.url, user);
    assert.deepEqual(still.map((j) => [j.id, j.progress]), [[7, pct]]);

    const goneAt = await waitUntil('the job to expire after its last report', async () => {
      const l = (await pub(short.url, token, 'GET', '/v1/kling/scheduler')).json;
      return l.length === 0 ? Date.now() : undefined;
    }, 15_000, 100);
    const after = goneAt - lastReport;
    t.diagnostic(`expired ${after} ms after the last progress report (timeout 3 s)`);
    assert.ok(after >= 2500, `expired ${after} ms after the last report: too early`);
    assert.ok(after < 3000 + 3000, `expired ${after} ms after the last report: too late`);

    const [rec] = await receiver.waitFor(1, 15_000);
    const body = JSON.parse(rec.body);
    assert.equal(body.id, 7);
    assert.equal(body.status, 'failed');
    assert.equal(body.error, 'timeout');
    assert.equal(body.replyRef, 'r7');
  });
});

test('a waiter whose named account is removed while it waits -> 404 "Account not configured"', async () => {
  const { user } = await setupUser(w.url, { kling: { 'a@x.com': 1, 'b@x.com': 1 } });
  await fill(w.url, user, 'a@x.com', 1, 1);
  const h = waiter(w.url, user, 'kling', { id: 2, email: 'a@x.com', waitSeconds: 30 });
  await sleep(QUEUE_SETTLE_MS);
  assertWaiting(h, 'the waiter');
  const d = await admin(w.url, 'DELETE', accountPath(user, 'kling', 'a@x.com'));
  const t0 = Date.now();
  assert.equal(d.status, 204);
  const r = await h.promise;
  assertCodeError(r, 404, 'Account not configured');
  assert.ok(r.at - t0 < 3000, `404 came ${r.at - t0} ms after the removal`);
  assert.deepEqual(await jobs(w.url, user), []);
});

test('exact under concurrency: 30 waiters against maxJobs 3 while jobs complete', async (t) => {
  const { user, token } = await setupUser(w.url, { kling: { 'a@x.com': 3 } });
  const initial = await fill(w.url, user, 'a@x.com', 3, 1);
  // Ids 1001..1029 once each, and id 1000 twice: its second copy may only be admitted
  // after the first left (the completion loop keeps job 1000 running), so it is a 409 or
  // a 429.
  const ids = [1000, 1000, ...Array.from({ length: 28 }, (_, i) => 1001 + i)];
  const hs = ids.map((id) => waiter(w.url, user, 'kling', { id, waitSeconds: 5 }));

  let running = true;
  const overs = [];
  let samples = 0;
  const sampler = (async () => {
    while (running) {
      const av = await available(w.url, token);
      samples += 1;
      const row = av.available[0];
      if (row.executing > 3 || av.executing.length > 3) overs.push(JSON.stringify(av.available));
      const seen = av.executing.map((j) => j.id);
      if (new Set(seen).size !== seen.length) overs.push(`an id listed twice: ${seen}`);
      const rows = await accounts(w.url, user);
      if (rows[0].executing > 3) overs.push(JSON.stringify(rows));
      await sleep(50);
    }
  })();
  const completed = [];
  const completer = (async () => {
    const until = Date.now() + 5500;
    while (Date.now() < until) {
      const l = await jobs(w.url, user);
      const victim = l.find((j) => j.id !== 1000);
      if (victim) {
        const c = await completeJob(w.url, user, 'kling', victim.id);
        if (c.status === 200) completed.push(victim.id);
        else assert.equal(c.status, 404, c.text);
      }
      await sleep(150);
    }
  })();
  const results = await Promise.all(hs.map((h) => h.promise));
  await completer;
  running = false;
  await sampler;

  const statuses = results.map((r) => r.status);
  for (const r of results) assert.ok([201, 409, 429].includes(r.status), `${r.status} ${r.text}`);
  const admittedIds = results.filter((r) => r.status === 201).map((r) => r.json.id);
  const dup = results.filter((r, i) => ids[i] === 1000).map((r) => r.status).sort();
  t.diagnostic(
    `${admittedIds.length} admitted, ${statuses.filter((s) => s === 429).length} x 429, ${statuses.filter((s) => s === 409).length} x 409; ` +
      `${completed.length} completions; ${samples} samples; id 1000 twice -> ${dup}`,
  );
  assert.deepEqual(overs, [], 'never over maxJobs, never an id listed twice');
  assert.ok(samples >= 10, `only ${samples} samples`);
  assert.equal(new Set(admittedIds).size, admittedIds.length, `an id admitted twice: ${admittedIds}`);
  assert.equal(dup.filter((s) => s === 201).length <= 1, true, `id 1000 admitted twice: ${dup}`);
  assert.ok(admittedIds.length >= 10, `only ${admittedIds.length} admitted while ${completed.length} slots freed`);
  // Conservation: what runs now is exactly the initial jobs and the admitted ones,
  // minus the completed ones.
  const now = (await jobs(w.url, user)).map((j) => j.id).sort((a, b) => a - b);
  const expect = [...initial, ...admittedIds].filter((id) => !completed.includes(id)).sort((a, b) => a - b);
  assert.deepEqual(now, expect);
  assert.ok(now.length <= 3);
  for (const r of results.filter((x) => x.status === 429)) assert.deepEqual(r.json, CAPACITY_429);
});
