// The load test's ledger: the client-side record of what every answer said. Per
// simulated user, its accounts (and their maxJobs) and every job it tried to register,
// with the job's state; per webhook id the receiver saw, its attempts, paths, bodies and
// whether every signature was valid; and the run's counters (stats). The operations
// (operations.mjs) write to it; the invariants (invariants.mjs) read it.
//
// A job's state:
//   registering      sent, no answer yet
//   executing        201; in the user's pool, free for a completion, cancel or duplicate
//   busy             an operation on it is in flight
//   completed        200 to its completion (finalStatus, webhookId as answered)
//   cancelled        204 to its public DELETE
//   expiring         201 with a back-dated `started`: the worker expires it at `deadline`
//   rejected         429 (or, for a race, neither copy admitted): never listed
//   unknown          the answer was lost (`unknown` says to what: register, complete,
//                    cancel); settle() decides from the lists
//   not-landed       a lost registration that no list shows
//   unknown-expiring a lost back-dated registration whose deadline passed: its webhook
//                    (if any) decides

import { verifyWebhookSignature } from '../support/receiver.mjs';

export const PROVIDERS = ['kling', 'dreamina'];
const KLING_ACCOUNTS = ['a@x.com', 'b@x.com', 'c@x.com'];
const DREAMINA_ACCOUNTS = ['EU:b@x.com', 'JP:c@x.com', 'US:a@x.com'];

