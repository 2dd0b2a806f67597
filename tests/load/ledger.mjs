// The load test's ledger: the client-side record of what every answer said. Per
// simulated user and provider, its accounts (and their maxJobs) and every job it tried
// to register (filed under its key, providers.mjs), with the job's state; per webhook id
// the receiver saw, its attempts, paths, bodies and whether every signature was valid;
// and the run's counters (stats, also per provider). The operations (operations.mjs)
// write to it; the invariants (invariants.mjs) read it.
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
//
// A registration may wait for a slot (`waitSeconds`); some waiting ones are given up by
// the client (an abort): `abortedAt` is set and the job is 'unknown' (register) like a
// lost answer, except that it may only have landed if the worker admitted it before the
// abort (its `started`, the admission time, says when). Each account's pauses are kept
// as intervals, so a read can be checked against what the account must or may have
// been at the time (mustBePaused / mayBePaused).

import { verifyWebhookSignature } from '../support/receiver.mjs';
import { PROVIDER_NAMES, PROVIDERS } from './providers.mjs';

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
    // per provider: the same counts, and (at the end) expired jobs and webhook ids
    byProvider: Object.fromEntries(PROVIDER_NAMES.map((p) => [p, { registered: 0, rejected429: 0, completed: 0, cancelled: 0, expired: 0, webhooks: 0 }])),
    // MiniMax image jobs: admitted even on an account whose video slots are all taken
    images: { sent: 0, admitted: 0, admittedOnFullAccount: 0, refused: 0 },
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
    waiting: {
      sent: 0, // registrations with waitSeconds 1..5
      admitted: 0, // 201
      admittedAfterRestart: 0, // 201 from a server restarted after a fault
      admittedAfterWaitingMs: 0, // the longest a 201 took
      timedOut: 0, // 429 after waiting
      earliest429Share: null, // the earliest 429 as a share of its waitSeconds
      aborted: 0, // given up by the client
      abortedNotAdmitted: 0,
      abortedAdmittedBefore: 0, // admitted before the client gave up (a lost 201, fine)
      abortedAdmittedAfter: 0, // admitted after (a violation)
    },
    pauses: { timed: 0, untimed: 0, resumes: 0, paused429: 0, lost: 0 },
    progress: { sent: 0, ok: 0, jobsReads: 0, checked: 0 },
    fifo: { waiters: 0, admitted: 0, timedOut: 0, aborted: 0, lost: 0, pairsChecked: 0 },
  };
}

/** { provider: make(provider) } for every provider. */
const perProvider = (make) => Object.fromEntries(PROVIDER_NAMES.map((p) => [p, make(p)]));

/** How far a timed pause's end may be off (the server's clock and its reads). */
const PAUSE_END_SLACK_MS = 1000;

/**
 * Simulated user i's accounts: per provider 2 or 3 of its accounts (alternating between
 * users and between neighbouring providers), each with `maxJobs` (at most the provider's
 * limit), one of them (the first or the second, alternating by provider) with one less.
 */
export function accountsFor(i, maxJobs) {
  return Object.fromEntries(
    PROVIDER_NAMES.map((p, k) => {
      const max = Math.min(maxJobs, PROVIDERS[p].maxJobsLimit);
      const names = PROVIDERS[p].accounts.slice(0, 2 + ((i + k) % 2));
      return [p, Object.fromEntries(names.map((a, j) => [a, j === k % 2 ? Math.max(1, max - 1) : max]))];
    }),
  );
}

