// What the simulated users do: each kind of request as one small function that sends
// it (through Target.call, target.mjs), writes the answer into the ledger and checks
// what can be checked of it at once. Each picks a provider at random and asks
// providers.mjs how it differs. oneOp() picks one at random, weighted so that
// registrations outnumber completions and cancels (accounts run full and admissions
// race at the limit: 429s). A share of registrations wait for a slot (waitSeconds
// 1..5), and a share of those are given up by the client (an abort; Kling jobs only,
// see opRegister); MiniMax image jobs must be admitted even on a full account; accounts
// are paused (timed, or untimed and resumed a moment later) and resumed; executing jobs
// report progress. Also the setup of the users, the dedicated FIFO user's sender and
// completer (fifoSender, fifoCompleter), and the reads of every user's lists that
// settle unknown outcomes after a fault (reconcile, settlePauses).
//
// `run` is the state of one run (runner.mjs): o (options), rng, pick, stats, violation,
// ledger, target.

import { issueToken, putAccount } from '../support/fixtures.mjs';
import { sleep } from '../support/server.mjs';
import { checkAccountRows, checkAdmission, checkCompletionAnswer, checkList, normalise, normaliseJobs } from './invariants.mjs';
import { accountsFor } from './ledger.mjs';
import { PROVIDER_NAMES, PROVIDERS } from './providers.mjs';

const STARTED_RE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
const CAPACITY = 'All accounts are at maxJobs capacity';
/**
 * The FIFO user's accounts: one per provider, maxJobs 1. Only the Kling one is used; the
 * others are there because every read of every user (readAll) covers every provider.
 */
export const FIFO_ACCOUNTS = Object.fromEntries(PROVIDER_NAMES.map((p) => [p, { [PROVIDERS[p].accounts[0]]: 1 }]));

export const LIST_ROUTES = PROVIDER_NAMES.flatMap((p) => [
  [p, PROVIDERS[p].path, 'list_jobs'],
  [p, `${PROVIDERS[p].path}/available`, 'list_available'],
]);

/** Whether a waiting registration of p may be given up by the client: see opRegister. */
const abortable = (p) => PROVIDERS[p].timed && PROVIDERS[p].itemsNameAccount;

const jobsPath = (u, p) => `/admin/v1/users/${u.user}/${p}/jobs`;
const completePath = (u, p, id) => `/admin/v1/users/${u.user}/${p}/jobs/${encodeURIComponent(String(id))}/complete`;
const cancelPath = (p, id) => `${PROVIDERS[p].path}/${encodeURIComponent(String(id))}`;
const progressPath = (u, p, id) => `/admin/v1/users/${u.user}/${p}/jobs/${encodeURIComponent(String(id))}/progress`;
const accountOpPath = (u, p, a, op) => `/admin/v1/users/${u.user}/${p}/accounts/${encodeURIComponent(a)}/${op}`;

/** The registration request body for a ledger job. */
export function registrationBody(job) {
  const provider = PROVIDERS[job.provider];
  const b = provider.body(job);
  if (job.account) b[provider.accountKey] = job.account;
  if (job.replyUrl) {
    b.replyUrl = job.replyUrl;
    b.replyRef = `ref-${job.key}`;
  }
  if (job.startedMs !== undefined) b.started = new Date(job.startedMs).toISOString();
  if (job.waitSeconds) b.waitSeconds = job.waitSeconds;
  return b;
}

/**
 * o.users users, each with a token and its accounts (ledger.accountsFor); with o.fifo,
 * one more: the FIFO user (FIFO_ACCOUNTS), which only the FIFO loops use
 * (ledger.fifoUser).
 */
