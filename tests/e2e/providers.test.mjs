// The rest of the family end to end (API.md "The rest of the family"): MiniMax, PixVerse
// and RunwayML, each through accounts, registration, the list, `available`, the public
// DELETE, 401s, bad bodies, the operator's completion answer and a webhook delivered to
// a real receiver (exact body string, key order, Standard Webhooks signature); MiniMax
// image jobs that are listed but take no slot; PixVerse job types; RunwayML items
// without time members; opaque ids through percent-encoded paths; and, for all five
// providers, the rules the registry promises they share.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ELAPSED_RE,
  STARTED_RE,
  assertCodeError,
  assertCors,
  assertKeys,
  assertPlainError,
  fmtElapsed,
} from '../support/assertions.mjs';
import { admin, pub, req } from '../support/client.mjs';
import {
  accountPath,
  clientAddresses,
  completeJob,
  isoAgo,
  mustRegister,
  registerJob,
  setupUser,
} from '../support/fixtures.mjs';
import { startReceiver, verifyWebhookSignature } from '../support/receiver.mjs';
import { startWorker } from '../support/server.mjs';

const SECRET = 'whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD';

let w;
const closers = [];
before(async () => {
  w = await startWorker({ vars: { WEBHOOK_SECRET: SECRET, WEBHOOK_RETRY_SCHEDULE: '1,1' } });
});
after(async () => {
  for (const c of closers) await c().catch(() => {});
  await w?.stop();
});

/** A harness receiver, closed after the file. */
async function receiver(handler) {
  const r = await startReceiver(handler);
  closers.push(() => r.close());
  return r;
}

// Each test that sends bad tokens does so from its own address (see clientAddresses).
const freshIp = clientAddresses('198.18');

const CAPACITY_429 = { error: 'All accounts are at maxJobs capacity', code: 429 };
const UNAUTHORIZED = { error: 'Unauthorized', code: 401 };

// ---------------------------------------------------------------------------------------
// The providers as the tests see them

/**
 * Every provider: its public path, error style, account key (registration bodies,
 * `available` rows, webhooks), two valid account names (ascending), maxJobs bound,
 * a registration body for an id, the id members of its items/webhooks/completions, its
 * DELETE 404 message, and whether its items carry time members.
 */
const PROVIDERS = {
  kling: {
    path: '/v1/kling/scheduler',
    style: 'code',
    acctKey: 'email',
    accounts: ['a@x.com', 'b@x.com'],
    badAccount: 'not-an-email',
    max: 50,
    stringIds: false,
    id: (n) => 100 + n,
    body: (id) => ({ id }),
    idMembers: (id) => ({ id }),
    notRunning: (id) => `Unable to locate running task_id ${id}`,
  },
  dreamina: {
    path: '/v1/dreamina/scheduler',
    style: 'plain',
    acctKey: 'account',
    accounts: ['JP:a@x.com', 'US:a@x.com'],
    badAccount: 'a@x.com',
    max: 50,
    stringIds: true,
    idKeys: ['jobid'],
    id: (n) => `dj-${n}`,
    body: (id) => ({ submitId: 's', model: 'm', jobid: id }),
    idMembers: (id) => ({ jobid: id }),
    notRunning: (id) => `Unable to locate running jobid ${id}`,
  },
  minimax: {
    path: '/v1/minimax/scheduler',
    style: 'code',
    acctKey: 'account',
    accounts: ['acc-A_1', 'acc_b-2'],
    badAccount: 'a@x.com',
    max: 10,
    stringIds: true,
    idKeys: ['videoId', 'imageId'],
    id: (n) => `vid-${n}`,
    body: (id) => ({ videoId: id }),
    idMembers: (id) => ({ videoId: id }),
    notRunning: (id) => `Unable to locate running ${id}`,
    timed: true,
  },
  pixverse: {
    path: '/v2/pixverse/scheduler',
    style: 'code',
    acctKey: 'email',
    accounts: ['a@x.com', 'b@x.com'],
    badAccount: 'not-an-email',
    max: 8,
    stringIds: true,
    idKeys: ['id'],
    id: (n) => `px-${n}`,
    body: (id, type = 'video') => ({ id, type }),
    idMembers: (id, type = 'video') => ({ id, type }),
    notRunning: (id) => `Unable to locate running id ${id}`,
    timed: true,
  },
  runwayml: {
    path: '/v1/runwayml/scheduler',
    style: 'code',
    acctKey: 'email',
    accounts: ['a@x.com', 'b@x.com'],
    badAccount: 'not-an-email',
    max: 10,
    stringIds: true,
    idKeys: ['taskId'],
    id: (n) => `task-${n}`,
    body: (id) => ({ taskId: id }),
    idMembers: (id) => ({ taskId: id }),
    notRunning: (id) => `Unable to locate running taskId ${id}`,
    timed: false,
  },
};
const FAMILY = ['minimax', 'pixverse', 'runwayml'];

