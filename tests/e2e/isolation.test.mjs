// Isolation between users: user A has accounts and executing jobs on both providers;
// user B (its own token, and the SAME account names as A) tries every public route
// against A's job ids, and the operator routes with its user token. B never sees or
// touches A's accounts or jobs; B sees exactly its own; A's jobs are all still there.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { assertCodeError, assertPlainError } from '../support/assertions.mjs';
import { admin, pub, req } from '../support/client.mjs';
import { completeJob, isoAgo, mustRegister, registerJob, setupUser } from '../support/fixtures.mjs';
import { startReceiver } from '../support/receiver.mjs';
import { startWorker } from '../support/server.mjs';

let w;
let hook;
let A;
let B;
const aKling = []; // A's Kling task ids
const aDreamina = []; // A's Dreamina jobids
const bKling = [];
const bDreamina = [];

// Every list B can read, as text and parsed.
async function listsOf(token) {
  const out = {};
  for (const p of ['/v1/kling/scheduler', '/v1/kling/scheduler/available', '/v1/dreamina/scheduler', '/v1/dreamina/scheduler/available']) {
    const r = await pub(w.url, token, 'GET', p);
    assert.equal(r.status, 200, `${p}: ${r.text}`);
    out[p] = r;
  }
  return out;
}

const strip = (v) => JSON.parse(JSON.stringify(v, (k, x) => (k === 'elapsed' || k === 'elapsedSeconds' ? undefined : x)));

before(async () => {
  [w, hook] = await Promise.all([startWorker(), startReceiver()]);
  A = await setupUser(w.url, {
    kling: { 'a@x.com': 3, 'b@x.com': 3 },
    dreamina: { 'US:a@x.com': 3, 'EU:b@x.com': 3 },
  }, 'A');
  // B has the same account names as A (and one more), with other limits.
  B = await setupUser(w.url, {
    kling: { 'a@x.com': 2, 'z@x.com': 1 },
    dreamina: { 'US:a@x.com': 2 },
  }, 'B');

  for (const [id, email] of [[101, 'a@x.com'], [102, 'a@x.com'], [103, 'b@x.com']]) {
    const j = await mustRegister(w.url, A.user, 'kling', { id, email, replyUrl: `${hook.url}/a/${id}`, replyRef: `A-${id}`, started: isoAgo(30) });
    aKling.push(j.id);
  }
  aDreamina.push((await mustRegister(w.url, A.user, 'dreamina', { submitId: 'sa1', model: 'm', account: 'US:a@x.com', replyUrl: `${hook.url}/a/d1` })).jobid);
  aDreamina.push((await mustRegister(w.url, A.user, 'dreamina', { submitId: 'sa2', model: 'm', account: 'EU:b@x.com', jobid: 'A-job:1?x=1&y#z%' })).jobid);
  aDreamina.push((await mustRegister(w.url, A.user, 'dreamina', { submitId: 'sa3', model: 'm', account: 'US:a@x.com', jobid: 'plainjob' })).jobid);

  bKling.push((await mustRegister(w.url, B.user, 'kling', { id: 201, email: 'a@x.com' })).id);
  bDreamina.push((await mustRegister(w.url, B.user, 'dreamina', { submitId: 'sb1', model: 'm', account: 'US:a@x.com' })).jobid);
});

after(async () => {
  await w?.stop();
  await hook?.close();
});

