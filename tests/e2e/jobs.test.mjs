// Operator job lifecycle: registration (shapes, account choice, 404/409/429, atomic
// admission, validation), account changes, completion, and the public DELETE routes.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  STARTED_RE,
  assertCodeError,
  assertCors,
  assertDreaminaItem,
  assertKeys,
  assertKlingItem,
  assertPlainError,
} from '../support/assertions.mjs';
import { admin, pub } from '../support/client.mjs';
import {
  accountPath,
  completeJob,
  isoAgo,
  mustRegister,
  putAccount,
  registerJob,
  setupUser,
} from '../support/fixtures.mjs';
import { startReceiver } from '../support/receiver.mjs';
import { startWorker } from '../support/server.mjs';

let w;
let hook; // a local receiver, so queued webhooks never leave the machine
before(async () => {
  [w, hook] = await Promise.all([startWorker(), startReceiver()]);
});
after(async () => {
  await Promise.all([w?.stop(), hook?.close()]);
});

const CAPACITY_429 = { error: 'All accounts are at maxJobs capacity', code: 429 };

async function kList(token) {
  const r = await pub(w.url, token, 'GET', '/v1/kling/scheduler');
  assert.equal(r.status, 200);
  return r.json;
}
async function dList(token) {
  const r = await pub(w.url, token, 'GET', '/v1/dreamina/scheduler');
  assert.equal(r.status, 200);
  return r.json;
}
async function accounts(user, provider) {
  const r = await admin(w.url, 'GET', `/admin/v1/users/${user}/${provider}/accounts`);
  assert.equal(r.status, 200);
  return r.json;
}

