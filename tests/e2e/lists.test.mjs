// Public list routes against the seeds' shapes (shared/seeds/*.txt) and API.md:
// field by field, key sets, types, formats, ordering, elapsed, the available routes and
// the operator's account list.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ELAPSED_RE,
  STARTED_RE,
  assertCors,
  assertDreaminaItem,
  assertKlingItem,
  escapeRe,
  fmtElapsed,
} from '../support/assertions.mjs';
import { admin, pub } from '../support/client.mjs';
import { isoAgo, mustRegister, putAccount, setupUser } from '../support/fixtures.mjs';
import { startWorker } from '../support/server.mjs';

let w;
before(async () => {
  w = await startWorker();
});
after(async () => {
  await w?.stop();
});

const HOOK = 'https://your-domain.com/webhook';

describe('Dreamina list (seed: dreamina-scheduler.txt)', () => {
  test('idle user: exactly {"executing":{},"total":0}, key order as the seed', async () => {
    const { token } = await setupUser(w.url);
    const r = await pub(w.url, token, 'GET', '/v1/dreamina/scheduler');
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, { executing: {}, total: 0 });
    assert.deepEqual(Object.keys(r.json), ['executing', 'total']);
    assert.match(r.headers.get('content-type') || '', /^application\/json/);
    assertCors(r);
  });

  test('configured accounts without jobs are still idle: {"executing":{},"total":0}', async () => {
    const { token } = await setupUser(w.url, { dreamina: { 'US:a@x.com': 3, 'JP:b@x.com': 1 } });
    const r = await pub(w.url, token, 'GET', '/v1/dreamina/scheduler');
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, { executing: {}, total: 0 });
  });

  test('jobs grouped by account: keys ascending, empty accounts left out, field by field', async () => {
    const accts = { 'US:b@x.com': 5, 'US:a@x.com': 5, 'JP:z@x.com': 5, 'GB:c@x.com': 5 };
    const { user, token } = await setupUser(w.url, { dreamina: accts });
    // GB:c@x.com stays empty.
    const j1 = await mustRegister(w.url, user, 'dreamina', {
      submitId: 'a1b2c3d4-e5f6-7890-abcd-ef1234567890',
      model: 'seedance-2.0',
      account: 'US:b@x.com',
      replyUrl: HOOK,
      replyRef: 'ref-1',
      started: isoAgo(45),
    });
    const j2 = await mustRegister(w.url, user, 'dreamina', {
      submitId: 'sub-2',
      model: 'seedance-1.0',
      account: 'US:a@x.com',
    });
    const j3 = await mustRegister(w.url, user, 'dreamina', {
      submitId: 'sub-3',
      model: 'm',
      account: 'JP:z@x.com',
      jobid: 'my-own-jobid-3',
    });

    const r = await pub(w.url, token, 'GET', '/v1/dreamina/scheduler');
    assert.equal(r.status, 200);
    assertCors(r);
    assert.deepEqual(Object.keys(r.json), ['executing', 'total']);
    assert.equal(r.json.total, 3);
    assert.deepEqual(Object.keys(r.json.executing), ['JP:z@x.com', 'US:a@x.com', 'US:b@x.com']);
    for (const [acct, jobs] of Object.entries(r.json.executing)) {
      assert.ok(Array.isArray(jobs), `${acct} must be an array`);
      assert.equal(jobs.length, 1);
      for (const j of jobs) assertDreaminaItem(j);
    }

    const b = r.json.executing['US:b@x.com'][0];
    assert.deepEqual(Object.keys(b), ['jobid', 'submitId', 'model', 'elapsedSeconds', 'replyUrl']);
    assert.equal(b.jobid, j1.jobid);
    assert.equal(b.submitId, 'a1b2c3d4-e5f6-7890-abcd-ef1234567890');
    assert.equal(b.model, 'seedance-2.0');
    assert.equal(b.replyUrl, HOOK);
    assert.ok(b.elapsedSeconds >= 45 && b.elapsedSeconds <= 50, `elapsedSeconds ${b.elapsedSeconds}`);
    assert.ok(!('replyRef' in b), 'replyRef is not part of the Dreamina public item');

    const a = r.json.executing['US:a@x.com'][0];
    assert.deepEqual(Object.keys(a), ['jobid', 'submitId', 'model', 'elapsedSeconds'], 'no replyUrl key when unset');
    assert.equal(a.jobid, j2.jobid);
    assert.ok(a.elapsedSeconds >= 0 && a.elapsedSeconds <= 5);

    assert.equal(r.json.executing['JP:z@x.com'][0].jobid, 'my-own-jobid-3');
    assert.equal(j3.jobid, 'my-own-jobid-3');
  });

  test('generated jobid follows the seed: j<MMDDHHmmss><digits>v-u<user>-<account>:dreamina', async () => {
    const account = 'US:someone.else+tag@example.com';
    const { user } = await setupUser(w.url, { dreamina: { [account]: 5 } });
    const ids = new Set();
    for (let i = 0; i < 3; i++) {
      const job = await mustRegister(w.url, user, 'dreamina', { submitId: `s${i}`, model: 'seedance-2.0' });
      assert.match(job.jobid, new RegExp(`^j\\d{10}\\d+v-u${escapeRe(user)}-${escapeRe(account)}:dreamina$`));
      assert.equal(job.account, account);
      ids.add(job.jobid);
    }
    assert.equal(ids.size, 3, 'generated jobids are unique');
  });

  test('back-dated started 3725 s ago gives elapsedSeconds 3725 (or 3726)', async () => {
    const { user, token } = await setupUser(w.url, { dreamina: { 'US:a@x.com': 5 } });
    const startedMs = Date.now() - 3725_000;
    const job = await mustRegister(w.url, user, 'dreamina', {
      submitId: 's',
      model: 'm',
      started: new Date(startedMs).toISOString(),
    });
    const t0 = Date.now();
    const r = await pub(w.url, token, 'GET', '/v1/dreamina/scheduler');
    const t1 = Date.now();
    const lo = Math.max(3725, Math.floor((t0 - startedMs) / 1000) - 0);
    const hi = Math.max(3726, Math.floor((t1 - startedMs) / 1000));
    const got = r.json.executing['US:a@x.com'][0].elapsedSeconds;
    assert.ok(got >= lo && got <= hi, `elapsedSeconds ${got} not in [${lo}, ${hi}]`);
    assert.ok(job.elapsedSeconds >= 3725 && job.elapsedSeconds <= hi, `201 elapsedSeconds ${job.elapsedSeconds}`);
  });

  test('oldest job first within an account; ties keep registration order', async () => {
    const { user, token } = await setupUser(w.url, { dreamina: { 'US:a@x.com': 10 } });
    const now = Date.now();
    const same = isoAgo(150, now);
    await mustRegister(w.url, user, 'dreamina', { submitId: 's', model: 'm', jobid: 'new', started: isoAgo(10, now) });
    await mustRegister(w.url, user, 'dreamina', { submitId: 's', model: 'm', jobid: 'oldest', started: isoAgo(300, now) });
    await mustRegister(w.url, user, 'dreamina', { submitId: 's', model: 'm', jobid: 'tie-1', started: same });
    await mustRegister(w.url, user, 'dreamina', { submitId: 's', model: 'm', jobid: 'mid', started: isoAgo(200, now) });
    await mustRegister(w.url, user, 'dreamina', { submitId: 's', model: 'm', jobid: 'tie-2', started: same });
    const r = await pub(w.url, token, 'GET', '/v1/dreamina/scheduler');
    assert.deepEqual(
      r.json.executing['US:a@x.com'].map((j) => j.jobid),
      ['oldest', 'mid', 'tie-1', 'tie-2', 'new'],
    );
    assert.equal(r.json.total, 5);
  });

  test('a started up to 5 minutes in the future is accepted and never gives a negative elapsed', async () => {
    const { user, token } = await setupUser(w.url, { dreamina: { 'US:a@x.com': 5 } });
    const job = await mustRegister(w.url, user, 'dreamina', { submitId: 's', model: 'm', started: isoAgo(-120) });
    assert.equal(job.elapsedSeconds, 0);
    const r = await pub(w.url, token, 'GET', '/v1/dreamina/scheduler');
    assert.equal(r.json.executing['US:a@x.com'][0].elapsedSeconds, 0);
  });
});

