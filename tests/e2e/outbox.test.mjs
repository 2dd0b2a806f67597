// The webhook outbox an operator runs for months (issue 13; API.md "Lifecycle, expiry and
// webhooks", design notes "Operator API: Webhooks"): replay of one failed delivery with
// its original webhook-id, bulk replay of every failed delivery created since a time,
// Retry-After (seconds and HTTP date) on 429/503 and not on other answers, 410, the
// pending / failed / delivered lists and their shapes, retention pruned by the account's
// alarm, and paging through 10,000+ failed rows of one account (Link header, cursor,
// limit bounds, a page costs the same at 100 rows and at 10,000).
//
// Three workers, started in parallel:
//   relay      signed (WEBHOOK_SECRET), retries '1,1' (3 attempts)
//   retention  retries '1,1', WEBHOOK_RETENTION_DAYS=0.0001 (8.64 s)
//   paging     retries '1,1' (irrelevant: its receiver answers 410)
// The groups (relay, page size, retention, paging) run side by side; within a group one
// test at a time (the three Retry-After tests together). The paging test takes most of
// the file's time: the account's alarm wakes on a 2 s grid and sends at most 40 attempts
// per wake (~20/s), so its ~10,000 deliveries take ~8-9 minutes after ~2-3 minutes of
// creation. OUTBOX_ROWS (default 10050) sets how many it creates (e.g. 300 locally).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { assertCodeError, STARTED_RE } from '../support/assertions.mjs';
import { admin } from '../support/client.mjs';
import { completeJob, mustRegister, registerJob, setupUser } from '../support/fixtures.mjs';
import { startReceiver, verifyWebhookSignature } from '../support/receiver.mjs';
import { sleep, startWorker } from '../support/server.mjs';

const SECRET = 'whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD';
const KLING = 'a@x.com';
const OUTBOX_ROWS = Number(process.env.OUTBOX_ROWS || 10050);
const MAX_FAILED_ROWS = 10_000; // API.md / design notes: at most 10,000 failed rows per account
const RETENTION_MS = 0.0001 * 86_400_000; // 8,640 ms

let relay;
let retention;
let paging;
const closers = [];

before(async () => {
  [relay, retention, paging] = await Promise.all([
    startWorker({ vars: { WEBHOOK_SECRET: SECRET, WEBHOOK_RETRY_SCHEDULE: '1,1' } }),
    startWorker({ vars: { WEBHOOK_RETRY_SCHEDULE: '1,1', WEBHOOK_RETENTION_DAYS: '0.0001' } }),
    startWorker({ vars: { WEBHOOK_RETRY_SCHEDULE: '1,1' } }),
  ]);
});

after(async () => {
  for (const c of closers) await c().catch(() => {});
  await Promise.all([relay, retention, paging].map((w) => w?.stop()));
});

// ---------------------------------------------------------------------------------------
// Local helpers

/** Polls fn until it returns a truthy value (returned); fails after timeoutMs. */
async function waitFor(fn, timeoutMs = 15_000, what = 'condition', everyMs = 250) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** A harness receiver, closed after the file. */
async function receiver(handler) {
  const r = await startReceiver(handler);
  closers.push(() => r.close());
  return r;
}

const hooksPath = (user, provider = 'kling') => `/admin/v1/users/${user}/${provider}/webhooks`;

/** GET …/webhooks with a raw query string ('' or '?status=…'); asserts a 200 JSON array. */
async function list(w, user, query = '', provider = 'kling') {
  const r = await admin(w.url, 'GET', hooksPath(user, provider) + query);
  assert.equal(r.status, 200, `GET webhooks${query}: ${r.text}`);
  assert.ok(Array.isArray(r.json), `the body is a JSON array: ${r.text.slice(0, 200)}`);
  return r;
}

/** The rows of one status (one page of up to 1000: these tests hold far fewer). */
async function rows(w, user, status) {
  const r = await list(w, user, `?status=${status}&limit=1000`);
  assert.equal(r.headers.get('link'), null, 'a single page has no Link');
  return r.json;
}

const ids = (rs) => rs.map((r) => r.webhookId).sort();

/** POST …/webhooks/{id}/retry */
function retryOne(w, user, webhookId) {
  return admin(w.url, 'POST', `${hooksPath(user)}/${encodeURIComponent(webhookId)}/retry`);
}

/** POST …/webhooks/retry with a body (object, or a raw string) */
function retrySince(w, user, body) {
  return admin(w.url, 'POST', `${hooksPath(user)}/retry`, body);
}

/** Registers a Kling job with a replyUrl and completes it; returns the webhook id. */
async function deliver(w, user, id, replyUrl, body = { status: 'completed' }) {
  await mustRegister(w.url, user, 'kling', { id, replyUrl });
  const c = await completeJob(w.url, user, 'kling', id, body);
  assert.equal(c.status, 200, c.text);
  assert.deepEqual(Object.keys(c.json).sort(), ['account', 'id', 'status', 'webhookId']);
  assert.match(c.json.webhookId, /^msg_[A-Za-z0-9_-]+$/);
  return c.json.webhookId;
}

const ROW_KEYS = ['webhookId', 'account', 'replyUrl', 'status', 'attempts', 'lastError', 'nextAttempt', 'created', 'finished', 'payload'];

