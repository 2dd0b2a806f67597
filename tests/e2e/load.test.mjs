// A short, bounded run of the load test (tests/load/load.mjs) in the e2e suite: a few
// users reading and writing at once, with one SIGKILL of the local server and a restart
// on the same persist dir in the middle, while registrations wait for a slot. Every
// invariant of the load test must hold: capacity (never over maxJobs, also with pauses),
// conservation (every 201 is listed, completed or cancelled; lost answers reconciled),
// webhooks (one delivered event id per completion with a replyUrl, none unexpected), no
// 5xx; waiting (a 429 only after waitSeconds; a waiter its client gave up is never
// admitted afterwards; FIFO among the FIFO user's waiters), pauses (no admission on a
// paused account; available 0) and progress (the last report shows). The mix here is
// richer in pauses and aborts than the default so that each kind surely happens. The
// full-size run is `bash scripts/load.sh`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { printReport, runLoad } from '../load/load.mjs';
import { pub } from '../support/client.mjs';
import { registerJob, setupUser } from '../support/fixtures.mjs';
import { startWorker } from '../support/server.mjs';

test('load with one kill/restart while registrations wait: every invariant holds', { timeout: 150_000 }, async (t) => {
  const report = await runLoad({
    users: 3,
    requests: 80,
    concurrency: 3,
    kills: 1,
    raceRate: 0, // the same-id race has its own test below
    pauseRate: 0.04,
    resumeRate: 0.02,
    fifoAbortRate: 0.3,
    fifoHoldMs: [700, 1500], // a queue forms at once, so the aborts abandon real places
    fifoMinMs: 15_000, // enough FIFO waiters on each side of the kill
    drainTimeoutMs: 40_000,
    progress: false,
  });
  const text = printReport(report, { title: 'e2e load' });
  t.diagnostic(text.split('\n').slice(0, 13).join(' | '));
  const { stats } = report;
  assert.equal(report.faults.length, 1, 'one fault injected');
  assert.ok(report.faults[0].waitersInflightAtKill >= 1, `the kill found no waiting registration in flight: ${JSON.stringify(report.faults[0])}`);
  assert.ok(stats.registered > 20, `registered ${stats.registered}`);
  // Each new kind of operation happened.
  assert.ok(stats.waiting.sent >= 10 && stats.waiting.admitted >= 5, `waiting: ${JSON.stringify(stats.waiting)}`);
  assert.ok(stats.waiting.aborted >= 1, `no waiter was given up by its client: ${JSON.stringify(stats.waiting)}`);
  assert.ok(stats.waiting.admittedAfterRestart >= 1, `no waiter was admitted after the restart: ${JSON.stringify(stats.waiting)}`);
  assert.ok(stats.fifo.pairsChecked >= 5, `FIFO: ${JSON.stringify(stats.fifo)}`);
  assert.ok(stats.pauses.timed + stats.pauses.untimed >= 1 && stats.pauses.resumes >= 1, `pauses: ${JSON.stringify(stats.pauses)}`);
  assert.ok(stats.progress.ok >= 1, `progress: ${JSON.stringify(stats.progress)}`);
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