export async function setupUsers(run) {
  const { o, target, ledger, stats } = run;
  for (let i = 0; i < o.users + (o.fifo ? 1 : 0); i++) {
    const user = ledger.userId(i);
    const fifo = i === o.users;
    const accounts = fifo ? FIFO_ACCOUNTS : accountsFor(i, o.maxJobs);
    const token = await issueToken(target.url, user);
    stats.requests += 1;
    stats.byPhase.setup += 1;
    for (const p of PROVIDER_NAMES) {
      for (const [a, m] of Object.entries(accounts[p])) {
        await putAccount(target.url, user, p, a, m);
        stats.requests += 1;
        stats.byPhase.setup += 1;
      }
    }
    const u = ledger.addUser(i, user, token, accounts);
    if (fifo) {
      u.fifo = true;
      ledger.fifoUser = u;
    }
  }
}

/** One operation of user u, picked at random. */
export async function oneOp(run, u) {
  const x = run.rng();
  // Registrations outnumber completions and cancels, so accounts run full and
  // admission races at the limit (429s).
  if (x < 0.27) return opRead(run, u);
  if (x < 0.3) return opAccounts(run, u);
  if (x < 0.32) return opJobs(run, u);
  if (x < 0.64) return opRegister(run, u);
  if (x < 0.8) return opComplete(run, u);
  if (x < 0.9) return opCancel(run, u);
  const { pauseRate, resumeRate } = run.o;
  if (x < 1 - pauseRate - resumeRate) return opProgress(run, u);
  if (x < 1 - resumeRate) return opPause(run, u);
  return opResume(run, u);
}

/** A public list or available read, checked against the ledger. */
export async function opRead(run, u) {
  const [p, path, label] = run.pick(LIST_ROUTES);
  const r = await run.target.call('GET', path, { token: u.token, label: `${p} ${label}` });
  if (r.lost) return;
  if (r.status !== 200) return run.violation('read', `GET ${path} as ${u.user} -> ${r.status} ${r.text}`);
  checkList(run, u, p, `GET ${path}`, r, r.json);
}

/** The operator's account list of u (also the sampler's read). */
export async function opAccounts(run, u, phase = 'load') {
  const p = run.pick(PROVIDER_NAMES);
  const path = `/admin/v1/users/${u.user}/${p}/accounts`;
  const r = await run.target.admin('GET', path, undefined, { label: 'list_accounts', phase });
  if (r.lost) return;
  if (r.status !== 200) return run.violation('read', `GET ${path} -> ${r.status} ${r.text}`);
  checkAccountRows(run, u, p, r.json, `GET ${path}`, r);
}

/** The operator's jobs list of u (with progress), checked like a public list. */
export async function opJobs(run, u, p = run.pick(PROVIDER_NAMES)) {
  const path = jobsPath(u, p);
  const r = await run.target.admin('GET', path, undefined, { label: `${p} list_operator_jobs` });
  if (r.lost) return;
  if (r.status !== 200 || !Array.isArray(r.json)) return run.violation('read', `GET ${path} -> ${r.status} ${r.text.slice(0, 300)}`);
  run.stats.progress.jobsReads += 1;
  checkList(run, u, p, `GET ${path}`, r, r.json, normaliseJobs(p, r.json));
}

/** A 201 to job's registration: checked, then recorded. */
function admitted(run, u, job, r) {
  checkAdmission(run, u, job, r);
  run.ledger.admit(u, job, r);
}

/**
 * A registration of a new job (sometimes naming an account, back-dated to expire soon,
 * with a replyUrl, waiting up to 1..5 s for a slot, and then sometimes given up by the
 * client); a share are duplicates (opDuplicate) or races (opRace) instead.
 */
