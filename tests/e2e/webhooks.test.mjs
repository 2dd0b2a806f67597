// Webhooks end to end (API.md "Lifecycle, expiry and webhooks"): payloads, Standard
// Webhooks signatures (checked here with node:crypto, independently of the worker),
// retries per WEBHOOK_RETRY_SCHEDULE, 410, receivers that are down, a restart while a
// delivery is pending, the webhooks lists (?status=pending|failed|delivered, failed by
// default; delivered rows keep no payload), expiry webhooks, and replyUrl validation; plus
// two consequences for webhooks of other rules: a webhook queued for an account that is
// then deleted is still delivered (README, "Decisions"), and one completion sends one webhook
// even when the same job id was registered concurrently on two accounts.
//
// Three workers, started in parallel:
//   main     signed, retries '1,1' (3 attempts), JOB_TIMEOUT_SECONDS=30
//   durable  signed, retries '1,...' (11 attempts), own persist dir, restarted by one test
//   unsigned no WEBHOOK_SECRET, retries '1,1', JOB_TIMEOUT_SECONDS=3
// The alarm wakes on a 2 s grid, so each delivery hop takes up to ~3 s: waits are
// polls with a bound, and "nothing more arrives" is checked over a few grid periods.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import { assertCodeError, STARTED_RE } from '../support/assertions.mjs';
import { admin, pub } from '../support/client.mjs';
import { completeJob, isoAgo, mustRegister, registerJob, setupUser } from '../support/fixtures.mjs';
import { startReceiver } from '../support/receiver.mjs';
import { downPort, sleep, startWorker } from '../support/server.mjs';

const SECRET = 'whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD';
const KLING = 'a@x.com';
const DREAMINA = 'US:a@x.com';

let main;
let durable;
let unsigned;
const closers = [];

before(async () => {
  [main, durable, unsigned] = await Promise.all([
    startWorker({ vars: { WEBHOOK_SECRET: SECRET, WEBHOOK_RETRY_SCHEDULE: '1,1', JOB_TIMEOUT_SECONDS: '30' } }),
    startWorker({ vars: { WEBHOOK_SECRET: SECRET, WEBHOOK_RETRY_SCHEDULE: '1,1,1,1,1,1,1,1,1,1' } }),
    startWorker({ vars: { WEBHOOK_RETRY_SCHEDULE: '1,1', JOB_TIMEOUT_SECONDS: '3' } }),
  ]);
});

after(async () => {
  for (const c of closers) await c().catch(() => {});
  await Promise.all([main, durable, unsigned].map((w) => w?.stop()));
});

// ---------------------------------------------------------------------------------------
// Local helpers

/** Polls fn until it returns a truthy value (returned); fails after timeoutMs. */
async function waitFor(fn, timeoutMs = 15_000, what = 'condition') {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(200);
  }
}

/** A harness receiver, closed after the file. */
async function receiver(handler) {
  const r = await startReceiver(handler);
  closers.push(() => r.close());
  return r;
}

/**
 * A minimal recording receiver on a GIVEN port (the harness one always picks a free
 * port; the "receiver comes back up on the same port" tests need a fixed one).
 */
