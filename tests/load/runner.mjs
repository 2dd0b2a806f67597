// runLoad(): one load run from start to report. In order:
//   1. start the worker (target.mjs) and the webhook receiver, set up the users
//      (operations.setupUsers: a token and 2-3 accounts per provider each);
//   2. the load: o.concurrency loops per user, o.requests operations per user in all
//      (operations.oneOp), while a sampler reads operator account lists; at evenly
//      spaced points the server is killed and restarted and the lost outcomes are
//      reconciled from the lists (injectFault);
//   3. the drain: wait for the back-dated jobs to expire and every webhook to arrive;
//   4. the final invariants (invariants.mjs) and the report (report.mjs).
//
// Everything one run shares lives in `run`: o (the options), seed, rng, pick, say,
// started, stats, violations/violation, ledger, target, faults, environment.

import { randomBytes } from 'node:crypto';
import { startReceiver } from '../support/receiver.mjs';
import { ADMIN_TOKEN, sleep } from '../support/server.mjs';
import { awaitDrain, checkConservation, checkOperatorCounts, checkWebhooks, Violations } from './invariants.mjs';
import { createStats, Ledger } from './ledger.mjs';
import { oneOp, opAccounts, readAll, reconcile, setupUsers } from './operations.mjs';
import { buildReport } from './report.mjs';
import { Target } from './target.mjs';

export const DEFAULTS = {
  users: 6,
  requests: 2000, // per user
  concurrency: 3, // request loops per user
  kills: 0, // SIGKILL + restart of the local server, evenly spaced
  maxJobs: 3,
  seed: undefined,
  timeoutSeconds: 7200, // JOB_TIMEOUT_SECONDS
  expiryRate: 0.03, // share of registrations back-dated to expire a few seconds later
  dupRate: 0.03, // share of registrations that re-register an executing id (409)
  raceRate: 0.02, // share of registrations sent twice at once naming two accounts
  replyRate: 0.85, // share of jobs with a replyUrl
  receiverFailRate: 0.1, // share of webhook ids whose first attempt the receiver answers 500
  drainTimeoutMs: 90_000,
  progress: true,
  url: undefined, // an already running worker (no kills then)
  adminToken: ADMIN_TOKEN,
};

/** A small seeded random source: the same seed, the same choices (up to timing). */
function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export async function runLoad(options = {}) {
  const o = { ...DEFAULTS, ...options };
  const seed = o.seed ?? (Date.now() % 2 ** 31);
  const rng = mulberry32(seed);
  const started = Date.now();
  const violations = new Violations(started);
  const run = {
    o,
    seed,
    rng,
    pick: (arr) => arr[Math.floor(rng() * arr.length)],
    say: (...a) => o.progress && console.error('[load]', ...a),
    started,
    stats: createStats(),
    violations,
    violation: (kind, detail) => violations.add(kind, detail),
    faults: [],
    environment: [], // events of the local dev server that are not the worker's
  };
  const { stats, say, faults } = run;

  // -------------------------------------------------------------------------------------
  // 1. The worker, the receiver and the users.

  const secret = `whsec_${randomBytes(32).toString('base64')}`;
  const vars = {
    WEBHOOK_SECRET: secret,
    WEBHOOK_RETRY_SCHEDULE: '1,1,2,2,3,5,5,5',
    JOB_TIMEOUT_SECONDS: String(o.timeoutSeconds),
  };
  const external = Boolean(o.url);
  if (external && o.kills > 0) throw new Error('--kills needs a worker this run starts (no --url)');
  const target = new Target({ stats, violation: run.violation, environment: run.environment, started, adminToken: o.adminToken, vars });
  run.target = target;
  await target.start(o.url);

  const ledger = new Ledger({ rng, seed, stats, timeoutSeconds: o.timeoutSeconds, receiverFailRate: o.receiverFailRate });
  run.ledger = ledger;
  const receiver = await startReceiver((rec) => ledger.webhookArrived(rec, secret));
  ledger.replyBase = receiver.url;

  await setupUsers(run);
  const { users } = ledger;
  say(`seed ${seed}, ${users.length} users x ${o.requests} requests, concurrency ${o.concurrency}/user, kills ${o.kills}, worker ${target.url}`);

  // -------------------------------------------------------------------------------------
  // 2. The load, with the faults

  async function injectFault(n) {
    const open = target.hold();
    const { pid, inflight, killedAt, restartedAt } = await target.killAndRestart(n);
    const before = { ...stats.unknown };
    await reconcile(run, `after restart ${n}`);
    faults.push({
      n,
      pid,
      signal: 'SIGKILL',
      atRequest: stats.byPhase.load,
      inflightAtKill: inflight,
      downMs: restartedAt - killedAt,
      unknownSoFar: before,
    });
    say(`fault ${n}: SIGKILL pid group ${pid} with ${inflight} requests in flight; restarted on ${target.url} after ${restartedAt - killedAt} ms`);
    open();
  }

  const total = o.users * o.requests;
  let issued = 0;
  let running = true;
  const killAt = Array.from({ length: o.kills }, (_, k) => Math.floor((total * (k + 1)) / (o.kills + 1)));
  let faultChain = Promise.resolve();
  let nextKill = 0;

  async function userLoop(u, budget) {
    while (budget.left > 0) {
      budget.left -= 1;
      issued += 1;
      if (nextKill < killAt.length && issued >= killAt[nextKill]) {
        const n = ++nextKill;
        faultChain = faultChain.then(() => injectFault(n));
      }
      try {
        await oneOp(run, u);
      } catch (err) {
        run.violation('client error', String(err?.stack || err));
      }
    }
  }

  async function sampler() {
    while (running) {
      await opAccounts(run, run.pick(users), 'sampler');
      await sleep(100);
    }
  }

  const progress = setInterval(() => {
    const s = (Date.now() - started) / 1000;
    say(`${issued}/${total} ops, ${stats.requests} requests, ${(stats.requests / s).toFixed(0)} req/s, ${violations.list.length} violations`);
  }, 5000);
  if (!o.progress) clearInterval(progress);

  const loadStart = Date.now();
  const samplerDone = sampler();
  await Promise.all(
    users.flatMap((u) => {
      const budget = { left: o.requests };
      return Array.from({ length: o.concurrency }, () => userLoop(u, budget));
    }),
  );
  await faultChain;
  running = false;
  await samplerDone;
  const loadMs = Date.now() - loadStart;
  clearInterval(progress);
  say(`load done: ${stats.byPhase.load} requests in ${loadMs} ms`);

  // Settle anything still unknown (a lost request outside a fault is already a violation).
  if (ledger.hasUnknown()) await reconcile(run, 'final reconcile');

  // -------------------------------------------------------------------------------------
  // 3. The drain; 4. the final invariants

  const drainMs = await awaitDrain(run);
  const finalLists = await readAll(run, 'final', 'final');
  const tally = checkConservation(run, finalLists);
  await checkOperatorCounts(run, finalLists);
  checkWebhooks(run);

  target.noteDevReloads();
  await receiver.close();
  if (!external && !o.keepWorker) await target.worker.stop();
  return buildReport(run, { loadMs, drainMs, tally });
}