export async function opRegister(run, u) {
  const { o, rng, pick, ledger, stats, violation } = run;
  const p = pick(PROVIDER_NAMES);
  const x = rng();
  if (x < o.dupRate) return opDuplicate(run, u, p);
  if (x < o.dupRate + o.raceRate) return opRace(run, u, p);
  const named = rng() < 0.15 ? pick(Object.keys(u.accounts[p])) : undefined;
  const waitSeconds = rng() < o.waitRate ? 1 + Math.floor(rng() * 5) : 0;
  // Back-dated jobs never wait: their `started` is not their admission time.
  const expiring = !waitSeconds && rng() < o.expiryRate;
  const job = ledger.newJob(u, p, { named, expiring, withReply: rng() < o.replyRate, waitSeconds });
  // Aborted waiters are of providers whose list items tell their admission time
  // (`started`, with ms: was it before the abort?) and their account (a job adopted
  // from a list is then complete): Kling's.
  let abortAfterMs;
  if (waitSeconds && abortable(p) && rng() < o.abortRate) {
    abortAfterMs = 300 + Math.floor(rng() * Math.min(2000, waitSeconds * 1000 - 400));
  }
  if (waitSeconds) stats.waiting.sent += 1;
  const slotFree = !PROVIDERS[p].takesSlot(job.kind);
  if (slotFree) stats.images.sent += 1;
  const r = await run.target.admin('POST', jobsPath(u, p), registrationBody(job), { label: `${p} register_job${waitSeconds ? ' (waiting)' : ''}`, abortAfterMs });
  if (r.aborted) return ledger.aborted(job, r.abortedAt);
  if (r.lost) return ledger.lost(job, 'register');
  if (r.status === 201) {
    if (waitSeconds) {
      stats.waiting.admitted += 1;
      if (r.epoch > 0) stats.waiting.admittedAfterRestart += 1;
      stats.waiting.admittedAfterWaitingMs = Math.max(stats.waiting.admittedAfterWaitingMs, r.t1 - r.t0);
    }
    if (slotFree) {
      stats.images.admitted += 1;
      const a = r.json?.account;
      if (a in u.accounts[p] && ledger.slotsSurelyTaken(u, p, a) >= u.accounts[p][a]) stats.images.admittedOnFullAccount += 1;
    }
    return admitted(run, u, job, r);
  }
  ledger.reject(job, r.status, r.t1);
  if (r.status === 429) return rejected429(run, u, job, r);
  violation('register', `${p} register ${JSON.stringify(registrationBody(job))} -> ${r.status} ${r.text}`);
}

/**
 * A 429 `r` to job's registration: the capacity body, or "Account <a> is paused" for a
 * named account that may be paused; a waiting one not before its waitSeconds ran out. A
 * job that takes no slot (a MiniMax image) only when every account it may use may be
 * paused: an account tracks up to 500 jobs, far more than a run leaves executing.
 */
function rejected429(run, u, job, r) {
  const { ledger, stats, violation, started } = run;
  const p = job.provider;
  stats.rejected429 += 1;
  stats.byProvider[p].rejected429 += 1;
  if (!PROVIDERS[p].takesSlot(job.kind)) {
    stats.images.refused += 1;
    const usable = job.account ? [job.account] : Object.keys(u.accounts[p]);
    if (!usable.every((a) => ledger.mayBePaused(u, p, a, r.t0, r.t1))) {
      violation('slot-free job refused', `${p} ${job.kind} job ${job.key} ${JSON.stringify(registrationBody(job))} (+${r.t0 - started}..+${r.t1 - started} ms) -> ${r.text}; it takes no slot and not every account it may use may be paused`);
    }
  }
  const error = r.json?.error;
  const pausedMsg = job.account && error === `Account ${job.account} is paused`;
  if (r.json?.code !== 429 || (error !== CAPACITY && !pausedMsg)) {
    violation('bad 429', `${p} register ${JSON.stringify(registrationBody(job))} -> ${r.text}`);
  } else if (pausedMsg) {
    stats.pauses.paused429 += 1;
    if (!ledger.mayBePaused(u, p, job.account, r.t0, r.t1)) {
      violation('pause', `${p} register naming ${job.account} (never paused during the request, +${r.t0 - started}..+${r.t1 - started} ms) -> ${r.text}`);
    }
  } else if (!job.waitSeconds && job.account && ledger.mustBePaused(u, p, job.account, r.t0, r.t1)) {
    violation('pause', `${p} register naming ${job.account}, paused for the whole request -> ${r.text} (expected "Account ${job.account} is paused")`);
  }
  if (job.waitSeconds) {
    const took = r.t1 - r.t0;
    stats.waiting.timedOut += 1;
    const share = took / (job.waitSeconds * 1000);
    stats.waiting.earliest429Share = Math.min(stats.waiting.earliest429Share ?? Infinity, Number(share.toFixed(3)));
    if (took < job.waitSeconds * 1000 - 100) {
      violation('early 429', `${p} ${job.key} with waitSeconds ${job.waitSeconds} answered 429 after ${took} ms: ${r.text}`);
    }
  }
  if (job.seenListed) violation('rejected job listed', `${p} ${job.key} answered 429 but was listed`);
}

