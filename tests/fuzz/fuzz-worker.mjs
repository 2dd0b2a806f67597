// Starts the worker for scripts/fuzz.sh and seeds the data the fuzzer needs to reach the
// success paths of every operation (the fixtures), then keeps the worker up until SIGTERM.
//
// The worker: wrangler dev through the e2e support (fresh --persist-to temp dir,
// ADMIN_TOKEN set), with MAX_ACCOUNTS 200 (the fuzzer configures accounts of its own) and
// WEBHOOK_RETRY_SCHEDULE "1" (a delivery to a closed port is `failed` within seconds, so
// failed deliveries exist to list and to retry, and a retried one fails again soon).
//
// Fixtures, for user 12345 (the user of the public token) and every provider:
//   capacity  accounts with the provider's largest maxJobs, enough slots for every job the
//             fuzzer registers (registrations name them, or name none)
//   churn     accounts the fuzzer may reconfigure, pause, resume and remove (a removed one
//             is configured again by the hooks, tests/fuzz/fuzz_hooks.py)
//   jobs      executing jobs with known ids (with a replyUrl to a closed port), for
//             complete, progress and cancel (one ended is registered again by the hooks)
//   webhooks  failed deliveries (webhookId), for retry
//   cursors   `cursor` values from real `Link` headers of the webhooks list
// and revocable tokens of other users (for POST /admin/v1/tokens/revoke).
//
// Prints one JSON line when ready: {"url","userToken","adminToken","user","logFile",
// "fixtures":{...}}: tests/fuzz/fuzz_config.py turns it into schemathesis' config, and
// the hooks read it to put back what the fuzzer used up (`bodies`: how each job was
// registered).
//
//   node tests/fuzz/fuzz-worker.mjs   (the wasm build must exist: scripts/build.sh)

import assert from 'node:assert/strict';
import { admin } from '../support/client.mjs';
import { issueToken, putAccount } from '../support/fixtures.mjs';
import { ADMIN_TOKEN, sleep, startWorker } from '../support/server.mjs';

const USER = '12345';
const DEAD_HOOK = 'http://127.0.0.1:9/fuzz';

/** Per provider: account names, the job id member(s), and the seeded sets' sizes. */
const PROVIDERS = {
  kling: { key: 'email', limit: 50, capacity: 3, email: true },
  dreamina: { key: 'account', limit: 50, capacity: 3 },
  minimax: { key: 'account', limit: 10, capacity: 12 },
  pixverse: { key: 'email', limit: 8, capacity: 16, email: true },
  runwayml: { key: 'email', limit: 10, capacity: 12, email: true },
};
const POOL_JOBS = 12;
const FAILED_WEBHOOKS = 8;
const REVOCABLE_TOKENS = 60;

/** `a` and `b` give the document's example accounts (a@x.com, US:a@x.com, acct_a). */
function accountName(provider, tag) {
  if (provider === 'dreamina') return `US:${tag}@x.com`;
  if (provider === 'minimax') return tag.length === 1 ? `acct_${tag}` : tag;
  return `${tag}@x.com`;
}

/** The registration body of the pool job with path id `id`. */
function poolBody(provider, id) {
  const common = { replyUrl: DEAD_HOOK, replyRef: `pool ${id}` };
  switch (provider) {
    case 'kling':
      return { id: Number(id), ...common };
    case 'dreamina':
      return { jobid: id, submitId: `s-${id}`, model: 'seedance-2.0', ...common };
    case 'minimax':
      return id.startsWith('img-') ? { imageId: id, ...common } : { videoId: id, ...common };
    case 'pixverse':
      return { id, type: ['video', 'image', 'music'][id.length % 3], ...common };
    case 'runwayml':
      return { taskId: id, ...common };
    default:
      throw new Error(provider);
  }
}

/** Job ids: the pool starts with the document's example ids. */
function poolIds(provider, prefix, n) {
  const ids = Array.from({ length: n }, (_, i) =>
    provider === 'kling' ? String(900_000 + (prefix === 'hook' ? 500 : 0) + i) : provider === 'minimax' && i % 4 === 3 ? `img-${prefix}-${i}` : `${prefix}-${i}`,
  );
  if (prefix !== 'pool') return ids;
  const examples = { kling: ['123456789'], dreamina: ['j0223140530123456789v-u12345-US:a@x.com:dreamina', 'abc-123'] };
  return [...(examples[provider] ?? ['abc-123']), ...ids];
}