describe('registration', () => {
  test('Kling 201: the public item plus "account"', async () => {
    const { user } = await setupUser(w.url, { kling: { 'a@x.com': 2 } });
    const started = isoAgo(10);
    const r = await registerJob(w.url, user, 'kling', {
      id: 1001,
      email: 'a@x.com',
      replyUrl: `${hook.url}/k`,
      replyRef: 'ref',
      started,
    });
    assert.equal(r.status, 201, r.text);
    assertKlingItem(r.json, { withAccount: true });
    assertKeys(r.json, ['id', 'email', 'started', 'elapsed', 'replyUrl', 'replyRef', 'account']);
    assert.equal(r.json.id, 1001);
    assert.equal(r.json.email, 'a@x.com');
    assert.equal(r.json.account, 'a@x.com');
    assert.equal(r.json.started, started);
    assert.equal(r.json.replyUrl, `${hook.url}/k`);
    assert.equal(r.json.replyRef, 'ref');

    const minimal = await mustRegister(w.url, user, 'kling', { id: 1002 });
    assertKeys(minimal, ['id', 'email', 'started', 'elapsed', 'account']);
    assert.match(minimal.started, STARTED_RE);
  });

  test('Dreamina 201: the public item plus "account" (replyRef stored but not shown)', async () => {
    const { user } = await setupUser(w.url, { dreamina: { 'US:a@x.com': 2 } });
    const r = await registerJob(w.url, user, 'dreamina', {
      submitId: 'sub',
      model: 'seedance-2.0',
      account: 'US:a@x.com',
      jobid: 'job-1',
      replyUrl: `${hook.url}/d`,
      replyRef: 'ref',
    });
    assert.equal(r.status, 201, r.text);
    assertDreaminaItem(r.json, { withAccount: true });
    assertKeys(r.json, ['jobid', 'submitId', 'model', 'elapsedSeconds', 'replyUrl', 'account']);
    assert.deepEqual(
      { ...r.json, elapsedSeconds: 0 },
      { jobid: 'job-1', submitId: 'sub', model: 'seedance-2.0', elapsedSeconds: 0, replyUrl: `${hook.url}/d`, account: 'US:a@x.com' },
    );
  });

  test('without an account the one with the most free slots is chosen (Kling)', async () => {
    const { user } = await setupUser(w.url, { kling: { 'a@x.com': 3, 'b@x.com': 5 } });
    // Free slots (a, b) before each automatic choice: (3, 5) -> b, (3, 4) -> b; ties are
    // avoided by filling one account by name.
    assert.equal((await mustRegister(w.url, user, 'kling', { id: 1 })).account, 'b@x.com');
    assert.equal((await mustRegister(w.url, user, 'kling', { id: 2 })).account, 'b@x.com');
    await mustRegister(w.url, user, 'kling', { id: 3, email: 'a@x.com' }); // (2, 3)
    assert.equal((await mustRegister(w.url, user, 'kling', { id: 4 })).account, 'b@x.com');
    await mustRegister(w.url, user, 'kling', { id: 5, email: 'b@x.com' }); // (2, 1)
    const j = await mustRegister(w.url, user, 'kling', { id: 6 });
    assert.equal(j.account, 'a@x.com');
    assert.equal(j.email, 'a@x.com');
  });

  test('without an account the one with the most free slots is chosen (Dreamina)', async () => {
    const { user } = await setupUser(w.url, { dreamina: { 'US:a@x.com': 1, 'JP:b@x.com': 4 } });
    const j = await mustRegister(w.url, user, 'dreamina', { submitId: 's', model: 'm' });
    assert.equal(j.account, 'JP:b@x.com');
    assert.ok(j.jobid.endsWith('-JP:b@x.com:dreamina'), j.jobid);
  });

  test('named account that is not configured -> 404 "Account not configured"', async () => {
    const { user } = await setupUser(w.url, { kling: { 'a@x.com': 1 }, dreamina: { 'US:a@x.com': 1 } });
    assertCodeError(await registerJob(w.url, user, 'kling', { id: 1, email: 'zz@x.com' }), 404, 'Account not configured');
    assertCodeError(
      await registerJob(w.url, user, 'dreamina', { submitId: 's', model: 'm', account: 'GB:a@x.com' }),
      404,
      'Account not configured',
    );
  });

  test('user without accounts -> 404 "No accounts configured" (also with a named account)', async () => {
    const { user } = await setupUser(w.url);
    assertCodeError(await registerJob(w.url, user, 'kling', { id: 1 }), 404, 'No accounts configured');
    assertCodeError(await registerJob(w.url, user, 'dreamina', { submitId: 's', model: 'm' }), 404, 'No accounts configured');
    const named = await registerJob(w.url, user, 'kling', { id: 1, email: 'a@x.com' });
    assert.equal(named.status, 404);
  });

  test('duplicate id -> 409 "Job <id> is already executing", also on another account of the user', async () => {
    const { user } = await setupUser(w.url, { kling: { 'a@x.com': 5, 'b@x.com': 5 }, dreamina: { 'US:a@x.com': 5, 'US:b@x.com': 5 } });
    await mustRegister(w.url, user, 'kling', { id: 77, email: 'a@x.com' });
    assertCodeError(await registerJob(w.url, user, 'kling', { id: 77, email: 'a@x.com' }), 409, 'Job 77 is already executing');
    assertCodeError(await registerJob(w.url, user, 'kling', { id: 77, email: 'b@x.com' }), 409, 'Job 77 is already executing');
    assertCodeError(await registerJob(w.url, user, 'kling', { id: 77 }), 409, 'Job 77 is already executing');

    await mustRegister(w.url, user, 'dreamina', { submitId: 's', model: 'm', jobid: 'dup:1@x', account: 'US:a@x.com' });
    assertCodeError(
      await registerJob(w.url, user, 'dreamina', { submitId: 's', model: 'm', jobid: 'dup:1@x', account: 'US:b@x.com' }),
      409,
      'Job dup:1@x is already executing',
    );
    // Still exactly one of each.
    assert.equal((await accounts(user, 'kling')).reduce((n, a) => n + a.executing, 0), 1);
    assert.equal((await accounts(user, 'dreamina')).reduce((n, a) => n + a.executing, 0), 1);
  });

  test('a completed id can be registered again', async () => {
    const { user } = await setupUser(w.url, { kling: { 'a@x.com': 5 } });
    await mustRegister(w.url, user, 'kling', { id: 5 });
    assert.equal((await completeJob(w.url, user, 'kling', 5)).status, 200);
    await mustRegister(w.url, user, 'kling', { id: 5 });
  });

  test('full account -> 429 with the exact body; a named full account is 429 even if another has room', async () => {
    const { user } = await setupUser(w.url, { kling: { 'a@x.com': 1, 'b@x.com': 1 } });
    await mustRegister(w.url, user, 'kling', { id: 1, email: 'a@x.com' });
    const named = await registerJob(w.url, user, 'kling', { id: 2, email: 'a@x.com' });
    assert.equal(named.status, 429);
    assert.deepEqual(named.json, CAPACITY_429);
    await mustRegister(w.url, user, 'kling', { id: 3 }); // goes to b
    const auto = await registerJob(w.url, user, 'kling', { id: 4 });
    assert.equal(auto.status, 429);
    assert.deepEqual(auto.json, CAPACITY_429);
  });

  test('50 concurrent Kling registrations against maxJobs 5: exactly 5 x 201 and 45 x 429', async () => {
    const { user, token } = await setupUser(w.url, { kling: { 'a@x.com': 5 } });
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) => registerJob(w.url, user, 'kling', { id: 1000 + i, email: 'a@x.com' })),
    );
    const created = results.filter((r) => r.status === 201);
    const rejected = results.filter((r) => r.status === 429);
    assert.equal(created.length, 5, `statuses: ${results.map((r) => r.status).join(',')}`);
    assert.equal(rejected.length, 45);
    for (const r of rejected) assert.deepEqual(r.json, CAPACITY_429);
    assert.deepEqual(await accounts(user, 'kling'), [{ account: 'a@x.com', maxJobs: 5, executing: 5, paused: false }]);
    const list = await kList(token);
    assert.deepEqual(list.map((j) => j.id).sort(), created.map((r) => r.json.id).sort());
  });

  test('50 concurrent Dreamina registrations without account/jobid against maxJobs 5 (auto choice)', async () => {
    const { user, token } = await setupUser(w.url, { dreamina: { 'US:a@x.com': 5 } });
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) => registerJob(w.url, user, 'dreamina', { submitId: `s${i}`, model: 'm' })),
    );
    const created = results.filter((r) => r.status === 201);
    assert.equal(created.length, 5, `statuses: ${results.map((r) => r.status).join(',')}`);
    for (const r of results.filter((x) => x.status !== 201)) {
      assert.equal(r.status, 429);
      assert.deepEqual(r.json, CAPACITY_429);
    }
    const list = await dList(token);
    assert.equal(list.total, 5);
    assert.equal(new Set(list.executing['US:a@x.com'].map((j) => j.jobid)).size, 5);
  });

  test('20 concurrent Dreamina registrations with generated jobids are all admitted with unique jobids', async () => {
    const { user, token } = await setupUser(w.url, { dreamina: { 'US:a@x.com': 50 } });
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => registerJob(w.url, user, 'dreamina', { submitId: `s${i}`, model: 'm' })),
    );
    assert.deepEqual(results.map((r) => r.status), Array(20).fill(201), results.map((r) => r.text).join('\n'));
    assert.equal(new Set(results.map((r) => r.json.jobid)).size, 20);
    assert.equal((await dList(token)).total, 20);
  });

  test('concurrent registrations spread over two accounts never exceed either maxJobs', async () => {
    const { user } = await setupUser(w.url, { kling: { 'a@x.com': 3, 'b@x.com': 4 } });
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => registerJob(w.url, user, 'kling', { id: 500 + i })),
    );
    assert.equal(results.filter((r) => r.status === 201).length, 7, results.map((r) => r.status).join(','));
    assert.deepEqual(await accounts(user, 'kling'), [
      { account: 'a@x.com', maxJobs: 3, executing: 3, paused: false },
      { account: 'b@x.com', maxJobs: 4, executing: 4, paused: false },
    ]);
  });
});