/** Re-registering an executing id: always 409, the job stays once. */
export async function opDuplicate(run, u, p) {
  const { rng, pick, ledger, stats, violation } = run;
  const job = ledger.takeFromPool(u, p);
  if (!job) return opRead(run, u);
  job.state = 'busy';
  const others = Object.keys(u.accounts[p]).filter((a) => a !== job.account);
  const b = PROVIDERS[p].body(job);
  if (rng() < 0.5 && others.length) b[PROVIDERS[p].accountKey] = pick(others);
  const r = await run.target.admin('POST', jobsPath(u, p), b, { label: `${p} register_job` });
  if (r.lost) {
    // May have landed as a second copy only if the worker has the bug this checks.
    job.unknownDup = true;
  } else if (r.status === 409) {
    stats.dup409 += 1;
  } else {
    violation('duplicate admitted', `re-register executing ${p} ${job.id} ${JSON.stringify(b)} -> ${r.status} ${r.text}`);
  }
  ledger.release(u, job);
}

/**
 * Two registrations of one new id sent at once, naming two different accounts (a
 * gateway retrying while its first attempt is still in flight): exactly one is 201,
 * the other 409 (or 429 when full). Double admissions are cancelled again (one public
 * DELETE stops tracking both copies) so the rest of the run stays checkable.
 */
export async function opRace(run, u, p) {
  const { target, ledger, stats, violation } = run;
  const accts = Object.keys(u.accounts[p]);
  const [a1, a2] = [accts[0], accts[1]];
  const job = ledger.newJob(u, p, { named: a1, expiring: false, withReply: true });
  // A race is about one id: a Dreamina job that would leave its jobid to the scheduler names one.
  if (job.id === undefined) job.id = `job-${ledger.runTag}-${ledger.jobSeq}`;
  stats.races += 1;
  const b1 = registrationBody(job);
  const b2 = { ...b1, [PROVIDERS[p].accountKey]: a2 };
  const [r1, r2] = await Promise.all([
    target.admin('POST', jobsPath(u, p), b1, { label: `${p} register_job` }),
    target.admin('POST', jobsPath(u, p), b2, { label: `${p} register_job` }),
  ]);
  if (r1.lost || r2.lost) {
    ledger.lost(job, 'register');
    job.account = undefined;
    return;
  }
  const ok = [r1, r2].filter((r) => r.status === 201);
  for (const r of [r1, r2]) {
    if (![201, 409, 429].includes(r.status)) violation('register', `race ${p} ${job.id} -> ${r.status} ${r.text}`);
  }
  if (ok.length === 2) {
    stats.raceDoubleAdmits += 1;
    job.doubled = true;
    violation(
      'duplicate admitted',
      `two concurrent registrations of ${p} job ${job.id} naming ${a1} and ${a2} were both 201: the id now executes on both accounts ` +
        `(listed twice; a completion would queue two webhooks). Expected one 201 and one 409.`,
    );
    // Clean up: the public DELETE stops tracking every copy.
    job.account = a1;
    job.termSentAt = Date.now();
    const d = await target.call('DELETE', cancelPath(p, job.id), { token: u.token, label: `${p} cancel_job` });
    job.state = d.status === 204 ? 'cancelled' : 'unknown';
    job.termKind = 'cancel';
    job.termAckAt = d.t1;
    if (d.status !== 204) {
      job.unknown = 'cancel';
      if (!d.lost) violation('cancel', `cancel of double-admitted ${job.id} -> ${d.status}`);
    }
    return;
  }
  if (ok.length === 1) {
    job.account = undefined;
    return admitted(run, u, job, ok[0]);
  }
  ledger.reject(job, `${r1.status}/${r2.status}`, Math.max(r1.t1, r2.t1));
}

