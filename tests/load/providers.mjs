// The five providers as the load generator sees them (API.md "Public API", "The rest
// of the family"): one row each with everything the generator needs that differs
// between them, so that the rest of tests/load names no provider (but the FIFO user,
// which is Kling's).
//
// A job has a `key`, unique in the run, that the ledger files it under, and an `id`, the
// one that names it in paths: the same for all but Dreamina, whose jobid the scheduler
// may make up (so its key is the submitId). MiniMax and PixVerse jobs also have a `kind`
// (MiniMax video or image, PixVerse's type).
//
// Each row:
//   path            the public scheduler path (lists; `${path}/available`, `${path}/{id}`)
//   accountKey      the member that names the account in registration bodies,
//                   `available` rows and webhook payloads
//   accounts        three account names the simulated users configure, ascending
//   maxJobsLimit    the largest maxJobs an account may have
//   grouped         the list is {"executing": {account: [items]}, "total"} (else a flat array)
//   itemsNameAccount whether a public list item tells its account (Kling's email, or
//                   Dreamina's grouping); the family's items do not, so a check that
//                   needs the account reads the operator's jobs list, which adds it
//   timed           whether items carry `started` (their admission time; lists are
//                   sorted by it)
//   newJob(n, tag, rng)  the key, id (undefined: the scheduler makes it) and kind of a
//                   new job; n is a number unique in the run, tag the run's tag
//   body(job)       the provider's own members of the job's registration body (ids, kind)
//   ids(o)          { key, id, kind } read from anything that carries the id members: a
//                   list item, a 201, a completion answer (no Dreamina submitId there),
//                   a webhook payload
//   takesSlot(kind) whether such a job counts against maxJobs and in `executing`

/**
 * An opaque id (1..512 visible ASCII without "/") unique in the run. Most carry one
 * character that a path must percent-encode, or JSON escape, so that cancels, completions
 * and lists are tried with them.
 */
const ODD = ['', ':', '+', '%', '?', '#', '"', '\\', "'", '*', '~', '&='];
const opaqueId = (prefix, tag, n) => `${prefix}-${tag}-${n}${ODD[n % ODD.length]}`;

/** Share of MiniMax registrations that are image jobs (listed, but they take no slot). */
const IMAGE_SHARE = 0.3;
const PIXVERSE_TYPES = ['video', 'image', 'music'];
const always = () => true;

export const PROVIDERS = {
  kling: {
    path: '/v1/kling/scheduler',
    accountKey: 'email',
    accounts: ['a@x.com', 'b@x.com', 'c@x.com'],
    maxJobsLimit: 50,
    grouped: false,
    itemsNameAccount: true,
    timed: true,
    newJob: (n) => ({ key: String(n), id: n }),
    body: (job) => ({ id: job.id }),
    ids: (o) => ({ key: String(o.id), id: o.id }),
    takesSlot: always,
  },
  dreamina: {
    path: '/v1/dreamina/scheduler',
    accountKey: 'account',
    accounts: ['EU:b@x.com', 'JP:c@x.com', 'US:a@x.com'],
    maxJobsLimit: 50,
    grouped: true,
    itemsNameAccount: true,
    timed: false,
    // 30% name their own jobid; the others get one in the seeds' style.
    newJob: (n, tag, rng) => ({ key: `sub-${tag}-${n}`, id: rng() < 0.3 ? `job-${tag}-${n}` : undefined }),
    body: (job) => ({ submitId: job.key, model: 'seedance-2.0', ...(job.id !== undefined && { jobid: job.id }) }),
    ids: (o) => ({ key: o.submitId, id: o.jobid }),
    takesSlot: always,
  },
  minimax: {
    path: '/v1/minimax/scheduler',
    accountKey: 'account',
    accounts: ['acc-a', 'acc-b', 'acc_c'],
    maxJobsLimit: 10,
    grouped: false,
    itemsNameAccount: false,
    timed: true,
    newJob: (n, tag, rng) => {
      const id = opaqueId('mm', tag, n);
      return { key: id, id, kind: rng() < IMAGE_SHARE ? 'image' : 'video' };
    },
    body: (job) => ({ [`${job.kind}Id`]: job.id }),
    ids: (o) => {
      const kind = 'imageId' in o ? 'image' : 'video';
      const id = o[`${kind}Id`];
      return { key: id, id, kind };
    },
    // "the available capacity includes only videos"
    takesSlot: (kind) => kind !== 'image',
  },
  pixverse: {
    path: '/v2/pixverse/scheduler',
    accountKey: 'email',
    accounts: ['a@x.com', 'b@x.com', 'c@x.com'],
    maxJobsLimit: 8,
    grouped: false,
    itemsNameAccount: false,
    timed: true,
    newJob: (n, tag, rng) => {
      const id = opaqueId('px', tag, n);
      return { key: id, id, kind: PIXVERSE_TYPES[Math.floor(rng() * PIXVERSE_TYPES.length)] };
    },
    body: (job) => ({ id: job.id, type: job.kind }),
    ids: (o) => ({ key: o.id, id: o.id, kind: o.type }),
    takesSlot: always,
  },
  runwayml: {
    path: '/v1/runwayml/scheduler',
    accountKey: 'email',
    accounts: ['a@x.com', 'b@x.com', 'c@x.com'],
    maxJobsLimit: 10,
    grouped: false,
    itemsNameAccount: false,
    timed: false, // its items have no time members, as its page shows
    newJob: (n, tag) => {
      const id = opaqueId('task', tag, n);
      return { key: id, id };
    },
    body: (job) => ({ taskId: job.id }),
    ids: (o) => ({ key: o.taskId, id: o.taskId }),
    takesSlot: always,
  },
};

export const PROVIDER_NAMES = Object.keys(PROVIDERS);
