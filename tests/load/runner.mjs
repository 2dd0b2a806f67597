// runLoad(): one load run from start to report. In order:
//   1. start the worker (target.mjs) and the webhook receiver, set up the users
//      (operations.setupUsers: a token and 2-3 accounts of each provider each);
//   2. the load: o.concurrency loops per user, o.requests operations per user in all
//      (operations.oneOp), while a sampler reads operator account lists and the FIFO
//      user's sender and completer run (operations.fifoSender, fifoCompleter); at
//      evenly spaced points (each once a waiting registration is in flight) the server
//      is killed and restarted, the lost outcomes are reconciled from the lists and the
//      pauses whose answer was lost are settled (injectFault);
//   3. the drain: wait for the back-dated jobs to expire and every webhook to arrive;
//   4. the final invariants (invariants.mjs) and the report (report.mjs).
//
// Everything one run shares lives in `run`: o (the options), seed, rng, pick, say,
// started, stats, violations/violation, ledger, target, faults, environment.

import { randomBytes } from 'node:crypto';
import { startReceiver } from '../support/receiver.mjs';
import { ADMIN_TOKEN, sleep } from '../support/server.mjs';
import { awaitDrain, checkConservation, checkFifo, checkOperatorCounts, checkWebhooks, Violations } from './invariants.mjs';
import { createStats, Ledger } from './ledger.mjs';
import { fifoCompleter, fifoSender, oneOp, opAccounts, readAll, reconcile, settlePauses, setupUsers } from './operations.mjs';
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
  waitRate: 0.25, // share of registrations that may wait for a slot (waitSeconds 1..5)
  abortRate: 0.25, // share of waiting Kling registrations the client gives up after 0.3..2 s
  fifoAbortRate: 0.2, // share of the FIFO user's waiters the client gives up after 0.3..1.5 s
  pauseRate: 0.02, // share of operations that pause an account (half timed 1..4 s, half untimed + resume)
  resumeRate: 0.015, // share of operations that resume an account
  fifo: true, // the FIFO user: one account, maxJobs 1, a stream of unnamed waiters
  fifoHoldMs: [300, 900], // how long the FIFO user's job runs before it is completed
  fifoMinMs: 0, // the FIFO user goes on at least this long, even when the other loops are done
  killWaitsForWaitersMs: 3000, // a fault waits up to this long for a waiting registration in flight
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
  say(`seed ${seed}, ${o.users} users x ${o.requests} requests${ledger.fifoUser ? ' + the FIFO user' : ''}, concurrency ${o.concurrency}/user, kills ${o.kills}, worker ${target.url}`);

  // -------------------------------------------------------------------------------------
  // 2. The load, with the faults

  async function injectFault(n) {
    // Kill while registrations wait for a slot (bounded: the load may have none).
    const waitUntil = Date.now() + o.killWaitsForWaitersMs;
    let open;
    for (;;) {
      while (target.waitersInflight === 0 && Date.now() < waitUntil) await sleep(20);
      open = target.hold();
      if (target.waitersInflight > 0 || Date.now() >= waitUntil) break;
      open(); // the waiter was answered in between: let the load go on and look again
    }
    const { pid, inflight, waitersInflight, killedAt, restartedAt } = await target.killAndRestart(n);
    const before = { ...stats.unknown };
    await reconcile(run, `after restart ${n}`);
    await settlePauses(run);
    faults.push({
      n,
      pid,
      signal: 'SIGKILL',
      atRequest: stats.byPhase.load,
      inflightAtKill: inflight,
      waitersInflightAtKill: waitersInflight,
      downMs: restartedAt - killedAt,
      unknownSoFar: before,
    });
    say(`fault ${n}: SIGKILL pid group ${pid} with ${inflight} requests in flight (${waitersInflight} waiting for a slot); restarted on ${target.url} after ${restartedAt - killedAt} ms`);
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
  let loopsRunning = true;
  const fifoRunning = () => loopsRunning || Date.now() < loadStart + o.fifoMinMs;
  const fifoDone = ledger.fifoUser
    ? Promise.all([fifoSender(run, ledger.fifoUser, fifoRunning), fifoCompleter(run, ledger.fifoUser, fifoRunning)]).catch((err) =>
        run.violation('client error', String(err?.stack || err)),
      )
    : Promise.resolve();
  await Promise.all(
    users
      .filter((u) => !u.fifo)
      .flatMap((u) => {
        const budget = { left: o.requests };
        return Array.from({ length: o.concurrency }, () => userLoop(u, budget));
      }),
  );
  await faultChain;
  loopsRunning = false;
  await fifoDone;
  running = false;
  await samplerDone;
  const loadMs = Date.now() - loadStart;
  clearInterval(progress);
  say(`load done: ${stats.byPhase.load} requests in ${loadMs} ms`);

  // Settle anything still unknown (a lost request outside a fault is already a
  // violation; a waiter its client gave up is unknown until a list decides).
  await settlePauses(run, 'final');
  if (ledger.hasUnknown()) await reconcile(run, 'final reconcile');

  // -------------------------------------------------------------------------------------
  // 3. The drain; 4. the final invariants

  const drainMs = await awaitDrain(run);
  const finalLists = await readAll(run, 'final', 'final');
  const tally = checkConservation(run, finalLists);
  await checkOperatorCounts(run, finalLists);
  checkWebhooks(run);
  checkFifo(run);

  target.noteDevReloads();
  await receiver.close();
  if (!external && !o.keepWorker) await target.worker.stop();
  return buildReport(run, { loadMs, drainMs, tally });
}