/** The operator's completion of an executing job (80% completed, 20% failed). */
export async function opComplete(run, u) {
  const { rng, pick, ledger } = run;
  const p = pick(PROVIDER_NAMES);
  if (rng() < 0.06 && u.finished[p].length) return opFinishAgain(run, u, p, 'complete');
  const job = ledger.takeFromPool(u, p);
  if (!job) return opRead(run, u);
  return completeOne(run, u, job);
}

/** Completes `job` (taken from u's pool): 200 with its account and status. */
export async function completeOne(run, u, job) {
  const { rng, ledger, violation } = run;
  const p = job.provider;
  ledger.finishing(job, 'complete');
  const status = rng() < 0.8 ? 'completed' : 'failed';
  const body = { status };
  if (rng() < 0.5) body.result = { url: `https://cdn.example/${job.key}.mp4`, n: ledger.jobSeq };
  job.finalStatus = status;
  const r = await run.target.admin('POST', completePath(u, p, job.id), body, { label: `${p} complete_job` });
  if (r.lost) return ledger.lost(job, 'complete');
  if (r.status !== 200) {
    violation('complete', `complete ${p} ${job.id} (executing on ${job.account}) -> ${r.status} ${r.text}`);
    return ledger.unexpected(job, 'complete');
  }
  ledger.finished(u, job, 'completed', r.t1);
  checkCompletionAnswer(run, job, status, r);
  job.webhookId = (r.json || {}).webhookId;
}

/** The user's public cancel (DELETE) of an executing job: 204, no body. */
export async function opCancel(run, u) {
  const { rng, pick, ledger, violation } = run;
  const p = pick(PROVIDER_NAMES);
  if (rng() < 0.06 && u.finished[p].length) return opFinishAgain(run, u, p, 'cancel');
  const job = ledger.takeFromPool(u, p);
  if (!job) return opRead(run, u);
  ledger.finishing(job, 'cancel');
  const r = await run.target.call('DELETE', cancelPath(p, job.id), { token: u.token, label: `${p} cancel_job` });
  if (r.lost) return ledger.lost(job, 'cancel');
  if (r.status !== 204) {
    violation('cancel', `DELETE ${cancelPath(p, job.id)} (executing on ${job.account}) -> ${r.status} ${r.text}`);
    return ledger.unexpected(job, 'cancel');
  }
  if (r.text !== '') violation('cancel', `204 with a body: ${r.text}`);
  ledger.finished(u, job, 'cancelled', r.t1);
}

/** A second completion or cancel of a finished job: 404, and no second webhook. */
export async function opFinishAgain(run, u, p, kind) {
  const { pick, target, stats, violation } = run;
  const key = pick(u.finished[p]);
  const job = u.jobs[p].get(key);
  const r =
    kind === 'complete'
      ? await target.admin('POST', completePath(u, p, job.id), { status: 'completed' }, { label: `${p} complete_job` })
      : await target.call('DELETE', cancelPath(p, job.id), { token: u.token, label: `${p} cancel_job` });
  if (r.lost) {
    if (kind === 'complete') job.againLost = true;
    return;
  }
  if (r.status !== 404) return violation(kind, `second ${kind} of ${job.state} ${p} ${job.id} -> ${r.status} ${r.text}`);
  if (kind === 'complete') stats.secondCompletion404 += 1;
  else stats.cancelFinished404 += 1;
}

