#!/usr/bin/env node
// Load test with invariants (issue 5). Several simulated users, each with its own token
// and 2-3 accounts per provider (small maxJobs), read (lists, available, the operator's
// account list) and write (register with a replyUrl to a real local receiver, complete,
// public cancel) at once, for a fixed number of requests. A client-side ledger records
// what every answer said; the invariants are checked during the run and afterwards:
//
//   (a) capacity: no account ever shows more executing jobs than its maxJobs, in any
//       operator account list or public list sampled during the run;
//   (b) conservation: every registered job (201) is exactly one of still listed,
//       completed (200) or cancelled (204) (or expired, for the back-dated ones); none
//       lost, none listed twice, no list shows a job this user never registered, a
//       finished job never shows up again;
//   (c) webhooks: every 2xx completion of a job with a replyUrl produced exactly one
//       delivered webhook event id (retries of one id count once: delivery is at least
//       once), the id the completion answered with; no webhook id arrives that no
//       completion or expiry produced; the queue drains;
//   and no 5xx, no network error, no request without an answer outside a fault window.
//
// Faults (`--kills N`, or tests/load/faults.mjs): the wrangler process group is SIGKILLed
// N times at evenly spaced points of the run and restarted on the same --persist-to
// directory. Writes whose answer was lost are "unknown outcome" and are reconciled from
// the lists right after the restart (a lost register may or may not have landed; a lost
// completion may or may not have queued a webhook); then the same invariants hold.
//
// Node 20, no npm dependencies; imports the e2e harness (startWorker, startReceiver).
//
//   node tests/load/load.mjs [--users 6] [--requests 2000] [--concurrency 3]
//        [--kills 0] [--max-jobs 3] [--seed N] [--url URL --admin-token T] [--json]
//
// As a module: `const report = await runLoad({ users, requests, kills, ... })`;
// report.violations is the list of broken invariants (empty on success).

import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  ADMIN_TOKEN,
  issueToken,
  putAccount,
  sleep,
  startReceiver,
  startWorker,
  verifyWebhookSignature,
} from '../e2e/harness.mjs';

const KLING_ACCOUNTS = ['a@x.com', 'b@x.com', 'c@x.com'];
const DREAMINA_ACCOUNTS = ['EU:b@x.com', 'JP:c@x.com', 'US:a@x.com'];
const PROVIDERS = ['kling', 'dreamina'];
const REQUEST_TIMEOUT_MS = 30_000;

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

// ---------------------------------------------------------------------------------------
// Small helpers

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

/** The wrangler process (group leader) serving `port` from `persistDir`, by /proc. */
function wranglerPid(port, persistDir) {
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    let args;
    let stat;
    try {
      args = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
      stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
    } catch {
      continue;
    }
    const pgid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
    const i = args.indexOf('--port');
    if (pgid === Number(d) && i >= 0 && args[i + 1] === String(port) && args.includes(persistDir)) {
      return Number(d);
    }
  }
  return undefined;
}