/** An error in the provider's style: {"error"} (Dreamina) or {"error","code"}. */
function assertStyleError(p, r, status, message) {
  if (p.style === 'plain') assertPlainError(r, status, message);
  else assertCodeError(r, status, message);
}

/** The user's public list (a flat array for the family). */
async function list(name, token) {
  const r = await pub(w.url, token, 'GET', PROVIDERS[name].path);
  assert.equal(r.status, 200, r.text);
  assertCors(r);
  return r.json;
}

async function accounts(user, name) {
  const r = await admin(w.url, 'GET', `/admin/v1/users/${user}/${name}/accounts`);
  assert.equal(r.status, 200, r.text);
  return r.json;
}

/** Drops `account` from a 201 body: what is left must be the public item. */
function withoutAccount(job) {
  const { account, ...item } = job;
  return item;
}

/** The expected item: id members, then started/elapsed (timed providers), then replies. */
function expectedItem(name, ids, { started, elapsed, replyUrl, replyRef } = {}) {
  const o = { ...ids };
  if (PROVIDERS[name].timed) {
    o.started = started;
    o.elapsed = elapsed;
  }
  if (replyUrl !== undefined) o.replyUrl = replyUrl;
  if (replyRef !== undefined) o.replyRef = replyRef;
  return o;
}

/** Checks a timed item's started/elapsed against a start `startedMs` read now. */
function assertClock(item, startedMs, lo = 0) {
  assert.match(item.started, STARTED_RE);
  assert.match(item.elapsed, ELAPSED_RE);
  const hi = Math.floor((Date.now() - startedMs) / 1000) + 1;
  const allowed = [];
  for (let s = Math.max(0, lo); s <= hi; s++) allowed.push(fmtElapsed(s));
  assert.ok(allowed.includes(item.elapsed), `elapsed ${item.elapsed} not in ${allowed.join(',')}`);
}

/** The expected family webhook body, in the contract's key order, optional members left out. */
function familyWebhookBody(name, ids, account, { status, started, finished, replyRef, result, error }) {
  const o = { ...ids, [PROVIDERS[name].acctKey]: account, status, started, finished };
  if (replyRef !== undefined) o.replyRef = replyRef;
  if (result !== undefined) o.result = result;
  if (error !== undefined) o.error = error;
  return JSON.stringify(o);
}

/** Standard Webhooks headers of one delivery; returns its webhook id. */
function assertSigned(rec, webhookId) {
  assert.equal(rec.method, 'POST');
  assert.match(rec.headers['content-type'] ?? '', /^application\/json\b/i);
  assert.equal(rec.headers['webhook-id'], webhookId, 'webhook-id is the one the completion answered');
  assert.match(rec.headers['webhook-timestamp'] ?? '', /^\d+$/);
  assert.ok(Math.abs(Number(rec.headers['webhook-timestamp']) - rec.time / 1000) <= 10, 'timestamp near receipt');
  assert.ok(verifyWebhookSignature(SECRET, rec), `signature ${rec.headers['webhook-signature']} does not verify`);
}

// ---------------------------------------------------------------------------------------
// MiniMax, PixVerse, RunwayML: the full round