async function register(url, provider, body) {
  const r = await admin(url, 'POST', `/admin/v1/users/${USER}/${provider}/jobs`, body);
  assert.equal(r.status, 201, `seed ${provider} job ${JSON.stringify(body)}: ${r.text}`);
  return r.json;
}

async function seed(url) {
  const fixtures = { providers: {}, tokens: [] };
  for (const [provider, P] of Object.entries(PROVIDERS)) {
    const f = { capacity: [], churn: [], churnMaxJobs: 1, jobs: [], bodies: {}, webhooks: [], cursors: [] };
    for (let i = 0; i < P.capacity; i++) {
      const a = accountName(provider, i === 0 ? 'a' : `cap${i}`);
      await putAccount(url, USER, provider, a, P.limit);
      f.capacity.push(a);
    }
    for (let i = 0; i < 6; i++) {
      const a = accountName(provider, i === 0 ? 'b' : `churn${i}`);
      await putAccount(url, USER, provider, a, 1);
      f.churn.push(a);
    }
    for (const id of poolIds(provider, 'pool', POOL_JOBS)) {
      f.bodies[id] = { ...poolBody(provider, id), [P.key]: f.capacity[f.jobs.length % f.capacity.length] };
      await register(url, provider, f.bodies[id]);
      f.jobs.push(id);
    }
    // Deliveries that fail: jobs ended with a replyUrl to a closed port.
    for (const id of poolIds(provider, 'hook', FAILED_WEBHOOKS)) {
      await register(url, provider, poolBody(provider, id));
      const c = await admin(url, 'POST', `/admin/v1/users/${USER}/${provider}/jobs/${encodeURIComponent(id)}/complete`, {
        status: 'failed',
        result: { reason: 'seeded' },
      });
      assert.equal(c.status, 200, c.text);
    }
    fixtures.providers[provider] = f;
  }
  // Wait for the failures (two attempts, 1 s apart, on the accounts' 2 s alarm grid).
  for (const [provider, f] of Object.entries(fixtures.providers)) {
    const base = `/admin/v1/users/${USER}/${provider}/webhooks`;
    for (let i = 0; ; i++) {
      const r = await admin(url, 'GET', `${base}?status=failed&limit=1000`);
      assert.equal(r.status, 200, r.text);
      if (r.json.length >= FAILED_WEBHOOKS) {
        f.webhooks = r.json.map((row) => row.webhookId);
        break;
      }
      assert.ok(i < 120, `${provider}: ${r.json.length} of ${FAILED_WEBHOOKS} deliveries failed within 60 s`);
      await sleep(500);
    }
    // Cursors from real next links (pages of two).
    let next = `${base}?status=failed&limit=2`;
    while (next && f.cursors.length < 3) {
      const r = await admin(url, 'GET', next);
      const link = r.headers.get('link');
      next = link && /^<([^>]+)>/.exec(link)[1];
      if (next) f.cursors.push(new URL(next, url).searchParams.get('cursor'));
    }
  }
  for (let i = 0; i < REVOCABLE_TOKENS; i++) fixtures.tokens.push(await issueToken(url, `revocable_${i}`));
  return fixtures;
}

const w = await startWorker({ vars: { MAX_ACCOUNTS: '200', WEBHOOK_RETRY_SCHEDULE: '1' } });
let stopping = false;
async function shutdown(code) {
  if (stopping) return;
  stopping = true;
  await w.stop();
  process.exit(code);
}
process.on('SIGTERM', () => shutdown(0));
process.on('SIGINT', () => shutdown(0));
// If the parent (scripts/fuzz.sh) dies without signalling, do not outlive it.
const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent) shutdown(0);
}, 1000);

try {
  const userToken = await issueToken(w.url, USER);
  const fixtures = await seed(w.url);
  process.stdout.write(
    `${JSON.stringify({ url: w.url, userToken, adminToken: ADMIN_TOKEN, user: USER, logFile: w.logFile, fixtures })}\n`,
  );
} catch (err) {
  console.error(`fuzz-worker: setup failed: ${err?.stack || err}`);
  await shutdown(1);
}
