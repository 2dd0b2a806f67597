// A short, bounded run of the load test (tests/load/load.mjs) in the e2e suite: a few
// users reading and writing at once, with one SIGKILL of the local server and a restart
// on the same persist dir in the middle. Every invariant of the load test must hold:
// capacity (never over maxJobs), conservation (every 201 is listed, completed or
// cancelled; lost answers reconciled), webhooks (one delivered event id per completion
// with a replyUrl, none unexpected), no 5xx. The full-size run is `bash scripts/load.sh`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { printReport, runLoad } from '../load/load.mjs';
import { pub } from '../support/client.mjs';
import { registerJob, setupUser } from '../support/fixtures.mjs';
import { startWorker } from '../support/server.mjs';

test('load with one kill/restart: every invariant holds', { timeout: 150_000 }, async (t) => {
  const report = await runLoad({
    users: 3,
    requests: 80,
    concurrency: 3,
    kills: 1,
    raceRate: 0, // the same-id race has its own test below
    drainTimeoutMs: 40_000,
    progress: false,
  });
  const text = printReport(report, { title: 'e2e load' });
  t.diagnostic(text.split('\n').slice(0, 9).join(' | '));
  assert.equal(report.faults.length, 1, 'one fault injected');
  assert.ok(report.stats.registered > 20, `registered ${report.stats.registered}`);
  assert.equal(report.violationCount, 0, text);
});

// Two registrations of one new job id sent at once, naming two different accounts (a
// gateway retrying while its first attempt is still in flight). The contract: 409 when
// the job id is already executing for the user, so exactly one of them may be admitted.
test('concurrent registrations of one id on two accounts admit exactly one', { timeout: 60_000 }, async (t) => {
  const w = await startWorker();
  t.after(() => w.stop());
  const { user, token } = await setupUser(w.url, {
    kling: { 'a@x.com': 20, 'b@x.com': 20 },
    dreamina: { 'US:a@x.com': 20, 'EU:b@x.com': 20 },
  });
  const doubles = [];
  for (let i = 1; i <= 8; i++) {
    const k = await Promise.all([
      registerJob(w.url, user, 'kling', { id: i, email: 'a@x.com' }),
      registerJob(w.url, user, 'kling', { id: i, email: 'b@x.com' }),
    ]);
    if (k.filter((r) => r.status === 201).length !== 1) doubles.push(`kling ${i}: ${k.map((r) => r.status)}`);
    const d = await Promise.all([
      registerJob(w.url, user, 'dreamina', { jobid: `j${i}`, submitId: 's', model: 'm', account: 'US:a@x.com' }),
      registerJob(w.url, user, 'dreamina', { jobid: `j${i}`, submitId: 's', model: 'm', account: 'EU:b@x.com' }),
    ]);
    if (d.filter((r) => r.status === 201).length !== 1) doubles.push(`dreamina j${i}: ${d.map((r) => r.status)}`);
  }
  const kl = (await pub(w.url, token, 'GET', '/v1/kling/scheduler')).json;
  const ids = kl.map((j) => j.id);
  assert.deepEqual(doubles, [], `same id admitted twice (listed ${ids.length} Kling jobs, ${new Set(ids).size} distinct ids)`);
  assert.equal(new Set(ids).size, ids.length, 'no id listed twice');
});