for (const name of FAMILY) {
  const p = PROVIDERS[name];
  const [A, B] = p.accounts;
  const idKey = Object.keys(p.idMembers('x'))[0];
  const acctMember = (account) => ({ [p.acctKey]: account });

  describe(`${name} (${p.path})`, () => {
    test(`accounts: PUT 200 for maxJobs 1..${p.max}; ${p.max + 1}, 0 and a bad name are 400`, async () => {
      const { user } = await setupUser(w.url);
      for (const maxJobs of [1, p.max, 3]) {
        const r = await admin(w.url, 'PUT', accountPath(user, name, A), { maxJobs });
        assert.equal(r.status, 200, r.text);
        assert.deepEqual(r.json, { account: A, maxJobs });
      }
      for (const maxJobs of [p.max + 1, 0, -1, 2.5, '3']) {
        assertCodeError(await admin(w.url, 'PUT', accountPath(user, name, B), { maxJobs }), 400);
      }
      assertCodeError(await admin(w.url, 'PUT', accountPath(user, name, p.badAccount), { maxJobs: 1 }), 400);
      assert.deepEqual(await accounts(user, name), [{ account: A, maxJobs: 3, executing: 0, paused: false }]);
    });

    test('registration: 201 is the public item plus "account"', async () => {
      const { user } = await setupUser(w.url, { [name]: { [A]: 3 } });
      const started = isoAgo(30);
      const full = await mustRegister(w.url, user, name, {
        ...p.body(p.id(1)),
        ...acctMember(A),
        replyUrl: 'https://example.com/hook',
        replyRef: 'ref-1',
        started,
      });
      assert.equal(full.account, A);
      const item = withoutAccount(full);
      assert.deepEqual(
        Object.keys(item),
        Object.keys(expectedItem(name, p.idMembers(p.id(1)), { replyUrl: 'x', replyRef: 'y' })),
        `201 key order: ${JSON.stringify(full)}`,
      );
      assert.deepEqual(item, expectedItem(name, p.idMembers(p.id(1)), {
        started,
        elapsed: item.elapsed,
        replyUrl: 'https://example.com/hook',
        replyRef: 'ref-1',
      }));
      if (p.timed) assertClock(item, Date.parse(started), 30);

      const minimal = await mustRegister(w.url, user, name, p.body(p.id(2)));
      assert.equal(minimal.account, A, 'the only account is chosen');
      assert.deepEqual(Object.keys(withoutAccount(minimal)), Object.keys(expectedItem(name, p.idMembers(p.id(2)))));
      if (p.timed) assertClock(minimal, Date.now());
      assert.ok(!JSON.stringify(minimal).includes('null'), 'no nulls');
    });

    test('the list: exact items and key order, oldest first across accounts, optional members left out', async () => {
      const { user, token } = await setupUser(w.url, { [name]: { [B]: 5, [A]: 5 } });
      assert.deepEqual(await list(name, token), [], 'idle user: []');
      const now = Date.now();
      const plan = [
        // [n, account, seconds ago, replyUrl, replyRef]
        [1, A, 10, undefined, undefined],
        [2, B, 300, 'https://example.com/h2', 'r2'],
        [3, A, 200, undefined, 'only-ref'],
        [4, B, 100, 'http://example.com/only-url', undefined],
        [5, A, 3725, undefined, undefined],
      ];
      const startedOf = {};
      for (const [n, account, ago, replyUrl, replyRef] of plan) {
        startedOf[n] = isoAgo(ago, now);
        const body = { ...p.body(p.id(n)), ...acctMember(account), started: startedOf[n] };
        if (replyUrl) body.replyUrl = replyUrl;
        if (replyRef) body.replyRef = replyRef;
        await mustRegister(w.url, user, name, body);
      }
      const items = await list(name, token);
      const order = [5, 2, 3, 4, 1];
      assert.deepEqual(items.map((j) => j[idKey]), order.map((n) => p.id(n)), 'oldest first across accounts');
      for (const [i, n] of order.entries()) {
        const [, , ago, replyUrl, replyRef] = plan.find((x) => x[0] === n);
        const want = expectedItem(name, p.idMembers(p.id(n)), { started: startedOf[n], elapsed: items[i].elapsed, replyUrl, replyRef });
        assert.deepEqual(Object.keys(items[i]), Object.keys(want), `key order of ${JSON.stringify(items[i])}`);
        assert.deepEqual(items[i], want);
        if (p.timed) assertClock(items[i], now - ago * 1000, ago);
      }
      if (p.timed) assert.ok(['62:05', '62:06', '62:07'].includes(items[0].elapsed), items[0].elapsed);
      assert.ok(!JSON.stringify(items).includes('null'), 'no nulls');
    });

    test('available: {"executing": <the list>, "available": rows with the account key, ascending}', async () => {
      const { user, token } = await setupUser(w.url, { [name]: { [B]: 2, [A]: 3 } });
      assert.deepEqual((await pub(w.url, token, 'GET', `${p.path}/available`)).json, {
        executing: [],
        available: [
          { [p.acctKey]: A, maxJobs: 3, executing: 0, available: 3 },
          { [p.acctKey]: B, maxJobs: 2, executing: 0, available: 2 },
        ],
      });
      await mustRegister(w.url, user, name, { ...p.body(p.id(1)), ...acctMember(B), started: isoAgo(20) });
      await mustRegister(w.url, user, name, { ...p.body(p.id(2)), ...acctMember(B), started: isoAgo(40) });
      await mustRegister(w.url, user, name, { ...p.body(p.id(3)), ...acctMember(A), started: isoAgo(5) });
      const r = await pub(w.url, token, 'GET', `${p.path}/available`);
      assert.equal(r.status, 200, r.text);
      assertCors(r);
      assert.deepEqual(Object.keys(r.json), ['executing', 'available']);
      assert.deepEqual(r.json.available, [
        { [p.acctKey]: A, maxJobs: 3, executing: 1, available: 2 },
        { [p.acctKey]: B, maxJobs: 2, executing: 2, available: 0 },
      ]);
      for (const row of r.json.available) assert.deepEqual(Object.keys(row), [p.acctKey, 'maxJobs', 'executing', 'available']);
      assert.deepEqual(r.json.executing.map((j) => j[idKey]), [p.id(2), p.id(1), p.id(3)]);
      const plain = await list(name, token);
      assert.deepEqual(r.json.executing.map((j) => withoutClock(j)), plain.map((j) => withoutClock(j)));
      // B is full: naming it is a 429, the automatic choice goes to A.
      const full = await registerJob(w.url, user, name, { ...p.body(p.id(4)), ...acctMember(B) });
      assert.deepEqual([full.status, full.json], [429, CAPACITY_429]);
      assert.equal((await mustRegister(w.url, user, name, p.body(p.id(5)))).account, A);
    });

    test('public DELETE: 204 with an empty body, then 404 with the exact message', async () => {
      const { user, token } = await setupUser(w.url, { [name]: { [A]: 3 } });
      await mustRegister(w.url, user, name, { ...p.body(p.id(1)), replyUrl: 'http://127.0.0.1:9/never' });
      await mustRegister(w.url, user, name, p.body(p.id(2)));
      const r = await pub(w.url, token, 'DELETE', `${p.path}/${p.id(1)}`);
      assert.equal(r.status, 204, r.text);
      assert.equal(r.text, '');
      assertCors(r);
      assert.deepEqual((await list(name, token)).map((j) => j[idKey]), [p.id(2)]);
      assert.deepEqual(await accounts(user, name), [{ account: A, maxJobs: 3, executing: 1, paused: false }]);
      const again = await pub(w.url, token, 'DELETE', `${p.path}/${p.id(1)}`);
      assert.equal(again.status, 404);
      assert.deepEqual(again.json, { error: p.notRunning(p.id(1)), code: 404 });
      assertCors(again);
      const never = await pub(w.url, token, 'DELETE', `${p.path}/never-registered`);
      assert.deepEqual([never.status, never.json], [404, { error: p.notRunning('never-registered'), code: 404 }]);
      // Cancelled means gone: completing it is the operator's 404.
      assertCodeError(await completeJob(w.url, user, name, p.id(1)), 404, `Unable to locate running job ${p.id(1)}`);
    });

    test('401 on every public route: {"error":"Unauthorized","code":401} with CORS', async () => {
      const ip = freshIp();
      for (const [method, path] of [['GET', p.path], ['GET', `${p.path}/available`], ['DELETE', `${p.path}/x1`]]) {
        for (const headers of [{}, { authorization: 'Bearer nope' }, { authorization: 'Basic abc' }, { authorization: `Bearer ${'x'.repeat(600)}` }]) {
          const r = await req(w.url, method, path, { headers: { ...headers, 'cf-connecting-ip': ip } });
          assert.equal(r.status, 401, `${method} ${path} ${JSON.stringify(headers).slice(0, 40)}: ${r.text}`);
          assert.deepEqual(r.json, UNAUTHORIZED);
          assertCors(r);
        }
      }
    });

    const bad = [
      ['the id a number', { ...p.body(p.id(1)), [idKey]: 5 }],
      ['the id null', { ...p.body(p.id(1)), [idKey]: null }],
      ['the id missing', (() => { const b = p.body('x'); delete b[idKey]; return b; })()],
      ['the id empty', { ...p.body(p.id(1)), [idKey]: '' }],
      ['the id with a space', { ...p.body(p.id(1)), [idKey]: 'a b' }],
      ['the id with a slash', { ...p.body(p.id(1)), [idKey]: 'a/b' }],
      ['the id not ASCII', { ...p.body(p.id(1)), [idKey]: 'é' }],
      ['the id over 512 chars', { ...p.body(p.id(1)), [idKey]: 'i'.repeat(513) }],
      ['the id an object', { ...p.body(p.id(1)), [idKey]: { a: 1 } }],
      [`${p.acctKey} a number`, { ...p.body(p.id(1)), [p.acctKey]: 5 }],
      [`${p.acctKey} not a valid name`, { ...p.body(p.id(1)), [p.acctKey]: p.badAccount }],
      ['replyUrl a number', { ...p.body(p.id(1)), replyUrl: 5 }],
      ['replyUrl relative', { ...p.body(p.id(1)), replyUrl: '/hook' }],
      ['replyRef a number', { ...p.body(p.id(1)), replyRef: 5 }],
      ['replyRef an array', { ...p.body(p.id(1)), replyRef: ['r'] }],
      ['started a number', { ...p.body(p.id(1)), started: 1700000000000 }],
      ['started not a date', { ...p.body(p.id(1)), started: 'yesterday' }],
      ['waitSeconds a string', { ...p.body(p.id(1)), waitSeconds: '5' }],
      ['a JSON array', [p.body(p.id(1))]],
      ['a JSON string', JSON.stringify(p.id(1))],
      ['JSON null', 'null'],
    ];
    test(`wrong-type and malformed bodies are 400 and register nothing (${bad.length} cases)`, async () => {
      const { user, token } = await setupUser(w.url, { [name]: { [A]: 5 } });
      for (const [what, body] of bad) {
        const r = await registerJob(w.url, user, name, typeof body === 'string' ? body : body);
        assert.equal(r.status, 400, `${what}: ${r.status} ${r.text}`);
        assertCodeError(r, 400);
      }
      assert.deepEqual(await list(name, token), [], 'nothing was registered');
    });

    test('completion: 200 {"account","status",<id members>,"webhookId"?} in that order; a second is 404', async () => {
      const { user, token } = await setupUser(w.url, { [name]: { [A]: 3 } });
      const hook = await receiver([204]);
      await mustRegister(w.url, user, name, p.body(p.id(1)));
      await mustRegister(w.url, user, name, { ...p.body(p.id(2)), replyUrl: `${hook.url}/c` });
      const c1 = await completeJob(w.url, user, name, p.id(1), { status: 'completed', result: { url: 'x.mp4' } });
      assert.equal(c1.status, 200, c1.text);
      assert.equal(c1.text, JSON.stringify({ account: A, status: 'completed', ...p.idMembers(p.id(1)) }));
      const c2 = await completeJob(w.url, user, name, p.id(2), { status: 'failed' });
      assert.equal(c2.status, 200, c2.text);
      assert.deepEqual(Object.keys(c2.json), ['account', 'status', ...Object.keys(p.idMembers('x')), 'webhookId']);
      assert.match(c2.json.webhookId, /^msg_/);
      assert.deepEqual({ ...c2.json, webhookId: 'w' }, { account: A, status: 'failed', ...p.idMembers(p.id(2)), webhookId: 'w' });
      assert.deepEqual(await list(name, token), []);
      assertCodeError(await completeJob(w.url, user, name, p.id(1)), 404, `Unable to locate running job ${p.id(1)}`);
      await hook.waitFor(1, 15_000);
    });

    test('webhook: the exact body (id members, account key, status, started, finished, replyRef?, result?, error?), signed', async () => {
      const { user } = await setupUser(w.url, { [name]: { [A]: 3 } });
      const hook = await receiver([204]);
      const started = isoAgo(42);
      await mustRegister(w.url, user, name, {
        ...p.body(p.id(1)),
        replyUrl: `${hook.url}/hooks/${name}?q=1`,
        replyRef: 'ref-é-1',
        started,
      });
      const t0 = Date.now();
      const c = await completeJob(w.url, user, name, p.id(1), { status: 'completed', result: { url: 'https://cdn/x.mp4', n: [1, 2] } });
      const t1 = Date.now();
      assert.equal(c.status, 200, c.text);
      const [rec] = await hook.waitFor(1, 15_000);
      assert.equal(rec.url, `/hooks/${name}?q=1`, 'posted to the replyUrl, path and query kept');
      assertSigned(rec, c.json.webhookId);
      const body = JSON.parse(rec.body);
      assert.match(body.finished, STARTED_RE);
      const fin = Date.parse(body.finished);
      assert.ok(fin >= t0 - 2000 && fin <= t1 + 2000, `finished ${body.finished}`);
      assert.equal(
        rec.body,
        familyWebhookBody(name, p.idMembers(p.id(1)), A, {
          status: 'completed',
          started,
          finished: body.finished,
          replyRef: 'ref-é-1',
          result: { url: 'https://cdn/x.mp4', n: [1, 2] },
        }),
      );

      // Failed, without replyRef or result: those members are left out.
      await mustRegister(w.url, user, name, { ...p.body(p.id(2)), replyUrl: `${hook.url}/two`, started });
      const c2 = await completeJob(w.url, user, name, p.id(2), { status: 'failed' });
      assert.equal(c2.status, 200, c2.text);
      const recs = await hook.waitFor(2, 15_000);
      const rec2 = recs.find((x) => x.url === '/two');
      assertSigned(rec2, c2.json.webhookId);
      const b2 = JSON.parse(rec2.body);
      assert.equal(rec2.body, familyWebhookBody(name, p.idMembers(p.id(2)), A, { status: 'failed', started, finished: b2.finished }));
    });
  });
}