describe('Kling list (seed: kling-scheduler.txt)', () => {
  test('idle user: []', async () => {
    const { token } = await setupUser(w.url, { kling: { 'a@x.com': 2 } });
    const r = await pub(w.url, token, 'GET', '/v1/kling/scheduler');
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, []);
    assert.match(r.headers.get('content-type') || '', /^application\/json/);
    assertCors(r);
  });

  test('items field by field: key order as the seed, optional fields absent (never null)', async () => {
    const { user, token } = await setupUser(w.url, { kling: { 'a@x.com': 5 } });
    const startedMs = Date.now() - 225_000;
    const started = new Date(startedMs).toISOString();
    await mustRegister(w.url, user, 'kling', {
      id: 123456789,
      email: 'a@x.com',
      started,
      replyUrl: 'https://example.com/webhook',
      replyRef: 'reference-id',
    });
    await mustRegister(w.url, user, 'kling', { id: 987654321 });
    await mustRegister(w.url, user, 'kling', { id: 5, replyUrl: 'http://example.com/h' });
    await mustRegister(w.url, user, 'kling', { id: 6, replyRef: 'only-ref' });

    const r = await pub(w.url, token, 'GET', '/v1/kling/scheduler');
    const hi = Math.floor((Date.now() - startedMs) / 1000);
    assert.equal(r.status, 200);
    assert.ok(Array.isArray(r.json));
    assert.equal(r.json.length, 4);
    for (const item of r.json) assertKlingItem(item);

    const first = r.json[0];
    assert.deepEqual(Object.keys(first), ['id', 'email', 'started', 'elapsed', 'replyUrl', 'replyRef']);
    assert.equal(first.id, 123456789);
    assert.equal(first.email, 'a@x.com');
    assert.equal(first.started, started);
    const allowed = [];
    for (let sec = 225; sec <= Math.max(hi, 226); sec++) allowed.push(fmtElapsed(sec));
    assert.ok(allowed.includes(first.elapsed), `elapsed ${first.elapsed} not in ${allowed}`); // "03:45" in the seed
    assert.equal(first.replyUrl, 'https://example.com/webhook');
    assert.equal(first.replyRef, 'reference-id');

    const byId = Object.fromEntries(r.json.map((j) => [j.id, j]));
    assert.deepEqual(Object.keys(byId[987654321]), ['id', 'email', 'started', 'elapsed']);
    assert.deepEqual(Object.keys(byId[5]), ['id', 'email', 'started', 'elapsed', 'replyUrl']);
    assert.deepEqual(Object.keys(byId[6]), ['id', 'email', 'started', 'elapsed', 'replyRef']);
    assert.ok(!r.text.includes('null'), `no nulls in ${r.text}`);
  });

  test('back-dated started 3725 s ago gives elapsed "62:05" (or "62:06")', async () => {
    const { user, token } = await setupUser(w.url, { kling: { 'a@x.com': 5 } });
    const startedMs = Date.now() - 3725_000;
    const started = new Date(startedMs).toISOString();
    const job = await mustRegister(w.url, user, 'kling', { id: 42, started });
    const t0 = Date.now();
    const r = await pub(w.url, token, 'GET', '/v1/kling/scheduler');
    const t1 = Date.now();
    const lo = Math.floor((t0 - startedMs) / 1000);
    const hi = Math.max(3726, Math.floor((t1 - startedMs) / 1000));
    const allowed = [];
    for (let s = Math.min(lo, 3725); s <= hi; s++) allowed.push(fmtElapsed(s));
    assert.ok(allowed.includes('62:05') && allowed.includes('62:06'));
    assert.ok(allowed.includes(r.json[0].elapsed), `elapsed ${r.json[0].elapsed} not in ${allowed}`);
    assert.equal(r.json[0].started, started);
    assert.ok(allowed.includes(job.elapsed), `201 elapsed ${job.elapsed}`);
  });

  test('elapsed keeps counting minutes past 99 (at least two digits): 6000 s -> "100:00"', async () => {
    const { user, token } = await setupUser(w.url, { kling: { 'a@x.com': 5 } });
    const startedMs = Date.now() - 6000_000;
    await mustRegister(w.url, user, 'kling', { id: 7, started: new Date(startedMs).toISOString() });
    const r = await pub(w.url, token, 'GET', '/v1/kling/scheduler');
    assert.match(r.json[0].elapsed, ELAPSED_RE);
    assert.ok(['100:00', '100:01', '100:02'].includes(r.json[0].elapsed), r.json[0].elapsed);
  });

  test('started defaults to the registration time; other ISO forms are normalised to UTC with ms', async () => {
    const { user, token } = await setupUser(w.url, { kling: { 'a@x.com': 5 } });
    const t0 = Date.now();
    const job = await mustRegister(w.url, user, 'kling', { id: 1 });
    const t1 = Date.now();
    assert.match(job.started, STARTED_RE);
    const s = Date.parse(job.started);
    assert.ok(s >= t0 - 1000 && s <= t1 + 1000, `started ${job.started} not within the request`);
    assert.ok(['00:00', '00:01'].includes(job.elapsed), job.elapsed);

    // Without milliseconds, and with an offset: the same instant, printed as ...Z with ms.
    const base = new Date(Math.floor((Date.now() - 600_000) / 1000) * 1000);
    const noMs = base.toISOString().replace('.000Z', 'Z');
    await mustRegister(w.url, user, 'kling', { id: 2, started: noMs });
    const plus2 = new Date(base.getTime() + 2 * 3600_000).toISOString().replace('.000Z', '+02:00');
    await mustRegister(w.url, user, 'kling', { id: 3, started: plus2 });

    const r = await pub(w.url, token, 'GET', '/v1/kling/scheduler');
    const byId = Object.fromEntries(r.json.map((j) => [j.id, j]));
    assert.equal(byId[2].started, base.toISOString());
    assert.equal(byId[3].started, base.toISOString());
  });

  test('oldest first across all accounts; ties keep registration order', async () => {
    const { user, token } = await setupUser(w.url, { kling: { 'b@x.com': 10, 'a@x.com': 10 } });
    const now = Date.now();
    const same = isoAgo(150, now);
    await mustRegister(w.url, user, 'kling', { id: 10, email: 'a@x.com', started: isoAgo(10, now) });
    await mustRegister(w.url, user, 'kling', { id: 11, email: 'b@x.com', started: isoAgo(300, now) });
    await mustRegister(w.url, user, 'kling', { id: 12, email: 'a@x.com', started: same });
    await mustRegister(w.url, user, 'kling', { id: 13, email: 'a@x.com', started: isoAgo(200, now) });
    await mustRegister(w.url, user, 'kling', { id: 14, email: 'a@x.com', started: same });
    await mustRegister(w.url, user, 'kling', { id: 15, email: 'b@x.com', started: isoAgo(100, now) });
    const r = await pub(w.url, token, 'GET', '/v1/kling/scheduler');
    assert.deepEqual(r.json.map((j) => j.id), [11, 13, 12, 14, 15, 10]);
    assert.deepEqual(r.json.map((j) => j.email), ['b@x.com', 'a@x.com', 'a@x.com', 'a@x.com', 'b@x.com', 'a@x.com']);
  });

  test('a Kling id up to 2^53-1 comes back as the same JSON number', async () => {
    const { user, token } = await setupUser(w.url, { kling: { 'a@x.com': 5 } });
    await mustRegister(w.url, user, 'kling', { id: 9007199254740991 });
    const r = await pub(w.url, token, 'GET', '/v1/kling/scheduler');
    assert.ok(r.text.includes('"id":9007199254740991'), r.text);
  });
});