/** A list row's key set and types for its status (design notes, "Webhooks"). */
function assertRowShape(row, status) {
  const what = JSON.stringify(row);
  for (const k of Object.keys(row)) assert.ok(ROW_KEYS.includes(k), `unexpected key ${k} in ${what}`);
  for (const k of ['webhookId', 'account', 'replyUrl', 'status', 'attempts', 'created']) assert.ok(k in row, `row lacks ${k}: ${what}`);
  for (const [k, v] of Object.entries(row)) assert.notEqual(v, null, `${k} is null in ${what}`);
  assert.equal(row.status, status, what);
  assert.match(row.webhookId, /^msg_[A-Za-z0-9_-]+$/);
  assert.ok(Number.isInteger(row.attempts) && row.attempts >= 0, what);
  assert.match(row.created, STARTED_RE, what);
  if (status === 'pending') {
    assert.match(row.nextAttempt ?? '', STARTED_RE, `a pending row has nextAttempt: ${what}`);
    assert.ok(!('finished' in row), `a pending row has no finished: ${what}`);
    assert.ok('payload' in row, `a pending row has its payload: ${what}`);
  } else {
    assert.match(row.finished ?? '', STARTED_RE, `a ${status} row has finished: ${what}`);
    assert.ok(!('nextAttempt' in row), `a ${status} row has no nextAttempt: ${what}`);
    if (status === 'failed') {
      assert.ok('payload' in row, `a failed row has its payload: ${what}`);
      assert.ok(typeof row.lastError === 'string' && row.lastError.length > 0, `a failed row says why: ${what}`);
    } else {
      assert.ok(!('payload' in row), `a delivered row has no payload: ${what}`);
    }
  }
}

/** Lets a few alarm periods pass, then asserts the receiver still has exactly n requests. */
async function assertStays(requests, n, ms = 4500, what = 'requests') {
  await sleep(ms);
  assert.equal(requests.length, n, `${what}: expected ${n}, got ${requests.length}`);
}

/** The path of a `Link: <path>; rel="next"` header (asserting its form), or null. */
function nextPath(r, user, status, limit) {
  const link = r.headers.get('link');
  if (link === null) return null;
  const m = link.match(/^<([^>]+)>; rel="next"$/);
  assert.ok(m, `Link header form: ${link}`);
  const want = new RegExp(`^${hooksPath(user).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\?status=${status}&limit=${limit}&cursor=[A-Za-z0-9_-]+$`);
  assert.match(m[1], want, `Link carries the query and a cursor: ${link}`);
  return m[1];
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};

// ---------------------------------------------------------------------------------------

/** Waits for `user`'s one failed row on `relay`; checks its shape; returns [row]. */
async function theFailedRow(user) {
  const failed = await waitFor(async () => {
    const rs = await rows(relay, user, 'failed');
    return rs.length === 1 && rs;
  }, 8_000, 'the failed row');
  assertRowShape(failed[0], 'failed');
  return failed;
}