export class Ledger {
  /**
   * rng: the run's random source; seed: names the run (runTag, in every user id and
   * job key but Kling's); stats: createStats(); options: timeoutSeconds (the worker's
   * JOB_TIMEOUT_SECONDS), receiverFailRate.
   */
  constructor({ rng, seed, stats, timeoutSeconds, receiverFailRate }) {
    this.rng = rng;
    this.stats = stats;
    this.timeoutSeconds = timeoutSeconds;
    this.receiverFailRate = receiverFailRate;
    this.runTag = `L${seed.toString(36)}${Math.floor(rng() * 1e4)}`;
    this.users = [];
    this.idBase = 1 + Math.floor(rng() * 1e6) * 1000; // Kling's task ids are idBase + jobSeq
    this.jobSeq = 0;
    this.replyBase = undefined; // the receiver's url, for replyUrls
    this.fifoUser = undefined; // the FIFO user (operations.setupUsers), when there is one
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
      jobs: perProvider(() => new Map()), // key -> job
      pool: perProvider(() => []), // keys of executing jobs free for an operation
      finished: perProvider(() => []), // keys of completed/cancelled jobs
      // account -> { busy (a pause/resume in flight), intervals: [{ sentAt, ackAt?,
      // until (ms; Infinity when untimed or unknown), endSentAt?, endAckAt? }] }
      pauses: perProvider((p) => Object.fromEntries(Object.keys(accounts[p]).map((a) => [a, { busy: false, intervals: [] }]))),
    };
    this.users.push(u);
    return u;
  }

  /** Whether u's p account `a` may have been paused at some moment of [t0, t1]. */
  mayBePaused(u, p, a, t0, t1) {
    return (u.pauses[p][a]?.intervals || []).some((iv) => {
      const end = Math.min(iv.until + PAUSE_END_SLACK_MS, iv.endAckAt ?? Infinity);
      return iv.sentAt <= t1 && end >= t0;
    });
  }

  /** Whether u's p account `a` was paused for the whole of [t0, t1]. */
  mustBePaused(u, p, a, t0, t1) {
    return (u.pauses[p][a]?.intervals || []).some((iv) => {
      if (iv.ackAt === undefined) return false;
      const end = Math.min(iv.until - PAUSE_END_SLACK_MS, iv.endSentAt ?? Infinity);
      return iv.ackAt <= t0 && end >= t1;
    });
  }

  /** A pause of u's p account `a` is being sent (at `sentAt`): a new interval, returned. */
  pauseSent(u, p, a, sentAt) {
    const intervals = u.pauses[p][a].intervals;
    const iv = { sentAt, ackAt: undefined, until: Infinity };
    intervals.push(iv);
    return iv;
  }

  /**
   * The pause `iv` was answered at `ackAt` (until: its pausedUntil in ms, or Infinity);
   * any earlier interval ends with it (a new pause replaces the old one).
   */
  pauseAcked(u, p, a, iv, ackAt, until) {
    iv.ackAt = ackAt;
    iv.until = until;
    for (const old of u.pauses[p][a].intervals) {
      if (old === iv || Number.isFinite(old.endAckAt)) continue;
      old.endSentAt = Math.min(old.endSentAt ?? Infinity, iv.sentAt);
      old.endAckAt = ackAt;
    }
  }

  /** The answer to the pause `iv` was lost: it may be in force from its sending on. */
  pauseLost(u, p, a, iv) {
    this.stats.pauses.lost += 1;
    for (const old of u.pauses[p][a].intervals) {
      if (old === iv || Number.isFinite(old.endAckAt)) continue;
      old.endSentAt = Math.min(old.endSentAt ?? Infinity, iv.sentAt);
    }
  }

  /**
   * A resume of u's p account `a` is being sent (at sentAt): from then on no pause of it
   * is certain; it may last until the answer (resumed).
   */
  resumeSent(u, p, a, sentAt) {
    for (const iv of u.pauses[p][a].intervals) {
      if (Number.isFinite(iv.endAckAt)) continue;
      iv.endSentAt = Math.min(iv.endSentAt ?? Infinity, sentAt);
    }
  }

  /** The resume of u's p account `a` sent at sentAt was answered at ackAt (Infinity: lost). */
  resumed(u, p, a, sentAt, ackAt) {
    for (const iv of u.pauses[p][a].intervals) {
      if (Number.isFinite(iv.endAckAt)) continue;
      iv.endSentAt = Math.min(iv.endSentAt ?? Infinity, sentAt);
      iv.endAckAt = ackAt;
    }
  }

  /** u's p account `a`'s pause intervals as text, times relative to `origin` (for messages). */
  describePauses(u, p, a, origin) {
    const t = (ms) => (ms === undefined ? '-' : Number.isFinite(ms) ? `+${ms - origin}` : String(ms));
    return (
      u.pauses[p][a].intervals
        .map((iv) => `[pause sent ${t(iv.sentAt)}, ack ${t(iv.ackAt)}, until ${t(iv.until)}, resume sent ${t(iv.endSentAt)}, ack ${t(iv.endAckAt)}]`)
        .join(' ') || 'none'
    );
  }

  /** Whether some pause or resume of u's p account `a` had its answer lost. */
  pauseUncertain(u, p, a) {
    return u.pauses[p][a].intervals.some((iv) => iv.endAckAt === Infinity || (iv.ackAt === undefined && iv.endAckAt === undefined));
  }

  /**
   * A new job of user u for provider p, in state 'registering'. Its key (unique in the
   * run), id and kind are the provider's (providers.mjs newJob). named: the account the
   * registration names; expiring: back-dated to pass its timeout 3 to 12 s from now;
   * withReply: a replyUrl to the receiver.
   */
  newJob(u, p, { named, expiring, withReply, waitSeconds = 0 }) {
    const rng = this.rng;
    this.jobSeq += 1;
    const { key, id, kind } = PROVIDERS[p].newJob(this.idBase + this.jobSeq, this.runTag, rng);
    const job = {
      user: u.user,
      provider: p,
      key,
      id, // the id in paths; a Dreamina jobid the scheduler makes is known from the 201
      kind, // MiniMax video or image, PixVerse's type
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
      waitSeconds, // > 0: the registration may wait that long for a slot
      abortedAt: undefined, // the client gave up waiting at this time
    };
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
    job.id = PROVIDERS[job.provider].ids(body).id;
    this.stats.registered += 1;
    this.stats.byProvider[job.provider].registered += 1;
    if (job.deadline !== undefined) job.state = 'expiring';
    else this.release(u, job);
  }

  /** A registration answered with a refusal (`status`) at `at`. */
  reject(job, status, at) {
    job.state = 'rejected';
    job.rejectStatus = status;
    job.rejectedAt = at;
  }

  /**
   * The client gave up job's waiting registration at `at` (an abort): its outcome is
   * unknown until a list shows it (adopt) or the next settle() finds it absent.
   */
  aborted(job, at) {
    job.state = 'unknown';
    job.unknown = 'register';
    job.abortedAt = at;
    this.stats.waiting.aborted += 1;
  }

  /**
   * A list read answered at `at` shows job (item: normalised, with its account), whose
   * registration was given up by its client or lost: it is executing after all.
   */
  adopt(u, job, item, at) {
    job.account = item.account;
    job.id = item.id;
    job.regAckAt = at;
    job.unknown = undefined;
    if (job.deadline !== undefined) job.state = 'expiring';
    else this.release(u, job);
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
    this.stats.byProvider[job.provider][state] += 1;
    u.finished[job.provider].push(job.key);
  }

  /** Whether some job's outcome is still unknown. */
  hasUnknown() {
    return this.allJobs().some((j) => j.unknown);
  }

  allJobs() {
    return this.users.flatMap((u) => PROVIDER_NAMES.flatMap((p) => [...u.jobs[p].values()]));
  }

  /**
   * How many of u's jobs that take a slot are surely executing on p account `a` now, by
   * the ledger: none being completed or cancelled, none near its expiry.
   */
  slotsSurelyTaken(u, p, a) {
    const now = Date.now();
    const surely = (j) =>
      j.state === 'executing' || (j.state === 'busy' && j.termSentAt === undefined) || (j.state === 'expiring' && j.deadline > now + 1500);
    return [...u.jobs[p].values()].filter((j) => j.account === a && PROVIDERS[p].takesSlot(j.kind) && surely(j)).length;
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
          this.adopt(u, job, items.find((x) => x.key === job.key), r.t1);
          stats.resolved.landed += 1;
        } else if (job.deadline !== undefined && job.deadline - 1500 <= r.t1) {
          // A lost back-dated registration may have landed and expired already: its
          // webhook (if any) decides.
          job.state = 'unknown-expiring';
          job.unknown = undefined;
        } else {
          job.state = 'not-landed';
          job.unknown = undefined;
          job.rejectedAt = r.t1;
          if (job.abortedAt !== undefined) stats.waiting.abortedNotAdmitted += 1;
          else stats.resolved.notLanded += 1;
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
