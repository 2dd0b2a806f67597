// The load test's invariants: what every answer, every list read during the run and
// the final state must satisfy, checked against the ledger. Each broken one is recorded
// as a violation { kind, detail, atMs }; the run passes when there are none.
//
//   (a) capacity: no account ever shows more executing jobs than its maxJobs, in any
//       operator account list or public list sampled during the run (checkList,
//       checkAccountRows). Only jobs that take a slot count: not MiniMax image jobs,
//       which are admitted whenever an account they may use is not paused
//       (operations.mjs rejected429).
//       The family's public items do not tell their account: there the rows' executing
//       must add up to the listed jobs, and the per-account counts come from the
//       operator's jobs list;
//   (b) conservation: every registered job (201) is exactly one of still listed,
//       completed (200) or cancelled (204) (or expired, for the back-dated ones); none
//       lost, none listed twice, no list shows a job this user never registered, a
//       finished job never shows up again (checkList during the run, checkConservation
//       and checkOperatorCounts at the end);
//   (c) webhooks: every 2xx completion of a job with a replyUrl produced exactly one
//       delivered webhook event id (retries of one id count once: delivery is at least
//       once), the id the completion answered with; no webhook id arrives that no
//       completion or expiry produced; the queue drains (checkCompletionAnswer,
//       awaitDrain, checkWebhooks);
//   (d) no 5xx, no network error, no request without an answer outside a fault window
//       (checked on every request by Target.call, target.mjs);
//   (e) waiting: a waiting registration is a 201 or, not before its waitSeconds ran
//       out, the capacity 429; every admitted waiter is listed or ended (b); a waiter
//       whose client gave up (an abort) is never admitted after that: its id never
//       shows in a list read afterwards unless its admission time (`started`) is before
//       the abort, and no webhook comes for it unless it was admitted (checkList,
//       checkWebhooks); FIFO among the waiters of the dedicated FIFO user (one account,
//       maxJobs 1, only unnamed waiters): of two waiters sent 250 ms or more apart to the
//       same server, the later one is never admitted while the earlier one still waits
//       (checkFifo);
//   (f) pauses: no job is admitted on an account paused for the whole request; a
//       paused account shows "available": 0 and "paused": true, an unpaused one its free
//       slots and "paused": false (reads racing a pause or resume may show either);
//       "Account <a> is paused" only for a named account that may be paused
//       (checkAdmission, checkList, checkAccountRows);
//   (g) progress: a report on an executing job is a 200 with the job, its account and
//       the reported figure; the operator's jobs list shows the last acknowledged one.
//
// `run` is the state of one run (runner.mjs): o (options), started, stats, violation,
// ledger, target.

import { sleep } from '../support/server.mjs';
import { PROVIDER_NAMES, PROVIDERS } from './providers.mjs';

/** The record of broken invariants: the first 500 in full, every one counted by kind. */
export class Violations {
  constructor(started) {
    this.started = started;
    this.list = [];
    this.counts = {};
  }

  add(kind, detail) {
    this.counts[kind] = (this.counts[kind] || 0) + 1;
    if (this.list.length < 500) this.list.push({ kind, detail, atMs: Date.now() - this.started });
  }

  get total() {
    return Object.values(this.counts).reduce((a, b) => a + b, 0);
  }
}

/**
 * How much later than the client's abort an aborted waiter's admission time (its
 * `started`) may be and still count as "admitted before the client gave up": the
 * worker's clock is this machine's, but the disconnect takes a moment to travel
 * (wrangler dev's proxy, then workerd) on a busy machine, and a confirmation started in
 * that moment is not the worker's fault.
 */
export const ABORT_MARGIN_MS = 250;

/** One list item, normalised: { key, id, kind, account, started, counts }. */
function item(p, it, account) {
  const ids = PROVIDERS[p].ids(it);
  return { ...ids, account, started: it.started, counts: PROVIDERS[p].takesSlot(ids.kind) };
}