describe('available routes', () => {
  test('Kling: {"executing":[...],"available":[{email,maxJobs,executing,available}]}, every account ascending', async () => {
    const { user, token } = await setupUser(w.url, { kling: { 'c@x.com': 1, 'b@x.com': 2, 'a@x.com': 3 } });
    await mustRegister(w.url, user, 'kling', { id: 1, email: 'a@x.com', started: isoAgo(20) });
    await mustRegister(w.url, user, 'kling', { id: 2, email: 'b@x.com', started: isoAgo(30) });
    await mustRegister(w.url, user, 'kling', { id: 3, email: 'b@x.com', started: isoAgo(10) });

    const r = await pub(w.url, token, 'GET', '/v1/kling/scheduler/available');
    assert.equal(r.status, 200);
    assertCors(r);
    assert.deepEqual(Object.keys(r.json).sort(), ['available', 'executing']);
    assert.ok(Array.isArray(r.json.executing));
    for (const item of r.json.executing) assertKlingItem(item);
    assert.deepEqual(r.json.executing.map((j) => j.id), [2, 1, 3]);
    assert.deepEqual(r.json.available, [
      { email: 'a@x.com', maxJobs: 3, executing: 1, available: 2 },
      { email: 'b@x.com', maxJobs: 2, executing: 2, available: 0 },
      { email: 'c@x.com', maxJobs: 1, executing: 0, available: 1 },
    ]);

    // The executing part equals the plain list.
    const list = await pub(w.url, token, 'GET', '/v1/kling/scheduler');
    assert.deepEqual(r.json.executing.map((j) => [j.id, j.email, j.started]), list.json.map((j) => [j.id, j.email, j.started]));
  });

  test('Dreamina: {"executing":{...},"total":n,"available":[{account,maxJobs,executing,available}]}', async () => {
    const { user, token } = await setupUser(w.url, { dreamina: { 'US:b@x.com': 2, 'JP:a@x.com': 4, 'US:a@x.com': 1 } });
    await mustRegister(w.url, user, 'dreamina', { submitId: 's1', model: 'm', account: 'US:b@x.com' });
    await mustRegister(w.url, user, 'dreamina', { submitId: 's2', model: 'm', account: 'US:b@x.com' });
    await mustRegister(w.url, user, 'dreamina', { submitId: 's3', model: 'm', account: 'JP:a@x.com' });

    const r = await pub(w.url, token, 'GET', '/v1/dreamina/scheduler/available');
    assert.equal(r.status, 200);
    assertCors(r);
    assert.deepEqual(Object.keys(r.json).sort(), ['available', 'executing', 'total']);
    assert.equal(r.json.total, 3);
    assert.deepEqual(Object.keys(r.json.executing), ['JP:a@x.com', 'US:b@x.com']);
    for (const jobs of Object.values(r.json.executing)) for (const j of jobs) assertDreaminaItem(j);
    assert.deepEqual(r.json.available, [
      { account: 'JP:a@x.com', maxJobs: 4, executing: 1, available: 3 },
      { account: 'US:a@x.com', maxJobs: 1, executing: 0, available: 1 },
      { account: 'US:b@x.com', maxJobs: 2, executing: 2, available: 0 },
    ]);
  });

  test('no accounts: Kling {"executing":[],"available":[]}, Dreamina {"executing":{},"total":0,"available":[]}', async () => {
    const { token } = await setupUser(w.url);
    const k = await pub(w.url, token, 'GET', '/v1/kling/scheduler/available');
    assert.equal(k.status, 200);
    assert.deepEqual(k.json, { executing: [], available: [] });
    const d = await pub(w.url, token, 'GET', '/v1/dreamina/scheduler/available');
    assert.equal(d.status, 200);
    assert.deepEqual(d.json, { executing: {}, total: 0, available: [] });
  });

  test('available is max(0, maxJobs - executing) after maxJobs is lowered below the executing count', async () => {
    const { user, token } = await setupUser(w.url, { kling: { 'a@x.com': 3 } });
    for (const id of [1, 2, 3]) await mustRegister(w.url, user, 'kling', { id });
    await putAccount(w.url, user, 'kling', 'a@x.com', 1);
    const r = await pub(w.url, token, 'GET', '/v1/kling/scheduler/available');
    assert.deepEqual(r.json.available, [{ email: 'a@x.com', maxJobs: 1, executing: 3, available: 0 }]);
    assert.equal(r.json.executing.length, 3);
  });
});

describe('operator account list', () => {
  test('GET .../accounts: [] when none, then [{account,maxJobs,executing}] ascending', async () => {
    const { user } = await setupUser(w.url);
    const empty = await admin(w.url, 'GET', `/admin/v1/users/${user}/kling/accounts`);
    assert.equal(empty.status, 200);
    assert.deepEqual(empty.json, []);

    await putAccount(w.url, user, 'dreamina', 'US:z@x.com', 2);
    await putAccount(w.url, user, 'dreamina', 'GB:a@x.com', 7);
    await mustRegister(w.url, user, 'dreamina', { submitId: 's', model: 'm', account: 'US:z@x.com' });
    const r = await admin(w.url, 'GET', `/admin/v1/users/${user}/dreamina/accounts`);
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, [
      { account: 'GB:a@x.com', maxJobs: 7, executing: 0, paused: false },
      { account: 'US:z@x.com', maxJobs: 2, executing: 1, paused: false },
    ]);
    // Providers are separate: the Kling list is still empty.
    const k = await admin(w.url, 'GET', `/admin/v1/users/${user}/kling/accounts`);
    assert.deepEqual(k.json, []);
  });
});