/** An item without its clock (elapsed may tick between two reads). */
function withoutClock(item) {
  const { elapsed, ...rest } = item;
  return rest;
}

// ---------------------------------------------------------------------------------------
// MiniMax image jobs, PixVerse types, RunwayML items

describe('MiniMax image jobs are listed but take no slot', () => {
  test('maxJobs 1: one video and several images are admitted; available shows 1/0; a second video is 429', async () => {
    const { user, token } = await setupUser(w.url, { minimax: { acc1: 1 } });
    const v = await mustRegister(w.url, user, 'minimax', { videoId: 'v1', started: isoAgo(50) });
    assert.deepEqual(Object.keys(withoutAccount(v)), ['videoId', 'started', 'elapsed']);
    const images = [];
    for (const [i, ago] of [40, 30, 20, 10].entries()) {
      const img = await mustRegister(w.url, user, 'minimax', { imageId: `img${i}`, started: isoAgo(ago), replyRef: `r${i}` });
      assert.deepEqual(Object.keys(withoutAccount(img)), ['imageId', 'started', 'elapsed', 'replyRef']);
      assert.equal(img.account, 'acc1');
      images.push(img);
    }
    const av = await pub(w.url, token, 'GET', '/v1/minimax/scheduler/available');
    assert.equal(av.status, 200, av.text);
    assert.deepEqual(av.json.available, [{ account: 'acc1', maxJobs: 1, executing: 1, available: 0 }]);
    assert.deepEqual(
      av.json.executing.map((j) => j.videoId ?? j.imageId),
      ['v1', 'img0', 'img1', 'img2', 'img3'],
      'every job is listed, oldest first',
    );
    for (const item of av.json.executing) {
      assert.ok(('videoId' in item) !== ('imageId' in item), `exactly one id member: ${JSON.stringify(item)}`);
    }
    assert.deepEqual(await accounts(user, 'minimax'), [{ account: 'acc1', maxJobs: 1, executing: 1, paused: false }]);

    for (const body of [{ videoId: 'v2' }, { videoId: 'v2', account: 'acc1' }]) {
      const r = await registerJob(w.url, user, 'minimax', body);
      assert.deepEqual([r.status, r.json], [429, CAPACITY_429], JSON.stringify(body));
    }
    // Images still go in while the account is full of video.
    await mustRegister(w.url, user, 'minimax', { imageId: 'img9' });
    // Ending an image frees nothing; ending the video does.
    assert.equal((await pub(w.url, token, 'DELETE', '/v1/minimax/scheduler/img0')).status, 204);
    assert.equal((await registerJob(w.url, user, 'minimax', { videoId: 'v2' })).status, 429);
    assert.equal((await completeJob(w.url, user, 'minimax', 'v1')).status, 200);
    await mustRegister(w.url, user, 'minimax', { videoId: 'v2' });
    const after = await pub(w.url, token, 'GET', '/v1/minimax/scheduler/available');
    assert.deepEqual(after.json.available, [{ account: 'acc1', maxJobs: 1, executing: 1, available: 0 }]);
    assert.equal(after.json.executing.length, 5);
  });

  test('exactly one of videoId and imageId: both or neither is a 400', async () => {
    const { user, token } = await setupUser(w.url, { minimax: { acc1: 3 } });
    for (const body of [{ videoId: 'v', imageId: 'i' }, {}, { account: 'acc1' }, { id: 'x' }, { imageId: 'i', videoId: 'v', account: 'acc1' }]) {
      assertCodeError(await registerJob(w.url, user, 'minimax', body), 400);
    }
    assert.deepEqual(await list('minimax', token), []);
  });

  test('an image job webhook carries "imageId"; its completion answer too', async () => {
    const { user } = await setupUser(w.url, { minimax: { acc1: 1 } });
    const hook = await receiver([204]);
    const started = isoAgo(3);
    await mustRegister(w.url, user, 'minimax', { imageId: 'im:1@x', replyUrl: `${hook.url}/img`, started });
    const c = await completeJob(w.url, user, 'minimax', 'im:1@x', { status: 'completed', result: 'ok' });
    assert.deepEqual(Object.keys(c.json), ['account', 'status', 'imageId', 'webhookId']);
    assert.equal(c.json.imageId, 'im:1@x');
    const [rec] = await hook.waitFor(1, 15_000);
    assertSigned(rec, c.json.webhookId);
    const body = JSON.parse(rec.body);
    assert.equal(rec.body, familyWebhookBody('minimax', { imageId: 'im:1@x' }, 'acc1', { status: 'completed', started, finished: body.finished, result: 'ok' }));
  });
});