/** A progress report on an executing job: 200, the job with the figure sent. */
export async function opProgress(run, u) {
  const { rng, pick, ledger, stats, violation, target } = run;
  const p = pick(PROVIDER_NAMES);
  const job = ledger.takeFromPool(u, p);
  if (!job) return opRead(run, u);
  job.state = 'busy';
  const value = Math.floor(rng() * 101);
  job.progressSent = (job.progressSent || 0) + 1;
  const seq = job.progressSent;
  stats.progress.sent += 1;
  const r = await target.admin('POST', progressPath(u, p, job.id), { progress: value }, { label: `${p} progress` });
  if (r.lost) {
    job.progressUncertain = true;
  } else if (r.status !== 200) {
    violation('progress', `progress of ${p} ${job.id} (executing on ${job.account}) -> ${r.status} ${r.text}`);
  } else {
    const j = r.json || {};
    const { id } = PROVIDERS[p].ids(j);
    if (String(id) !== String(job.id) || j.account !== job.account || j.progress !== value || !STARTED_RE.test(j.lastProgress ?? '')) {
      violation('progress', `progress ${value} of ${p} ${job.id} on ${job.account} -> ${r.text}`);
    }
    job.progressAck = { value, at: r.t1, seq };
    stats.progress.ok += 1;
  }
  ledger.release(u, job);
}

/**
 * A pause of one of u's accounts: timed (1..4 s, it resumes by itself) or untimed and
 * resumed by this operation 0.3..1.5 s later. One pause or resume per account at a time.
 */
export async function opPause(run, u) {
  const { rng, pick, ledger, stats, violation, target, started } = run;
  const p = pick(PROVIDER_NAMES);
  const a = pick(Object.keys(u.accounts[p]));
  const st = u.pauses[p][a];
  if (st.busy) return opRead(run, u);
  st.busy = true;
  try {
    const seconds = rng() < 0.5 ? 1 + Math.floor(rng() * 4) : undefined;
    const body = {};
    if (seconds) body.seconds = seconds;
    if (rng() < 0.5) body.reason = `load ${ledger.runTag}`;
    const iv = ledger.pauseSent(u, p, a, Date.now());
    const r = await target.admin('POST', accountOpPath(u, p, a, 'pause'), body, { label: `${p} pause` });
    if (r.lost || r.status !== 200) {
      if (!r.lost) violation('pause', `pause ${p} ${a} ${JSON.stringify(body)} -> ${r.status} ${r.text}`);
      ledger.pauseLost(u, p, a, iv);
      return;
    }
    const row = r.json || {};
    let until = Infinity;
    if (seconds) {
      until = Date.parse(row.pausedUntil);
      if (!(until >= r.t0 + seconds * 1000 - 1000 && until <= r.t1 + seconds * 1000 + 1000)) {
        violation('pause', `pause ${p} ${a} for ${seconds} s (sent +${r.t0 - started} ms) -> pausedUntil ${row.pausedUntil}`);
        until = r.t1 + seconds * 1000;
      }
    } else if ('pausedUntil' in row) {
      violation('pause', `untimed pause ${p} ${a} -> ${r.text}`);
    }
    if (row.account !== a || row.paused !== true || row.maxJobs !== u.accounts[p][a] || !(row.executing <= row.maxJobs) || row.reason !== body.reason) {
      violation('pause', `pause ${p} ${a} ${JSON.stringify(body)} -> ${r.text}`);
    }
    ledger.pauseAcked(u, p, a, iv, r.t1, until);
    stats.pauses[seconds ? 'timed' : 'untimed'] += 1;
    if (!seconds) {
      await sleep(300 + Math.floor(rng() * 1200));
      await resumeOne(run, u, p, a);
    }
  } finally {
    st.busy = false;
  }
}