describe('accounts', () => {
  test('PUT creates and updates with 200 {"account","maxJobs"}; maxJobs 1 and 50 are the bounds', async () => {
    const { user } = await setupUser(w.url);
    for (const maxJobs of [1, 50, 7]) {
      const r = await admin(w.url, 'PUT', accountPath(user, 'kling', 'a@x.com'), { maxJobs });
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.json, { account: 'a@x.com', maxJobs });
    }
    assert.deepEqual(await accounts(user, 'kling'), [{ account: 'a@x.com', maxJobs: 7, executing: 0, paused: false }]);
  });

  test('an account name in the path may be raw or percent-encoded', async () => {
    const { user } = await setupUser(w.url);
    const r = await admin(w.url, 'PUT', `/admin/v1/users/${user}/dreamina/accounts/US:a@x.com`, { maxJobs: 2 });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, { account: 'US:a@x.com', maxJobs: 2 });
    const r2 = await admin(w.url, 'PUT', `/admin/v1/users/${user}/dreamina/accounts/US%3Aa%40x.com`, { maxJobs: 3 });
    assert.deepEqual(r2.json, { account: 'US:a@x.com', maxJobs: 3 });
    assert.deepEqual(await accounts(user, 'dreamina'), [{ account: 'US:a@x.com', maxJobs: 3, executing: 0, paused: false }]);
  });

  test('lowering maxJobs below executing keeps the jobs and gives 429 until there is room', async () => {
    const { user, token } = await setupUser(w.url, { kling: { 'a@x.com': 3 } });
    for (const id of [1, 2, 3]) await mustRegister(w.url, user, 'kling', { id });
    await putAccount(w.url, user, 'kling', 'a@x.com', 1);
    assert.equal((await kList(token)).length, 3, 'running jobs are kept');
    assert.deepEqual(await accounts(user, 'kling'), [{ account: 'a@x.com', maxJobs: 1, executing: 3, paused: false }]);

    let r = await registerJob(w.url, user, 'kling', { id: 4 });
    assert.deepEqual([r.status, r.json], [429, CAPACITY_429]);
    assert.equal((await completeJob(w.url, user, 'kling', 1)).status, 200);
    r = await registerJob(w.url, user, 'kling', { id: 4 });
    assert.equal(r.status, 429, 'executing 2 > maxJobs 1');
    assert.equal((await pub(w.url, token, 'DELETE', '/v1/kling/scheduler/2')).status, 204);
    r = await registerJob(w.url, user, 'kling', { id: 4 });
    assert.equal(r.status, 429, 'executing 1 = maxJobs 1');
    assert.equal((await completeJob(w.url, user, 'kling', 3)).status, 200);
    await mustRegister(w.url, user, 'kling', { id: 4 });
  });

  test('DELETE an account -> 204, its jobs stop being tracked; again -> 404 "Account not configured"', async () => {
    const { user, token } = await setupUser(w.url, { kling: { 'a@x.com': 3, 'b@x.com': 3 } });
    await mustRegister(w.url, user, 'kling', { id: 1, email: 'a@x.com' });
    await mustRegister(w.url, user, 'kling', { id: 2, email: 'b@x.com' });
    const r = await admin(w.url, 'DELETE', accountPath(user, 'kling', 'a@x.com'));
    assert.equal(r.status, 204, r.text);
    assert.equal(r.text, '');
    assert.deepEqual((await kList(token)).map((j) => j.id), [2]);
    assert.deepEqual(await accounts(user, 'kling'), [{ account: 'b@x.com', maxJobs: 3, executing: 1, paused: false }]);
    const avail = await pub(w.url, token, 'GET', '/v1/kling/scheduler/available');
    assert.deepEqual(avail.json.available.map((a) => a.email), ['b@x.com']);

    assertCodeError(await admin(w.url, 'DELETE', accountPath(user, 'kling', 'a@x.com')), 404, 'Account not configured');
    assertCodeError(await admin(w.url, 'DELETE', accountPath(user, 'kling', 'never@x.com')), 404, 'Account not configured');
    // Registering on it now: not configured.
    assertCodeError(await registerJob(w.url, user, 'kling', { id: 3, email: 'a@x.com' }), 404, 'Account not configured');
    // Re-adding it does not bring the old jobs back, and id 1 is free again.
    await putAccount(w.url, user, 'kling', 'a@x.com', 3);
    assert.deepEqual((await kList(token)).map((j) => j.id), [2]);
    await mustRegister(w.url, user, 'kling', { id: 1, email: 'a@x.com' });
  });

  test('DELETE the last account: the user is back to "No accounts configured"', async () => {
    const { user, token } = await setupUser(w.url, { dreamina: { 'US:a@x.com': 3 } });
    await mustRegister(w.url, user, 'dreamina', { submitId: 's', model: 'm' });
    assert.equal((await admin(w.url, 'DELETE', accountPath(user, 'dreamina', 'US:a@x.com'))).status, 204);
    assert.deepEqual(await dList(token), { executing: {}, total: 0 });
    assertCodeError(await registerJob(w.url, user, 'dreamina', { submitId: 's', model: 'm' }), 404, 'No accounts configured');
  });
});