describe('PixVerse job types', () => {
  test('"type" video|image|music is shown in the item; every type takes a slot', async () => {
    const { user, token } = await setupUser(w.url, { pixverse: { 'a@x.com': 3 } });
    const types = ['video', 'image', 'music'];
    for (const [i, type] of types.entries()) {
      const j = await mustRegister(w.url, user, 'pixverse', { id: `p${i}`, type, started: isoAgo(30 - i) });
      assert.deepEqual(Object.keys(withoutAccount(j)), ['id', 'type', 'started', 'elapsed']);
      assert.equal(j.type, type);
    }
    const items = await list('pixverse', token);
    assert.deepEqual(items.map((j) => [j.id, j.type]), [['p0', 'video'], ['p1', 'image'], ['p2', 'music']]);
    const r = await registerJob(w.url, user, 'pixverse', { id: 'p3', type: 'image' });
    assert.deepEqual([r.status, r.json], [429, CAPACITY_429], 'image and music count against maxJobs');
    const av = await pub(w.url, token, 'GET', '/v2/pixverse/scheduler/available');
    assert.deepEqual(av.json.available, [{ email: 'a@x.com', maxJobs: 3, executing: 3, available: 0 }]);
  });

  test('"type" missing, unknown, another case or not a string is a 400', async () => {
    const { user, token } = await setupUser(w.url, { pixverse: { 'a@x.com': 3 } });
    for (const type of [undefined, 'audio', 'Video', 'VIDEO', '', 5, null, ['video']]) {
      const body = { id: 'p1' };
      if (type !== undefined) body.type = type;
      assertCodeError(await registerJob(w.url, user, 'pixverse', body), 400);
    }
    assert.deepEqual(await list('pixverse', token), []);
  });
});

