// What the simulated users do: each kind of request as one small function that sends
// it (through Target.call, target.mjs), writes the answer into the ledger and checks
// what can be checked of it at once. oneOp() picks one at random, weighted so that
// registrations outnumber completions and cancels (accounts run full and admissions
// race at the limit: 429s). Also the setup of the users and the reads of every user's
// lists that settle unknown outcomes after a fault (reconcile).
//
// `run` is the state of one run (runner.mjs): o (options), rng, pick, stats, violation,
// ledger, target.

import { issueToken, putAccount } from '../support/fixtures.mjs';
import { checkAccountRows, checkAdmission, checkCompletionAnswer, checkList, normalise } from './invariants.mjs';
import { accountsFor, PROVIDERS } from './ledger.mjs';

export const LIST_ROUTES = [
  ['kling', '/v1/kling/scheduler', 'list_jobs'],
  ['kling', '/v1/kling/scheduler/available', 'list_available'],
  ['dreamina', '/v1/dreamina/scheduler', 'list_jobs'],
  ['dreamina', '/v1/dreamina/scheduler/available', 'list_available'],
];

const jobsPath = (u, p) => `/admin/v1/users/${u.user}/${p}/jobs`;
const completePath = (u, p, id) => `/admin/v1/users/${u.user}/${p}/jobs/${encodeURIComponent(String(id))}/complete`;
const cancelPath = (p, id) => `/v1/${p}/scheduler/${encodeURIComponent(String(id))}`;

/** The registration request body for a ledger job. */
export function registrationBody(job) {
  const b = {};
  if (job.provider === 'kling') {
    b.id = job.id;
    if (job.account) b.email = job.account;
  } else {
    b.submitId = job.key;
    b.model = 'seedance-2.0';
    if (job.id) b.jobid = job.id;
    if (job.account) b.account = job.account;
  }
  if (job.replyUrl) {
    b.replyUrl = job.replyUrl;
    b.replyRef = `ref-${job.key}`;
  }
  if (job.startedMs !== undefined) b.started = new Date(job.startedMs).toISOString();
  return b;
}

/** o.users users, each with a token and its accounts (ledger.accountsFor). */
export async function setupUsers(run) {
  const { o, target, ledger, stats } = run;
  for (let i = 0; i < o.users; i++) {
    const user = ledger.userId(i);
    const accounts = accountsFor(i, o.maxJobs);
    const token = await issueToken(target.url, user);
    stats.requests += 1;
    stats.byPhase.setup += 1;
    for (const p of PROVIDERS) {
      for (const [a, m] of Object.entries(accounts[p])) {
        await putAccount(target.url, user, p, a, m);
        stats.requests += 1;
        stats.byPhase.setup += 1;
      }
    }
    ledger.addUser(i, user, token, accounts);
  }
}

/** One operation of user u, picked at random. */
export async function oneOp(run, u) {
  const x = run.rng();
  // Registrations outnumber completions and cancels, so accounts run full and
  // admission races at the limit (429s).
  if (x < 0.3) return opRead(run, u);
  if (x < 0.34) return opAccounts(run, u);
  if (x < 0.7) return opRegister(run, u);
  if (x < 0.88) return opComplete(run, u);
  return opCancel(run, u);
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
  const p = run.pick(PROVIDERS);
  const path = `/admin/v1/users/${u.user}/${p}/accounts`;
  const r = await run.target.admin('GET', path, undefined, { label: 'list_accounts', phase });
  if (r.lost) return;
  if (r.status !== 200) return run.violation('read', `GET ${path} -> ${r.status} ${r.text}`);
  checkAccountRows(run, u, p, r.json, `GET ${path}`);
}

/** A 201 to job's registration: checked, then recorded. */
function admitted(run, u, job, r) {
  checkAdmission(run, u, job, r);
  run.ledger.admit(u, job, r);
}

/**
 * A registration of a new job (sometimes naming an account, back-dated to expire soon,
 * with a replyUrl); a share are duplicates (opDuplicate) or races (opRace) instead.
 */
export async function opRegister(run, u) {
  const { o, rng, pick, ledger, stats, violation } = run;
  const p = pick(PROVIDERS);
  const x = rng();
  if (x < o.dupRate) return opDuplicate(run, u, p);
  if (x < o.dupRate + o.raceRate) return opRace(run, u, p);
  const named = rng() < 0.15 ? pick(Object.keys(u.accounts[p])) : undefined;
  const job = ledger.newJob(u, p, { named, expiring: rng() < o.expiryRate, withReply: rng() < o.replyRate });
  const r = await run.target.admin('POST', jobsPath(u, p), registrationBody(job), { label: `${p} register_job` });
  if (r.lost) return ledger.lost(job, 'register');
  if (r.status === 201) return admitted(run, u, job, r);
  ledger.reject(job, r.status, r.t1);
  if (r.status === 429) {
    stats.rejected429 += 1;
    if (r.json?.error !== 'All accounts are at maxJobs capacity' || r.json?.code !== 429) {
      violation('bad 429', `${p} register -> ${r.text}`);
    }
    if (job.seenListed) violation('rejected job listed', `${p} ${job.key} answered 429 but was listed`);
    return;
  }
  violation('register', `${p} register ${JSON.stringify(registrationBody(job))} -> ${r.status} ${r.text}`);
}

/** Re-registering an executing id: always 409, the job stays once. */
export async function opDuplicate(run, u, p) {
  const { rng, pick, ledger, stats, violation } = run;
  const job = ledger.takeFromPool(u, p);
  if (!job) return opRead(run, u);
  job.state = 'busy';
  const others = Object.keys(u.accounts[p]).filter((a) => a !== job.account);
  const b = p === 'kling' ? { id: job.id } : { submitId: `${job.key}-again`, model: 'm', jobid: job.id };
  if (rng() < 0.5 && others.length) b[p === 'kling' ? 'email' : 'account'] = pick(others);
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
  if (p === 'dreamina' && !job.id) job.id = `job-${ledger.runTag}-${ledger.jobSeq}`;
  stats.races += 1;
  const b1 = registrationBody(job);
  const b2 = { ...b1, [p === 'kling' ? 'email' : 'account']: a2 };
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
  const { rng, pick, ledger, violation } = run;
  const p = pick(PROVIDERS);
  if (rng() < 0.06 && u.finished[p].length) return opFinishAgain(run, u, p, 'complete');
  const job = ledger.takeFromPool(u, p);
  if (!job) return opRead(run, u);
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
  const p = pick(PROVIDERS);
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

// ---------------------------------------------------------------------------------------
// Reading every list: after a fault and at the end

/** Every user's available lists (each checked); [{ u, p, seen, r }]. */
export async function readAll(run, phase, what) {
  const out = [];
  for (const u of run.ledger.users) {
    for (const p of PROVIDERS) {
      const path = `/v1/${p}/scheduler/available`;
      const r = await run.target.call('GET', path, { token: u.token, label: `${p} list_available`, phase, bypassGate: true });
      if (r.lost || r.status !== 200) {
        run.violation('read', `${what}: GET ${path} as ${u.user} -> ${r.status} ${r.error || r.text}`);
        continue;
      }
      const seen = checkList(run, u, p, `${what} GET ${path}`, r, r.json);
      out.push({ u, p, seen, r });
    }
  }
  return out;
}

/** Decides every unknown outcome (a lost answer) from fresh reads of the lists. */
export async function reconcile(run, what) {
  const lists = await readAll(run, 'reconcile', what);
  for (const { u, p, seen, r } of lists) run.ledger.settle(u, p, seen, normalise(p, r.json).jobs, r);
}