describe('completion', () => {
  test('Kling: 200 {"account","status","id"} (no webhookId without replyUrl), job leaves, second -> 404', async () => {
    const { user, token } = await setupUser(w.url, { kling: { 'a@x.com': 3 } });
    await mustRegister(w.url, user, 'kling', { id: 31 });
    await mustRegister(w.url, user, 'kling', { id: 32 });
    const r = await completeJob(w.url, user, 'kling', 31, { status: 'completed', result: { url: 'https://x/y.mp4' } });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, { account: 'a@x.com', status: 'completed', id: 31 });
    assert.deepEqual((await kList(token)).map((j) => j.id), [32]);
    assertCodeError(await completeJob(w.url, user, 'kling', 31), 404, 'Unable to locate running job 31');
    assertCodeError(await completeJob(w.url, user, 'kling', 999), 404, 'Unable to locate running job 999');
  });

  test('Kling failed with a replyUrl: 200 with a webhookId', async () => {
    const { user, token } = await setupUser(w.url, { kling: { 'a@x.com': 3 } });
    await mustRegister(w.url, user, 'kling', { id: 33, replyUrl: `${hook.url}/kling`, replyRef: 'r' });
    const r = await completeJob(w.url, user, 'kling', 33, { status: 'failed', result: { reason: 'x' } });
    assert.equal(r.status, 200, r.text);
    assertKeys(r.json, ['account', 'status', 'id', 'webhookId']);
    assert.equal(r.json.status, 'failed');
    assert.equal(r.json.id, 33);
    assert.equal(typeof r.json.webhookId, 'string');
    assert.ok(r.json.webhookId.length > 0);
    assert.deepEqual(await kList(token), []);
  });

  test('Dreamina: jobid with ":" and "@" percent-encoded -> 200 {"account","status","jobid"}', async () => {
    const { user, token } = await setupUser(w.url, { dreamina: { 'US:a@x.com': 3 } });
    const job = await mustRegister(w.url, user, 'dreamina', { submitId: 's', model: 'm' });
    assert.ok(job.jobid.includes(':') && job.jobid.includes('@'));
    const path = `/admin/v1/users/${user}/dreamina/jobs/${encodeURIComponent(job.jobid)}/complete`;
    assert.ok(path.includes('%3A') && path.includes('%40'));
    const r = await admin(w.url, 'POST', path, { status: 'completed' });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, { account: 'US:a@x.com', status: 'completed', jobid: job.jobid });
    assert.deepEqual(await dList(token), { executing: {}, total: 0 });
    assertCodeError(await admin(w.url, 'POST', path, { status: 'completed' }), 404, `Unable to locate running job ${job.jobid}`);
  });

  test('result larger than 256 KiB -> 413 and the job keeps executing; a smaller one then works', async () => {
    const { user, token } = await setupUser(w.url, { kling: { 'a@x.com': 3 } });
    await mustRegister(w.url, user, 'kling', { id: 41 });
    const big = { data: 'x'.repeat(256 * 1024 + 10) };
    const r = await completeJob(w.url, user, 'kling', 41, { status: 'completed', result: big });
    assertCodeError(r, 413);
    assert.deepEqual((await kList(token)).map((j) => j.id), [41]);
    const ok = await completeJob(w.url, user, 'kling', 41, { status: 'completed', result: { data: 'x'.repeat(200 * 1024) } });
    assert.equal(ok.status, 200, ok.text);
    assert.deepEqual(await kList(token), []);
  });

  test('result may be any JSON (string, number, array, null)', async () => {
    const { user } = await setupUser(w.url, { kling: { 'a@x.com': 5 } });
    const values = ['text', 42, [1, 2], null, { nested: { a: [true] } }];
    for (const [i, result] of values.entries()) {
      await mustRegister(w.url, user, 'kling', { id: 60 + i });
      const r = await completeJob(w.url, user, 'kling', 60 + i, { status: 'completed', result });
      assert.equal(r.status, 200, `${JSON.stringify(result)}: ${r.text}`);
    }
  });

  for (const [name, body] of [
    ['status missing', {}],
    ['status unknown', { status: 'done' }],
    ['status a number', { status: 1 }],
    ['not JSON', '{'],
    ['not an object', '"completed"'],
  ]) {
    test(`complete: ${name} -> 400 and the job keeps executing`, async () => {
      const { user, token } = await setupUser(w.url, { kling: { 'a@x.com': 3 } });
      await mustRegister(w.url, user, 'kling', { id: 51 });
      assertCodeError(await completeJob(w.url, user, 'kling', 51, body), 400);
      assert.equal((await kList(token)).length, 1);
    });
  }

  test('another user cannot complete the job (404) and it keeps executing', async () => {
    const a = await setupUser(w.url, { kling: { 'a@x.com': 3 } });
    const b = await setupUser(w.url, { kling: { 'a@x.com': 3 } });
    await mustRegister(w.url, a.user, 'kling', { id: 71 });
    assertCodeError(await completeJob(w.url, b.user, 'kling', 71), 404);
    assert.equal((await kList(a.token)).length, 1);
  });
});

