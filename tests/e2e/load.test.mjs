// A short, bounded run of the load test (tests/load/load.mjs) in the e2e suite: a few
// users reading and writing jobs of all five providers at once (tests/load/providers.mjs),
// with one SIGKILL of the local server and a restart on the same persist dir in the
// middle, while registrations wait for a slot. Jobs of every provider must have been
// registered and completed, and MiniMax image jobs (which take no slot) admitted. Every
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
import { normalise } from '../load/invariants.mjs';
import { printReport, runLoad } from '../load/load.mjs';
import { PROVIDER_NAMES, PROVIDERS } from '../load/providers.mjs';
import { pub } from '../support/client.mjs';
import { registerJob, setupUser } from '../support/fixtures.mjs';
import { startWorker } from '../support/server.mjs';

test('load with one kill/restart while registrations wait: every invariant holds', { timeout: 150_000 }, async (t) => {
  const report = await runLoad({
    users: 3,
    requests: 120, // five providers share them: each gets a fifth
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
  t.diagnostic(text.split('\n').slice(0, 15).join(' | '));
  const { stats } = report;
  assert.equal(report.faults.length, 1, 'one fault injected');
  assert.ok(report.faults[0].waitersInflightAtKill >= 1, `the kill found no waiting registration in flight: ${JSON.stringify(report.faults[0])}`);
  assert.ok(stats.registered > 20, `registered ${stats.registered}`);
  for (const p of PROVIDER_NAMES) {
    const c = stats.byProvider[p];
    assert.ok(c.registered >= 1 && c.completed >= 1, `${p}: ${JSON.stringify(c)}`);
  }
  assert.ok(stats.images.admitted >= 1, `no MiniMax image job was admitted: ${JSON.stringify(stats.images)}`);
  // Each new kind of operation happened.
  assert.ok(stats.waiting.sent >= 10 && stats.waiting.admitted >= 5, `waiting: ${JSON.stringify(stats.waiting)}`);
  assert.ok(stats.waiting.aborted >= 1, `no waiter was given up by its client: ${JSON.stringify(stats.waiting)}`);
  assert.ok(stats.waiting.admittedAfterRestart >= 1, `no waiter was admitted after the restart: ${JSON.stringify(stats.waiting)}`);
  assert.ok(stats.fifo.pairsChecked >= 5, `FIFO: ${JSON.stringify(stats.fifo)}`);
  assert.ok(stats.pauses.timed + stats.pauses.untimed >= 1 && stats.pauses.resumes >= 1, `pauses: ${JSON.stringify(stats.pauses)}`);
  assert.ok(stats.progress.ok >= 1, `progress: ${JSON.stringify(stats.progress)}`);
  // The violations first: a failure message may be cut to its start.
  const cut = text.indexOf('invariant violations:');
  assert.equal(report.violationCount, 0, `${text.slice(cut)}\n----- the rest of the report (seed ${report.seed})\n${text.slice(0, cut)}`);
});

// Two registrations of one new job id sent at once, naming two different accounts (a
// gateway retrying while its first attempt is still in flight), for every provider. The
// contract: 409 when the job id is already executing for the user, so exactly one of
// them may be admitted (MiniMax image jobs, which take no slot, included).
test('concurrent registrations of one id on two accounts admit exactly one', { timeout: 60_000 }, async (t) => {
  const w = await startWorker();
  t.after(() => w.stop());
  const accounts = Object.fromEntries(
    PROVIDER_NAMES.map((p) => {
      const { accounts: names, maxJobsLimit } = PROVIDERS[p];
      return [p, { [names[0]]: Math.min(20, maxJobsLimit), [names[1]]: Math.min(20, maxJobsLimit) }];
    }),
  );
  const { user, token } = await setupUser(w.url, accounts);
  const doubles = [];
  for (const p of PROVIDER_NAMES) {
    const { accounts: names, accountKey, body, newJob } = PROVIDERS[p];
    for (let i = 1; i <= 8; i++) {
      // Alternate the random choices (MiniMax image or video, PixVerse's type).
      const job = newJob(i, 'race', () => (i % 2 ? 0.1 : 0.9));
      if (job.id === undefined) job.id = `j${i}`; // a Dreamina job names its jobid: the race is about one id
      const rs = await Promise.all(names.slice(0, 2).map((a) => registerJob(w.url, user, p, { ...body(job), [accountKey]: a })));
      if (rs.filter((r) => r.status === 201).length !== 1) doubles.push(`${p} ${job.id}: ${rs.map((r) => r.status)}`);
    }
    const listed = normalise(p, (await pub(w.url, token, 'GET', PROVIDERS[p].path)).json).jobs.map((j) => j.key);
    assert.equal(new Set(listed).size, listed.length, `${p}: an id listed twice: ${listed}`);
  }
  assert.deepEqual(doubles, [], 'same id admitted twice');
});