/** The run's counters (printed by report.mjs). */
export function createStats() {
  return {
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
}

/**
 * Simulated user i's accounts: 2 or 3 Kling and 3 or 2 Dreamina accounts (alternating),
 * each with `maxJobs`, one of them with one less.
 */
export function accountsFor(i, maxJobs) {
  const nK = 2 + (i % 2);
  const nD = 3 - (i % 2);
  return {
    kling: Object.fromEntries(KLING_ACCOUNTS.slice(0, nK).map((a, j) => [a, j === 0 ? Math.max(1, maxJobs - 1) : maxJobs])),
    dreamina: Object.fromEntries(DREAMINA_ACCOUNTS.slice(0, nD).map((a, j) => [a, j === 1 ? Math.max(1, maxJobs - 1) : maxJobs])),
  };
}

export class Ledger {
  /**
   * rng: the run's random source; seed: names the run (runTag, in every user id and
   * Dreamina submitId); stats: createStats(); options: timeoutSeconds (the worker's
   * JOB_TIMEOUT_SECONDS), receiverFailRate.
   */
  constructor({ rng, seed, stats, timeoutSeconds, receiverFailRate }) {
    this.rng = rng;
    this.stats = stats;
    this.timeoutSeconds = timeoutSeconds;
    this.receiverFailRate = receiverFailRate;
    this.runTag = `L${seed.toString(36)}${Math.floor(rng() * 1e4)}`;
    this.users = [];
    this.klingSeq = 1 + Math.floor(rng() * 1e6) * 1000;
    this.jobSeq = 0;
    this.replyBase = undefined; // the receiver's url, for replyUrls
    // webhook id -> { attempts, delivered, paths: Set, bodies: Set, signedOk }
    this.hooks = new Map();
  }

  /** The id of simulated user i in this run. */
  userId(i) {
    return `${this.runTag}_${i}`;
  }

  addUser(i, user, token, accounts) {
    const u = {
      i,
      user,
      token,
      accounts,
      jobs: { kling: new Map(), dreamina: new Map() }, // key -> job
      pool: { kling: [], dreamina: [] }, // keys of executing jobs free for an operation
      finished: { kling: [], dreamina: [] }, // keys of completed/cancelled jobs
    };
    this.users.push(u);
    return u;
  }

  /**
   * A new job of user u for provider p, in state 'registering'. Its key is the Kling
   * task id or the Dreamina submitId (unique in the run); 30% of Dreamina jobs name
   * their own jobid. named: the account the registration names; expiring: back-dated
   * to pass its timeout 3 to 12 s from now; withReply: a replyUrl to the receiver.
   */
  newJob(u, p, { named, expiring, withReply }) {
    const rng = this.rng;
    this.jobSeq += 1;
    const jobSeq = this.jobSeq;
    const job = {
      user: u.user,
      provider: p,
      key: p === 'kling' ? String(this.klingSeq++) : `sub-${this.runTag}-${jobSeq}`,
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
    else if (rng() < 0.3) job.id = `job-${this.runTag}-${jobSeq}`; // an explicit jobid
    if (withReply) job.replyUrl = `${this.replyBase}/hook/${u.user}/${p}/${encodeURIComponent(job.key)}`;
    if (expiring) {
      const left = 3000 + Math.floor(rng() * 9000);
      job.startedMs = Date.now() - this.timeoutSeconds * 1000 + left;
      job.deadline = job.startedMs + this.timeoutSeconds * 1000;
    }
    u.jobs[p].set(job.key, job);
    return job;
  }

  /** An executing job of u taken out of its pool at random (undefined if none). */
  takeFromPool(u, p) {
    const pool = u.pool[p];
    if (!pool.length) return undefined;
    const i = Math.floor(this.rng() * pool.length);
    const key = pool[i];
    pool[i] = pool[pool.length - 1];
    pool.pop();
    return u.jobs[p].get(key);
  }

  /** Back into the pool: executing and free for the next operation. */
  release(u, job) {
    job.state = 'executing';
    u.pool[job.provider].push(job.key);
  }

  /** A 201 `r` (already checked: invariants.checkAdmission) for job. */
  admit(u, job, r) {
    const body = r.json || {};
    job.regAckAt = r.t1;
    job.account = body.account;
    if (job.provider !== 'kling') job.id = body.jobid;
    this.stats.registered += 1;
    if (job.deadline !== undefined) job.state = 'expiring';
    else this.release(u, job);
  }

  /** A registration answered with a refusal (`status`) at `at`. */
  reject(job, status, at) {
    job.state = 'rejected';
    job.rejectStatus = status;
    job.rejectedAt = at;
  }

  /** The answer to `kind` (register, complete, cancel) on job was lost: settle() decides. */
  lost(job, kind) {
    job.state = 'unknown';
    job.unknown = kind;
    this.stats.unknown[kind] += 1;
  }

  /** A completion or cancel of job that answered what it should not: settle() decides. */
  unexpected(job, kind) {
    job.state = 'unknown';
    job.unknown = kind;
  }

  /** A completion (or cancel) of job is being sent. */
  finishing(job, kind) {
    job.state = 'busy';
    job.termSentAt = Date.now();
    job.termKind = kind;
  }

  /** job ended (state 'completed' or 'cancelled') by an answer at `at`. */
  finished(u, job, state, at) {
    job.state = state;
    job.termAckAt = at;
    this.stats[state] += 1;
    u.finished[job.provider].push(job.key);
  }

  /** Whether some job's outcome is still unknown. */
  hasUnknown() {
    return this.users.some((u) => PROVIDERS.some((p) => [...u.jobs[p].values()].some((j) => j.unknown)));
  }

  allJobs() {
    return this.users.flatMap((u) => PROVIDERS.flatMap((p) => [...u.jobs[p].values()]));
  }

  /**
   * Decides every unknown outcome of u's p jobs from one list read `r` (answered at
   * r.t1): `seen` maps each listed key to its account, `items` are the listed jobs
   * (invariants.normalise). A lost registration landed if listed; a lost completion or
   * cancel landed if not.
   */
  settle(u, p, seen, items, r) {
    const stats = this.stats;
    for (const job of u.jobs[p].values()) {
      if (!job.unknown) continue;
      const listed = seen.has(job.key);
      if (job.unknown === 'register') {
        if (listed) {
          job.account = seen.get(job.key);
          const item = items.find((x) => x.key === job.key);
          job.id = item.id;
          job.regAckAt = r.t1;
          job.unknown = undefined;
          stats.resolved.landed += 1;
          if (job.deadline !== undefined) job.state = 'expiring';
          else this.release(u, job);
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

  /**
   * Records one request the receiver got (`rec`), checking its signature against
   * `secret`; returns the status to answer: 500 for the first attempt of a share
   * (receiverFailRate) of webhook ids, so the worker retries, else 200.
   */
  webhookArrived(rec, secret) {
    const id = rec.headers['webhook-id'] || '(none)';
    let h = this.hooks.get(id);
    const first = !h;
    if (!h) {
      h = { attempts: 0, delivered: 0, paths: new Set(), bodies: new Set(), signedOk: true };
      this.hooks.set(id, h);
    }
    h.attempts += 1;
    h.paths.add(rec.url);
    h.bodies.add(rec.body);
    if (secret && !verifyWebhookSignature(secret, rec)) h.signedOk = false;
    if (first && this.rng() < this.receiverFailRate) {
      this.stats.webhookFirstAttemptFailures += 1;
      return 500;
    }
    h.delivered += 1;
    return 200;
  }
}