describe('operator webhook list (shape only; delivery is tested elsewhere)', () => {
  test('GET .../webhooks: [] for a user without deliveries, for every status filter', async () => {
    const { user } = await setupUser(w.url, { kling: { 'a@x.com': 1 } });
    for (const q of ['', '?status=failed', '?status=pending']) {
      const r = await admin(w.url, 'GET', `/admin/v1/users/${user}/kling/webhooks${q}`);
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.json, []);
    }
  });

  test('GET .../webhooks?status=other -> 400; unknown provider -> 404', async () => {
    const { user } = await setupUser(w.url);
    assertCodeError(await admin(w.url, 'GET', `/admin/v1/users/${user}/dreamina/webhooks?status=done`), 400);
    assertCodeError(await admin(w.url, 'GET', `/admin/v1/users/${user}/runway/webhooks`), 404);
  });
});

describe('public DELETE', () => {
  test('Kling: 204 with an empty body, then gone; again -> 404 exact', async () => {
    const { user, token } = await setupUser(w.url, { kling: { 'a@x.com': 3 } });
    await mustRegister(w.url, user, 'kling', { id: 81, replyUrl: `${hook.url}/never` });
    await mustRegister(w.url, user, 'kling', { id: 82 });
    const r = await pub(w.url, token, 'DELETE', '/v1/kling/scheduler/81');
    assert.equal(r.status, 204);
    assert.equal(r.text, '');
    assertCors(r);
    assert.deepEqual((await kList(token)).map((j) => j.id), [82]);
    const again = await pub(w.url, token, 'DELETE', '/v1/kling/scheduler/81');
    assert.equal(again.status, 404);
    assert.deepEqual(again.json, { error: 'Unable to locate running task_id 81', code: 404 });
    assertCors(again);
    // It left the account too: the slot is free, and completing it is a 404.
    assert.deepEqual(await accounts(user, 'kling'), [{ account: 'a@x.com', maxJobs: 3, executing: 1, paused: false }]);
    assertCodeError(await completeJob(w.url, user, 'kling', 81), 404);
  });

  test('Kling: unknown task_id -> 404 {"error":"Unable to locate running task_id <id>","code":404}', async () => {
    const { token } = await setupUser(w.url, { kling: { 'a@x.com': 3 } });
    const r = await pub(w.url, token, 'DELETE', '/v1/kling/scheduler/123456789');
    assert.equal(r.status, 404);
    assert.deepEqual(r.json, { error: 'Unable to locate running task_id 123456789', code: 404 });
  });

  for (const bad of ['abc', '0', '-1', '1.5', '1e3', '12abc']) {
    test(`Kling: task_id "${bad}" -> 400 "task_id must be a positive integer"`, async () => {
      const { token } = await setupUser(w.url, { kling: { 'a@x.com': 3 } });
      const r = await pub(w.url, token, 'DELETE', `/v1/kling/scheduler/${bad}`);
      assert.equal(r.status, 400, r.text);
      assert.deepEqual(r.json, { error: 'task_id must be a positive integer', code: 400 });
      assertCors(r);
    });
  }

  test('Kling: a task_id beyond 2^53-1 is a 400 or 404, never 5xx', async () => {
    const { token } = await setupUser(w.url, { kling: { 'a@x.com': 3 } });
    const r = await pub(w.url, token, 'DELETE', '/v1/kling/scheduler/99999999999999999999');
    assert.ok([400, 404].includes(r.status), r.text);
    assert.equal(r.json.code, r.status);
  });

  test('Dreamina: percent-encoded jobid -> 204, then gone; again -> 404 exact', async () => {
    const { user, token } = await setupUser(w.url, { dreamina: { 'US:a@x.com': 3 } });
    const job = await mustRegister(w.url, user, 'dreamina', { submitId: 's', model: 'm' });
    const keep = await mustRegister(w.url, user, 'dreamina', { submitId: 's2', model: 'm' });
    const r = await pub(w.url, token, 'DELETE', `/v1/dreamina/scheduler/${encodeURIComponent(job.jobid)}`);
    assert.equal(r.status, 204, r.text);
    assert.equal(r.text, '');
    assertCors(r);
    const list = await dList(token);
    assert.deepEqual(list.executing['US:a@x.com'].map((j) => j.jobid), [keep.jobid]);
    assert.equal(list.total, 1);
    const again = await pub(w.url, token, 'DELETE', `/v1/dreamina/scheduler/${encodeURIComponent(job.jobid)}`);
    assertPlainError(again, 404, `Unable to locate running jobid ${job.jobid}`);
  });

  test('Dreamina: unknown jobid -> 404 {"error":"Unable to locate running jobid <jobid>"}', async () => {
    const { token } = await setupUser(w.url, { dreamina: { 'US:a@x.com': 3 } });
    const r = await pub(w.url, token, 'DELETE', '/v1/dreamina/scheduler/nope-123');
    assert.equal(r.status, 404);
    assert.deepEqual(r.json, { error: 'Unable to locate running jobid nope-123' });
    assertCors(r);
  });
});