/**
 * Normalises the operator's jobs list (GET …/jobs), whose items add `account` (and
 * progress) to the public ones: { jobs: [{...item, progress?, lastProgress?}] }
 */
export function normaliseJobs(p, json) {
  const jobs = (Array.isArray(json) ? json : []).map((it) => ({ ...item(p, it, it.account), progress: it.progress, lastProgress: it.lastProgress }));
  return { jobs, rows: undefined };
}

/**
 * Normalises a public list/available answer: { jobs: [item], rows? }. An item's account
 * is undefined where the provider's items do not tell it (providers.mjs itemsNameAccount).
 */
export function normalise(p, json) {
  const { grouped, accountKey } = PROVIDERS[p];
  const jobs = grouped
    ? Object.entries(json?.executing || {}).flatMap(([account, items]) => items.map((it) => item(p, it, account)))
    : (Array.isArray(json) ? json : json?.executing || []).map((it) => item(p, it, it[accountKey]));
  const rows = Array.isArray(json) ? undefined : json?.available?.map((r) => ({ account: r[accountKey], ...r }));
  return { jobs, rows };
}

// ---------------------------------------------------------------------------------------
// Answers

/** A 201 `r` to job's registration: on one of u's accounts (the named one), same ids. */
export function checkAdmission(run, u, job, r) {
  const { violation, ledger } = run;
  const body = r.json || {};
  const cfg = u.accounts[job.provider];
  if (!(body.account in cfg)) violation('bad 201', `${job.provider} ${job.key}: account ${body.account} is not configured for ${u.user}`);
  if (body.account in cfg && ledger.mustBePaused(u, job.provider, body.account, r.t0, r.t1)) {
    violation('admitted on paused account', `${job.provider} ${job.key} admitted on ${body.account}, paused for the whole request (+${r.t0 - run.started}..+${r.t1 - run.started} ms)`);
  }
  if (job.account && body.account !== job.account) violation('bad 201', `${job.key}: named ${job.account}, admitted on ${body.account}`);
  const got = PROVIDERS[job.provider].ids(body);
  if (got.key !== job.key || (job.id !== undefined && got.id !== job.id) || got.kind !== job.kind) {
    violation('bad 201', `${job.provider} 201 ${r.text}: sent key ${job.key}, id ${job.id}, kind ${job.kind}`);
  }
}

/** A 200 `r` to job's completion with `status`: its account and status, a webhookId iff a replyUrl. */
export function checkCompletionAnswer(run, job, status, r) {
  const { violation } = run;
  const p = job.provider;
  const j = r.json || {};
  const got = PROVIDERS[p].ids(j); // the id members (a Dreamina answer has no submitId)
  if (String(got.id) !== String(job.id) || got.kind !== job.kind) violation('complete', `complete ${p} ${job.id} (${job.kind}) -> ${r.text}`);
  if (j.account !== job.account) violation('complete', `complete ${p} ${job.id}: account ${j.account}, admitted on ${job.account}`);
  if (j.status !== status) violation('complete', `complete ${p} ${job.id}: status ${j.status}, sent ${status}`);
  if (job.replyUrl && !j.webhookId) violation('webhook', `complete ${p} ${job.id} with a replyUrl answered without webhookId: ${r.text}`);
  if (!job.replyUrl && j.webhookId) violation('webhook', `complete ${p} ${job.id} without replyUrl answered webhookId ${j.webhookId}`);
}

// ---------------------------------------------------------------------------------------
// (a) and (b) during the run: every list read

/**
 * Checks one list read `r` (made in [r.t0, r.t1]) for user u, provider p against the
 * ledger. Where the items do not tell their account (the family's public lists), the
 * per-account checks fall back to the totals. Returns the listed jobs: a Map key ->
 * account (undefined where not told).
 */
