// Abuse: a failed-authentication flood from one client address is throttled (AUTH_FAILURES,
// 30 failures a minute per `cf-connecting-ip`), in the provider's error shape, while a
// valid token from that address keeps working; the operator routes refuse a wrong or
// missing admin token; and the worker's log never carries a token.
//
// Under `wrangler dev` the client's `cf-connecting-ip` header reaches the worker as sent
// (so every test here uses its own made-up address and gets its own budget); without the
// header wrangler fills in 127.0.0.1. On Cloudflare the edge sets the header itself.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { assertCodeError, assertKeys, assertPlainError } from '../support/assertions.mjs';
import { req } from '../support/client.mjs';
import { issueToken, setupUser } from '../support/fixtures.mjs';
import { ADMIN_TOKEN, sleep, startWorker } from '../support/server.mjs';

const LIMIT = 30; // wrangler.toml: [[ratelimits]] AUTH_FAILURES simple = { limit = 30, period = 60 }
const badToken = () => `sk_${randomBytes(32).toString('base64url')}`;

describe('failed-authentication flood from one address', () => {
  let w;
  let user;
  before(async () => {
    w = await startWorker();
    user = await setupUser(w.url, { kling: { 'a@x.com': 2 }, dreamina: { 'US:a@x.com': 2 } });
  });
  after(() => w?.stop());

  const from = (ip, token, p, method = 'GET') => req(w.url, method, p, { token, headers: { 'cf-connecting-ip': ip } });

  test('after the limit: 429 in the provider shape; a valid token from the same address still works', async () => {
    const ip = '203.0.113.7';
    // Bad credentials of every kind count: unknown, malformed, missing, over-long.
    const kinds = [badToken, () => 'not a token', () => undefined, () => 'x'.repeat(600)];
    const statuses = [];
    let first429 = -1;
    for (let i = 0; i < 3 * LIMIT && first429 < 0; i++) {
      const p = i % 2 ? '/v1/kling/scheduler' : '/v1/dreamina/scheduler/available';
      const r = await from(ip, kinds[i % kinds.length](), p);
      statuses.push(r.status);
      if (r.status === 429) first429 = i;
      else if (i % 2) assertCodeError(r, 401, 'Unauthorized');
      else assertPlainError(r, 401, 'Unauthorized');
    }
    // A fresh address cannot be throttled before LIMIT failures; a window boundary in
    // the middle of the flood may give it up to one more window.
    assert.ok(first429 >= LIMIT && first429 < 2 * LIMIT + 1, `first 429 after ${first429} failures: ${statuses}`);

    // Now, from that address: 429 in both shapes, with CORS, for every public route.
    const k = await from(ip, badToken(), '/v1/kling/scheduler');
    assertCodeError(k, 429);
    assert.equal(k.headers.get('access-control-allow-origin'), '*');
    const ka = await from(ip, badToken(), '/v1/kling/scheduler/available');
    assertCodeError(ka, 429);
    const kd = await from(ip, badToken(), '/v1/kling/scheduler/1', 'DELETE');
    assertCodeError(kd, 429);
    const d = await from(ip, badToken(), '/v1/dreamina/scheduler');
    assertPlainError(d, 429);
    assertKeys(d.json, ['error']);
    assert.equal(d.headers.get('access-control-allow-origin'), '*');
    const dd = await from(ip, undefined, '/v1/dreamina/scheduler/j1', 'DELETE');
    assertPlainError(dd, 429);

    // A valid token from the same address is not throttled.
    for (const p of ['/v1/kling/scheduler', '/v1/kling/scheduler/available', '/v1/dreamina/scheduler', '/v1/dreamina/scheduler/available']) {
      const ok = await from(ip, user.token, p);
      assert.equal(ok.status, 200, `${p} with a valid token from a throttled address: ${ok.status} ${ok.text}`);
    }
    const cancel = await from(ip, user.token, '/v1/kling/scheduler/12345', 'DELETE');
    assertCodeError(cancel, 404);
  });

  test('the throttle is per address: another address still gets 401', async () => {
    const r = await from('198.51.100.23', badToken(), '/v1/kling/scheduler');
    assertCodeError(r, 401, 'Unauthorized');
    const d = await from('2001:db8::1', badToken(), '/v1/dreamina/scheduler');
    assertPlainError(d, 401, 'Unauthorized');
  });

  test('a throttled address stays throttled for bad tokens while it keeps trying', async () => {
    const ip = '203.0.113.8';
    for (let i = 0; i < LIMIT; i++) assert.equal((await from(ip, badToken(), '/v1/kling/scheduler')).status, 401);
    const statuses = [];
    for (let i = 0; i < 10; i++) statuses.push((await from(ip, badToken(), '/v1/kling/scheduler')).status);
    // All 429, unless the one-minute window turned over during the loop.
    assert.ok(statuses.filter((s) => s === 429).length >= 1, `${statuses}`);
    assert.ok(statuses.every((s) => s === 429 || s === 401), `${statuses}`);
  });
});