describe('users are isolated', () => {
  test('two users with the same Kling email never see each other; B cannot DELETE A\'s job', async () => {
    const a = await setupUser(w.url, { kling: { 'same@x.com': 5 } }, 'a');
    const b = await setupUser(w.url, { kling: { 'same@x.com': 5 } }, 'b');
    await mustRegister(w.url, a.user, 'kling', { id: 901 });
    await mustRegister(w.url, a.user, 'kling', { id: 777 });
    await mustRegister(w.url, b.user, 'kling', { id: 777 }); // the same id is fine for another user
    assert.deepEqual((await kList(a.token)).map((j) => j.id).sort(), [777, 901]);
    assert.deepEqual((await kList(b.token)).map((j) => j.id), [777]);
    assert.deepEqual(await accounts(a.user, 'kling'), [{ account: 'same@x.com', maxJobs: 5, executing: 2, paused: false }]);
    assert.deepEqual(await accounts(b.user, 'kling'), [{ account: 'same@x.com', maxJobs: 5, executing: 1, paused: false }]);

    const del = await pub(w.url, b.token, 'DELETE', '/v1/kling/scheduler/901');
    assert.equal(del.status, 404);
    assert.deepEqual(del.json, { error: 'Unable to locate running task_id 901', code: 404 });
    assert.deepEqual((await kList(a.token)).map((j) => j.id).sort(), [777, 901]);

    // B deleting its own 777 leaves A's 777 alone.
    assert.equal((await pub(w.url, b.token, 'DELETE', '/v1/kling/scheduler/777')).status, 204);
    assert.deepEqual((await kList(a.token)).map((j) => j.id).sort(), [777, 901]);
    assert.deepEqual(await kList(b.token), []);
  });

  test('two users with the same Dreamina account never see each other; B cannot DELETE A\'s jobid', async () => {
    const a = await setupUser(w.url, { dreamina: { 'US:same@x.com': 5 } }, 'a');
    const b = await setupUser(w.url, { dreamina: { 'US:same@x.com': 5 } }, 'b');
    const ja = await mustRegister(w.url, a.user, 'dreamina', { submitId: 's', model: 'm', jobid: 'shared-id' });
    const del = await pub(w.url, b.token, 'DELETE', `/v1/dreamina/scheduler/${encodeURIComponent(ja.jobid)}`);
    assertPlainError(del, 404, 'Unable to locate running jobid shared-id');
    assert.deepEqual(await dList(b.token), { executing: {}, total: 0 });
    assert.equal((await dList(a.token)).total, 1);
    // The same explicit jobid for user B is not a conflict.
    await mustRegister(w.url, b.user, 'dreamina', { submitId: 's', model: 'm', jobid: 'shared-id' });
    assert.equal((await dList(a.token)).total, 1);
    assert.equal((await dList(b.token)).total, 1);
  });

  test('full capacity of one user does not affect another user with the same account', async () => {
    const a = await setupUser(w.url, { kling: { 'same@x.com': 1 } }, 'a');
    const b = await setupUser(w.url, { kling: { 'same@x.com': 1 } }, 'b');
    await mustRegister(w.url, a.user, 'kling', { id: 1 });
    await mustRegister(w.url, b.user, 'kling', { id: 2 });
  });
});