describe('outbox', { concurrency: true }, () => {
  describe('relay: replay, Retry-After, 410, pending', { concurrency: false }, () => {
    test('replay of one: exhausted → failed (3 attempts); fixed receiver; retry → 202, received once with the original webhook-id, then delivered', async () => {
      const { user } = await setupUser(relay.url, { kling: { [KLING]: 2 } });
      let fixed = false;
      const rcv = await receiver(() => (fixed ? 200 : 500));
      const replyUrl = `${rcv.url}/replay-one`;
      const webhookId = await deliver(relay, user, 1301, replyUrl, { status: 'completed', result: { url: 'x.mp4' } });

      await rcv.waitFor(3, 20_000);
      const failed = await theFailedRow(user);
      assert.equal(failed[0].webhookId, webhookId);
      assert.equal(failed[0].account, KLING);
      assert.equal(failed[0].replyUrl, replyUrl);
      assert.equal(failed[0].attempts, 3);
      assert.equal(failed[0].lastError, 'HTTP 500');
      assert.deepEqual(failed[0].payload, JSON.parse(rcv.requests[0].body));
      // The default list is the failed one.
      assert.deepEqual((await list(relay, user)).json, failed, 'no status: the failed rows');
      assert.deepEqual(await rows(relay, user, 'pending'), []);
      assert.deepEqual(await rows(relay, user, 'delivered'), []);
      await assertStays(rcv.requests, 3, 3000, 'no attempt after the schedule is exhausted');

      // The receiver is fixed; the operator replays this one.
      fixed = true;
      const tRetry = Date.now();
      const r = await retryOne(relay, user, webhookId);
      assert.equal(r.status, 202, r.text);
      assert.deepEqual(r.json, { webhookId, status: 'pending' });

      const recs = await rcv.waitFor(4, 15_000);
      const rec = recs[3];
      assert.equal(rec.url, '/replay-one');
      assert.equal(rec.headers['webhook-id'], webhookId, 'the replay keeps the original webhook-id');
      assert.ok(verifyWebhookSignature(SECRET, rec), `valid signature: ${JSON.stringify(rec.headers)}`);
      assert.ok(Math.abs(Number(rec.headers['webhook-timestamp']) - rec.time / 1000) <= 10, 'a fresh webhook-timestamp');
      assert.equal(rec.body, rcv.requests[0].body, 'the same payload');
      await assertStays(rcv.requests, 4, 4500, 'the replay is received exactly once');

      const delivered = await rows(relay, user, 'delivered');
      assert.equal(delivered.length, 1, JSON.stringify(delivered));
      assertRowShape(delivered[0], 'delivered');
      assert.equal(delivered[0].webhookId, webhookId);
      assert.equal(delivered[0].replyUrl, replyUrl);
      assert.equal(delivered[0].attempts, 1, 'a fresh schedule: delivered at its first attempt');
      assert.equal(delivered[0].created, failed[0].created, 'created stays the original time');
      const fin = Date.parse(delivered[0].finished);
      assert.ok(fin >= tRetry - 1000 && fin <= Date.now() + 1000, `finished ${delivered[0].finished} is the replay's delivery`);
      assert.deepEqual(await rows(relay, user, 'failed'), [], 'no longer failed');
      assert.deepEqual(await rows(relay, user, 'pending'), []);
      assert.deepEqual((await list(relay, user)).json, [], 'nor in the default list');

      // Delivered: a second retry is a conflict; unknown ids are 404, also for another user.
      assertCodeError(await retryOne(relay, user, webhookId), 409);
      assertCodeError(await retryOne(relay, user, 'msg_00000000000000000000000000000000'), 404, 'Unknown webhook msg_00000000000000000000000000000000');
      const other = await setupUser(relay.url, { kling: { [KLING]: 1 } });
      assertCodeError(await retryOne(relay, other.user, webhookId), 404, `Unknown webhook ${webhookId}`);
      await assertStays(rcv.requests, 4, 2500, 'refused retries send nothing');
    });

    test('pending rows: listed with status=pending and nextAttempt (429 + Retry-After: 3600); a retry of one is 409', async () => {
      const { user } = await setupUser(relay.url, { kling: { [KLING]: 2 } });
      const rcv = await receiver(() => ({ status: 429, headers: { 'retry-after': '3600' } }));
      const replyUrl = `${rcv.url}/later`;
      const webhookId = await deliver(relay, user, 1401, replyUrl);
      const [rec] = await rcv.waitFor(1, 15_000);
      const pending = await waitFor(async () => {
        const rs = await rows(relay, user, 'pending');
        return rs.length === 1 && rs[0].attempts === 1 && rs;
      }, 8_000, 'the pending row after the 429');
      const row = pending[0];
      assertRowShape(row, 'pending');
      assert.equal(row.webhookId, webhookId);
      assert.equal(row.account, KLING);
      assert.equal(row.replyUrl, replyUrl);
      assert.equal(row.lastError, 'HTTP 429');
      assert.deepEqual(row.payload, JSON.parse(rec.body));
      const next = Date.parse(row.nextAttempt);
      assert.ok(
        next >= rec.time + 3_600_000 - 2000 && next <= rec.time + 3_600_000 + 5000,
        `nextAttempt ${row.nextAttempt} is ~1 h after the 429 at ${new Date(rec.time).toISOString()}`,
      );
      assert.deepEqual(await rows(relay, user, 'failed'), [], 'pending is not failed');
      assert.deepEqual((await list(relay, user)).json, [], 'the default list (failed) leaves pending out');
      assert.deepEqual(await rows(relay, user, 'delivered'), []);

      const r = await retryOne(relay, user, webhookId);
      assertCodeError(r, 409);
      assert.match(r.json.error, /pending/i);
      await assertStays(rcv.requests, 1, 3000, 'nothing sent before the Retry-After');
      assert.equal((await rows(relay, user, 'pending'))[0].nextAttempt, row.nextAttempt, 'the refused retry changed nothing');

      // A Retry-After beyond 24 hours puts the next attempt 24 hours later, no more.
      const far = await receiver(() => ({ status: 503, headers: { 'retry-after': '999999' } }));
      const farId = await deliver(relay, user, 1402, `${far.url}/far`);
      const [farRec] = await far.waitFor(1, 15_000);
      const farRow = await waitFor(async () => {
        const rs = await rows(relay, user, 'pending');
        const x = rs.find((y) => y.webhookId === farId);
        return x && x.attempts === 1 && x;
      }, 8_000, 'the second pending row');
      assertRowShape(farRow, 'pending');
      assert.equal(farRow.lastError, 'HTTP 503');
      const farNext = Date.parse(farRow.nextAttempt);
      assert.ok(
        farNext >= farRec.time + 86_400_000 - 2000 && farNext <= farRec.time + 86_400_000 + 5000,
        `nextAttempt ${farRow.nextAttempt}: Retry-After 999999 s is capped at 24 h after ${new Date(farRec.time).toISOString()}`,
      );
      assert.deepEqual(ids(await rows(relay, user, 'pending')), [webhookId, farId].sort());
    });

    test('410 stops at once: failed, attempts 1, no retry', async () => {
      const { user } = await setupUser(relay.url, { kling: { [KLING]: 1 } });
      const rcv = await receiver([410]);
      const replyUrl = `${rcv.url}/gone`;
      const webhookId = await deliver(relay, user, 1501, replyUrl, { status: 'failed' });
      const [rec] = await rcv.waitFor(1, 15_000);
      assert.equal(rec.headers['webhook-id'], webhookId);
      assert.ok(verifyWebhookSignature(SECRET, rec));
      const failed = await theFailedRow(user);
      assert.equal(failed[0].webhookId, webhookId);
      assert.equal(failed[0].attempts, 1);
      assert.match(failed[0].lastError, /410/);
      await assertStays(rcv.requests, 1, 4500, 'no retry after 410');
      assert.deepEqual(await rows(relay, user, 'pending'), []);
    });

    test('bulk replay by time: {"since": T} requeues exactly the failed deliveries created since T', async () => {
      const { user } = await setupUser(relay.url, { kling: { [KLING]: 10 } });
      let mode = 410; // fails each delivery at its first attempt
      const rcv = await receiver(() => mode);
      const url = (id) => `${rcv.url}/bulk/${id}`;

      const before = [];
      for (const id of [1601, 1602, 1603]) before.push(await deliver(relay, user, id, url(id)));
      await sleep(1200);
      const T = new Date().toISOString();
      await sleep(1200);
      const since = [];
      for (const id of [1604, 1605]) since.push(await deliver(relay, user, id, url(id)));

      await rcv.waitFor(5, 15_000);
      const failed = await waitFor(async () => {
        const rs = await rows(relay, user, 'failed');
        return rs.length === 5 && rs;
      }, 8_000, 'five failed rows');
      for (const row of failed) assertRowShape(row, 'failed');
      assert.deepEqual(ids(failed), [...before, ...since].sort());
      // Created before T, created since T (the rows' own times say so).
      for (const row of failed) {
        const isSince = since.includes(row.webhookId);
        assert.equal(Date.parse(row.created) >= Date.parse(T), isSince, `created ${row.created} vs T ${T}`);
      }
      assert.deepEqual(
        failed.map((r) => r.webhookId),
        [...before, ...since],
        'rows in creation order',
      );

      // The {"requeued": n} answers are compared at the end, so that a wrong count does
      // not hide what was (or was not) re-sent.
      const answers = [];
      const requeued = async (body, n, what) => {
        const r = await retrySince(relay, user, body);
        assert.equal(r.status, 200, r.text);
        assert.deepEqual(Object.keys(r.json), ['requeued'], r.text);
        assert.ok(Number.isInteger(r.json.requeued), r.text);
        answers.push({ what, requeued: r.json.requeued, expected: n });
      };

      mode = 200;
      await requeued({ since: T }, since.length, 'since T');

      const recs = await rcv.waitFor(5 + since.length, 15_000);
      const resent = recs.slice(5);
      assert.deepEqual(resent.map((x) => x.headers['webhook-id']).sort(), [...since].sort(), 'only those created since T are re-sent');
      for (const x of resent) {
        assert.ok(verifyWebhookSignature(SECRET, x), 'signed');
        const first = recs.find((y) => y.headers['webhook-id'] === x.headers['webhook-id']);
        assert.equal(x.body, first.body, 'the same payload');
        assert.equal(x.url, first.url);
      }
      await assertStays(rcv.requests, 5 + since.length, 4500, 'each requeued one once, the others not at all');
      const delivered = await rows(relay, user, 'delivered');
      for (const row of delivered) assertRowShape(row, 'delivered');
      assert.deepEqual(ids(delivered), [...since].sort());
      assert.deepEqual(ids(await rows(relay, user, 'failed')), [...before].sort());

      // Nothing failed since T any more: requeues none.
      await requeued({ since: T }, 0, 'since T again');
      await requeued({ since: new Date(Date.now() + 3_600_000).toISOString() }, 0, 'since an hour ahead');

      // Bad bodies: 400, and nothing requeued.
      for (const body of [
        {},
        { since: null },
        { since: 'yesterday' },
        { since: '2025-02-30T00:00:00.000Z' },
        { since: 1_700_000_000_000 },
        { Since: T },
        { since: [T] },
        'not json',
        '[]',
      ]) {
        const bad = await retrySince(relay, user, body);
        assertCodeError(bad, 400);
      }
      await assertStays(rcv.requests, 5 + since.length, 3000, 'refused bodies requeue nothing');
      assert.deepEqual(ids(await rows(relay, user, 'failed')), [...before].sort());

      // An ISO time without milliseconds, before everything: the remaining three.
      await requeued({ since: '2000-01-01T00:00:00Z' }, before.length, 'since 2000 (no milliseconds)');
      const more = await rcv.waitFor(5 + since.length + before.length, 15_000);
      assert.deepEqual(more.slice(5 + since.length).map((x) => x.headers['webhook-id']).sort(), [...before].sort());
      await waitFor(async () => (await rows(relay, user, 'delivered')).length === 5, 8_000, 'all five delivered');
      assert.deepEqual(await rows(relay, user, 'failed'), []);
      assert.deepEqual(
        answers.map((a) => `${a.what}: ${a.requeued}`),
        answers.map((a) => `${a.what}: ${a.expected}`),
        '{"requeued": n} is the number of deliveries put back to pending',
      );
    });

    describe('Retry-After', { concurrency: true }, () => {
      test('429 with Retry-After: 7, then 204: the second attempt comes ≥ 7 s after the first (schedule "1,1")', async (t) => {
        const { user } = await setupUser(relay.url, { kling: { [KLING]: 1 } });
        const rcv = await receiver((rec, i) => (i === 0 ? { status: 429, headers: { 'retry-after': '7' } } : 204));
        const webhookId = await deliver(relay, user, 1701, `${rcv.url}/ra-seconds`);
        const recs = await rcv.waitFor(2, 25_000);
        const gap = recs[1].time - recs[0].time;
        t.diagnostic(`Retry-After: 7 (429): second attempt ${gap} ms after the first`);
        console.log(`[outbox] Retry-After: 7 on a 429: gap ${gap} ms`);
        assert.ok(gap >= 6500, `second attempt ${gap} ms after the first, before Retry-After: 7`);
        assert.ok(gap <= 15_000, `second attempt ${gap} ms after the first: far later than Retry-After + one alarm period`);
        for (const r of recs) assert.equal(r.headers['webhook-id'], webhookId);
        const d = await waitFor(async () => {
          const rs = await rows(relay, user, 'delivered');
          return rs.length === 1 && rs;
        }, 8_000, 'delivered');
        assert.equal(d[0].attempts, 2);
        await assertStays(rcv.requests, 2, 3000);
      });

      test('503 with Retry-After: <HTTP date 6 s ahead>, then 204: not before that date', async (t) => {
        const { user } = await setupUser(relay.url, { kling: { [KLING]: 1 } });
        let dateMs;
        const rcv = await receiver((rec, i) => {
          if (i > 0) return 204;
          // Whole seconds (an HTTP date has no finer grain), at least 6 s ahead.
          dateMs = Math.ceil((Date.now() + 6000) / 1000) * 1000;
          return { status: 503, headers: { 'retry-after': new Date(dateMs).toUTCString() } };
        });
        const webhookId = await deliver(relay, user, 1702, `${rcv.url}/ra-date`);
        const recs = await rcv.waitFor(2, 25_000);
        const gap = recs[1].time - recs[0].time;
        t.diagnostic(`Retry-After: HTTP date (503, ${dateMs - recs[0].time} ms ahead): gap ${gap} ms`);
        console.log(`[outbox] Retry-After: HTTP date ${dateMs - recs[0].time} ms ahead on a 503: gap ${gap} ms`);
        assert.ok(recs[1].time >= dateMs - 250, `second attempt at ${new Date(recs[1].time).toISOString()}, before the date ${new Date(dateMs).toUTCString()}`);
        assert.ok(gap >= 5500, `gap ${gap} ms`);
        assert.ok(gap <= 15_000, `gap ${gap} ms: far later than the date + one alarm period`);
        for (const r of recs) assert.equal(r.headers['webhook-id'], webhookId);
        await waitFor(async () => (await rows(relay, user, 'delivered')).length === 1, 8_000, 'delivered');
      });

      test('500 with Retry-After: 30 is not delayed by it (the schedule\'s 1 s applies)', async (t) => {
        const { user } = await setupUser(relay.url, { kling: { [KLING]: 1 } });
        const rcv = await receiver((rec, i) => (i === 0 ? { status: 500, headers: { 'retry-after': '30' } } : 204));
        await deliver(relay, user, 1703, `${rcv.url}/ra-500`);
        const recs = await rcv.waitFor(2, 20_000);
        const gap = recs[1].time - recs[0].time;
        t.diagnostic(`Retry-After: 30 on a 500: gap ${gap} ms`);
        console.log(`[outbox] Retry-After: 30 on a 500 (ignored): gap ${gap} ms`);
        assert.ok(gap >= 900, `gap ${gap} ms: before the schedule's 1 s`);
        assert.ok(gap < 12_000, `gap ${gap} ms: a 500's Retry-After must not delay the retry`);
        await waitFor(async () => (await rows(relay, user, 'delivered')).length === 1, 8_000, 'delivered');
      });
    });

    test('list query bounds: limit 0 / 1001 / not a number → 400, bad cursor → 400, bad status → 400; pages cross accounts in name order', async () => {
      const { user } = await setupUser(relay.url, { kling: { 'b@x.com': 5, [KLING]: 5 } });
      const rcv = await receiver(() => 410);
      const made = { [KLING]: [], 'b@x.com': [] };
      // b first, then a: the list is still a's rows (by creation) before b's.
      for (const [i, email] of ['b@x.com', KLING, 'b@x.com', KLING, 'b@x.com', KLING].entries()) {
        const id = 1801 + i;
        await mustRegister(relay.url, user, 'kling', { id, email, replyUrl: `${rcv.url}/p/${id}` });
        const c = await completeJob(relay.url, user, 'kling', id);
        assert.equal(c.status, 200, c.text);
        made[email].push(c.json.webhookId);
      }
      await waitFor(async () => (await rows(relay, user, 'failed')).length === 6, 15_000, 'six failed rows');
      const want = [...made[KLING], ...made['b@x.com']];

      for (const q of ['?limit=0', '?limit=1001', '?limit=-1', '?limit=abc', '?limit=1.5', '?limit=', '?cursor=garbage!', '?cursor=bm9wZQ', '?status=failed&cursor=%%%', '?status=bogus', '?status=']) {
        const r = await admin(relay.url, 'GET', hooksPath(user) + q);
        assertCodeError(r, 400);
      }
      // limit=1000 and limit=1 are fine.
      assert.equal((await list(relay, user, '?limit=1000')).json.length, 6);
      for (const limit of [1, 2, 4, 6]) {
        let path = `${hooksPath(user)}?status=failed&limit=${limit}`;
        const seen = [];
        let pages = 0;
        while (path) {
          const r = await admin(relay.url, 'GET', path);
          assert.equal(r.status, 200, r.text);
          assert.ok(Array.isArray(r.json) && r.text.trimStart().startsWith('['), 'a page is a JSON array');
          assert.ok(r.json.length <= limit);
          for (const row of r.json) assertRowShape(row, 'failed');
          seen.push(...r.json.map((row) => row.webhookId));
          path = nextPath(r, user, 'failed', limit);
          if (path) assert.equal(r.json.length, limit, 'a page that is not the last is full');
          pages += 1;
          assert.ok(pages <= 10, 'the Link chain ends');
        }
        assert.deepEqual(seen, want, `limit=${limit}: accounts by name, then creation; each row once`);
        assert.ok(pages >= Math.ceil(6 / limit) && pages <= Math.ceil(6 / limit) + 1, `limit=${limit}: ${pages} pages`);
      }
      // The accounts' names in the rows.
      const all = (await list(relay, user, '?limit=6')).json;
      assert.deepEqual(all.map((r) => r.account), [KLING, KLING, KLING, 'b@x.com', 'b@x.com', 'b@x.com']);
    });
  });

  describe('page size', { concurrency: false }, () => {
    test('a page stops at ~4 MiB (20 failed rows of ~250 KB payloads, limit=100): Link to the rest, each body a JSON array', async () => {
      const { user } = await setupUser(relay.url, { kling: { [KLING]: 5 } });
      const rcv = await receiver(() => 410);
      const big = 'x'.repeat(250_000);
      const made = [];
      for (let i = 0; i < 20; i++) {
        made.push(await deliver(relay, user, 2001 + i, `${rcv.url}/big`, { status: 'completed', result: { i, big } }));
      }
      await rcv.waitFor(20, 30_000);
      await waitFor(async () => (await admin(relay.url, 'GET', `${hooksPath(user)}?status=pending&limit=1`)).json.length === 0, 15_000, 'nothing pending');
      let path = `${hooksPath(user)}?status=failed&limit=100`;
      const seen = [];
      const sizes = [];
      while (path) {
        const r = await admin(relay.url, 'GET', path);
        assert.equal(r.status, 200, r.text.slice(0, 200));
        assert.ok(r.text.startsWith('[') && Array.isArray(r.json), 'the body stays a JSON array');
        sizes.push([r.json.length, r.text.length]);
        assert.ok(r.text.length <= 4 * 1024 * 1024 + 300_000, `a page of ${r.text.length} bytes: over ~4 MiB`);
        for (const row of r.json) {
          assertRowShape(row, 'failed');
          assert.equal(row.payload.result.big.length, big.length, 'the payload is whole');
        }
        seen.push(...r.json.map((row) => row.webhookId));
        path = nextPath(r, user, 'failed', 100);
        assert.ok(sizes.length <= 5, 'the Link chain ends');
      }
      assert.ok(sizes.length >= 2, `20 rows of ~250 KB fit no single page: pages ${JSON.stringify(sizes)}`);
      assert.ok(sizes[0][0] < 20 && sizes[0][1] >= 3_500_000, `the first page stops near 4 MiB: ${JSON.stringify(sizes)}`);
      assert.deepEqual(seen, made, 'every row once, in creation order');
    });
  });

  describe('retention', { concurrency: false }, () => {
    test('WEBHOOK_RETENTION_DAYS=0.0001: failed and delivered rows are pruned ~8.64 s after they finished; pending stays', async (t) => {
      const { user } = await setupUser(retention.url, { kling: { [KLING]: 5 } });
      const rcv = await receiver((rec) => {
        if (rec.url === '/gone') return 410;
        if (rec.url === '/later') return { status: 429, headers: { 'retry-after': '3600' } };
        return 200;
      });
      const failedId = await deliver(retention, user, 1901, `${rcv.url}/gone`);
      const deliveredId = await deliver(retention, user, 1902, `${rcv.url}/ok`);
      const pendingId = await deliver(retention, user, 1903, `${rcv.url}/later`);
      await rcv.waitFor(3, 15_000);

      const [f, d] = await waitFor(async () => {
        const [fr, dr] = await Promise.all([rows(retention, user, 'failed'), rows(retention, user, 'delivered')]);
        return fr.length === 1 && dr.length === 1 && [fr[0], dr[0]];
      }, 8_000, 'a failed and a delivered row');
      assertRowShape(f, 'failed');
      assertRowShape(d, 'delivered');
      assert.equal(f.webhookId, failedId);
      assert.equal(d.webhookId, deliveredId);
      const finished = { failed: Date.parse(f.finished), delivered: Date.parse(d.finished) };
      assert.ok(Date.now() - finished.failed < RETENTION_MS - 1000, 'listed well within retention');

      // Poll both lists until each row is gone (only the account's alarm prunes).
      const gone = {};
      await waitFor(async () => {
        const [fr, dr] = await Promise.all([rows(retention, user, 'failed'), rows(retention, user, 'delivered')]);
        const now = Date.now();
        if (fr.length === 0) gone.failed ??= now;
        if (dr.length === 0) gone.delivered ??= now;
        return gone.failed && gone.delivered;
      }, RETENTION_MS + 20_000, 'the failed and delivered rows to be pruned', 200);
      for (const k of ['failed', 'delivered']) {
        const after = gone[k] - finished[k];
        t.diagnostic(`${k} row gone ${after} ms after it finished (retention ${RETENTION_MS} ms)`);
        assert.ok(after >= RETENTION_MS - 500, `${k} row pruned ${after} ms after it finished: before the retention of ${RETENTION_MS} ms`);
        assert.ok(after <= RETENTION_MS + 15_000, `${k} row pruned ${after} ms after it finished: too late`);
      }
      const p = await rows(retention, user, 'pending');
      assert.equal(p.length, 1, 'a pending delivery is not pruned by retention');
      assert.equal(p[0].webhookId, pendingId);
      assertCodeError(await retryOne(retention, user, failedId), 404, `Unknown webhook ${failedId}`);
    });
  });

  describe('paging', { concurrency: false }, () => {
    test(`paging through ${OUTBOX_ROWS} failed rows of one account: every row once, Link/cursor, a page costs the same at 100 and at 10,000 rows`, async (t) => {
      const LANES = 8;
      const { user } = await setupUser(paging.url, { kling: { [KLING]: 50 } });
      const rcv = await receiver(() => 410);
      const replyUrl = `${rcv.url}/gone`;
      const created = []; // webhook ids in the order their completions answered
      let nextId = 1;
      const note = (msg) => {
        t.diagnostic(msg);
        console.log(`[outbox] ${msg}`);
      };

      /** Register + complete jobs up to id `to`, LANES pairs at once. */
      const createUpTo = async (to) => {
        const lane = async () => {
          for (;;) {
            if (nextId > to) return;
            const id = nextId++;
            const reg = await registerJob(paging.url, user, 'kling', { id, replyUrl });
            assert.equal(reg.status, 201, `register ${id}: ${reg.text}`);
            const c = await completeJob(paging.url, user, 'kling', id);
            assert.equal(c.status, 200, `complete ${id}: ${c.text}`);
            created.push(c.json.webhookId);
          }
        };
        await Promise.all(Array.from({ length: LANES }, lane));
      };

      /** Waits until nothing is pending and returns how long that took. */
      const drain = async (timeoutMs) => {
        const t0 = Date.now();
        let lastNote = t0;
        await waitFor(async () => {
          const r = await list(paging, user, '?status=pending&limit=1');
          if (Date.now() - lastNote > 30_000) {
            lastNote = Date.now();
            note(`  … ${rcv.requests.length} attempts received so far (${Math.round((Date.now() - t0) / 1000)} s)`);
          }
          return r.json.length === 0;
        }, timeoutMs, 'every delivery to have had its attempt', 2000);
        return Date.now() - t0;
      };

      /** Median time of GET `path` (after warm-up requests), asserting rows each time. */
      const timePage = async (path, expectRows, samples = 21) => {
        const times = [];
        for (let i = 0; i < samples + 3; i++) {
          const s = performance.now();
          const r = await admin(paging.url, 'GET', path);
          const ms = performance.now() - s;
          assert.equal(r.status, 200, r.text);
          assert.equal(r.json.length, expectRows, `${path}: ${r.json.length} rows`);
          if (i >= 3) times.push(ms);
        }
        return median(times);
      };

      // 1. ~100 failed rows: the small table's page time.
      const small = Math.min(100, OUTBOX_ROWS);
      const tCreate0 = Date.now();
      await createUpTo(small);
      let creationMs = Date.now() - tCreate0;
      await drain(60_000);
      const first = await list(paging, user, '?limit=1000');
      assert.equal(first.json.length, small);
      const smallMs = await timePage(`${hooksPath(user)}?limit=100`, Math.min(100, small));
      note(`page of limit=100 with ${small} failed rows in the table: median ${smallMs.toFixed(1)} ms`);

      // 2. The rest, as fast as the worker takes them.
      const tCreate1 = Date.now();
      await createUpTo(OUTBOX_ROWS);
      creationMs += Date.now() - tCreate1;
      assert.equal(created.length, OUTBOX_ROWS);
      assert.equal(new Set(created).size, OUTBOX_ROWS, 'every completion its own webhook id');
      note(`created ${OUTBOX_ROWS} deliveries (register + complete, ${LANES} at once) in ${(creationMs / 1000).toFixed(1)} s (${((OUTBOX_ROWS / creationMs) * 1000).toFixed(0)} pairs/s); ${rcv.requests.length} attempts received by then`);
      const drainMs = await drain(Math.max(120_000, OUTBOX_ROWS * 100));
      note(`every delivery attempted (failed) ${((Date.now() - tCreate1) / 1000).toFixed(1)} s after creation resumed (drain wait ${(drainMs / 1000).toFixed(1)} s); ${rcv.requests.length} attempts received`);

      // The caps are kept by the account's alarm: give it a few periods to prune.
      const countAll = async () => {
        let n = 0;
        let p = `${hooksPath(user)}?status=failed&limit=1000`;
        while (p) {
          const r = await admin(paging.url, 'GET', p);
          assert.equal(r.status, 200, r.text);
          n += r.json.length;
          p = nextPath(r, user, 'failed', 1000);
        }
        return n;
      };
      const expected = Math.min(OUTBOX_ROWS, MAX_FAILED_ROWS);
      const graceStart = Date.now();
      let counted;
      while ((counted = await countAll()) > expected && Date.now() - graceStart < 10_000) await sleep(2000);
      note(`${counted} failed rows listed ${((Date.now() - graceStart) / 1000).toFixed(1)} s after the last attempt (created ${OUTBOX_ROWS}, cap ${MAX_FAILED_ROWS})`);

      // 3. Walk every page of limit=1000 through the Link header.
      const seen = new Map(); // webhookId -> page number
      const repeated = [];
      const foreign = [];
      const cursors = []; // the next path after each page
      const walkTimes = [];
      const kinds = { attempted410: 0, dropped: 0, other: [] };
      let path = `${hooksPath(user)}?status=failed&limit=1000`;
      let page = 0;
      const known = new Set(created);
      while (path) {
        page += 1;
        assert.ok(page <= Math.ceil(OUTBOX_ROWS / 1000) + 2, 'the Link chain ends');
        const s = performance.now();
        const r = await admin(paging.url, 'GET', path);
        walkTimes.push(performance.now() - s);
        assert.equal(r.status, 200, r.text);
        assert.ok(Array.isArray(r.json) && r.text.trimStart().startsWith('['), `page ${page} is a JSON array`);
        assert.ok(r.json.length <= 1000);
        for (const row of r.json) {
          if (seen.has(row.webhookId)) repeated.push(row.webhookId);
          seen.set(row.webhookId, page);
          if (!known.has(row.webhookId)) foreign.push(row.webhookId);
          if (row.status !== 'failed' || row.account !== KLING || row.replyUrl !== replyUrl || !('payload' in row)) {
            kinds.other.push(row);
          } else if (row.attempts === 1 && /410/.test(row.lastError ?? '')) kinds.attempted410 += 1;
          else if (row.attempts === 0 && /dropped/.test(row.lastError ?? '')) kinds.dropped += 1;
          else kinds.other.push(row);
        }
        path = nextPath(r, user, 'failed', 1000);
        if (path) {
          assert.equal(r.json.length, 1000, `page ${page} is not the last: it is full`);
          cursors.push(path);
        }
      }
      const total = seen.size;
      const missing = created.map((id, i) => [id, i]).filter(([id]) => !seen.has(id));
      note(`walked ${page} pages of limit=1000: ${total} rows (${kinds.attempted410} failed by 410 at attempt 1, ${kinds.dropped} dropped from a full pending queue), ${repeated.length} repeated, ${missing.length} of the ${OUTBOX_ROWS} created not listed; page time median ${median(walkTimes).toFixed(1)} ms, max ${Math.max(...walkTimes).toFixed(1)} ms`);

      // 4. The large table's page time, limit=100: first page, middle and end (deep cursors).
      const withLimit100 = (p) => p.replace('&limit=1000&', '&limit=100&');
      const largePaths = [
        [`first page`, `${hooksPath(user)}?limit=100`],
        cursors.length >= 5 && [`after 5000 rows`, withLimit100(cursors[4])],
        cursors.length >= 9 && [`after 9000 rows`, withLimit100(cursors[8])],
      ].filter(Boolean);
      const largeTimes = [];
      for (const [what, p] of largePaths) {
        const ms = await timePage(p, 100);
        largeTimes.push(ms);
        note(`page of limit=100 with ${total} failed rows in the table, ${what}: median ${ms.toFixed(1)} ms`);
      }
      const largeMs = Math.max(...largeTimes);
      note(`page time (limit=100): ${smallMs.toFixed(1)} ms at ${small} rows, ${largeMs.toFixed(1)} ms at ${total} rows (ratio ${(largeMs / smallMs).toFixed(2)})`);

      // The assertions, after the figures are printed.
      assert.deepEqual(repeated, [], 'no row on two pages');
      assert.deepEqual(foreign, [], 'every listed row is one created here');
      assert.deepEqual(kinds.other, [], 'every row is this account\'s failed delivery with its payload');
      if (OUTBOX_ROWS > MAX_FAILED_ROWS) {
        // Beyond the cap the oldest go first (completion order here is creation order
        // up to the lanes running at once).
        const late = missing.filter(([, i]) => i >= OUTBOX_ROWS - MAX_FAILED_ROWS + LANES);
        assert.deepEqual(late.map(([id, i]) => `${id}#${i}`), [], 'only the oldest rows went over the cap');
      }
      assert.ok(
        largeMs <= 3 * smallMs + 10,
        `a page of 100 at ${total} rows took ${largeMs.toFixed(1)} ms vs ${smallMs.toFixed(1)} ms at ${small} rows: more than ~3x (a scan, not an index?)`,
      );
      // None lost, none kept beyond the cap (the oldest go first).
      assert.equal(total, expected, `listed ${total} failed rows; created ${OUTBOX_ROWS}, at most ${MAX_FAILED_ROWS} kept per account`);
    });
  });
});