describe('operator routes refuse a wrong or missing admin token', () => {
  let w;
  let user;
  before(async () => {
    w = await startWorker();
    user = await setupUser(w.url, { kling: { 'a@x.com': 2 } });
  });
  after(() => w?.stop());

  const routes = () => {
    const u = user.user;
    return [
      ['POST', '/admin/v1/tokens', { user: u }],
      ['POST', '/admin/v1/tokens/revoke', { token: user.token }],
      ['PUT', `/admin/v1/users/${u}/kling/accounts/a%40x.com`, { maxJobs: 5 }],
      ['GET', `/admin/v1/users/${u}/kling/accounts`],
      ['DELETE', `/admin/v1/users/${u}/kling/accounts/a%40x.com`],
      ['POST', `/admin/v1/users/${u}/kling/jobs`, { id: 1 }],
      ['POST', `/admin/v1/users/${u}/kling/jobs/1/complete`, { status: 'completed' }],
      ['GET', `/admin/v1/users/${u}/kling/webhooks`],
      ['GET', `/admin/v1/users/${u}/dreamina/accounts`],
    ];
  };

  test('wrong, missing, empty, user-token and near-miss admin tokens: 401 on every route', async () => {
    const wrong = [
      { token: 'wrong-admin-token' },
      {},
      { headers: { authorization: 'Bearer ' } },
      { headers: { authorization: ADMIN_TOKEN } }, // no scheme
      { headers: { authorization: `Basic ${ADMIN_TOKEN}` } },
      { token: `${ADMIN_TOKEN}x` },
      { token: ADMIN_TOKEN.slice(0, -1) },
      { token: ADMIN_TOKEN.toUpperCase() },
      { token: () => user.token },
    ];
    for (const [method, p, body] of routes()) {
      for (const opt of wrong) {
        const token = typeof opt.token === 'function' ? opt.token() : opt.token;
        const r = await req(w.url, method, p, { body, token, headers: opt.headers });
        assertCodeError(r, 401, 'Unauthorized');
      }
    }
  });

  test('nothing changed: the account, its limit and the user token are intact', async () => {
    const a = await req(w.url, 'GET', `/admin/v1/users/${user.user}/kling/accounts`, { token: ADMIN_TOKEN });
    assert.deepEqual(a.json, [{ account: 'a@x.com', maxJobs: 2, executing: 0, paused: false }]);
    assert.equal((await req(w.url, 'GET', '/v1/kling/scheduler', { token: user.token })).status, 200);
  });
});