/** A resume of one of u's accounts (paused or not: harmless when not). */
export async function opResume(run, u) {
  const p = run.pick(PROVIDER_NAMES);
  const a = run.pick(Object.keys(u.accounts[p]));
  const st = u.pauses[p][a];
  if (st.busy) return opRead(run, u);
  st.busy = true;
  try {
    await resumeOne(run, u, p, a);
  } finally {
    st.busy = false;
  }
}

/** POST …/resume of u's p account `a`: 200, the row unpaused. */
async function resumeOne(run, u, p, a, extra = {}) {
  const { ledger, stats, violation, target } = run;
  const sentAt = Date.now();
  ledger.resumeSent(u, p, a, sentAt);
  const r = await target.admin('POST', accountOpPath(u, p, a, 'resume'), undefined, { label: `${p} resume`, ...extra });
  if (r.lost || r.status !== 200) {
    if (!r.lost) violation('pause', `resume ${p} ${a} -> ${r.status} ${r.text}`);
    stats.pauses.lost += 1;
    ledger.resumed(u, p, a, sentAt, Infinity);
    return;
  }
  const row = r.json || {};
  if (row.account !== a || row.paused !== false || 'pausedUntil' in row || 'reason' in row || row.maxJobs !== u.accounts[p][a]) {
    violation('pause', `resume ${p} ${a} -> ${r.text}`);
  }
  ledger.resumed(u, p, a, sentAt, r.t1);
  stats.pauses.resumes += 1;
}

/**
 * After a fault (and at the end of the load): resumes every account whose pause or
 * resume lost its answer, so its state is known again.
 */