describe('user B against user A', () => {
  let aBefore;
  let aAccountsBefore;

  test('A sees its own jobs before', async () => {
    aBefore = await listsOf(A.token);
    assert.deepEqual(aBefore['/v1/kling/scheduler'].json.map((j) => j.id).sort(), [...aKling].sort());
    assert.equal(aBefore['/v1/dreamina/scheduler'].json.total, 3);
    aAccountsBefore = {
      kling: (await admin(w.url, 'GET', `/admin/v1/users/${A.user}/kling/accounts`)).json,
      dreamina: (await admin(w.url, 'GET', `/admin/v1/users/${A.user}/dreamina/accounts`)).json,
    };
  });

  test("B's lists hold only B's jobs and accounts, with the same account names as A", async () => {
    const l = await listsOf(B.token);
    assert.deepEqual(l['/v1/kling/scheduler'].json.map((j) => j.id), bKling);
    assert.deepEqual(l['/v1/kling/scheduler'].json.map((j) => j.email), ['a@x.com']);
    const kAvail = l['/v1/kling/scheduler/available'].json;
    assert.deepEqual(kAvail.executing.map((j) => j.id), bKling);
    assert.deepEqual(kAvail.available, [
      { email: 'a@x.com', maxJobs: 2, executing: 1, available: 1 },
      { email: 'z@x.com', maxJobs: 1, executing: 0, available: 1 },
    ]);
    const d = l['/v1/dreamina/scheduler'].json;
    assert.equal(d.total, 1);
    assert.deepEqual(Object.keys(d.executing), ['US:a@x.com']);
    assert.deepEqual(d.executing['US:a@x.com'].map((j) => j.jobid), bDreamina);
    assert.deepEqual(d.executing['US:a@x.com'].map((j) => j.submitId), ['sb1']);
    const dAvail = l['/v1/dreamina/scheduler/available'].json;
    assert.deepEqual(dAvail.available, [{ account: 'US:a@x.com', maxJobs: 2, executing: 1, available: 1 }]);
    // Nothing of A's anywhere in B's answers.
    for (const [p, r] of Object.entries(l)) {
      for (const id of aDreamina) assert.ok(!r.text.includes(JSON.stringify(id)), `${p} shows A's jobid ${id}`);
      for (const s of ['sa1', 'sa2', 'sa3', 'EU:b@x.com', 'b@x.com"', A.user, '/a/', 'A-10']) {
        assert.ok(!r.text.includes(s), `${p} as B contains ${s}: ${r.text}`);
      }
    }
  });

  test("B cannot cancel A's Kling jobs: 404 in the Kling shape", async () => {
    for (const id of aKling) {
      const r = await pub(w.url, B.token, 'DELETE', `/v1/kling/scheduler/${id}`);
      assertCodeError(r, 404, `Unable to locate running task_id ${id}`);
      assert.equal(r.headers.get('access-control-allow-origin'), '*');
    }
  });

  test("B cannot cancel A's Dreamina jobs: 404 in the Dreamina shape", async () => {
    for (const id of aDreamina) {
      const r = await pub(w.url, B.token, 'DELETE', `/v1/dreamina/scheduler/${encodeURIComponent(id)}`);
      assertPlainError(r, 404);
      assert.match(r.json.error, /^Unable to locate running jobid /);
    }
    // A's jobids sent raw (where the URL allows it) and double-encoded: still nothing.
    const raw = await pub(w.url, B.token, 'DELETE', '/v1/dreamina/scheduler/plainjob');
    assertPlainError(raw, 404, 'Unable to locate running jobid plainjob');
    const twice = await pub(w.url, B.token, 'DELETE', `/v1/dreamina/scheduler/${encodeURIComponent(encodeURIComponent(aDreamina[1]))}`);
    assert.equal(twice.status, 404, twice.text);
  });

  test("B's cancels across providers with A's ids: 400/404, never A's job", async () => {
    // A Kling id on the Dreamina route, a Dreamina jobid on the Kling route.
    for (const id of aKling) {
      assert.equal((await pub(w.url, B.token, 'DELETE', `/v1/dreamina/scheduler/${id}`)).status, 404);
    }
    for (const id of aDreamina) {
      const r = await pub(w.url, B.token, 'DELETE', `/v1/kling/scheduler/${encodeURIComponent(id)}`);
      assertCodeError(r, 400);
    }
  });

  test('preflight on the same paths reveals nothing and needs no token', async () => {
    for (const p of [`/v1/kling/scheduler/${aKling[0]}`, `/v1/dreamina/scheduler/${encodeURIComponent(aDreamina[0])}`]) {
      const r = await req(w.url, 'OPTIONS', p, { headers: { origin: 'https://x.example', 'access-control-request-method': 'DELETE' } });
      assert.equal(r.status, 204);
      assert.equal(r.text, '');
    }
  });

  test("B's user token opens no operator route on A's data: 401", async () => {
    const u = A.user;
    const routes = [
      ['GET', `/admin/v1/users/${u}/kling/accounts`],
      ['GET', `/admin/v1/users/${u}/dreamina/accounts`],
      ['PUT', `/admin/v1/users/${u}/kling/accounts/a%40x.com`, { maxJobs: 1 }],
      ['DELETE', `/admin/v1/users/${u}/kling/accounts/a%40x.com`],
      ['DELETE', `/admin/v1/users/${u}/dreamina/accounts/US%3Aa%40x.com`],
      ['POST', `/admin/v1/users/${u}/kling/jobs`, { id: 999 }],
      ['POST', `/admin/v1/users/${u}/kling/jobs/${aKling[0]}/complete`, { status: 'completed' }],
      ['POST', `/admin/v1/users/${u}/dreamina/jobs/${encodeURIComponent(aDreamina[0])}/complete`, { status: 'failed' }],
      ['GET', `/admin/v1/users/${u}/kling/webhooks`],
      ['POST', '/admin/v1/tokens', { user: u }],
      ['POST', '/admin/v1/tokens/revoke', { token: A.token }],
    ];
    for (const [method, p, body] of routes) {
      const r = await req(w.url, method, p, { token: B.token, body });
      assertCodeError(r, 401, 'Unauthorized');
    }
  });

  test("A's jobs and accounts are all still there, unchanged", async () => {
    const now = await listsOf(A.token);
    for (const p of Object.keys(now)) assert.deepEqual(strip(now[p].json), strip(aBefore[p].json), p);
    assert.deepEqual((await admin(w.url, 'GET', `/admin/v1/users/${A.user}/kling/accounts`)).json, aAccountsBefore.kling);
    assert.deepEqual((await admin(w.url, 'GET', `/admin/v1/users/${A.user}/dreamina/accounts`)).json, aAccountsBefore.dreamina);
    assert.equal(hook.requests.length, 0, 'no webhook was sent for A');
    // ... and still A's to finish: A's own cancel and the operator's completion work.
    assert.equal((await pub(w.url, A.token, 'DELETE', `/v1/dreamina/scheduler/${encodeURIComponent(aDreamina[1])}`)).status, 204);
    assert.equal((await completeJob(w.url, A.user, 'kling', aKling[0])).status, 200);
  });

  test("a job id A is running does not block B's own job with that id, and B's cancel stops only B's", async () => {
    const id = aKling[1]; // 102, executing for A
    const r = await registerJob(w.url, B.user, 'kling', { id, email: 'z@x.com' });
    assert.equal(r.status, 201, `ids are per user: ${r.text}`);
    const jid = aDreamina[2]; // 'plainjob', executing for A
    const d = await registerJob(w.url, B.user, 'dreamina', { jobid: jid, submitId: 'sb2', model: 'm' });
    assert.equal(d.status, 201, d.text);
    assert.equal((await pub(w.url, B.token, 'DELETE', `/v1/kling/scheduler/${id}`)).status, 204);
    assert.equal((await pub(w.url, B.token, 'DELETE', `/v1/dreamina/scheduler/${jid}`)).status, 204);
    const a = await listsOf(A.token);
    assert.ok(a['/v1/kling/scheduler'].json.some((j) => j.id === id), "A's job with the same id is still listed");
    assert.ok(a['/v1/dreamina/scheduler'].json.executing['US:a@x.com'].some((j) => j.jobid === jid), "A's jobid still listed");
    const b = await listsOf(B.token);
    assert.deepEqual(b['/v1/kling/scheduler'].json.map((j) => j.id), bKling);
    assert.deepEqual(b['/v1/dreamina/scheduler'].json.executing['US:a@x.com'].map((j) => j.jobid), bDreamina);
  });
});