describe('RunwayML items have no time members', () => {
  test('items are {"taskId","replyUrl"?,"replyRef"?} even with a back-dated start', async () => {
    const { user, token } = await setupUser(w.url, { runwayml: { 'a@x.com': 5 } });
    const j = await mustRegister(w.url, user, 'runwayml', { taskId: 't1', started: isoAgo(90) });
    assert.deepEqual(j, { taskId: 't1', account: 'a@x.com' });
    await mustRegister(w.url, user, 'runwayml', { taskId: 't2', replyUrl: 'https://example.com/h', replyRef: 'r', started: isoAgo(100) });
    const r = await pub(w.url, token, 'GET', '/v1/runwayml/scheduler');
    assert.equal(r.text, JSON.stringify([{ taskId: 't2', replyUrl: 'https://example.com/h', replyRef: 'r' }, { taskId: 't1' }]));
    assert.ok(!/started|elapsed/.test(r.text));
  });
});

// ---------------------------------------------------------------------------------------
// Opaque ids

describe('opaque ids', () => {
  const stringProviders = Object.keys(PROVIDERS).filter((n) => PROVIDERS[n].stringIds);
  const tricky = ['a:b', 'u@x.com', '50%', '%41', 'q?x=1', 'h#frag', 'a:b@c%d?e#f', '!$&\'()*+,;=', '~x', '[x]{y}|`^', '"quoted"', '<x>', 'a\\b'];

  for (const name of FAMILY) {
    test(`${name}: ids with ":" "@" "%" "?" "#" and the like go through percent-encoded DELETE and complete paths`, async () => {
      const p = PROVIDERS[name];
      const idKey = Object.keys(p.idMembers('x'))[0];
      const { user, token } = await setupUser(w.url, { [name]: { [p.accounts[0]]: p.max } });
      // Half are cancelled, half completed; in batches that fit maxJobs.
      for (let i = 0; i < tricky.length; i += p.max) {
        const batch = tricky.slice(i, i + p.max);
        for (const id of batch) {
          const j = await mustRegister(w.url, user, name, p.body(id));
          assert.equal(j[idKey], id);
        }
        const listed = (await list(name, token)).map((j) => j[idKey]);
        assert.deepEqual(listed.sort(), [...batch].sort());
        for (const [k, id] of batch.entries()) {
          const enc = encodeURIComponent(id);
          if (k % 2) {
            const c = await admin(w.url, 'POST', `/admin/v1/users/${user}/${name}/jobs/${enc}/complete`, { status: 'completed' });
            assert.equal(c.status, 200, `complete ${id}: ${c.text}`);
            assert.equal(c.json[idKey], id);
          } else {
            const d = await pub(w.url, token, 'DELETE', `${p.path}/${enc}`);
            assert.equal(d.status, 204, `DELETE ${id} as ${enc}: ${d.text}`);
            const again = await pub(w.url, token, 'DELETE', `${p.path}/${enc}`);
            assert.deepEqual(again.json, { error: p.notRunning(id), code: 404 }, `second DELETE ${id}`);
          }
        }
        assert.deepEqual(await list(name, token), []);
      }
    });
  }

  for (const name of stringProviders) {
    const p = PROVIDERS[name];
    for (const idKey of p.idKeys) {
      test(`${name}: ${idKey} "." and ".." are refused at registration (400)`, async () => {
        const { user, token } = await setupUser(w.url, { [name]: { [p.accounts[0]]: 5 } });
        for (const id of ['.', '..']) {
          const body = name === 'minimax' ? { [idKey]: id } : { ...p.body('x'), [idKey]: id };
          assertCodeError(await registerJob(w.url, user, name, body), 400);
        }
        const r = await pub(w.url, token, 'GET', p.path);
        assert.ok(!r.text.includes('"."') && !r.text.includes('".."'), r.text);
      });
    }

    test(`${name}: ids "available" and "live" can be registered, listed and DELETEd`, async () => {
      const { user, token } = await setupUser(w.url, { [name]: { [p.accounts[0]]: 5 } });
      for (const id of ['available', 'live']) await mustRegister(w.url, user, name, p.body(id));
      for (const id of ['available', 'live']) {
        const r = await pub(w.url, token, 'DELETE', `${p.path}/${id}`);
        assert.equal(r.status, 204, `DELETE ${p.path}/${id}: ${r.text}`);
        assertCors(r);
        const again = await pub(w.url, token, 'DELETE', `${p.path}/${id}`);
        assertStyleError(p, again, 404, p.notRunning(id));
      }
      // GET .../available is still the available route.
      const av = await pub(w.url, token, 'GET', `${p.path}/available`);
      assert.equal(av.status, 200);
      assert.ok(Array.isArray(av.json.available));
    });
  }
});