export async function settlePauses(run, phase = 'reconcile') {
  const { ledger } = run;
  for (const u of ledger.users) {
    for (const p of PROVIDER_NAMES) {
      for (const a of Object.keys(u.accounts[p])) {
        const st = u.pauses[p][a];
        if (st.busy || !ledger.pauseUncertain(u, p, a)) continue;
        st.busy = true;
        try {
          await resumeOne(run, u, p, a, { phase, bypassGate: true });
        } finally {
          st.busy = false;
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------
// The FIFO user: one account with maxJobs 1, only unnamed waiting registrations

/**
 * Sends the FIFO user's waiting registrations (Kling, unnamed, waitSeconds 2..5), one
 * every 250-400 ms while `isRunning()`, at most 6 waiting at once; then waits for those
 * in flight. Each records { t0, epoch, status, admittedAt } in job.fifo for checkFifo.
 * A share (o.fifoAbortRate) are given up by the client after 0.3..1.5 s: the FIFO user's
 * queue is nearly always long, so these are the aborts that really abandon a place.
 */
export async function fifoSender(run, u, isRunning) {
  const inflight = new Set();
  while (isRunning()) {
    if (inflight.size < 6) {
      const p = fifoWaiter(run, u).catch((err) => run.violation('client error', String(err?.stack || err)));
      inflight.add(p);
      p.finally(() => inflight.delete(p));
    }
    await sleep(250 + Math.floor(run.rng() * 150));
  }
  await Promise.all(inflight);
}

async function fifoWaiter(run, u) {
  const { o, rng, ledger, stats, violation, target } = run;
  const waitSeconds = 2 + Math.floor(rng() * 4);
  const job = ledger.newJob(u, 'kling', { named: undefined, expiring: false, withReply: rng() < o.replyRate, waitSeconds });
  job.fifo = { pending: true };
  stats.fifo.waiters += 1;
  stats.waiting.sent += 1;
  const abortAfterMs = rng() < o.fifoAbortRate ? 300 + Math.floor(rng() * Math.min(1500, waitSeconds * 1000 - 400)) : undefined;
  const r = await target.admin('POST', jobsPath(u, 'kling'), registrationBody(job), { label: 'kling register_job (fifo)', abortAfterMs });
  job.fifo = { t0: r.t0, t1: r.t1, epoch: r.epoch, status: r.status, lost: Boolean(r.lost), aborted: Boolean(r.aborted) };
  if (r.aborted) {
    stats.fifo.aborted += 1;
    return ledger.aborted(job, r.abortedAt);
  }
  if (r.lost) {
    stats.fifo.lost += 1;
    return ledger.lost(job, 'register');
  }
  if (r.status === 201) {
    job.fifo.admittedAt = Date.parse(r.json?.started);
    stats.fifo.admitted += 1;
    stats.waiting.admitted += 1;
    if (r.epoch > 0) stats.waiting.admittedAfterRestart += 1;
    stats.waiting.admittedAfterWaitingMs = Math.max(stats.waiting.admittedAfterWaitingMs, r.t1 - r.t0);
    return admitted(run, u, job, r);
  }
  ledger.reject(job, r.status, r.t1);
  if (r.status === 429) {
    stats.fifo.timedOut += 1;
    return rejected429(run, u, job, r);
  }
  violation('register', `fifo register ${JSON.stringify(registrationBody(job))} -> ${r.status} ${r.text}`);
}

/**
 * Completes the FIFO user's executing job every o.fifoHoldMs (default 300-900 ms) while
 * `isRunning()` (slower than the sender, so a queue forms and waiters really wait). When it
 * knows of none, it reads the operator's jobs list instead: a job whose registration
 * answer never came (an aborted waiter the worker admitted anyway) shows up there, is
 * checked (checkList) and taken into the pool, so it does not hold the one slot forever.
 */
export async function fifoCompleter(run, u, isRunning) {
  while (isRunning()) {
    const [lo, hi] = run.o.fifoHoldMs;
    await sleep(lo + Math.floor(run.rng() * (hi - lo)));
    const job = run.ledger.takeFromPool(u, 'kling');
    if (job) await completeOne(run, u, job);
    else await opJobs(run, u, 'kling');
  }
}

// ---------------------------------------------------------------------------------------
// Reading every list: after a fault and at the end

/**
 * Every user's available lists, each checked. Where the public items do not tell their
 * account (providers.mjs itemsNameAccount), the operator's jobs list is read and checked
 * too, and it is the one returned: a job adopted from it, and the final per-account
 * counts, need the account. Returns [{ u, p, seen, jobs (normalised), r }].
 */
export async function readAll(run, phase, what) {
  const out = [];
  for (const u of run.ledger.users) {
    for (const p of PROVIDER_NAMES) {
      const path = `${PROVIDERS[p].path}/available`;
      let r = await run.target.call('GET', path, { token: u.token, label: `${p} list_available`, phase, bypassGate: true });
      if (r.lost || r.status !== 200) {
        run.violation('read', `${what}: GET ${path} as ${u.user} -> ${r.status} ${r.error || r.text}`);
        continue;
      }
      let norm = normalise(p, r.json);
      let seen = checkList(run, u, p, `${what} GET ${path}`, r, r.json, norm);
      if (!PROVIDERS[p].itemsNameAccount) {
        r = await run.target.admin('GET', jobsPath(u, p), undefined, { label: `${p} list_operator_jobs`, phase, bypassGate: true });
        if (r.lost || r.status !== 200) {
          run.violation('read', `${what}: GET ${jobsPath(u, p)} -> ${r.status} ${r.error || r.text}`);
          continue;
        }
        norm = normaliseJobs(p, r.json);
        seen = checkList(run, u, p, `${what} GET ${jobsPath(u, p)}`, r, r.json, norm);
      }
      out.push({ u, p, seen, jobs: norm.jobs, r });
    }
  }
  return out;
}

/** Decides every unknown outcome (a lost answer) from fresh reads of the lists. */
export async function reconcile(run, what) {
  const lists = await readAll(run, 'reconcile', what);
  for (const { u, p, seen, jobs, r } of lists) run.ledger.settle(u, p, seen, jobs, r);
}