describe('logs: one JSON line per request, never a token', () => {
  // Its own admin token, so a grep for it means something.
  const adminToken = `adm_${randomBytes(24).toString('base64url')}`;
  let w;
  const sent = []; // [method, route label, status] of every request, in order
  const secrets = [adminToken];

  before(async () => {
    w = await startWorker({ adminToken });
  });
  after(() => w?.stop());

  async function call(label, method, p, opts = {}) {
    const r = await req(w.url, method, p, opts);
    sent.push([method, label, r.status]);
    return r;
  }
  const adm = (label, method, p, body) => call(label, method, p, { token: adminToken, body });

  test('issue, use, revoke and flood; then grep the log: no secret, no unauthenticated user', async () => {
    const users = ['logu1', 'logu2'];
    const tokens = [];
    for (const u of users) {
      const r = await adm('issue_token', 'POST', '/admin/v1/tokens', { user: u });
      assert.equal(r.status, 201);
      tokens.push(r.json.token);
      secrets.push(r.json.token);
      assert.equal((await adm('put_account', 'PUT', `/admin/v1/users/${u}/kling/accounts/a%40x.com`, { maxJobs: 2 })).status, 200);
      assert.equal((await adm('put_account', 'PUT', `/admin/v1/users/${u}/dreamina/accounts/US%3Aa%40x.com`, { maxJobs: 2 })).status, 200);
    }
    assert.equal((await adm('register_job', 'POST', '/admin/v1/users/logu1/kling/jobs', { id: 7 })).status, 201);
    const dj = await adm('register_job', 'POST', '/admin/v1/users/logu1/dreamina/jobs', { submitId: 's', model: 'm' });
    assert.equal(dj.status, 201);

    // Use them on every public route, with every accepted spelling of the header.
    for (const [i, t] of tokens.entries()) {
      assert.equal((await call('list_jobs', 'GET', '/v1/kling/scheduler', { token: t })).status, 200);
      assert.equal((await call('list_available', 'GET', '/v1/kling/scheduler/available', { headers: { authorization: `bearer   ${t}  ` } })).status, 200);
      assert.equal((await call('list_jobs', 'GET', '/v1/dreamina/scheduler', { headers: { authorization: `BEARER ${t}` } })).status, 200);
      assert.equal((await call('list_available', 'GET', '/v1/dreamina/scheduler/available', { token: t })).status, 200);
      assert.equal((await call('cancel_job', 'DELETE', '/v1/kling/scheduler/999', { token: t })).status, 404);
      if (i === 0) {
        assert.equal((await call('cancel_job', 'DELETE', '/v1/kling/scheduler/7', { token: t })).status, 204);
        assert.equal((await call('cancel_job', 'DELETE', `/v1/dreamina/scheduler/${encodeURIComponent(dj.json.jobid)}`, { token: t })).status, 204);
      }
    }
    assert.equal((await call('preflight', 'OPTIONS', '/v1/kling/scheduler', { headers: { authorization: `Bearer ${tokens[0]}` } })).status, 204);

    // Revoke one (the token travels in the body), then use it.
    assert.equal((await adm('revoke_token', 'POST', '/admin/v1/tokens/revoke', { token: tokens[1] })).status, 204);
    assert.equal((await adm('revoke_token', 'POST', '/admin/v1/tokens/revoke', { token: tokens[1] })).status, 404);
    assert.equal((await call('list_jobs', 'GET', '/v1/kling/scheduler', { token: tokens[1] })).status, 401);

    // Flood bad tokens (some throttled) and wrong admin tokens.
    for (let i = 0; i < LIMIT + 5; i++) {
      const t = badToken();
      secrets.push(t);
      const r = await call(i % 2 ? 'list_jobs' : 'list_available', 'GET', i % 2 ? '/v1/kling/scheduler' : '/v1/dreamina/scheduler/available', {
        token: t,
        headers: { 'cf-connecting-ip': '192.0.2.99' },
      });
      assert.ok([401, 429].includes(r.status), `${r.status}`);
    }
    for (let i = 0; i < 5; i++) {
      const t = `adm_${randomBytes(24).toString('base64url')}`;
      secrets.push(t);
      assert.equal((await call('list_accounts', 'GET', '/admin/v1/users/logu1/kling/accounts', { token: t })).status, 401);
    }
    // Text from the path of an unauthenticated request must not reach the log as if it
    // named a user (anyone could write anything there).
    const forged = `forged_${randomBytes(6).toString('hex')}`;
    assert.equal((await call('list_accounts', 'GET', `/admin/v1/users/${forged}/kling/accounts`, { token: 'wrong' })).status, 401);
    assert.equal((await call('register_job', 'POST', `/admin/v1/users/${forged}/kling/jobs`, { token: 'wrong', body: { id: 1 } })).status, 401);
    // Bad input that makes the worker talk about the body: a token-looking value in it.
    const inBody = badToken();
    secrets.push(inBody);
    assert.equal((await adm('issue_token', 'POST', '/admin/v1/tokens', { user: inBody.replace(/[^A-Za-z0-9_-]/g, '') + '!' })).status, 400);

    // Give the log a moment to catch up.
    await sleep(500);
    const text = w.logs();

    // No token anywhere in what the worker (and wrangler) wrote, the admin token
    // included (the harness hands it over in a .dev.vars, which wrangler prints hidden).
    const workerText = text;
    assert.ok(secrets.length > 10 && text.includes('GET /v1/kling/scheduler'), 'sanity: the log has the requests');
    for (const s of secrets) {
      assert.ok(!workerText.includes(s), `the log contains a secret (${s.slice(0, 8)}...)`);
      // Not its first half either (a truncated copy).
      assert.ok(!workerText.includes(s.slice(0, Math.ceil(s.length / 2))), `the log contains half of a secret (${s.slice(0, 8)}...)`);
    }
    // wrangler's own access lines show the URL as it came (as Workers Logs does); no line
    // of the worker may name the forged user.
    const ownLines = workerText.split('\n').filter((l) => !l.startsWith('[wrangler:'));
    assert.ok(!ownLines.some((l) => l.includes(forged)), 'an unauthenticated path user reached the log');
    // The worker writes no line per request (Workers Logs records every invocation);
    // wrangler's own request lines are not JSON.
    assert.deepEqual(jsonLines(text), [], 'no per-request JSON lines');
  });
});

function jsonLines(text) {
  const out = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const j = JSON.parse(line);
      if (j && 'method' in j && 'route' in j && 'status' in j) out.push(j);
    } catch {
      /* not a request line */
    }
  }
  return out;
}