// ---------------------------------------------------------------------------------------
// All five alike

describe('the shared rules, for all five providers', () => {
  for (const [name, p] of Object.entries(PROVIDERS)) {
    const root = p.path.slice(0, p.path.lastIndexOf('/'));

    test(`${name}: unknown paths under the provider -> 404 in its style`, async () => {
      const { token } = await setupUser(w.url, { [name]: { [p.accounts[0]]: 1 } });
      for (const path of [`${p.path}/a/b`, `${p.path}/a/b/c`, `${p.path}x`, `${root}/nope`, `${p.path}/x1/available`]) {
        for (const method of ['GET', 'DELETE']) {
          const r = await pub(w.url, token, method, path);
          assertStyleError(p, r, 404, 'Not found');
          assert.match(r.headers.get('content-type') || '', /^application\/json/);
          assertCors(r);
        }
      }
    });

    test(`${name}: OPTIONS preflight on the list, available and an item -> 204 with CORS`, async () => {
      for (const path of [p.path, `${p.path}/available`, `${p.path}/${encodeURIComponent(String(p.id(1)))}`]) {
        const r = await req(w.url, 'OPTIONS', path, {
          headers: {
            origin: 'https://app.example.com',
            'access-control-request-method': 'DELETE',
            'access-control-request-headers': 'authorization, content-type',
          },
        });
        assert.equal(r.status, 204, `${path}: ${r.text}`);
        assertCors(r);
        assert.equal(r.headers.get('access-control-allow-methods'), 'GET, DELETE, OPTIONS');
        const h = (r.headers.get('access-control-allow-headers') || '').toLowerCase();
        assert.ok(h.includes('authorization') && h.includes('content-type'), h);
      }
    });

    test(`${name}: PROPFIND -> 405 with Allow, in its style, never the list`, async () => {
      const { user, token } = await setupUser(w.url, { [name]: { [p.accounts[0]]: 2 } });
      await mustRegister(w.url, user, name, p.body(p.id(1)));
      for (const [path, allow] of [
        [p.path, ['GET', 'OPTIONS']],
        [`${p.path}/available`, ['GET', 'OPTIONS']],
        [`${p.path}/${encodeURIComponent(String(p.id(1)))}`, ['DELETE', 'OPTIONS']],
      ]) {
        const r = await pub(w.url, token, 'PROPFIND', path);
        assertStyleError(p, r, 405, 'Method not allowed');
        const got = (r.headers.get('allow') || '').split(',').map((s) => s.trim());
        for (const m of allow) assert.ok(got.includes(m), `Allow "${r.headers.get('allow')}" lacks ${m}`);
        assert.ok(!got.includes('PROPFIND'));
        assertCors(r);
      }
      // The job is still there (PROPFIND on an item is not a DELETE).
      assert.equal((await pub(w.url, token, 'DELETE', `${p.path}/${encodeURIComponent(String(p.id(1)))}`)).status, 204);
    });

    test(`${name}: registration naming an unconfigured account -> 404 "Account not configured"; none -> "No accounts configured"`, async () => {
      const { user } = await setupUser(w.url);
      assertCodeError(await registerJob(w.url, user, name, p.body(p.id(1))), 404, 'No accounts configured');
      assertCodeError(
        await registerJob(w.url, user, name, { ...p.body(p.id(1)), [p.acctKey]: p.accounts[1] }),
        404,
        'No accounts configured',
      );
      await admin(w.url, 'PUT', accountPath(user, name, p.accounts[0]), { maxJobs: 2 });
      assertCodeError(
        await registerJob(w.url, user, name, { ...p.body(p.id(1)), [p.acctKey]: p.accounts[1] }),
        404,
        'Account not configured',
      );
      // Removing the last account brings back "No accounts configured".
      assert.equal((await admin(w.url, 'DELETE', accountPath(user, name, p.accounts[0]))).status, 204);
      assertCodeError(await registerJob(w.url, user, name, p.body(p.id(1))), 404, 'No accounts configured');
    });

    test(`${name}: a duplicate id -> 409, also on another account`, async () => {
      const { user } = await setupUser(w.url, { [name]: { [p.accounts[0]]: 3, [p.accounts[1]]: 3 } });
      const id = p.id(7);
      await mustRegister(w.url, user, name, { ...p.body(id), [p.acctKey]: p.accounts[0] });
      for (const extra of [{ [p.acctKey]: p.accounts[0] }, { [p.acctKey]: p.accounts[1] }, {}]) {
        assertCodeError(await registerJob(w.url, user, name, { ...p.body(id), ...extra }), 409, `Job ${id} is already executing`);
      }
      const rows = await accounts(user, name);
      assert.equal(rows.reduce((n, a) => n + a.executing, 0), 1);
    });

    test(`${name}: 401 in its style on the list, available and DELETE`, async () => {
      const ip = freshIp();
      for (const [method, path] of [['GET', p.path], ['GET', `${p.path}/available`], ['DELETE', `${p.path}/${encodeURIComponent(String(p.id(1)))}`]]) {
        const r = await req(w.url, method, path, { token: 'not-a-token', headers: { 'cf-connecting-ip': ip } });
        assertStyleError(p, r, 401, 'Unauthorized');
        assertCors(r);
      }
    });
  }
});