async function listenOn(port, status = 200) {
  const requests = [];
  const sockets = new Set();
  const server = http.createServer((request, response) => {
    const chunks = [];
    request.on('data', (c) => chunks.push(c));
    request.on('end', () => {
      requests.push({
        method: request.method,
        url: request.url,
        headers: { ...request.headers },
        body: Buffer.concat(chunks).toString('utf8'),
        time: Date.now(),
      });
      response.writeHead(status, { 'content-type': 'application/json' });
      response.end('{}');
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.listen(port, '127.0.0.1');
  await once(server, 'listening');
  const close = async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => server.close(r));
  };
  closers.push(close);
  return { requests, close };
}

/** Independent Standard Webhooks check: v1,base64(HMAC-SHA256(key, id.ts.body)). */
function expectedSignature(secret, id, ts, body) {
  const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
  return 'v1,' + createHmac('sha256', key).update(`${id}.${ts}.${body}`).digest('base64');
}

/** Asserts the delivery headers of one received request; returns its webhook id. */
function assertDeliveryHeaders(rec, { signed = true, webhookId } = {}) {
  assert.equal(rec.method, 'POST');
  assert.match(rec.headers['content-type'] ?? '', /^application\/json\b/i);
  const id = rec.headers['webhook-id'];
  assert.match(id ?? '', /^msg_[A-Za-z0-9_-]+$/, `webhook-id ${id}`);
  if (webhookId !== undefined) assert.equal(id, webhookId, 'webhook-id is the one the completion answered');
  const ts = rec.headers['webhook-timestamp'];
  assert.match(ts ?? '', /^\d+$/, `webhook-timestamp ${ts} is unix seconds`);
  assert.ok(
    Math.abs(Number(ts) - rec.time / 1000) <= 10,
    `webhook-timestamp ${ts} is near the receive time ${Math.floor(rec.time / 1000)}`,
  );
  if (signed) {
    const sig = rec.headers['webhook-signature'];
    assert.ok(sig, 'webhook-signature present');
    // The header may list several space-separated signatures; ours must be one of them.
    const want = expectedSignature(SECRET, id, ts, rec.body);
    assert.ok(sig.split(' ').includes(want), `webhook-signature ${sig} != independent ${want}`);
  } else {
    assert.equal(rec.headers['webhook-signature'], undefined, 'no signature without WEBHOOK_SECRET');
  }
  return id;
}

/** Expected Kling body, with the exact key order of API.md; optional fields left out. */
function klingBody({ id, email, status, started, finished, replyRef, result, error }) {
  const o = { id, email, status, started, finished };
  if (replyRef !== undefined) o.replyRef = replyRef;
  if (result !== undefined) o.result = result;
  if (error !== undefined) o.error = error;
  return JSON.stringify(o);
}

function dreaminaBody({ jobid, account, submitId, model, status, elapsedSeconds, replyRef, result, error }) {
  const o = { jobid, account, submitId, model, status, elapsedSeconds };
  if (replyRef !== undefined) o.replyRef = replyRef;
  if (result !== undefined) o.result = result;
  if (error !== undefined) o.error = error;
  return JSON.stringify(o);
}

function assertNoNulls(obj) {
  for (const [k, v] of Object.entries(obj)) assert.notEqual(v, null, `${k} is null in ${JSON.stringify(obj)}`);
}

/** finished (ISO) is within [lo - slack, hi + slack] ms. */
function assertIsoBetween(iso, lo, hi, slack = 2000, what = 'time') {
  assert.match(iso, STARTED_RE);
  const t = Date.parse(iso);
  assert.ok(t >= lo - slack && t <= hi + slack, `${what} ${iso} not within [${new Date(lo).toISOString()}, ${new Date(hi).toISOString()}]`);
}

function webhooksList(w, user, provider, status) {
  const q = status === undefined ? '' : `?status=${status}`;
  return admin(w.url, 'GET', `/admin/v1/users/${user}/${provider}/webhooks${q}`);
}

/** Checks one row of the webhooks list. */
function assertRow(row, { webhookId, account, replyUrl, status, attempts, lastError, payload }) {
  for (const k of ['webhookId', 'account', 'replyUrl', 'status', 'attempts', 'payload']) {
    assert.ok(k in row, `row lacks ${k}: ${JSON.stringify(row)}`);
  }
  assertNoNulls(row);
  assert.equal(row.webhookId, webhookId);
  assert.equal(row.account, account);
  assert.equal(row.replyUrl, replyUrl);
  assert.equal(row.status, status);
  assert.equal(row.attempts, attempts);
  if (lastError instanceof RegExp) assert.match(row.lastError ?? '', lastError);
  else if (lastError !== undefined) assert.equal(row.lastError, lastError);
  if (payload !== undefined) assert.deepEqual(row.payload, payload);
}

/**
 * Once delivered, a webhook leaves the pending and failed lists (the default list is the
 * failed one) and is listed with ?status=delivered, without its payload: asserts that
 * the user's deliveries are exactly `delivered` ([{webhookId, attempts?}]) and none other.
 */
async function assertAllDelivered(w, user, provider, delivered) {
  assert.deepEqual((await webhooksList(w, user, provider, 'pending')).json, [], 'nothing pending');
  assert.deepEqual((await webhooksList(w, user, provider, 'failed')).json, [], 'nothing failed');
  assert.deepEqual((await webhooksList(w, user, provider)).json, [], 'the default (failed) list is empty');
  const r = await webhooksList(w, user, provider, 'delivered');
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json.map((row) => row.webhookId), delivered.map((d) => d.webhookId), 'the delivered list');
  r.json.forEach((row, i) => {
    assertNoNulls(row);
    assert.equal(row.status, 'delivered');
    assert.ok(!('payload' in row), `a delivered row keeps no payload: ${JSON.stringify(row)}`);
    assert.ok(!('nextAttempt' in row), `a delivered row has no nextAttempt: ${JSON.stringify(row)}`);
    assert.match(row.finished ?? '', STARTED_RE, 'a delivered row has finished');
    assert.match(row.created ?? '', STARTED_RE, 'created');
    if (delivered[i].attempts !== undefined) assert.equal(row.attempts, delivered[i].attempts, JSON.stringify(row));
  });
}

/** Lets a few alarm periods pass, then asserts the receiver still has exactly n requests. */
async function assertStays(requests, n, ms = 4500, what = 'requests') {
  await sleep(ms);
  assert.equal(requests.length, n, `${what}: expected ${n}, got ${requests.length}`);
}

// ---------------------------------------------------------------------------------------
// 1. Delivered once, on the first try

describe('webhooks', () => {
  test('Kling: one signed POST with the exact payload, webhook-id as the completion answered', async () => {
    const { user } = await setupUser(main.url, { kling: { [KLING]: 2 } });
    const rcv = await receiver();
    const replyUrl = `${rcv.url}/hooks/kling?x=1`;
    const job = await mustRegister(main.url, user, 'kling', { id: 101, replyUrl, replyRef: 'ref-101', started: isoAgo(5) });
    const t0 = Date.now();
    const c = await completeJob(main.url, user, 'kling', 101, { status: 'completed', result: { url: 'x.mp4' } });
    const t1 = Date.now();
    assert.equal(c.status, 200, c.text);
    assert.deepEqual(Object.keys(c.json).sort(), ['account', 'id', 'status', 'webhookId']);
    assert.equal(c.json.id, 101);
    assert.equal(c.json.account, KLING);
    assert.equal(c.json.status, 'completed');
    assert.match(c.json.webhookId, /^msg_/);

    const [rec] = await rcv.waitFor(1, 15_000);
    assert.equal(rec.url, '/hooks/kling?x=1', 'posted to the replyUrl, path and query kept');
    assertDeliveryHeaders(rec, { webhookId: c.json.webhookId });
    const body = JSON.parse(rec.body);
    assert.deepEqual(Object.keys(body), ['id', 'email', 'status', 'started', 'finished', 'replyRef', 'result']);
    assertNoNulls(body);
    assert.equal(body.started, job.started, 'started is the registered one');
    assertIsoBetween(body.finished, t0, t1, 2000, 'finished');
    assert.equal(
      rec.body,
      klingBody({ id: 101, email: KLING, status: 'completed', started: job.started, finished: body.finished, replyRef: 'ref-101', result: { url: 'x.mp4' } }),
    );

    // Exactly one POST, and nothing left queued: it is listed as delivered only.
    await assertStays(rcv.requests, 1, 4500, 'a delivered webhook is not sent again');
    await assertAllDelivered(main, user, 'kling', [{ webhookId: c.json.webhookId, attempts: 1 }]);
  });

  test('Dreamina: one signed POST with the exact payload (elapsedSeconds, replyRef, failed + result)', async () => {
    const { user } = await setupUser(main.url, { dreamina: { [DREAMINA]: 2 } });
    const rcv = await receiver([204]);
    const replyUrl = `${rcv.url}/hooks/dreamina`;
    const job = await mustRegister(main.url, user, 'dreamina', {
      submitId: 'sub-1',
      model: 'seedance-2.0',
      jobid: 'jwh1v-u1-dreamina',
      replyUrl,
      replyRef: 'dref',
      started: isoAgo(12), // main's JOB_TIMEOUT_SECONDS is 30
    });
    assert.equal(job.jobid, 'jwh1v-u1-dreamina');
    const c = await completeJob(main.url, user, 'dreamina', job.jobid, { status: 'completed', result: { url: 'x.mp4' } });
    assert.equal(c.status, 200, c.text);
    assert.deepEqual(Object.keys(c.json).sort(), ['account', 'jobid', 'status', 'webhookId']);
    assert.equal(c.json.jobid, job.jobid);
    assert.equal(c.json.account, DREAMINA);

    const [rec] = await rcv.waitFor(1, 15_000);
    assert.equal(rec.url, '/hooks/dreamina');
    assertDeliveryHeaders(rec, { webhookId: c.json.webhookId });
    const body = JSON.parse(rec.body);
    assert.deepEqual(Object.keys(body), ['jobid', 'account', 'submitId', 'model', 'status', 'elapsedSeconds', 'replyRef', 'result']);
    assertNoNulls(body);
    assert.ok(Number.isInteger(body.elapsedSeconds), 'elapsedSeconds whole');
    assert.ok(body.elapsedSeconds >= 11 && body.elapsedSeconds <= 16, `elapsedSeconds ${body.elapsedSeconds} ~ 12`);
    assert.equal(
      rec.body,
      dreaminaBody({ jobid: job.jobid, account: DREAMINA, submitId: 'sub-1', model: 'seedance-2.0', status: 'completed', elapsedSeconds: body.elapsedSeconds, replyRef: 'dref', result: { url: 'x.mp4' } }),
    );

    // A "failed" completion without result or replyRef: only the mandatory keys.
    const job2 = await mustRegister(main.url, user, 'dreamina', { submitId: 'sub-2', model: 'm2', replyUrl });
    const c2 = await completeJob(main.url, user, 'dreamina', job2.jobid, { status: 'failed' });
    assert.equal(c2.status, 200, c2.text);
    const recs = await rcv.waitFor(2, 15_000);
    const rec2 = recs[1];
    assertDeliveryHeaders(rec2, { webhookId: c2.json.webhookId });
    assert.notEqual(rec2.headers['webhook-id'], rec.headers['webhook-id'], 'each event its own webhook-id');
    const body2 = JSON.parse(rec2.body);
    assert.equal(rec2.body, dreaminaBody({ jobid: job2.jobid, account: DREAMINA, submitId: 'sub-2', model: 'm2', status: 'failed', elapsedSeconds: body2.elapsedSeconds }));
    assert.ok(body2.elapsedSeconds >= 0 && body2.elapsedSeconds <= 5);
    await assertStays(rcv.requests, 2, 3000);
  });

  // -------------------------------------------------------------------------------------
  // 2. Retries

  test('500, 500, then 200: three attempts with one webhook-id, each signed for its own timestamp, then none', async () => {
    const { user } = await setupUser(main.url, { kling: { [KLING]: 1 } });
    const rcv = await receiver([500, 500, 200]);
    const replyUrl = `${rcv.url}/retry`;
    await mustRegister(main.url, user, 'kling', { id: 201, replyUrl });
    const c = await completeJob(main.url, user, 'kling', 201, { status: 'completed', result: { url: 'x.mp4' } });
    assert.equal(c.status, 200, c.text);

    const t0 = Date.now();
    const timeline = () => `completed at ${t0}; attempts at ${rcv.requests.map((r) => `+${r.time - t0}ms`).join(', ')}`;
    const recs = await rcv.waitFor(3, 20_000).catch((e) => assert.fail(`${e.message}; ${timeline()}`));
    for (const rec of recs) assertDeliveryHeaders(rec, { webhookId: c.json.webhookId });
    assert.equal(new Set(recs.map((r) => r.body)).size, 1, 'the same body every time');
    for (let i = 1; i < 3; i++) {
      assert.ok(recs[i].time - recs[i - 1].time >= 900, `retry ${i} came too early (schedule: 1 s); ${timeline()}`);
      assert.ok(Number(recs[i].headers['webhook-timestamp']) >= Number(recs[i - 1].headers['webhook-timestamp']));
    }
    // While it retried it was pending; once delivered it leaves pending (and never was
    // failed) and is listed as delivered, after 3 attempts.
    await assertStays(rcv.requests, 3, 5000, `no attempt after the 200 (${timeline()})`);
    await assertAllDelivered(main, user, 'kling', [{ webhookId: c.json.webhookId, attempts: 3 }]);
  });

  test('receiver down (port closed), then up on the same port: delivered once it is up', async () => {
    const { user } = await setupUser(durable.url, { kling: { [KLING]: 1 } });
    const port = await downPort();
    const replyUrl = `http://127.0.0.1:${port}/down-then-up`;
    await mustRegister(durable.url, user, 'kling', { id: 301, replyUrl, replyRef: 'r301' });
    const c = await completeJob(durable.url, user, 'kling', 301, { status: 'completed' });
    assert.equal(c.status, 200, c.text);

    // The first attempt fails (connection refused) and the delivery stays pending.
    const pending = await waitFor(async () => {
      const r = await webhooksList(durable, user, 'kling', 'pending');
      assert.equal(r.status, 200, r.text);
      return r.json.length === 1 && r.json[0].attempts >= 1 && r.json;
    }, 15_000, 'a failed first attempt');
    assertRow(pending[0], { webhookId: c.json.webhookId, account: KLING, replyUrl, status: 'pending', attempts: pending[0].attempts });
    assert.ok(pending[0].lastError && pending[0].lastError.length > 0, 'lastError says why');
    assert.ok(pending[0].attempts < 11, 'not exhausted yet');

    const up = await listenOn(port);
    await waitFor(() => up.requests.length >= 1, 15_000, 'delivery after the receiver came up');
    const rec = up.requests[0];
    assert.equal(rec.url, '/down-then-up');
    assertDeliveryHeaders(rec, { webhookId: c.json.webhookId });
    const body = JSON.parse(rec.body);
    assert.equal(body.id, 301);
    assert.equal(body.status, 'completed');
    assert.equal(body.replyRef, 'r301');
    await assertStays(up.requests, 1, 3000);
    // Delivered: no longer pending, listed as delivered.
    await assertAllDelivered(durable, user, 'kling', [{ webhookId: c.json.webhookId }]);
  });

  test('a webhook already queued is still delivered after its account is deleted (README decision)', async () => {
    const { user } = await setupUser(durable.url, { kling: { [KLING]: 1 } });
    let deleted = false;
    const rcv = await receiver(() => (deleted ? 200 : 503));
    await mustRegister(durable.url, user, 'kling', { id: 351, replyUrl: `${rcv.url}/orphan` });
    const c = await completeJob(durable.url, user, 'kling', 351, { status: 'completed' });
    assert.equal(c.status, 200, c.text);
    await rcv.waitFor(1, 15_000);
    const del = await admin(durable.url, 'DELETE', `/admin/v1/users/${user}/kling/accounts/${encodeURIComponent(KLING)}`);
    assert.equal(del.status, 204, del.text);
    deleted = true;
    const n = rcv.requests.length;
    const recs = await rcv.waitFor(n + 1, 15_000);
    for (const r of recs) assertDeliveryHeaders(r, { webhookId: c.json.webhookId });
    await assertStays(rcv.requests, n + 1, 3000, 'delivered once after the deletion, then no more');
  });

  test('restart while pending: the stored delivery (and its alarm) survive, delivered after the restart', async () => {
    const { user } = await setupUser(durable.url, { dreamina: { [DREAMINA]: 1 } });
    const port = await downPort();
    const replyUrl = `http://127.0.0.1:${port}/after-restart`;
    const job = await mustRegister(durable.url, user, 'dreamina', { submitId: 's-r', model: 'm-r', replyUrl });
    const c = await completeJob(durable.url, user, 'dreamina', job.jobid, { status: 'completed', result: { n: 1 } });
    assert.equal(c.status, 200, c.text);
    await waitFor(async () => {
      const r = await webhooksList(durable, user, 'dreamina', 'pending');
      return r.json.length === 1 && r.json[0].attempts >= 1;
    }, 15_000, 'a failed first attempt before the restart');

    await durable.stop();
    const up = await listenOn(port);
    durable = await startWorker({
      vars: { WEBHOOK_SECRET: SECRET, WEBHOOK_RETRY_SCHEDULE: '1,1,1,1,1,1,1,1,1,1' },
      persistDir: durable.persistDir,
    });
    // No request touches the account object: only its persisted alarm can deliver.
    await waitFor(() => up.requests.length >= 1, 20_000, 'delivery after the restart');
    const rec = up.requests[0];
    assert.equal(rec.url, '/after-restart');
    assertDeliveryHeaders(rec, { webhookId: c.json.webhookId });
    const body = JSON.parse(rec.body);
    assert.equal(body.jobid, job.jobid);
    assert.equal(body.status, 'completed');
    assert.deepEqual(body.result, { n: 1 });
    await assertAllDelivered(durable, user, 'dreamina', [{ webhookId: c.json.webhookId }]);
  });

  // -------------------------------------------------------------------------------------
  // 5. Failed deliveries

  test('410 stops at once: one attempt, listed as failed with its payload', async () => {
    const { user } = await setupUser(main.url, { kling: { [KLING]: 1 } });
    const rcv = await receiver([410]);
    const replyUrl = `${rcv.url}/gone`;
    await mustRegister(main.url, user, 'kling', { id: 501, replyUrl });
    const c = await completeJob(main.url, user, 'kling', 501, { status: 'failed', result: { reason: 'nsfw' } });
    assert.equal(c.status, 200, c.text);
    const [rec] = await rcv.waitFor(1, 15_000);
    assertDeliveryHeaders(rec, { webhookId: c.json.webhookId });
    await assertStays(rcv.requests, 1, 4500, 'no retry after 410');

    const failed = await webhooksList(main, user, 'kling', 'failed');
    assert.equal(failed.status, 200, failed.text);
    assert.equal(failed.json.length, 1, failed.text);
    assertRow(failed.json[0], {
      webhookId: c.json.webhookId,
      account: KLING,
      replyUrl,
      status: 'failed',
      attempts: 1,
      lastError: /410/,
      payload: JSON.parse(rec.body),
    });
    assert.deepEqual((await webhooksList(main, user, 'kling', 'pending')).json, []);
  });

  test('an exhausted schedule (always 500, "1,1") is 3 attempts, then listed as failed; status filters', async () => {
    const { user } = await setupUser(main.url, { dreamina: { [DREAMINA]: 1 } });
    const rcv = await receiver([500]);
    const replyUrl = `${rcv.url}/always-500`;
    const job = await mustRegister(main.url, user, 'dreamina', { submitId: 's5', model: 'm5', replyUrl, replyRef: 'x' });
    const c = await completeJob(main.url, user, 'dreamina', job.jobid, { status: 'completed' });
    assert.equal(c.status, 200, c.text);

    // After the first failure it is pending (in ?status=pending; the default list is the
    // failed one).
    await rcv.waitFor(1, 15_000);
    const pend = await waitFor(async () => {
      const r = await webhooksList(main, user, 'dreamina', 'pending');
      return r.json.length === 1 && r.json[0].attempts >= 1 && r.json[0].status === 'pending' && r.json;
    }, 5_000, 'the pending row after one failed attempt');
    assertRow(pend[0], { webhookId: c.json.webhookId, account: DREAMINA, replyUrl, status: 'pending', attempts: pend[0].attempts, lastError: 'HTTP 500' });

    const recs = await rcv.waitFor(3, 20_000);
    for (const r of recs) assertDeliveryHeaders(r, { webhookId: c.json.webhookId });
    const failed = await waitFor(async () => {
      const r = await webhooksList(main, user, 'dreamina', 'failed');
      return r.json.length === 1 && r.json;
    }, 5_000, 'the failed row');
    assertRow(failed[0], {
      webhookId: c.json.webhookId,
      account: DREAMINA,
      replyUrl,
      status: 'failed',
      attempts: 3,
      lastError: 'HTTP 500',
      payload: JSON.parse(recs[0].body),
    });
    await assertStays(rcv.requests, 3, 4500, 'no attempt after the schedule is exhausted');
    assert.deepEqual((await webhooksList(main, user, 'dreamina', 'pending')).json, [], '?status=pending excludes failed');
    const all = await webhooksList(main, user, 'dreamina');
    assert.deepEqual(all.json, failed, 'no status: the failed list (the default)');
    assert.deepEqual((await webhooksList(main, user, 'dreamina', 'delivered')).json, [], '?status=delivered excludes failed');
    assertCodeError(await webhooksList(main, user, 'dreamina', 'bogus'), 400);
  });

  // -------------------------------------------------------------------------------------
  // 6. Expiry

  test('a back-dated job past JOB_TIMEOUT_SECONDS is never listed, frees its slot, and fails with "timeout"', async () => {
    const { user, token } = await setupUser(main.url, { kling: { [KLING]: 1 }, dreamina: { [DREAMINA]: 1 } });
    const rcv = await receiver();
    const started = isoAgo(60);
    const k = await registerJob(main.url, user, 'kling', { id: 601, replyUrl: `${rcv.url}/k`, replyRef: 'kr', started });
    assert.equal(k.status, 201, k.text);
    const d = await registerJob(main.url, user, 'dreamina', { submitId: 's6', model: 'm6', replyUrl: `${rcv.url}/d`, started });
    assert.equal(d.status, 201, d.text);

    const kl = await pub(main.url, token, 'GET', '/v1/kling/scheduler');
    assert.deepEqual(kl.json, [], 'expired Kling job not in the list');
    const ka = await pub(main.url, token, 'GET', '/v1/kling/scheduler/available');
    assert.deepEqual(ka.json, { executing: [], available: [{ email: KLING, maxJobs: 1, executing: 0, available: 1 }] });
    const dl = await pub(main.url, token, 'GET', '/v1/dreamina/scheduler');
    assert.deepEqual(dl.json, { executing: {}, total: 0 });
    const da = await pub(main.url, token, 'GET', '/v1/dreamina/scheduler/available');
    assert.deepEqual(da.json, { executing: {}, total: 0, available: [{ account: DREAMINA, maxJobs: 1, executing: 0, available: 1 }] });

    const recs = await rcv.waitFor(2, 15_000);
    const byPath = Object.fromEntries(recs.map((r) => [r.url, r]));
    assert.deepEqual(Object.keys(byPath).sort(), ['/d', '/k']);
    for (const r of recs) assertDeliveryHeaders(r);
    const kb = JSON.parse(byPath['/k'].body);
    assert.deepEqual(Object.keys(kb), ['id', 'email', 'status', 'started', 'finished', 'replyRef', 'error']);
    assert.equal(kb.id, 601);
    assert.equal(kb.email, KLING);
    assert.equal(kb.status, 'failed');
    assert.equal(kb.error, 'timeout');
    assert.equal(kb.started, k.json.started);
    const ranMs = Date.parse(kb.finished) - Date.parse(kb.started);
    assert.ok(ranMs >= 30_000 && ranMs <= 62_000, `finished ${kb.finished}: not before the timeout, not in the future`);
    const db = JSON.parse(byPath['/d'].body);
    assert.deepEqual(Object.keys(db), ['jobid', 'account', 'submitId', 'model', 'status', 'elapsedSeconds', 'error']);
    assert.equal(db.jobid, d.json.jobid);
    assert.equal(db.status, 'failed');
    assert.equal(db.error, 'timeout');
    assert.ok(db.elapsedSeconds >= 30 && db.elapsedSeconds <= 62, `elapsedSeconds ${db.elapsedSeconds}`);

    // The slots really are free, and the expired jobs cannot be completed any more.
    await mustRegister(main.url, user, 'kling', { id: 602 });
    await mustRegister(main.url, user, 'dreamina', { submitId: 's7', model: 'm7' });
    assertCodeError(await completeJob(main.url, user, 'kling', 601), 404);
    assertCodeError(await completeJob(main.url, user, 'dreamina', d.json.jobid), 404);
    await assertStays(rcv.requests, 2, 2500);
  });

  test('a fresh job expires on its own via the alarm (JOB_TIMEOUT_SECONDS=3) and its webhook arrives', async () => {
    const { user } = await setupUser(unsigned.url, { kling: { [KLING]: 1 } });
    const rcv = await receiver();
    const t0 = Date.now();
    const job = await mustRegister(unsigned.url, user, 'kling', { id: 651, replyUrl: `${rcv.url}/expired` });
    // Nothing reads the account now: only its alarm can expire the job.
    const [rec] = await rcv.waitFor(1, 15_000);
    assert.ok(rec.time - t0 >= 2900, `webhook came ${rec.time - t0} ms after registration, before the 3 s timeout`);
    assertDeliveryHeaders(rec, { signed: false });
    const body = JSON.parse(rec.body);
    assert.equal(rec.body, klingBody({ id: 651, email: KLING, status: 'failed', started: job.started, finished: body.finished, error: 'timeout' }));
    const ranMs = Date.parse(body.finished) - Date.parse(body.started);
    assert.ok(ranMs >= 3000 && ranMs <= 6000, `ran ${ranMs} ms`);
    const accounts = await admin(unsigned.url, 'GET', `/admin/v1/users/${user}/kling/accounts`);
    assert.deepEqual(accounts.json, [{ account: KLING, maxJobs: 1, executing: 0, paused: false }]);
  });

  // An alarm that fires on the very millisecond it was set for, expires a job and plans
  // its next wake for that same instant (the new delivery is due "now") has set the
  // alarm to the time being handled, which workerd takes for "not set again" and deletes
  // when the handler returns. The object used to believe the alarm was still set, so no
  // later job of that account expired by itself or sent its webhook (found by the e2e
  // load test). Many accounts, each with jobs expiring in three successive 2 s quanta,
  // make it likely that some first alarm fires on the exact millisecond; every webhook
  // must still come, with nothing reading the accounts.
  test('jobs expiring one after another on one account each get their webhook from the alarm alone', async () => {
    const accounts = Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`a${i}@x.com`, 3]));
    const { user } = await setupUser(unsigned.url, { kling: accounts });
    const rcv = await receiver();
    const names = Object.keys(accounts);
    const sent = [];
    await Promise.all(
      names.map(async (account, a) => {
        for (const [k, leftMs] of [1000, 3000, 5000].entries()) {
          const id = 6600 + a * 10 + k;
          // JOB_TIMEOUT_SECONDS is 3: started 3 s minus leftMs ago, it expires leftMs from now.
          const started = isoAgo((3000 - leftMs) / 1000);
          await mustRegister(unsigned.url, user, 'kling', { id, email: account, started, replyUrl: `${rcv.url}/chain/${id}` });
          sent.push(id);
        }
      }),
    );
    await rcv.waitFor(sent.length, 30_000).catch(() => {});
    const got = new Set(rcv.requests.map((r) => Number(r.url.split('/').pop())));
    const missing = sent.filter((id) => !got.has(id)).sort();
    assert.deepEqual(missing, [], `no expiry webhook for ${missing.length} of ${sent.length} jobs`);
  });

  // -------------------------------------------------------------------------------------
  // 7. No webhook when there should be none; unsigned delivery

  test('cancel sends no webhook; a second completion is 404 and sends no second webhook', async () => {
    const { user, token } = await setupUser(main.url, { kling: { [KLING]: 3 }, dreamina: { [DREAMINA]: 2 } });
    const rcv = await receiver();
    await mustRegister(main.url, user, 'kling', { id: 701, replyUrl: `${rcv.url}/cancel-k` });
    const dj = await mustRegister(main.url, user, 'dreamina', { submitId: 's', model: 'm', replyUrl: `${rcv.url}/cancel-d` });
    await mustRegister(main.url, user, 'kling', { id: 702, replyUrl: `${rcv.url}/done` });
    await mustRegister(main.url, user, 'kling', { id: 703 });

    const dk = await pub(main.url, token, 'DELETE', '/v1/kling/scheduler/701');
    assert.equal(dk.status, 204, dk.text);
    const dd = await pub(main.url, token, 'DELETE', `/v1/dreamina/scheduler/${encodeURIComponent(dj.jobid)}`);
    assert.equal(dd.status, 204, dd.text);
    assertCodeError(await completeJob(main.url, user, 'kling', 701), 404);

    const c1 = await completeJob(main.url, user, 'kling', 702, { status: 'completed' });
    assert.equal(c1.status, 200, c1.text);
    assertCodeError(await completeJob(main.url, user, 'kling', 702, { status: 'completed' }), 404, 'Unable to locate running job 702');
    assertCodeError(await completeJob(main.url, user, 'kling', 702, { status: 'failed' }), 404);
    // Without a replyUrl: no webhook, and no webhookId in the answer.
    const c3 = await completeJob(main.url, user, 'kling', 703, { status: 'completed' });
    assert.equal(c3.status, 200, c3.text);
    assert.deepEqual(c3.json, { id: 703, account: KLING, status: 'completed' });

    const [rec] = await rcv.waitFor(1, 15_000);
    assert.equal(rec.url, '/done');
    assertDeliveryHeaders(rec, { webhookId: c1.json.webhookId });
    await assertStays(rcv.requests, 1, 5000, 'only the one completion webhook');
    // Only the completion's webhook was ever queued (cancels queue none).
    await assertAllDelivered(main, user, 'kling', [{ webhookId: c1.json.webhookId, attempts: 1 }]);
    await assertAllDelivered(main, user, 'dreamina', []);
  });

  test('one completion, one webhook: the same id registered concurrently on two accounts is admitted once', async () => {
    // API.md: 409 when the job id is already executing for the user; admission is atomic.
    // If both registrations were admitted, one completion would complete both copies and
    // send two webhooks (two webhook-ids) for one upstream job.
    const { user } = await setupUser(main.url, { kling: { [KLING]: 20, 'b@x.com': 20 } });
    const rcv = await receiver();
    const ids = Array.from({ length: 10 }, (_, i) => 1101 + i);
    const twice = [];
    for (const id of ids) {
      const body = (email) => ({ id, email, replyUrl: `${rcv.url}/dup/${id}` });
      const rs = await Promise.all([registerJob(main.url, user, 'kling', body(KLING)), registerJob(main.url, user, 'kling', body('b@x.com'))]);
      const statuses = rs.map((r) => r.status).sort();
      if (statuses[0] === 201 && statuses[1] === 201) twice.push(id);
      else assert.deepEqual(statuses, [201, 409], `id ${id}: ${rs.map((r) => r.text).join(' | ')}`);
    }
    for (const id of ids) {
      const c = await completeJob(main.url, user, 'kling', id, { status: 'completed' });
      assert.equal(c.status, 200, c.text);
    }
    await rcv.waitFor(ids.length, 15_000);
    await sleep(3000);
    const perId = new Map();
    for (const r of rcv.requests) perId.set(r.url, (perId.get(r.url) ?? 0) + 1);
    const doubled = [...perId].filter(([, n]) => n > 1).map(([u]) => u);
    assert.deepEqual(
      { admittedTwice: twice, webhooksSentTwice: doubled },
      { admittedTwice: [], webhooksSentTwice: [] },
      'concurrent registrations of one id on two accounts must not both be admitted (one completion would send two webhooks)',
    );
    assert.equal(rcv.requests.length, ids.length);
  });

  test('without WEBHOOK_SECRET deliveries are unsigned (no webhook-signature), otherwise the same', async () => {
    const { user } = await setupUser(unsigned.url, { kling: { [KLING]: 1 }, dreamina: { [DREAMINA]: 1 } });
    const rcv = await receiver();
    const job = await mustRegister(unsigned.url, user, 'kling', { id: 801, replyUrl: `${rcv.url}/u`, replyRef: 'u' });
    const c = await completeJob(unsigned.url, user, 'kling', 801, { status: 'completed', result: [1, 'two', null] });
    assert.equal(c.status, 200, c.text);
    const dj = await mustRegister(unsigned.url, user, 'dreamina', { submitId: 'su', model: 'mu', replyUrl: `${rcv.url}/ud` });
    const cd = await completeJob(unsigned.url, user, 'dreamina', dj.jobid, { status: 'completed' });
    assert.equal(cd.status, 200, cd.text);

    const recs = await rcv.waitFor(2, 15_000);
    const byPath = Object.fromEntries(recs.map((r) => [r.url, r]));
    assertDeliveryHeaders(byPath['/u'], { signed: false, webhookId: c.json.webhookId });
    assertDeliveryHeaders(byPath['/ud'], { signed: false, webhookId: cd.json.webhookId });
    const body = JSON.parse(byPath['/u'].body);
    assert.equal(
      byPath['/u'].body,
      klingBody({ id: 801, email: KLING, status: 'completed', started: job.started, finished: body.finished, replyRef: 'u', result: [1, 'two', null] }),
    );
  });

  // -------------------------------------------------------------------------------------
  // 8. replyUrl validation

  test('replyUrl must be an absolute http(s) URL, at most 2048 chars, without user info: else 400', async () => {
    const { user } = await setupUser(main.url, { kling: { [KLING]: 50 }, dreamina: { [DREAMINA]: 50 } });
    const base = 'https://example.com/';
    const bad = [
      'hooks/x',
      '/hooks/x',
      '//example.com/x',
      'example.com/x',
      'ftp://example.com/x',
      'file:///etc/passwd',
      'javascript:alert(1)',
      'http://user:pw@example.com/x',
      'https://user@example.com/x',
      'https://',
      'http://exa mple.com/',
      base + 'a'.repeat(2049 - base.length),
      '',
      42,
    ];
    let id = 900;
    for (const replyUrl of bad) {
      id += 1;
      const k = await registerJob(main.url, user, 'kling', { id, replyUrl });
      assertCodeError(k, 400);
      const d = await registerJob(main.url, user, 'dreamina', { submitId: 's', model: 'm', jobid: `jv${id}`, replyUrl });
      assertCodeError(d, 400);
    }
    // Nothing was admitted by the refused registrations.
    const acc = await admin(main.url, 'GET', `/admin/v1/users/${user}/kling/accounts`);
    assert.deepEqual(acc.json, [{ account: KLING, maxJobs: 50, executing: 0, paused: false }]);
    // The limits themselves are fine: exactly 2048 chars, http and https, a port, a query.
    const longest = base + 'a'.repeat(2048 - base.length);
    assert.equal(longest.length, 2048);
    for (const replyUrl of [longest, 'http://127.0.0.1:8080/h?x=1', 'HTTPS://Example.com']) {
      id += 1;
      const k = await mustRegister(main.url, user, 'kling', { id, replyUrl });
      assert.equal(k.replyUrl, replyUrl);
      const d = await mustRegister(main.url, user, 'dreamina', { submitId: 's', model: 'm', replyUrl });
      assert.equal(d.replyUrl, replyUrl);
    }
    // Stop tracking them without a webhook (they would expire, and post, after 30 s).
    for (const [provider, account] of [['kling', KLING], ['dreamina', DREAMINA]]) {
      const r = await admin(main.url, 'DELETE', `/admin/v1/users/${user}/${provider}/accounts/${encodeURIComponent(account)}`);
      assert.equal(r.status, 204, r.text);
    }
  });
});
