// Durability: tokens (and revocations), accounts and executing jobs survive a restart of
// the local server on the same --persist-to directory.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { admin, pub } from '../support/client.mjs';
import {
  completeJob,
  isoAgo,
  issueToken,
  mustRegister,
  registerJob,
  setupUser,
} from '../support/fixtures.mjs';
import { startWorker } from '../support/server.mjs';

const workers = [];
after(async () => {
  await Promise.all(workers.map((w) => w.stop()));
});

test('tokens, accounts and jobs survive a restart on the same persist dir', async () => {
  const w1 = await startWorker();
  workers.push(w1);
  const { user, token } = await setupUser(w1.url, { kling: { 'a@x.com': 2, 'b@x.com': 3 }, dreamina: { 'US:a@x.com': 2 } });
  const revoked = await issueToken(w1.url, user);
  assert.equal((await admin(w1.url, 'POST', '/admin/v1/tokens/revoke', { token: revoked })).status, 204);

  const k1 = await mustRegister(w1.url, user, 'kling', { id: 1, email: 'a@x.com', started: isoAgo(120), replyUrl: 'http://127.0.0.1:9/h', replyRef: 'r1' });
  const k2 = await mustRegister(w1.url, user, 'kling', { id: 2, email: 'a@x.com' });
  const d1 = await mustRegister(w1.url, user, 'dreamina', { submitId: 's', model: 'seedance-2.0', started: isoAgo(60) });

  const kBefore = (await pub(w1.url, token, 'GET', '/v1/kling/scheduler')).json;
  const dBefore = (await pub(w1.url, token, 'GET', '/v1/dreamina/scheduler')).json;
  const accBefore = (await admin(w1.url, 'GET', `/admin/v1/users/${user}/kling/accounts`)).json;
  assert.equal(kBefore.length, 2);
  assert.equal(dBefore.total, 1);

  await w1.stop();
  const w2 = await startWorker({ persistDir: w1.persistDir });
  workers.push(w2);
  assert.notEqual(w2.url, w1.url);

  // The token still works; the revoked one is still revoked.
  const kAfter = await pub(w2.url, token, 'GET', '/v1/kling/scheduler');
  assert.equal(kAfter.status, 200, kAfter.text);
  assert.equal((await pub(w2.url, revoked, 'GET', '/v1/kling/scheduler')).status, 401);

  // Same jobs, same started, same optional fields; elapsed only grew.
  const strip = (j) => {
    const { elapsed, elapsedSeconds, ...rest } = j;
    return rest;
  };
  assert.deepEqual(kAfter.json.map(strip), kBefore.map(strip));
  assert.deepEqual(kAfter.json.map((j) => j.id), [k1.id, k2.id]);
  assert.equal(kAfter.json[0].replyRef, 'r1');
  const dAfter = (await pub(w2.url, token, 'GET', '/v1/dreamina/scheduler')).json;
  assert.equal(dAfter.total, 1);
  assert.equal(dAfter.executing['US:a@x.com'][0].jobid, d1.jobid);
  assert.ok(dAfter.executing['US:a@x.com'][0].elapsedSeconds >= dBefore.executing['US:a@x.com'][0].elapsedSeconds);

  // Accounts and capacity survive: a@x.com is full (2 of 2).
  assert.deepEqual((await admin(w2.url, 'GET', `/admin/v1/users/${user}/kling/accounts`)).json, accBefore);
  const full = await registerJob(w2.url, user, 'kling', { id: 3, email: 'a@x.com' });
  assert.equal(full.status, 429);
  const dup = await registerJob(w2.url, user, 'kling', { id: 1, email: 'b@x.com' });
  assert.equal(dup.status, 409, 'the id is still executing after the restart');

  // And they can still be completed / deleted after the restart.
  assert.equal((await completeJob(w2.url, user, 'kling', 2)).status, 200);
  assert.equal((await pub(w2.url, token, 'DELETE', `/v1/dreamina/scheduler/${encodeURIComponent(d1.jobid)}`)).status, 204);
  assert.deepEqual((await pub(w2.url, token, 'GET', '/v1/kling/scheduler')).json.map((j) => j.id), [1]);
});