describe('registration validation', () => {
  const long2048 = 'https://example.com/' + 'a'.repeat(2048 - 'https://example.com/'.length);
  assert.equal(long2048.length, 2048);

  const klingBad = [
    ['id missing', {}],
    ['id a string', { id: '5' }],
    ['id 0', { id: 0 }],
    ['id negative', { id: -1 }],
    ['id fractional', { id: 1.5 }],
    ['id above 2^53-1', { id: 9007199254740992 }],
    ['id null', { id: null }],
    ['email not an email', { id: 1, email: 'nope' }],
    ['email a number', { id: 1, email: 5 }],
    ['replyUrl relative', { id: 1, replyUrl: '/hook' }],
    ['replyUrl without scheme', { id: 1, replyUrl: 'example.com/hook' }],
    ['replyUrl ftp:', { id: 1, replyUrl: 'ftp://example.com/hook' }],
    ['replyUrl javascript:', { id: 1, replyUrl: 'javascript:alert(1)' }],
    ['replyUrl with user:password', { id: 1, replyUrl: 'https://u:p@example.com/hook' }],
    ['replyUrl with a user only', { id: 1, replyUrl: 'https://u@example.com/hook' }],
    ['replyUrl over 2048 chars', { id: 1, replyUrl: long2048 + 'a' }],
    ['replyUrl a number', { id: 1, replyUrl: 5 }],
    ['replyRef over 1024 chars', { id: 1, replyRef: 'r'.repeat(1025) }],
    ['replyRef a number', { id: 1, replyRef: 5 }],
    ['started not a date', { id: 1, started: 'yesterday' }],
    ['started a number', { id: 1, started: 1700000000000 }],
    ['started more than 5 minutes in the future', { id: 1, started: isoAgo(-6 * 60) }],
    ['started far in the future', { id: 1, started: '2999-01-01T00:00:00.000Z' }],
  ];
  for (const [name, body] of klingBad) {
    test(`Kling: ${name} -> 400`, async () => {
      const { user, token } = await setupUser(w.url, { kling: { 'a@x.com': 5 } });
      const r = await registerJob(w.url, user, 'kling', body);
      assertCodeError(r, 400);
      assert.deepEqual(await kList(token), [], 'nothing was registered');
    });
  }

  const dreaminaBad = [
    ['submitId missing', { model: 'm' }],
    ['model missing', { submitId: 's' }],
    ['submitId empty', { submitId: '', model: 'm' }],
    ['model empty', { submitId: 's', model: '' }],
    ['submitId a number', { submitId: 5, model: 'm' }],
    ['model over 256 chars', { submitId: 's', model: 'm'.repeat(257) }],
    ['account without region', { submitId: 's', model: 'm', account: 'a@x.com' }],
    ['account with a lower-case region', { submitId: 's', model: 'm', account: 'us:a@x.com' }],
    ['account with a 3-letter region', { submitId: 's', model: 'm', account: 'USA:a@x.com' }],
    ['jobid with a slash', { submitId: 's', model: 'm', jobid: 'a/b' }],
    ['jobid empty', { submitId: 's', model: 'm', jobid: '' }],
    ['jobid over 512 chars', { submitId: 's', model: 'm', jobid: 'j'.repeat(513) }],
    ['jobid with a space', { submitId: 's', model: 'm', jobid: 'a b' }],
    ['replyUrl ftp:', { submitId: 's', model: 'm', replyUrl: 'ftp://example.com/' }],
    ['replyUrl with user info', { submitId: 's', model: 'm', replyUrl: 'http://user:pw@example.com/' }],
    ['replyUrl over 2048 chars', { submitId: 's', model: 'm', replyUrl: long2048 + 'a' }],
    ['started more than 5 minutes in the future', { submitId: 's', model: 'm', started: isoAgo(-6 * 60) }],
  ];
  for (const [name, body] of dreaminaBad) {
    test(`Dreamina: ${name} -> 400`, async () => {
      const { user, token } = await setupUser(w.url, { dreamina: { 'US:a@x.com': 5 } });
      const r = await registerJob(w.url, user, 'dreamina', body);
      assertCodeError(r, 400);
      assert.deepEqual(await dList(token), { executing: {}, total: 0 }, 'nothing was registered');
    });
  }

  test('replyUrl of exactly 2048 chars, http: and https: are accepted', async () => {
    const { user, token } = await setupUser(w.url, { kling: { 'a@x.com': 5 } });
    await mustRegister(w.url, user, 'kling', { id: 1, replyUrl: long2048 });
    await mustRegister(w.url, user, 'kling', { id: 2, replyUrl: 'http://127.0.0.1:9/hook?x=1' });
    await mustRegister(w.url, user, 'kling', { id: 3, replyUrl: 'https://example.com' });
    const list = await kList(token);
    assert.equal(list.find((j) => j.id === 1).replyUrl.length, 2048);
  });

  test('started 4 minutes in the future is accepted; replyRef of 1024 chars is accepted', async () => {
    const { user } = await setupUser(w.url, { kling: { 'a@x.com': 5 } });
    const j = await mustRegister(w.url, user, 'kling', { id: 1, started: isoAgo(-4 * 60), replyRef: 'r'.repeat(1024) });
    assert.equal(j.elapsed, '00:00');
    assert.equal(j.replyRef.length, 1024);
  });

  for (const [name, body] of [
    ['not JSON', '{"id": 1'],
    ['a JSON array', '[1]'],
    ['JSON null', 'null'],
    ['a JSON string', '"x"'],
    ['an empty body', ''],
  ]) {
    test(`register: body ${name} -> 400`, async () => {
      const { user } = await setupUser(w.url, { kling: { 'a@x.com': 5 } });
      assertCodeError(await registerJob(w.url, user, 'kling', body), 400);
    });
  }

  for (const [name, body] of [
    ['"5" (a string)', { maxJobs: '5' }],
    ['0', { maxJobs: 0 }],
    ['51', { maxJobs: 51 }],
    ['5.5', { maxJobs: 5.5 }],
    ['-1', { maxJobs: -1 }],
    ['null', { maxJobs: null }],
    ['missing', {}],
    ['not an object', '[5]'],
    ['not JSON', '{maxJobs: 5}'],
  ]) {
    test(`PUT account: maxJobs ${name} -> 400 and nothing is configured`, async () => {
      const { user } = await setupUser(w.url);
      assertCodeError(await admin(w.url, 'PUT', accountPath(user, 'kling', 'a@x.com'), body), 400);
      assert.deepEqual(await accounts(user, 'kling'), []);
    });
  }

  for (const [provider, account] of [
    ['kling', 'not-an-email'],
    ['kling', 'a@'],
    ['dreamina', 'a@x.com'],
    ['dreamina', 'us:a@x.com'],
    ['dreamina', 'USA:a@x.com'],
    ['dreamina', 'US:not-an-email'],
  ]) {
    test(`PUT account: bad ${provider} account "${account}" -> 400`, async () => {
      const { user } = await setupUser(w.url);
      assertCodeError(await admin(w.url, 'PUT', accountPath(user, provider, account), { maxJobs: 1 }), 400);
      assert.deepEqual(await accounts(user, provider), []);
    });
  }

  for (const user of ['bad%20user', 'a'.repeat(65), 'a.b', 'x%2Fy']) {
    test(`bad user "${user}" in the path -> 400`, async () => {
      assertCodeError(await admin(w.url, 'PUT', `/admin/v1/users/${user}/kling/accounts/a%40x.com`, { maxJobs: 1 }), 400);
      assertCodeError(await admin(w.url, 'GET', `/admin/v1/users/${user}/kling/accounts`), 400);
      assertCodeError(await admin(w.url, 'POST', `/admin/v1/users/${user}/kling/jobs`, { id: 1 }), 400);
    });
  }

  test('unknown provider -> 404 on every operator route', async () => {
    const { user } = await setupUser(w.url);
    assertCodeError(await admin(w.url, 'PUT', `/admin/v1/users/${user}/runway/accounts/a%40x.com`, { maxJobs: 1 }), 404);
    assertCodeError(await admin(w.url, 'GET', `/admin/v1/users/${user}/runway/accounts`), 404);
    assertCodeError(await admin(w.url, 'POST', `/admin/v1/users/${user}/runway/jobs`, { id: 1 }), 404);
    assertCodeError(await admin(w.url, 'POST', `/admin/v1/users/${user}/KLING/jobs`, { id: 1 }), 404);
  });

  test('body over 1 MiB (Content-Length) -> 413', async () => {
    const { user } = await setupUser(w.url, { kling: { 'a@x.com': 5 } });
    const body = JSON.stringify({ id: 1, replyRef: 'x'.repeat(1024 * 1024 + 1) });
    assertCodeError(await registerJob(w.url, user, 'kling', body), 413);
    const put = await admin(w.url, 'PUT', accountPath(user, 'kling', 'b@x.com'), JSON.stringify({ maxJobs: 1, pad: 'x'.repeat(1100 * 1024) }));
    assertCodeError(put, 413);
  });

  test('body over 1 MiB without Content-Length (chunked) -> 413', async () => {
    const { user } = await setupUser(w.url, { kling: { 'a@x.com': 5 } });
    const chunk = new TextEncoder().encode('x'.repeat(64 * 1024));
    let sent = 0;
    const stream = new ReadableStream({
      start(c) {
        c.enqueue(new TextEncoder().encode('{"id":1,"replyRef":"'));
      },
      pull(c) {
        if (sent >= 20) {
          c.enqueue(new TextEncoder().encode('"}'));
          c.close();
          return;
        }
        sent++;
        c.enqueue(chunk);
      },
    });
    const res = await fetch(`${w.url}/admin/v1/users/${user}/kling/jobs`, {
      method: 'POST',
      headers: { authorization: 'Bearer test-admin-token', 'content-type': 'application/json' },
      body: stream,
      duplex: 'half',
    });
    const text = await res.text();
    assert.ok(res.status < 500, `${res.status} ${text}`);
    assert.equal(res.status, 413, text);
    assert.deepEqual(await accounts(user, 'kling'), [{ account: 'a@x.com', maxJobs: 5, executing: 0, paused: false }]);
  });

  test('complete: body just under 1 MiB but result over 256 KiB is 413 (not 400)', async () => {
    const { user } = await setupUser(w.url, { kling: { 'a@x.com': 5 } });
    await mustRegister(w.url, user, 'kling', { id: 1 });
    const r = await completeJob(w.url, user, 'kling', 1, { status: 'completed', result: ['y'.repeat(900 * 1024)] });
    assertCodeError(r, 413);
  });

  test('complete: bad Kling id in the path -> 400 or 404, never 5xx', async () => {
    const { user } = await setupUser(w.url, { kling: { 'a@x.com': 5 } });
    const r = await admin(w.url, 'POST', `/admin/v1/users/${user}/kling/jobs/abc/complete`, { status: 'completed' });
    assert.ok([400, 404].includes(r.status), r.text);
    assertKeys(r.json, ['error', 'code']);
  });
});