export function checkList(run, u, p, what, r, json, norm = normalise(p, json)) {
  const { violation, stats, started, ledger } = run;
  const { jobs: items, rows } = norm;
  const cfg = u.accounts[p];
  const accountsTold = items.every((it) => it.account !== undefined);
  const perAccount = {}; // account -> jobs listed on it that take a slot
  const seen = new Map();
  for (const it of items) {
    if (it.account !== undefined) {
      if (it.counts) perAccount[it.account] = (perAccount[it.account] || 0) + 1;
      if (!(it.account in cfg)) violation('isolation', `${what} of ${u.user} lists account ${it.account}, not one of the user's`);
    }
    if (seen.has(it.key) && !u.jobs[p].get(it.key)?.doubled) violation('duplicate in list', `${what} of ${u.user} lists ${p} job ${it.key} twice (${seen.get(it.key)} and ${it.account})`);
    seen.set(it.key, it.account);
    const job = u.jobs[p].get(it.key);
    if (!job) {
      violation('phantom job', `${what} of ${u.user} lists ${p} job ${it.key} (${it.id}) that this user never registered`);
      continue;
    }
    job.seenListed = true;
    if (job.abortedAt !== undefined && (job.state === 'unknown' || job.state === 'not-landed')) {
      // A waiter whose client gave up: listed only if it was admitted before that.
      const admittedAt = it.started ? Date.parse(it.started) : NaN;
      if (admittedAt <= job.abortedAt + ABORT_MARGIN_MS) {
        stats.waiting.abortedAdmittedBefore += 1;
      } else {
        stats.waiting.abortedAdmittedAfter += 1;
        violation(
          'admitted after abort',
          `${what} at +${r.t0 - started} ms: ${p} job ${it.key} of ${u.user} is listed on ${it.account} (started ${it.started}, ` +
            `+${admittedAt - started} ms), but its waiting registration (waitSeconds ${job.waitSeconds}, sent at +${job.regSentAt - started} ms) ` +
            `was given up by the client at +${job.abortedAt - started} ms: admitted ${admittedAt - job.abortedAt} ms after its client went away`,
        );
      }
      ledger.adopt(u, job, it, r.t1);
      continue;
    }
    if (job.id !== undefined && job.regAckAt !== undefined && String(job.id) !== String(it.id)) {
      violation('wrong job', `${what}: ${p} ${it.key} listed as ${it.id}, registered as ${job.id}`);
    }
    if (it.kind !== job.kind) violation('wrong job', `${what}: ${p} ${it.key} listed as a ${it.kind} job, registered as ${job.kind}`);
    if (job.account && it.account !== undefined && job.regAckAt !== undefined && job.account !== it.account) {
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
    // (g) the operator's jobs list shows the last acknowledged progress report.
    const ack = job.progressAck;
    if ('progress' in it && ack && !job.progressUncertain && ack.at < r.t0 && job.progressSent === ack.seq) {
      stats.progress.checked += 1;
      if (it.progress !== ack.value) violation('progress', `${what}: ${p} ${it.key} progress ${it.progress}, last report (acknowledged at +${ack.at - started} ms) said ${ack.value}`);
      if (typeof it.lastProgress !== 'string') violation('progress', `${what}: ${p} ${it.key} reported progress but has no lastProgress`);
    }
  }
  for (const [account, n] of Object.entries(perAccount)) {
    stats.peakExecuting = Math.max(stats.peakExecuting, n);
    if (n > cfg[account]) violation('over maxJobs', `${what} of ${u.user}: ${account} has ${n} executing, maxJobs ${cfg[account]}`);
  }
  if (PROVIDERS[p].timed) {
    for (let i = 1; i < items.length; i++) {
      if (items[i - 1].started > items[i].started) {
        violation('order', `${what} of ${u.user}: not oldest first at ${i}`);
        break;
      }
    }
  }
  if (PROVIDERS[p].grouped && json && !Array.isArray(json) && json.total !== items.length) {
    violation('total', `${what} of ${u.user}: total ${json.total}, ${items.length} items`);
  }
  if (rows && !accountsTold) {
    const executing = rows.reduce((sum, row) => sum + row.executing, 0);
    const listed = items.filter((it) => it.counts).length;
    if (executing !== listed) violation('available', `${what} of ${u.user}: the rows' executing add up to ${executing}, ${listed} listed jobs take a slot`);
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
      if (accountsTold && row.executing !== n) violation('available', `${what}: ${row.account} executing ${row.executing} but ${n} listed`);
      // (f) a paused account has no room; reads racing a pause or resume may show either.
      const free = Math.max(0, row.maxJobs - row.executing);
      const may = ledger.mayBePaused(u, p, row.account, r.t0, r.t1);
      const must = ledger.mustBePaused(u, p, row.account, r.t0, r.t1);
      if (row.available !== free && !(may && row.available === 0)) {
        violation('available', `${what} at +${r.t0 - started}..+${r.t1 - started} ms: ${row.account} available ${row.available} with ${row.executing}/${row.maxJobs}${may ? ' (may be paused)' : ' (not paused)'}; its pauses: ${ledger.describePauses(u, p, row.account, started)}`);
      }
      if (must && row.available !== 0) {
        violation('available', `${what} at +${r.t0 - started}..+${r.t1 - started} ms: ${row.account} paused for the whole read, available ${row.available} (${row.executing}/${row.maxJobs}); its pauses: ${ledger.describePauses(u, p, row.account, started)}`);
      }
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

/**
 * (a) on one operator account list (`rows`) of u's p accounts; (f) their "paused"
 * flags when the read's time `r` ({t0, t1}) is given.
 */
export function checkAccountRows(run, u, p, rows, what, r) {
  const { violation, stats, ledger } = run;
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
    if (r && row.account in cfg) {
      const may = ledger.mayBePaused(u, p, row.account, r.t0, r.t1);
      const must = ledger.mustBePaused(u, p, row.account, r.t0, r.t1);
      const when = `at +${r.t0 - run.started}..+${r.t1 - run.started} ms`;
      if (must && row.paused !== true) violation('pause', `${what} of ${u.user} ${when}: ${row.account} paused for the whole read, row ${JSON.stringify(row)}; its pauses: ${ledger.describePauses(u, p, row.account, run.started)}`);
      if (!may && row.paused !== false) violation('pause', `${what} of ${u.user} ${when}: ${row.account} never paused during the read, row ${JSON.stringify(row)}; its pauses: ${ledger.describePauses(u, p, row.account, run.started)}`);
      if (row.paused === false && ('pausedUntil' in row || 'reason' in row)) violation('pause', `${what}: unpaused row with pausedUntil/reason: ${JSON.stringify(row)}`);
    }
  }
}

// ---------------------------------------------------------------------------------------
// After the run

/**
 * (c) the queue drains: waits (bounded by o.drainTimeoutMs) for the back-dated jobs to
 * expire, every expected webhook to be delivered and no webhook row to be pending.
 * Returns the time it took (ms).
 */
export async function awaitDrain(run) {
  const { o, violation, ledger, target } = run;
  const { hooks } = ledger;
  const lastDeadline = Math.max(0, ...ledger.allJobs().filter((j) => j.deadline !== undefined).map((j) => j.deadline));
  const drainStart = Date.now();
  const drainDeadline = drainStart + o.drainTimeoutMs;
  let pendingRows = [];
  let drained = false;
  while (Date.now() < drainDeadline) {
    const expected = ledger.allJobs().filter(
      (j) => j.replyUrl && (j.state === 'completed' || j.state === 'expiring'),
    );
    const missing = expected.filter((j) => {
      if (j.webhookId) return !(hooks.get(j.webhookId)?.delivered > 0);
      return ![...hooks.values()].some((h) => h.delivered > 0 && h.paths.has(new URL(j.replyUrl).pathname));
    });
    pendingRows = [];
    for (const u of ledger.users) {
      for (const p of PROVIDER_NAMES) {
        // Pending rows must drain; a failed one (every attempt refused) never will.
        for (const status of ['pending', 'failed']) {
          const r = await target.admin('GET', `/admin/v1/users/${u.user}/${p}/webhooks?status=${status}`, undefined, { label: 'list_webhooks', phase: 'final', bypassGate: true });
          if (r.status === 200) pendingRows.push(...r.json);
          else violation('read', `GET ${status} webhooks of ${u.user}/${p} -> ${r.status} ${r.text}`);
        }
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
        .map((r) => `${r.webhookId} ${r.status} attempts ${r.attempts} to ${r.replyUrl}, next ${r.nextAttempt}, last error ${r.lastError}`)
        .join('; ')})`,
    );
  }
  return drainMs;
}

/**
 * (b) every 201 is exactly one of listed / completed / cancelled / expired, given the
 * final list reads (operations.readAll). Returns the tally of final states.
 */
export function checkConservation(run, finalLists) {
  const { violation } = run;
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
          run.stats.byProvider[p].expired += 1;
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
  return tally;
}

/** (a), (b) the operator's account counts agree with the final lists (their jobs that take a slot). */
export async function checkOperatorCounts(run, finalLists) {
  const { violation, target } = run;
  for (const { u, p, jobs } of finalLists) {
    const a = await target.admin('GET', `/admin/v1/users/${u.user}/${p}/accounts`, undefined, { label: 'list_accounts', phase: 'final', bypassGate: true });
    if (a.status !== 200) continue;
    checkAccountRows(run, u, p, a.json, 'final accounts');
    for (const row of a.json) {
      const n = jobs.filter((j) => j.account === row.account && j.counts).length;
      if (row.executing !== n) violation('accounts', `final: ${u.user}/${p}/${row.account} executing ${row.executing}, listed ${n}`);
    }
  }
}

/**
 * (c) every webhook id the receiver saw: signed, one url, one body, delivered, for a job
 * of this run that a completion or expiry ended, matching it; and every such job with a
 * replyUrl has exactly one id.
 */
export function checkWebhooks(run) {
  const { violation, stats, ledger } = run;
  const { hooks } = ledger;
  const allJobs = ledger.allJobs();
  const byPath = new Map(); // receiver path -> job
  for (const j of allJobs) if (j.replyUrl) byPath.set(new URL(j.replyUrl).pathname, j);
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
    const provider = PROVIDERS[job.provider];
    const got = provider.ids(body);
    if (got.key !== job.key || (job.id !== undefined && String(got.id) !== String(job.id)) || got.kind !== job.kind) {
      violation('webhook', `webhook ${id} for ${job.provider} ${job.key} (id ${job.id}, kind ${job.kind}): ${[...h.bodies][0]}`);
    }
    const acct = body[provider.accountKey];
    if (job.account && acct !== job.account) violation('webhook', `webhook ${id} for ${job.key}: account ${acct}, job on ${job.account}`);
    run.stats.byProvider[job.provider].webhooks += 1;
    if (body.replyRef !== `ref-${job.key}`) violation('webhook', `webhook ${id}: replyRef ${body.replyRef}`);
    if (job.state === 'completed') {
      if (body.status !== job.finalStatus) violation('webhook', `webhook ${id} for completed ${job.key}: status ${body.status}, sent ${job.finalStatus}`);
      if (job.webhookId && id !== job.webhookId) {
        violation('unexpected webhook', `webhook ${id} for ${job.provider} ${job.key}: its completion answered webhookId ${job.webhookId}`);
      }
    } else if (job.state === 'expiring' || job.state === 'unknown-expiring') {
      if (body.status !== 'failed' || body.error !== 'timeout') violation('webhook', `webhook ${id} for expired ${job.key}: ${h.bodies.values().next().value}`);
    } else if (job.abortedAt !== undefined) {
      violation('admitted after abort', `webhook ${id} for ${job.provider} ${job.key}, a waiter its client gave up at +${job.abortedAt - run.started} ms and never listed (state ${job.state}): ${[...h.bodies][0]}`);
    } else {
      violation('unexpected webhook', `webhook ${id} for ${job.provider} ${job.key} in state ${job.state} (${job.termKind || 'no completion'}): no completion or expiry produced it`);
    }
  }
  stats.webhookDistinctIds = hooks.size;
  for (const j of allJobs) {
    if (!j.replyUrl) continue;
    const ids = idsByJob.get(j) || [];
    const needs = j.state === 'completed' || j.state === 'expiring';
    if (ids.length > 1) violation('duplicate webhook', `${j.provider} ${j.key} (${j.state}) produced ${ids.length} webhook ids: ${ids.join(', ')}`);
    if (needs && ids.length === 0) {
      violation('missing webhook', `${j.provider} ${j.key} ${j.state}${j.resolvedUnknown ? ' (lost answer, resolved from lists)' : ''}${j.webhookId ? ` webhookId ${j.webhookId}` : ''}: no webhook arrived`);
    }
  }
}

/** Two FIFO waiters sent at least this far apart reached the worker in that order. */
export const FIFO_GAP_MS = 250;

/**
 * (e) FIFO among the FIFO user's waiters (one account, maxJobs 1, only unnamed
 * waiters, so every waiter waits for the same slot). For two waiters A and B sent to
 * the same server (no restart between) with B sent FIFO_GAP_MS or more after A, and B
 * admitted: if A was admitted too, A's admission time (`started`) is not after B's (with
 * one slot, B can only start after A's job ended); if A got the 429 after waiting, B
 * was not admitted while A still waited (A's deadline is at least A's send time plus
 * its waitSeconds). Waiters whose answer was lost, or that their client gave up, take
 * no part (an abandoned place ahead of A changes nothing between A and B).
 */
export function checkFifo(run) {
  const { ledger, violation, stats, started } = run;
  const u = ledger.fifoUser;
  if (!u) return;
  const ws = [...u.jobs.kling.values()].filter((j) => j.fifo && !j.fifo.lost && !j.fifo.aborted && !j.fifo.pending).sort((a, b) => a.fifo.t0 - b.fifo.t0);
  const at = (ms) => `+${ms - started} ms`;
  for (let i = 0; i < ws.length; i++) {
    const A = ws[i];
    for (let k = i + 1; k < ws.length; k++) {
      const B = ws[k];
      if (B.fifo.t0 - A.fifo.t0 < FIFO_GAP_MS || A.fifo.epoch !== B.fifo.epoch || B.fifo.status !== 201) continue;
      stats.fifo.pairsChecked += 1;
      if (A.fifo.status === 201) {
        if (!(A.fifo.admittedAt <= B.fifo.admittedAt)) {
          violation('fifo', `FIFO user: ${B.key} (sent ${at(B.fifo.t0)}) admitted at ${at(B.fifo.admittedAt)}, before the older ${A.key} (sent ${at(A.fifo.t0)}, admitted ${at(A.fifo.admittedAt)})`);
        }
      } else if (A.fifo.status === 429) {
        const deadline = A.fifo.t0 + A.waitSeconds * 1000;
        if (B.fifo.admittedAt < deadline - 150) {
          violation('fifo', `FIFO user: ${B.key} (sent ${at(B.fifo.t0)}) admitted at ${at(B.fifo.admittedAt)} while the older ${A.key} (sent ${at(A.fifo.t0)}, waitSeconds ${A.waitSeconds}) still waited; ${A.key} then got a 429 at ${at(A.fifo.t1)}`);
        }
      }
    }
  }
}