function alive(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------

export async function runLoad(options = {}) {
  const o = { ...DEFAULTS, ...options };
  const seed = o.seed ?? (Date.now() % 2 ** 31);
  const rng = mulberry32(seed);
  const pick = (arr) => arr[Math.floor(rng() * arr.length)];
  const say = (...a) => o.progress && console.error('[load]', ...a);
  const started = Date.now();

  const violations = [];
  const violationCounts = {};
  const violation = (kind, detail) => {
    violationCounts[kind] = (violationCounts[kind] || 0) + 1;
    if (violations.length < 500) violations.push({ kind, detail, atMs: Date.now() - started });
  };

  const stats = {
    requests: 0, // every HTTP request sent to the worker
    byPhase: { setup: 0, load: 0, sampler: 0, reconcile: 0, final: 0 },
    byRoute: {}, // "METHOD label" -> { status: count }
    networkErrors: 0,
    lostInFault: 0,
    fault5xx: 0,
    devReloads: 0, // 503s from wrangler dev's proxy during a reload (environment)
    registered: 0,
    rejected429: 0,
    completed: 0,
    cancelled: 0,
    dup409: 0,
    races: 0,
    raceDoubleAdmits: 0,
    secondCompletion404: 0,
    cancelFinished404: 0,
    capacitySamples: 0,
    peakExecuting: 0,
    webhookRequests: 0,
    webhookDistinctIds: 0,
    webhookFirstAttemptFailures: 0,
    unknown: { register: 0, complete: 0, cancel: 0 },
    resolved: { landed: 0, notLanded: 0, completed: 0, completeNotLanded: 0, cancelled: 0, cancelNotLanded: 0 },
  };
  const faults = [];
  const environment = []; // events of the local dev server that are not the worker's

  // -------------------------------------------------------------------------------------
  // The worker, the receiver and the target that the request loops use.

  const secret = `whsec_${randomBytes(32).toString('base64')}`;
  const vars = {
    WEBHOOK_SECRET: secret,
    WEBHOOK_RETRY_SCHEDULE: '1,1,2,2,3,5,5,5',
    JOB_TIMEOUT_SECONDS: String(o.timeoutSeconds),
  };
  const external = Boolean(o.url);
  if (external && o.kills > 0) throw new Error('--kills needs a worker this run starts (no --url)');
  const target = { url: o.url, worker: undefined, epoch: 0, down: false, gate: null, inflight: 0 };
  if (!external) {
    target.worker = await startWorker({ vars, adminToken: o.adminToken });
    target.url = target.worker.url;
  }
  const persistDir = target.worker?.persistDir;
  const logFiles = target.worker ? [target.worker.logFile] : [];

  // webhook id -> { attempts, delivered, path, bodies: Set, firstStatus }
  const hooks = new Map();
  const receiver = await startReceiver((rec) => {
    const id = rec.headers['webhook-id'] || '(none)';
    let h = hooks.get(id);
    const first = !h;
    if (!h) {
      h = { attempts: 0, delivered: 0, paths: new Set(), bodies: new Set(), signedOk: true };
      hooks.set(id, h);
    }
    h.attempts += 1;
    h.paths.add(rec.url);
    h.bodies.add(rec.body);
    if (secret && !verifyWebhookSignature(secret, rec)) h.signedOk = false;
    if (first && rng() < o.receiverFailRate) {
      stats.webhookFirstAttemptFailures += 1;
      return 500;
    }
    h.delivered += 1;
    return 200;
  });

  // -------------------------------------------------------------------------------------
  // HTTP

  function record(method, label, status) {
    const k = `${method} ${label}`;
    stats.byRoute[k] ??= {};
    stats.byRoute[k][status] = (stats.byRoute[k][status] || 0) + 1;
  }

  /**
   * One request. Never throws. Returns { status, json, text, t0, t1 } or, when no answer
   * came back, { status: 0, error, lost: true }. A 5xx or a network error is a violation
   * unless the server was killed while the request was in flight (then it is "lost").
   */
  async function call(method, path, { token, body, label, phase = 'load', bypassGate = false } = {}) {
    if (!bypassGate) while (target.gate) await target.gate;
    const epoch = target.epoch;
    const url = target.url;
    const headers = {};
    if (token) headers.authorization = `Bearer ${token}`;
    let payload;
    if (body !== undefined) {
      payload = JSON.stringify(body);
      headers['content-type'] = 'application/json';
    }
    stats.requests += 1;
    stats.byPhase[phase] += 1;
    target.inflight += 1;
    const t0 = Date.now();
    try {
      const res = await fetch(url + path, {
        method,
        headers,
        body: payload,
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
      const text = await res.text();
      const t1 = Date.now();
      let json;
      try {
        json = text ? JSON.parse(text) : undefined;
      } catch {
        json = undefined;
      }
      record(method, label, res.status);
      if (res.status >= 500) {
        if (res.status === 503 && text.startsWith('Your worker restarted mid-request')) {
          // Not the worker: wrangler dev's proxy answers this for a non-GET request in
          // flight while wrangler reloads the runtime (it watches src/ and the build, so
          // an edit by someone else does it). The outcome is unknown; reconciled later.
          stats.devReloads += 1;
          environment.push(`+${t1 - started} ms ${method} ${path}: wrangler dev reloaded the worker mid-request (503 from its proxy)`);
          return { status: res.status, text, t0, t1, lost: true };
        }
        if (target.down || target.epoch !== epoch) {
          stats.fault5xx += 1;
          return { status: res.status, text, t0, t1, lost: true };
        }
        violation('5xx', `${method} ${path} -> ${res.status}: ${text.slice(0, 300)}`);
        return { status: res.status, json, text, t0, t1, lost: true };
      }
      return { status: res.status, json, text, t0, t1 };
    } catch (err) {
      const t1 = Date.now();
      record(method, label, 'no answer');
      const error = String(err?.cause?.code || err?.name || err);
      if (target.down || target.epoch !== epoch) {
        stats.lostInFault += 1;
      } else {
        stats.networkErrors += 1;
        violation('no answer', `${method} ${path}: ${error} after ${t1 - t0} ms`);
      }
      return { status: 0, error, t0, t1, lost: true };
    } finally {
      target.inflight -= 1;
    }
  }

  const admin = (method, path, body, extra = {}) =>
    call(method, path, { token: o.adminToken, body, ...extra });

  // -------------------------------------------------------------------------------------
  // Users, accounts, ledger

  const runTag = `L${seed.toString(36)}${Math.floor(rng() * 1e4)}`;
  const users = [];
  for (let i = 0; i < o.users; i++) {
    const user = `${runTag}_${i}`;
    const nK = 2 + (i % 2);
    const nD = 3 - (i % 2);
    const accounts = {
      kling: Object.fromEntries(KLING_ACCOUNTS.slice(0, nK).map((a, j) => [a, j === 0 ? Math.max(1, o.maxJobs - 1) : o.maxJobs])),
      dreamina: Object.fromEntries(DREAMINA_ACCOUNTS.slice(0, nD).map((a, j) => [a, j === 1 ? Math.max(1, o.maxJobs - 1) : o.maxJobs])),
    };
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
    users.push({
      i,
      user,
      token,
      accounts,
      jobs: { kling: new Map(), dreamina: new Map() }, // key -> job
      pool: { kling: [], dreamina: [] }, // keys of executing jobs free for an operation
      finished: { kling: [], dreamina: [] }, // keys of completed/cancelled jobs
    });
  }
  say(`seed ${seed}, ${users.length} users x ${o.requests} requests, concurrency ${o.concurrency}/user, kills ${o.kills}, worker ${target.url}`);

  let klingSeq = 1 + Math.floor(rng() * 1e6) * 1000;
  let jobSeq = 0;

  function newJob(u, p, { named, expiring, withReply }) {
    jobSeq += 1;
    const job = {
      user: u.user,
      provider: p,
      key: p === 'kling' ? String(klingSeq++) : `sub-${runTag}-${jobSeq}`,
      id: undefined, // Kling task id (number) or Dreamina jobid, once known
      account: named,
      replyUrl: undefined,
      deadline: undefined,
      state: 'registering',
      regSentAt: Date.now(),
      regAckAt: undefined,
      termSentAt: undefined,
      termAckAt: undefined,
      termKind: undefined,
      finalStatus: undefined,
      webhookId: undefined,
      unknown: undefined,
      seenListed: false,
    };
    if (p === 'kling') job.id = Number(job.key);
    else if (rng() < 0.3) job.id = `job-${runTag}-${jobSeq}`; // an explicit jobid
    if (withReply) job.replyUrl = `${receiver.url}/hook/${u.user}/${p}/${encodeURIComponent(job.key)}`;
    if (expiring) {
      const left = 3000 + Math.floor(rng() * 9000);
      job.startedMs = Date.now() - o.timeoutSeconds * 1000 + left;
      job.deadline = job.startedMs + o.timeoutSeconds * 1000;
    }
    u.jobs[p].set(job.key, job);
    return job;
  }

  function registrationBody(job) {
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

  const jobsPath = (u, p) => `/admin/v1/users/${u.user}/${p}/jobs`;
  const completePath = (u, p, id) => `/admin/v1/users/${u.user}/${p}/jobs/${encodeURIComponent(String(id))}/complete`;
  const cancelPath = (p, id) => `/v1/${p}/scheduler/${encodeURIComponent(String(id))}`;

  function takeFromPool(u, p) {
    const pool = u.pool[p];
    if (!pool.length) return undefined;
    const i = Math.floor(rng() * pool.length);
    const key = pool[i];
    pool[i] = pool[pool.length - 1];
    pool.pop();
    return u.jobs[p].get(key);
  }

  function admitted(u, job, r) {
    job.regAckAt = r.t1;
    const body = r.json || {};
    const cfg = u.accounts[job.provider];
    if (!(body.account in cfg)) violation('bad 201', `${job.provider} ${job.key}: account ${body.account} is not configured for ${u.user}`);
    if (job.account && body.account !== job.account) violation('bad 201', `${job.key}: named ${job.account}, admitted on ${body.account}`);
    job.account = body.account;
    if (job.provider === 'kling') {
      if (body.id !== job.id) violation('bad 201', `kling 201 id ${body.id}, sent ${job.id}`);
    } else {
      if (body.submitId !== job.key) violation('bad 201', `dreamina 201 submitId ${body.submitId}, sent ${job.key}`);
      if (job.id && body.jobid !== job.id) violation('bad 201', `dreamina 201 jobid ${body.jobid}, sent ${job.id}`);
      job.id = body.jobid;
    }
    stats.registered += 1;
    if (job.deadline !== undefined) {
      job.state = 'expiring';
    } else {
      job.state = 'executing';
      u.pool[job.provider].push(job.key);
    }
  }

  // -------------------------------------------------------------------------------------
  // Reading lists and checking them against the ledger

  /** Normalises a public list/available answer: { jobs: [{key, id, account, started}], rows? } */
  function normalise(p, json) {
    const jobs = [];
    let rows;
    if (p === 'kling') {
      const list = Array.isArray(json) ? json : json?.executing;
      for (const it of list || []) jobs.push({ key: String(it.id), id: it.id, account: it.email, started: it.started });
      if (!Array.isArray(json)) rows = json?.available?.map((r) => ({ account: r.email, ...r }));
    } else {
      for (const [account, items] of Object.entries(json?.executing || {})) {
        for (const it of items) jobs.push({ key: it.submitId, id: it.jobid, account });
      }
      rows = json?.available;
    }
    return { jobs, rows };
  }

  /** Checks one public list read made in [t0, t1] for user u, provider p. */
  function checkList(u, p, what, r, json) {
    const { jobs: items, rows } = normalise(p, json);
    const cfg = u.accounts[p];
    const perAccount = {};
    const seen = new Map();
    for (const it of items) {
      perAccount[it.account] = (perAccount[it.account] || 0) + 1;
      if (!(it.account in cfg)) violation('isolation', `${what} of ${u.user} lists account ${it.account}, not one of the user's`);
      if (seen.has(it.key) && !u.jobs[p].get(it.key)?.doubled) violation('duplicate in list', `${what} of ${u.user} lists ${p} job ${it.key} twice (${seen.get(it.key)} and ${it.account})`);
      seen.set(it.key, it.account);
      const job = u.jobs[p].get(it.key);
      if (!job) {
        violation('phantom job', `${what} of ${u.user} lists ${p} job ${it.key} (${it.id}) that this user never registered`);
        continue;
      }
      job.seenListed = true;
      if (job.id !== undefined && job.regAckAt !== undefined && String(job.id) !== String(it.id)) {
        violation('wrong job', `${what}: ${p} ${it.key} listed as ${it.id}, registered as ${job.id}`);
      }
      if (job.account && job.regAckAt !== undefined && job.account !== it.account) {
        violation('wrong job', `${what}: ${p} ${it.key} listed on ${it.account}, admitted on ${job.account}`);
      }
      if ((job.state === 'rejected' || job.state === 'not-landed') && job.regAckAt === undefined && job.rejectedAt < r.t0) {
        violation('rejected job listed', `${what}: ${p} ${it.key} was answered ${job.rejectStatus} but is listed`);
      }
      if (job.termAckAt !== undefined && job.termAckAt < r.t0) {
        violation('finished job listed', `${what} at +${r.t0 - started} ms: ${p} ${it.key} was ${job.state} at +${job.termAckAt - started} ms but is still listed`);
      }
      if (job.deadline !== undefined && job.deadline + 1500 < r.t0) {
        violation('expired job listed', `${what}: ${p} ${it.key} passed its timeout ${r.t0 - job.deadline} ms before the read, still listed`);
      }
    }
    for (const [account, n] of Object.entries(perAccount)) {
      stats.peakExecuting = Math.max(stats.peakExecuting, n);
      if (n > cfg[account]) violation('over maxJobs', `${what} of ${u.user}: ${account} has ${n} executing, maxJobs ${cfg[account]}`);
    }
    if (p === 'kling') {
      for (let i = 1; i < items.length; i++) {
        if (items[i - 1].started > items[i].started) {
          violation('order', `${what} of ${u.user}: not oldest first at ${i}`);
          break;
        }
      }
    }
    if (p === 'dreamina' && json && json.total !== items.length) {
      violation('total', `${what} of ${u.user}: total ${json.total}, ${items.length} items`);
    }
    if (rows) {
      const names = rows.map((x) => x.account);
      const want = Object.keys(cfg).sort();
      if (JSON.stringify(names) !== JSON.stringify(want)) {
        violation('isolation', `${what} of ${u.user}: available accounts ${names}, configured ${want}`);
      }
      for (const row of rows) {
        const n = perAccount[row.account] || 0;
        if (row.executing > row.maxJobs) violation('over maxJobs', `${what} of ${u.user}: ${row.account} executing ${row.executing} > maxJobs ${row.maxJobs}`);
        if (row.maxJobs !== cfg[row.account]) violation('available', `${what}: ${row.account} maxJobs ${row.maxJobs}, configured ${cfg[row.account]}`);
        if (row.executing !== n) violation('available', `${what}: ${row.account} executing ${row.executing} but ${n} listed`);
        if (row.available !== Math.max(0, row.maxJobs - row.executing)) violation('available', `${what}: ${row.account} available ${row.available} with ${row.executing}/${row.maxJobs}`);
      }
    }
    // Every job acknowledged before the read began, and not being finished while it ran,
    // must be there.
    for (const job of u.jobs[p].values()) {
      if (job.regAckAt === undefined || job.regAckAt >= r.t0) continue;
      if (job.unknown) continue;
      if (job.termSentAt !== undefined && job.termSentAt <= r.t1) continue;
      if (job.deadline !== undefined && job.deadline - 1500 <= r.t1) continue;
      if (job.state !== 'executing' && job.state !== 'expiring' && job.state !== 'busy') continue;
      if (!seen.has(job.key)) {
        violation('lost job', `${what} of ${u.user} at +${r.t0 - started} ms: ${p} job ${job.key} (${job.id}, 201 at +${job.regAckAt - started} ms on ${job.account}) is missing`);
      }
    }
    return seen;
  }

  function checkAccountRows(u, p, rows, what) {
    const cfg = u.accounts[p];
    stats.capacitySamples += 1;
    if (!Array.isArray(rows)) {
      violation('accounts', `${what}: not an array`);
      return;
    }
    const names = rows.map((x) => x.account);
    if (JSON.stringify(names) !== JSON.stringify(Object.keys(cfg).sort())) {
      violation('accounts', `${what} of ${u.user}: ${names}, configured ${Object.keys(cfg).sort()}`);
    }
    for (const row of rows) {
      stats.peakExecuting = Math.max(stats.peakExecuting, row.executing);
      if (row.executing > row.maxJobs || row.executing > cfg[row.account]) {
        violation('over maxJobs', `${what} of ${u.user}: ${row.account} executing ${row.executing}, maxJobs ${row.maxJobs}`);
      }
    }
  }

  const LIST_ROUTES = [
    ['kling', '/v1/kling/scheduler', 'list_jobs'],
    ['kling', '/v1/kling/scheduler/available', 'list_available'],
    ['dreamina', '/v1/dreamina/scheduler', 'list_jobs'],
    ['dreamina', '/v1/dreamina/scheduler/available', 'list_available'],
  ];

  // -------------------------------------------------------------------------------------
  // Operations

  async function opRead(u) {
    const [p, path, label] = pick(LIST_ROUTES);
    const r = await call('GET', path, { token: u.token, label: `${p} ${label}` });
    if (r.lost) return;
    if (r.status !== 200) return violation('read', `GET ${path} as ${u.user} -> ${r.status} ${r.text}`);
    checkList(u, p, `GET ${path}`, r, r.json);
  }

  async function opAccounts(u, phase = 'load') {
    const p = pick(PROVIDERS);
    const path = `/admin/v1/users/${u.user}/${p}/accounts`;
    const r = await admin('GET', path, undefined, { label: 'list_accounts', phase });
    if (r.lost) return;
    if (r.status !== 200) return violation('read', `GET ${path} -> ${r.status} ${r.text}`);
    checkAccountRows(u, p, r.json, `GET ${path}`);
  }

  async function opRegister(u) {
    const p = pick(PROVIDERS);
    const x = rng();
    if (x < o.dupRate) return opDuplicate(u, p);
    if (x < o.dupRate + o.raceRate) return opRace(u, p);
    const named = rng() < 0.15 ? pick(Object.keys(u.accounts[p])) : undefined;
    const job = newJob(u, p, { named, expiring: rng() < o.expiryRate, withReply: rng() < o.replyRate });
    const r = await admin('POST', jobsPath(u, p), registrationBody(job), { label: `${p} register_job` });
    if (r.lost) {
      job.state = 'unknown';
      job.unknown = 'register';
      stats.unknown.register += 1;
      return;
    }
    if (r.status === 201) return admitted(u, job, r);
    job.state = 'rejected';
    job.rejectStatus = r.status;
    job.rejectedAt = r.t1;
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
  async function opDuplicate(u, p) {
    const job = takeFromPool(u, p);
    if (!job) return opRead(u);
    job.state = 'busy';
    const others = Object.keys(u.accounts[p]).filter((a) => a !== job.account);
    const b = p === 'kling' ? { id: job.id } : { submitId: `${job.key}-again`, model: 'm', jobid: job.id };
    if (rng() < 0.5 && others.length) b[p === 'kling' ? 'email' : 'account'] = pick(others);
    const r = await admin('POST', jobsPath(u, p), b, { label: `${p} register_job` });
    if (r.lost) {
      // May have landed as a second copy only if the worker has the bug this checks.
      job.unknownDup = true;
    } else if (r.status === 409) {
      stats.dup409 += 1;
    } else {
      violation('duplicate admitted', `re-register executing ${p} ${job.id} ${JSON.stringify(b)} -> ${r.status} ${r.text}`);
    }
    job.state = 'executing';
    u.pool[p].push(job.key);
  }

  /**
   * Two registrations of one new id sent at once, naming two different accounts (a
   * gateway retrying while its first attempt is still in flight): exactly one is 201,
   * the other 409 (or 429 when full). Double admissions are cancelled again (one public
   * DELETE stops tracking both copies) so the rest of the run stays checkable.
   */
  async function opRace(u, p) {
    const accts = Object.keys(u.accounts[p]);
    const [a1, a2] = [accts[0], accts[1]];
    const job = newJob(u, p, { named: a1, expiring: false, withReply: true });
    if (p === 'dreamina' && !job.id) job.id = `job-${runTag}-${jobSeq}`;
    stats.races += 1;
    const b1 = registrationBody(job);
    const b2 = { ...b1, [p === 'kling' ? 'email' : 'account']: a2 };
    const [r1, r2] = await Promise.all([
      admin('POST', jobsPath(u, p), b1, { label: `${p} register_job` }),
      admin('POST', jobsPath(u, p), b2, { label: `${p} register_job` }),
    ]);
    if (r1.lost || r2.lost) {
      job.state = 'unknown';
      job.unknown = 'register';
      stats.unknown.register += 1;
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
      const d = await call('DELETE', cancelPath(p, job.id), { token: u.token, label: `${p} cancel_job` });
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
      return admitted(u, job, ok[0]);
    }
    job.state = 'rejected';
    job.rejectStatus = `${r1.status}/${r2.status}`;
    job.rejectedAt = Math.max(r1.t1, r2.t1);
  }

  async function opComplete(u) {
    const p = pick(PROVIDERS);
    if (rng() < 0.06 && u.finished[p].length) return opFinishAgain(u, p, 'complete');
    const job = takeFromPool(u, p);
    if (!job) return opRead(u);
    job.state = 'busy';
    job.termSentAt = Date.now();
    job.termKind = 'complete';
    const status = rng() < 0.8 ? 'completed' : 'failed';
    const body = { status };
    if (rng() < 0.5) body.result = { url: `https://cdn.example/${job.key}.mp4`, n: jobSeq };
    job.finalStatus = status;
    const r = await admin('POST', completePath(u, p, job.id), body, { label: `${p} complete_job` });
    if (r.lost) {
      job.state = 'unknown';
      job.unknown = 'complete';
      stats.unknown.complete += 1;
      return;
    }
    if (r.status !== 200) {
      violation('complete', `complete ${p} ${job.id} (executing on ${job.account}) -> ${r.status} ${r.text}`);
      job.state = 'unknown';
      job.unknown = 'complete';
      return;
    }
    job.state = 'completed';
    job.termAckAt = r.t1;
    stats.completed += 1;
    u.finished[p].push(job.key);
    const j = r.json || {};
    if (j.account !== job.account) violation('complete', `complete ${p} ${job.id}: account ${j.account}, admitted on ${job.account}`);
    if (j.status !== status) violation('complete', `complete ${p} ${job.id}: status ${j.status}, sent ${status}`);
    if (job.replyUrl && !j.webhookId) violation('webhook', `complete ${p} ${job.id} with a replyUrl answered without webhookId: ${r.text}`);
    if (!job.replyUrl && j.webhookId) violation('webhook', `complete ${p} ${job.id} without replyUrl answered webhookId ${j.webhookId}`);
    job.webhookId = j.webhookId;
  }

  async function opCancel(u) {
    const p = pick(PROVIDERS);
    if (rng() < 0.06 && u.finished[p].length) return opFinishAgain(u, p, 'cancel');
    const job = takeFromPool(u, p);
    if (!job) return opRead(u);
    job.state = 'busy';
    job.termSentAt = Date.now();
    job.termKind = 'cancel';
    const r = await call('DELETE', cancelPath(p, job.id), { token: u.token, label: `${p} cancel_job` });
    if (r.lost) {
      job.state = 'unknown';
      job.unknown = 'cancel';
      stats.unknown.cancel += 1;
      return;
    }
    if (r.status !== 204) {
      violation('cancel', `DELETE ${cancelPath(p, job.id)} (executing on ${job.account}) -> ${r.status} ${r.text}`);
      job.state = 'unknown';
      job.unknown = 'cancel';
      return;
    }
    if (r.text !== '') violation('cancel', `204 with a body: ${r.text}`);
    job.state = 'cancelled';
    job.termAckAt = r.t1;
    stats.cancelled += 1;
    u.finished[p].push(job.key);
  }

  /** A second completion or cancel of a finished job: 404, and no second webhook. */
  async function opFinishAgain(u, p, kind) {
    const key = pick(u.finished[p]);
    const job = u.jobs[p].get(key);
    const r =
      kind === 'complete'
        ? await admin('POST', completePath(u, p, job.id), { status: 'completed' }, { label: `${p} complete_job` })
        : await call('DELETE', cancelPath(p, job.id), { token: u.token, label: `${p} cancel_job` });
    if (r.lost) {
      if (kind === 'complete') job.againLost = true;
      return;
    }
    if (r.status !== 404) return violation(kind, `second ${kind} of ${job.state} ${p} ${job.id} -> ${r.status} ${r.text}`);
    if (kind === 'complete') stats.secondCompletion404 += 1;
    else stats.cancelFinished404 += 1;
  }

  async function oneOp(u) {
    const x = rng();
    // Registrations outnumber completions and cancels, so accounts run full and
    // admission races at the limit (429s).
    if (x < 0.3) return opRead(u);
    if (x < 0.34) return opAccounts(u);
    if (x < 0.7) return opRegister(u);
    if (x < 0.88) return opComplete(u);
    return opCancel(u);
  }

  // -------------------------------------------------------------------------------------
  // Reconciliation: decide unknown outcomes from the lists.

  async function readAll(phase, what) {
    const out = [];
    for (const u of users) {
      for (const p of PROVIDERS) {
        const path = `/v1/${p}/scheduler/available`;
        const r = await call('GET', path, { token: u.token, label: `${p} list_available`, phase, bypassGate: true });
        if (r.lost || r.status !== 200) {
          violation('read', `${what}: GET ${path} as ${u.user} -> ${r.status} ${r.error || r.text}`);
          continue;
        }
        const seen = checkList(u, p, `${what} GET ${path}`, r, r.json);
        out.push({ u, p, seen, r });
      }
    }
    return out;
  }

  async function reconcile(what) {
    const lists = await readAll('reconcile', what);
    for (const { u, p, seen, r } of lists) {
      for (const job of u.jobs[p].values()) {
        if (!job.unknown) continue;
        const listed = seen.has(job.key);
        if (job.unknown === 'register') {
          if (listed) {
            job.account = seen.get(job.key);
            const item = normalise(p, r.json).jobs.find((x) => x.key === job.key);
            job.id = item.id;
            job.regAckAt = r.t1;
            job.unknown = undefined;
            stats.resolved.landed += 1;
            if (job.deadline !== undefined) job.state = 'expiring';
            else {
              job.state = 'executing';
              u.pool[p].push(job.key);
            }
          } else if (job.deadline !== undefined && job.deadline - 1500 <= r.t1) {
            // A lost back-dated registration may have landed and expired already: its
            // webhook (if any) decides.
            job.state = 'unknown-expiring';
            job.unknown = undefined;
          } else {
            job.state = 'not-landed';
            job.unknown = undefined;
            job.rejectedAt = r.t1;
            stats.resolved.notLanded += 1;
          }
        } else if (job.unknown === 'complete' || job.unknown === 'cancel') {
          const kind = job.unknown;
          job.unknown = undefined;
          if (listed) {
            job.state = 'executing';
            job.termSentAt = undefined;
            job.termKind = undefined;
            u.pool[p].push(job.key);
            stats.resolved[kind === 'complete' ? 'completeNotLanded' : 'cancelNotLanded'] += 1;
          } else {
            job.state = kind === 'complete' ? 'completed' : 'cancelled';
            job.termAckAt = r.t1;
            job.resolvedUnknown = true;
            u.finished[p].push(job.key);
            stats.resolved[kind === 'complete' ? 'completed' : 'cancelled'] += 1;
          }
        }
      }
    }
  }

  // -------------------------------------------------------------------------------------
  // Faults

  async function injectFault(n) {
    let open;
    target.gate = new Promise((r) => {
      open = r;
    });
    const old = target.worker;
    const pid = wranglerPid(old.port, persistDir);
    if (!pid) throw new Error(`fault ${n}: no wrangler process found for port ${old.port}`);
    const inflight = target.inflight;
    target.down = true;
    const killedAt = Date.now();
    process.kill(-pid, 'SIGKILL');
    for (let i = 0; i < 100 && alive(pid); i++) await sleep(50);
    await old.stop(); // reaps; a no-op once the process is gone
    while (target.inflight > 0) await sleep(20);
    const w = await startWorker({ vars, adminToken: o.adminToken, persistDir });
    target.worker = w;
    logFiles.push(w.logFile);
    target.url = w.url;
    target.epoch += 1;
    target.down = false;
    const restartedAt = Date.now();
    const before = { ...stats.unknown };
    await reconcile(`after restart ${n}`);
    faults.push({
      n,
      pid,
      signal: 'SIGKILL',
      atRequest: stats.byPhase.load,
      inflightAtKill: inflight,
      downMs: restartedAt - killedAt,
      unknownSoFar: before,
    });
    say(`fault ${n}: SIGKILL pid group ${pid} with ${inflight} requests in flight; restarted on ${w.url} after ${restartedAt - killedAt} ms`);
    target.gate = null;
    open();
  }

  // -------------------------------------------------------------------------------------
  // The run

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
        await oneOp(u);
      } catch (err) {
        violation('client error', String(err?.stack || err));
      }
    }
  }

  async function sampler() {
    while (running) {
      await opAccounts(pick(users), 'sampler');
      await sleep(100);
    }
  }

  const progress = setInterval(() => {
    const s = (Date.now() - started) / 1000;
    say(`${issued}/${total} ops, ${stats.requests} requests, ${(stats.requests / s).toFixed(0)} req/s, ${violations.length} violations`);
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
  if (users.some((u) => PROVIDERS.some((p) => [...u.jobs[p].values()].some((j) => j.unknown)))) {
    await reconcile('final reconcile');
  }

  // -------------------------------------------------------------------------------------
  // Drain: wait (bounded) for the back-dated jobs to expire and every webhook to arrive.

  const allJobs = () => users.flatMap((u) => PROVIDERS.flatMap((p) => [...u.jobs[p].values()]));
  const lastDeadline = Math.max(0, ...allJobs().filter((j) => j.deadline !== undefined).map((j) => j.deadline));
  const drainStart = Date.now();
  const drainDeadline = drainStart + o.drainTimeoutMs;
  let pendingRows = [];
  let drained = false;
  while (Date.now() < drainDeadline) {
    const expected = allJobs().filter(
      (j) => j.replyUrl && (j.state === 'completed' || j.state === 'expiring'),
    );
    const missing = expected.filter((j) => {
      if (j.webhookId) return !(hooks.get(j.webhookId)?.delivered > 0);
      return ![...hooks.values()].some((h) => h.delivered > 0 && h.paths.has(new URL(j.replyUrl).pathname));
    });
    pendingRows = [];
    for (const u of users) {
      for (const p of PROVIDERS) {
        const r = await admin('GET', `/admin/v1/users/${u.user}/${p}/webhooks`, undefined, { label: 'list_webhooks', phase: 'final', bypassGate: true });
        if (r.status === 200) pendingRows.push(...r.json);
        else violation('read', `GET webhooks of ${u.user}/${p} -> ${r.status} ${r.text}`);
      }
    }
    if (!missing.length && !pendingRows.length && Date.now() > lastDeadline + 1500) {
      drained = true;
      break;
    }
    await sleep(1000);
  }
  await sleep(1500); // let a late duplicate attempt (same id) arrive before counting
  const drainMs = Date.now() - drainStart;
  if (!drained) {
    violation(
      'not drained',
      `after ${o.drainTimeoutMs} ms: ${pendingRows.length} undelivered rows (${pendingRows
        .slice(0, 3)
        .map((r) => `${r.webhookId} ${r.status} attempts ${r.attempts} ${r.lastError}`)
        .join('; ')})`,
    );
  }

  // -------------------------------------------------------------------------------------
  // Final invariants

  // (b) every 201 is exactly one of listed / completed / cancelled / expired.
  const finalLists = await readAll('final', 'final');
  const tally = { executing: 0, completed: 0, cancelled: 0, expired: 0, rejected: 0, notLanded: 0 };
  for (const { u, p, seen } of finalLists) {
    for (const job of u.jobs[p].values()) {
      const listed = seen.has(job.key);
      switch (job.state) {
        case 'executing':
          tally.executing += 1;
          if (!listed) violation('lost job', `final: ${p} ${job.key} (${job.id}) of ${u.user} executing on ${job.account} is not listed`);
          break;
        case 'expiring':
        case 'unknown-expiring':
          tally.expired += 1;
          if (listed) violation('expired job listed', `final: ${p} ${job.key} is past its timeout and still listed`);
          break;
        case 'completed':
        case 'cancelled':
          tally[job.state] += 1;
          if (listed) violation('finished job listed', `final: ${job.state} ${p} ${job.key} is listed`);
          break;
        case 'rejected':
        case 'not-landed':
          tally[job.state === 'rejected' ? 'rejected' : 'notLanded'] += 1;
          if (listed) violation('rejected job listed', `final: ${p} ${job.key} (${job.rejectStatus || 'lost'}) is listed`);
          if (job.seenListed && job.state === 'rejected') violation('rejected job listed', `${p} ${job.key} answered ${job.rejectStatus} but was listed during the run`);
          break;
        default:
          violation('ledger', `final: ${p} ${job.key} in state ${job.state} (unknown ${job.unknown})`);
      }
    }
  }
  // The operator's counts agree with the lists.
  for (const { u, p, r } of finalLists) {
    const a = await admin('GET', `/admin/v1/users/${u.user}/${p}/accounts`, undefined, { label: 'list_accounts', phase: 'final', bypassGate: true });
    if (a.status !== 200) continue;
    checkAccountRows(u, p, a.json, 'final accounts');
    const { jobs } = normalise(p, r.json);
    for (const row of a.json) {
      const n = jobs.filter((j) => j.account === row.account).length;
      if (row.executing !== n) violation('accounts', `final: ${u.user}/${p}/${row.account} executing ${row.executing}, listed ${n}`);
    }
  }

  // (c) webhooks.
  const byPath = new Map(); // receiver path -> job
  for (const j of allJobs()) if (j.replyUrl) byPath.set(new URL(j.replyUrl).pathname, j);
  const idsByJob = new Map();
  for (const [id, h] of hooks) {
    stats.webhookRequests += h.attempts;
    if (!h.signedOk) violation('webhook', `webhook ${id}: bad or missing signature`);
    if (h.paths.size !== 1) violation('webhook', `webhook ${id} went to ${h.paths.size} urls: ${[...h.paths]}`);
    if (h.bodies.size !== 1) violation('webhook', `webhook ${id}: retries carried ${h.bodies.size} different bodies`);
    if (h.delivered === 0) violation('webhook', `webhook ${id} never answered 2xx (${h.attempts} attempts) yet no longer pending`);
    const path = [...h.paths][0];
    const job = byPath.get(path);
    if (!job) {
      violation('unexpected webhook', `webhook ${id} to ${path}: no job of this run has that replyUrl`);
      continue;
    }
    if (!idsByJob.has(job)) idsByJob.set(job, []);
    idsByJob.get(job).push(id);
    let body;
    try {
      body = JSON.parse([...h.bodies][0]);
    } catch {
      violation('webhook', `webhook ${id}: body is not JSON`);
      continue;
    }
    const jobIdInBody = job.provider === 'kling' ? body.id : body.jobid;
    if (job.id !== undefined && String(jobIdInBody) !== String(job.id)) violation('webhook', `webhook ${id} for ${job.key}: id ${jobIdInBody}, job ${job.id}`);
    const acct = job.provider === 'kling' ? body.email : body.account;
    if (job.account && acct !== job.account) violation('webhook', `webhook ${id} for ${job.key}: account ${acct}, job on ${job.account}`);
    if (job.provider === 'dreamina' && body.submitId !== job.key) violation('webhook', `webhook ${id}: submitId ${body.submitId}, job ${job.key}`);
    if (body.replyRef !== `ref-${job.key}`) violation('webhook', `webhook ${id}: replyRef ${body.replyRef}`);
    if (job.state === 'completed') {
      if (body.status !== job.finalStatus) violation('webhook', `webhook ${id} for completed ${job.key}: status ${body.status}, sent ${job.finalStatus}`);
      if (job.webhookId && id !== job.webhookId) {
        violation('unexpected webhook', `webhook ${id} for ${job.provider} ${job.key}: its completion answered webhookId ${job.webhookId}`);
      }
    } else if (job.state === 'expiring' || job.state === 'unknown-expiring') {
      if (body.status !== 'failed' || body.error !== 'timeout') violation('webhook', `webhook ${id} for expired ${job.key}: ${h.bodies.values().next().value}`);
    } else {
      violation('unexpected webhook', `webhook ${id} for ${job.provider} ${job.key} in state ${job.state} (${job.termKind || 'no completion'}): no completion or expiry produced it`);
    }
  }
  stats.webhookDistinctIds = hooks.size;
  for (const j of allJobs()) {
    if (!j.replyUrl) continue;
    const ids = idsByJob.get(j) || [];
    const needs = j.state === 'completed' || j.state === 'expiring';
    if (ids.length > 1) violation('duplicate webhook', `${j.provider} ${j.key} (${j.state}) produced ${ids.length} webhook ids: ${ids.join(', ')}`);
    if (needs && ids.length === 0) {
      violation('missing webhook', `${j.provider} ${j.key} ${j.state}${j.resolvedUnknown ? ' (lost answer, resolved from lists)' : ''}${j.webhookId ? ` webhookId ${j.webhookId}` : ''}: no webhook arrived`);
    }
  }

  // -------------------------------------------------------------------------------------

  // wrangler dev reloads the worker when a file under src/ or the build changes (another
  // engineer's edit or build): a run that saw one did not test one binary throughout.
  for (const f of logFiles) {
    let text = '';
    try {
      text = fs.readFileSync(f, 'utf8');
    } catch {
      continue;
    }
    const afterReady = text.slice(Math.max(0, text.indexOf('Ready on')));
    const reloads = afterReady.split('\n').filter((l) => /changed, restarting build|Reloading local server|Local server updated/.test(l));
    for (const l of reloads) environment.push(`wrangler dev reloaded the worker during the run: "${l.trim()}" (${f})`);
  }
  const contaminated = environment.length > 0;
  await receiver.close();
  if (!external && !o.keepWorker) await target.worker.stop();

  const report = {
    ok: violations.length === 0,
    seed,
    options: { users: o.users, requestsPerUser: o.requests, concurrency: o.concurrency, kills: o.kills, maxJobs: o.maxJobs },
    durationMs: Date.now() - started,
    loadMs,
    drainMs,
    requests: stats.requests,
    requestsPerSecond: Math.round((stats.byPhase.load / loadMs) * 1000),
    stats,
    faults,
    environment,
    contaminated,
    ledger: tally,
    violationCount: Object.values(violationCounts).reduce((a, b) => a + b, 0),
    violationCounts,
    violations,
    worker: target.worker && { url: target.worker.url, logFile: target.worker.logFile, persistDir },
  };
  return report;
}

// ---------------------------------------------------------------------------------------
// CLI

export function parseArgs(argv) {
  const out = {};
  const names = {
    '--users': 'users',
    '--requests': 'requests',
    '--concurrency': 'concurrency',
    '--kills': 'kills',
    '--max-jobs': 'maxJobs',
    '--seed': 'seed',
    '--drain-timeout-ms': 'drainTimeoutMs',
    '--race-rate': 'raceRate',
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--json') out.json = true;
    else if (a === '--quiet') out.progress = false;
    else if (a === '--url') out.url = argv[++i];
    else if (a === '--admin-token') out.adminToken = argv[++i];
    else if (names[a]) out[names[a]] = Number(argv[++i]);
    else throw new Error(`unknown argument ${a}`);
  }
  return out;
}

export function printReport(r, { title = 'load' } = {}) {
  const lines = [];
  lines.push(`===== ${title}: ${r.ok ? 'PASS' : 'FAIL'} (seed ${r.seed})`);
  if (r.contaminated) {
    lines.push('!!! wrangler dev reloaded the worker during this run (someone changed src/ or the build): violations after that point may be the reload, not the worker. Re-run on a quiet tree.');
  }
  lines.push(`requests: ${r.requests} in all (${JSON.stringify(r.stats.byPhase)}), load phase ${r.loadMs} ms, ~${r.requestsPerSecond} req/s`);
  lines.push(`jobs: ${r.stats.registered} registered (201), ${r.stats.rejected429} x 429, ${r.stats.completed} completed, ${r.stats.cancelled} cancelled, ${r.stats.dup409} duplicate 409s, ${r.stats.races} concurrent same-id races (${r.stats.raceDoubleAdmits} double admits), second completion 404 x ${r.stats.secondCompletion404}, cancel-after-finish 404 x ${r.stats.cancelFinished404}`);
  lines.push(`final ledger: ${JSON.stringify(r.ledger)}`);
  lines.push(`capacity samples: ${r.stats.capacitySamples} operator account lists (+ every public list), peak executing on one account ${r.stats.peakExecuting}`);
  lines.push(`webhooks: ${r.stats.webhookDistinctIds} distinct ids, ${r.stats.webhookRequests} requests (${r.stats.webhookFirstAttemptFailures} first attempts refused with 500), drained in ${r.drainMs} ms`);
  lines.push(`faults injected: ${r.faults.length}${r.faults.map((f) => `\n  #${f.n}: SIGKILL wrangler group ${f.pid} at load request ~${f.atRequest}, ${f.inflightAtKill} in flight, down ${f.downMs} ms`).join('')}`);
  lines.push(`unknown outcomes: ${JSON.stringify(r.stats.unknown)}, resolved: ${JSON.stringify(r.stats.resolved)}, lost in fault windows: ${r.stats.lostInFault} (+${r.stats.fault5xx} 5xx from the dying server)`);
  lines.push(`no-answer outside faults: ${r.stats.networkErrors}`);
  lines.push(`dev-server reloads: ${r.environment.length} events, ${r.stats.devReloads} x wrangler's 503 "restarted mid-request" (not the worker; outcome reconciled)${r.environment.slice(0, 5).map((e) => `\n  ${e}`).join('')}`);
  lines.push(`by route: ${Object.entries(r.stats.byRoute).map(([k, v]) => `${k} ${JSON.stringify(v)}`).join('; ')}`);
  lines.push(`invariant violations: ${r.violationCount} ${JSON.stringify(r.violationCounts)}`);
  for (const v of r.violations.slice(0, 40)) lines.push(`  - [${v.kind}] +${v.atMs}ms ${v.detail}`);
  if (r.violations.length > 40) lines.push(`  ... ${r.violations.length - 40} more`);
  return lines.join('\n');
}

if (process.argv[1] && fs.realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = parseArgs(process.argv.slice(2));
  const report = await runLoad(args);
  if (args.json) console.log(JSON.stringify(report, null, 2));
  else console.log(printReport(report, { title: report.options.kills ? 'load with faults' : 'load' }));
  process.exitCode = report.ok ? 0 : 1;
}
