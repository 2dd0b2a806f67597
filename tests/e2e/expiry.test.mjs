// Job expiry (API.md "Lifecycle"): a job still executing after JOB_TIMEOUT_SECONDS is
// expired by its account object's alarm: it leaves the list and frees its slot. Run with
// a 3-second timeout. (The webhook an expiry sends is covered by the webhook tests.)
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { assertCodeError } from '../support/assertions.mjs';
import { admin, pub } from '../support/client.mjs';
import { completeJob, mustRegister, registerJob, setupUser } from '../support/fixtures.mjs';
import { sleep, startWorker } from '../support/server.mjs';

let w;
before(async () => {
  w = await startWorker({ vars: { JOB_TIMEOUT_SECONDS: '3' } });
});
after(async () => {
  await w?.stop();
});

async function waitUntil(what, fn, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await fn()) return;
    if (Date.now() > deadline) assert.fail(`timed out waiting for: ${what}`);
    await sleep(250);
  }
}

test('an executing job expires after JOB_TIMEOUT_SECONDS: it leaves the list and frees its slot', async () => {
  const { user, token } = await setupUser(w.url, { kling: { 'a@x.com': 1 }, dreamina: { 'US:a@x.com': 1 } });
  const t0 = Date.now();
  await mustRegister(w.url, user, 'kling', { id: 1 });
  const d = await mustRegister(w.url, user, 'dreamina', { submitId: 's', model: 'm' });
  assert.equal((await registerJob(w.url, user, 'kling', { id: 2 })).status, 429);

  await waitUntil('the Kling job to expire', async () => (await pub(w.url, token, 'GET', '/v1/kling/scheduler')).json.length === 0);
  await waitUntil('the Dreamina job to expire', async () => (await pub(w.url, token, 'GET', '/v1/dreamina/scheduler')).json.total === 0);
  assert.ok(Date.now() - t0 >= 2500, 'not expired before the timeout');

  const accounts = await admin(w.url, 'GET', `/admin/v1/users/${user}/kling/accounts`);
  assert.deepEqual(accounts.json, [{ account: 'a@x.com', maxJobs: 1, executing: 0, paused: false }]);
  assertCodeError(await completeJob(w.url, user, 'kling', 1), 404);
  assertCodeError(await completeJob(w.url, user, 'dreamina', d.jobid), 404);
  await mustRegister(w.url, user, 'kling', { id: 2 });
});

test('a job back-dated past the timeout is expired too (never listed for long)', async () => {
  const { user, token } = await setupUser(w.url, { kling: { 'a@x.com': 2 } });
  const started = new Date(Date.now() - 60_000).toISOString();
  const r = await registerJob(w.url, user, 'kling', { id: 9, started });
  assert.ok([201, 400].includes(r.status), r.text);
  await waitUntil('the back-dated job to leave the list', async () => (await pub(w.url, token, 'GET', '/v1/kling/scheduler')).json.length === 0, 10_000);
});
