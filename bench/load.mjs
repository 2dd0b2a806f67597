// The load generator of bench/run.sh: a separate Node process that talks HTTP/1.1 with
// keep-alive to workerd on 127.0.0.1 only. Targets are named by the ready files that
// bench/serve.mjs (Miniflare) and bench/wrangler.mjs (wrangler dev) write: their URL and
// the PIDs whose CPU time is read around each scenario. Sub-commands:
//
//   node bench/load.mjs seed --url URL --out seed.json [--scales 1,10,50]
//                            [--providers kling,dreamina] [--extras 1]
//       Seeds a scheduler (ours or the peer: same operator API) through the operator
//       API: tokens, accounts, executing jobs, for each scale (accounts per user) and
//       provider; --extras 1 adds the user without accounts, the 1 x 50-jobs account and
//       the register/complete account. Checks the lists answer what was seeded and
//       records the body sizes.
//
//   node bench/load.mjs bench --main READY --main-seed SEED [--peer READY --peer-seed SEED]
//                             --ceiling READY --out results.json
//       Runs every scenario on ours and, when given, on the peer, plus the ceilings
//       first and last: BENCH_WARMUP requests first (not measured), then BENCH_REQUESTS
//       x the scenario's weight requests at BENCH_CONCURRENCY in flight, reading the
//       target's CPU time (/proc/<pid>/stat) before and after the measured part. Ours
//       and the peer run each scenario in the order A B B A, each part half the
//       requests (see runPair), so drift during the pair weighs on both alike. A part
//       stops early after BENCH_MAX_SECONDS (reported as such).
//
//   node bench/load.mjs one --target READY --seed SEED --scenario ID --name NAME
//                           --requests N --out result.json
//       One scenario on one target (the Kling list under wrangler dev).
//
// Every request's status is checked; a wrong status fails the run (exit 1).
import http from "node:http";
import { readFileSync, writeFileSync } from "node:fs";
import { cpuTicks } from "./procs.mjs";

const ADMIN = process.env.BENCH_ADMIN_TOKEN ?? "bench-admin";
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 8);
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 3000);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 200);
const MAX_SECONDS = Number(process.env.BENCH_MAX_SECONDS ?? 40);
const CLK_TCK = Number(process.env.CLK_TCK ?? 100);
const SCALE = [1, 10, 50];
const JOBS_PER_ACCOUNT = 10;
const MAX_JOBS = 20;
const DEEP_JOBS = 50;
// A closed loopback port: seeded jobs are never completed during the run, so nothing is
// ever sent there; it only makes the list items carry a realistic replyUrl.
const REPLY_URL = "http://127.0.0.1:9/bench-hook";

function parseArgs(argv) {
  const args = { _: [] };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i].startsWith("--")) args[argv[i].slice(2)] = argv[++i];
    else args._.push(argv[i]);
  }
  return args;
}

// ---------------------------------------------------------------------------- HTTP

function client(base) {
  const url = new URL(base);
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY, maxFreeSockets: CONCURRENCY });
  return {
    agent,
    /** Connections workerd closed with a GET in flight (retried once, see below). */
    resets: 0,
    /**
     * One request; resolves { status, body } (body as a string). A GET whose reused
     * keep-alive connection is closed by workerd before any answer (ECONNRESET, "socket
     * hang up") is retried once on a fresh connection and counted in `resets`: workerd
     * does that now and then to long fan-out requests (50-account lists) on a loaded
     * machine, and the run reports how often rather than dying. Other methods fail.
     */
    async request(method, path, opts = {}) {
      try {
        return await this.once(method, path, opts);
      } catch (e) {
        if (method !== "GET" || e.code !== "ECONNRESET" || !e.reusedSocket) throw e;
        this.resets++;
        return this.once(method, path, { ...opts, fresh: true });
      }
    },
    once(method, path, { token, json, headers = {}, fresh = false } = {}) {
      const payload = json === undefined ? null : Buffer.from(JSON.stringify(json));
      const h = { ...headers };
      if (token) h.authorization = `Bearer ${token}`;
      if (payload) {
        h["content-type"] = "application/json";
        h["content-length"] = payload.length;
      }
      return new Promise((resolve, reject) => {
        const req = http.request(
          { host: url.hostname, port: url.port, method, path, headers: h, agent: fresh ? false : agent },
          (res) => {
            const chunks = [];
            res.on("data", (c) => chunks.push(c));
            res.on("end", () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString("utf8") }));
            res.on("error", reject);
          },
        );
        req.setTimeout(30_000, () => req.destroy(new Error(`timeout: ${method} ${path}`)));
        req.on("error", (e) => {
          e.reusedSocket = req.reusedSocket;
          reject(e);
        });
        if (payload) req.write(payload);
        req.end();
      });
    },
  };
}

async function expect(promise, status, what) {
  const res = await promise;
  if (res.status !== status) {
    throw new Error(`${what}: expected ${status}, got ${res.status}: ${res.body.slice(0, 300)}`);
  }
  return res;
}

/** Runs `tasks` (functions returning promises) with at most `limit` in flight. */
async function pool(tasks, limit) {
  let next = 0;
  const results = new Array(tasks.length);
  async function lane() {
    while (next < tasks.length) {
      const i = next++;
      results[i] = await tasks[i]();
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, lane));
  return results;
}

// ---------------------------------------------------------------------------- seed

const klingAccount = (n) => `acct${String(n).padStart(2, "0")}@bench.example`;
const dreaminaAccount = (n) => `US:acct${String(n).padStart(2, "0")}@bench.example`;
const list = (s, fallback) => (s === undefined ? fallback : s.split(",").filter(Boolean));

/** What to seed, from the seed sub-command's arguments. */
function seedPlan(args) {
  return {
    scales: list(args.scales, SCALE.map(String)).map(Number),
    providers: list(args.providers, ["kling", "dreamina"]),
    extras: (args.extras ?? "1") === "1",
  };
}

/**
 * A Kling or Dreamina job body, back-dated `agoMs` (all well inside the job timeout).
 * `seq` counts per provider; Kling ids (and so the list bodies) are as in earlier runs.
 */
function jobBody(provider, account, seq, agoMs) {
  const started = new Date(Date.now() - agoMs).toISOString();
  const id = 700_000_000 + seq;
  return provider === "kling"
    ? { id, email: account, replyUrl: REPLY_URL, replyRef: `bench-ref-${id}`, started }
    : { submitId: `bench-submit-${seq}`, model: "dreamina-video-3.0", account, replyUrl: REPLY_URL, replyRef: `bench-ref-d${seq}`, started };
}

async function seed(args) {
  const plan = seedPlan(args);
  const c = client(args.url);
  const t0 = Date.now();
  const issue = async (user) =>
    JSON.parse((await expect(c.request("POST", "/admin/v1/tokens", { token: ADMIN, json: { user } }), 201, `token ${user}`)).body).token;

  const users = {};
  if (plan.extras) Object.assign(users, { empty: "bench-u0", pair: "bench-pair", deep: "bench-u1x50" });
  for (const n of plan.scales) users[`n${n}`] = `bench-u${n}`;
  const tokens = {};
  for (const [key, user] of Object.entries(users)) tokens[key] = await issue(user);

  const accounts = []; // [user, provider, account, maxJobs]
  const jobs = []; // [user, provider, body]
  const seq = { kling: 0, dreamina: 0 };
  for (const n of plan.scales) {
    for (let a = 1; a <= n; a++) {
      for (const provider of plan.providers) {
        const account = provider === "kling" ? klingAccount(a) : dreaminaAccount(a);
        accounts.push([users[`n${n}`], provider, account, MAX_JOBS]);
        // A few seconds apart, oldest first.
        for (let j = 0; j < JOBS_PER_ACCOUNT; j++) jobs.push([users[`n${n}`], provider, jobBody(provider, account, ++seq[provider], (JOBS_PER_ACCOUNT - j) * 7_000 + a * 100)]);
      }
    }
  }
  if (plan.extras) {
    // The pair account: registration + completion cycles, never more than CONCURRENCY
    // executing at once, far below maxJobs 50.
    accounts.push([users.pair, "kling", "pair@bench.example", 50]);
    // One Kling account holding 50 jobs: against "10 accounts x 10 jobs" it separates
    // the cost of a Durable Object round trip from the cost per job (serde, SQL rows).
    accounts.push([users.deep, "kling", klingAccount(1), DEEP_JOBS]);
    for (let j = 0; j < DEEP_JOBS; j++) jobs.push([users.deep, "kling", jobBody("kling", klingAccount(1), ++seq.kling, (DEEP_JOBS - j) * 7_000)]);
  }
  // Accounts one at a time: the peer keeps each user's account list in one KV value
  // (read, append, write), so concurrent PUTs for one user would lose accounts there.
  await pool(
    accounts.map(([user, provider, account, maxJobs]) => () =>
      expect(
        c.request("PUT", `/admin/v1/users/${user}/${provider}/accounts/${encodeURIComponent(account)}`, { token: ADMIN, json: { maxJobs } }),
        200,
        `PUT ${provider} account ${account}`,
      ),
    ),
    1,
  );
  await pool(
    jobs.map(([user, provider, body]) => () =>
      expect(c.request("POST", `/admin/v1/users/${user}/${provider}/jobs`, { token: ADMIN, json: body }), 201, `register ${provider} job`),
    ),
    CONCURRENCY,
  );

  const sizes = await checkSeed(c, plan, tokens);
  const out = {
    users,
    tokens,
    sizes,
    plan,
    seeded: { accounts: accounts.length, jobs: jobs.length, seconds: (Date.now() - t0) / 1000 },
  };
  writeFileSync(args.out, JSON.stringify(out, null, 2));
  console.error(
    `[load] seeded ${args.url}: ${out.seeded.accounts} accounts and ${out.seeded.jobs} jobs in ${out.seeded.seconds.toFixed(1)} s` +
      (sizes.kling_list_10 ? `; 10-account Kling list: ${sizes.kling_list_10} bytes` : ""),
  );
  c.agent.destroy();
}

/** Checks every seeded list holds what was seeded; returns the body sizes by scenario. */
async function checkSeed(c, plan, tokens) {
  const sizes = {};
  const scales = plan.extras ? [0, ...plan.scales] : plan.scales;
  for (const n of scales) {
    const token = n === 0 ? tokens.empty : tokens[`n${n}`];
    for (const provider of plan.providers) {
      const res = await expect(c.request("GET", `/v1/${provider}/scheduler`, { token }), 200, `${provider} list ${n}`);
      const count = provider === "kling" ? JSON.parse(res.body).length : JSON.parse(res.body).total;
      if (count !== n * JOBS_PER_ACCOUNT) throw new Error(`seed check at ${n} accounts: ${provider} ${count}, expected ${n * JOBS_PER_ACCOUNT}`);
      sizes[`${provider}_list_${n}`] = Buffer.byteLength(res.body);
    }
  }
  if (plan.extras) {
    const deep = await expect(c.request("GET", "/v1/kling/scheduler", { token: tokens.deep }), 200, "deep list");
    if (JSON.parse(deep.body).length !== DEEP_JOBS) throw new Error("seed check: deep account");
    sizes.kling_list_1x50 = Buffer.byteLength(deep.body);
  }
  if (tokens.n10) {
    for (const provider of plan.providers) {
      const a = await expect(c.request("GET", `/v1/${provider}/scheduler/available`, { token: tokens.n10 }), 200, `${provider} available`);
      sizes[`${provider}_available_10`] = Buffer.byteLength(a.body);
    }
  }
  return sizes;
}

// ---------------------------------------------------------------------------- targets

/**
 * A target from its ready file: `cpuPids` are summed into the scenario's "workerd CPU"
 * (one workerd under Miniflare; under wrangler dev the worker's and the proxy's);
 * `asidePids` are reported on their own (the Node processes: serve.mjs, wrangler).
 */
function loadTarget(name, readyFile) {
  const r = JSON.parse(readFileSync(readyFile, "utf8"));
  return {
    name,
    url: r.url,
    http: client(r.url),
    cpuPids: r.cpuPids ?? { workerd: r.workerdPid },
    asidePids: r.asidePids ?? (r.servePid ? { serve: r.servePid } : {}),
  };
}

/** CPU ticks of each named PID. */
function readTicks(pids) {
  return Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, cpuTicks(pid)]));
}

/** after - before, per name. */
function ticksSince(before, after) {
  return Object.fromEntries(Object.keys(before).map((k) => [k, after[k] - before[k]]));
}

/** Sums per-name tick counts over parts. */
function sumTicks(list) {
  const out = {};
  for (const t of list) for (const [k, v] of Object.entries(t)) out[k] = (out[k] ?? 0) + v;
  return out;
}

// ---------------------------------------------------------------------------- bench

function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

/** Measured requests a scenario gets in all: BENCH_REQUESTS x its weight (at least 50). */
const plannedOps = (scenario) => scenario.requests ?? Math.max(50, Math.round(REQUESTS * (scenario.weight ?? 1)));

/**
 * One measured part of a scenario: warm-up (not measured), then `total` operations at
 * CONCURRENCY in flight, with the target's CPU ticks read before and after. `op(i)`
 * performs one operation (one or more requests) and resolves the number of HTTP
 * requests it made; it throws on a wrong status. Returns the raw figures.
 */
async function measure(target, scenario, total) {
  const warmup = Math.min(WARMUP, Math.ceil(total / 5));
  let seq = 0;
  const lanes = (count, record) => {
    let started = 0;
    const deadline = record ? process.hrtime.bigint() + BigInt(MAX_SECONDS * 1e9) : null;
    const lane = async () => {
      while (started < count) {
        if (deadline && process.hrtime.bigint() > deadline) return;
        started++;
        const i = seq++;
        const t = process.hrtime.bigint();
        const requests = await scenario.op(i);
        if (record) record(Number(process.hrtime.bigint() - t) / 1e6, requests);
      }
    };
    return Promise.all(Array.from({ length: CONCURRENCY }, lane));
  };

  await lanes(warmup, null);
  const resets0 = target.http.resets;
  const latencies = [];
  let httpRequests = 0;
  const cpu0 = readTicks(target.cpuPids);
  const aside0 = readTicks(target.asidePids);
  const client0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await lanes(total, (ms, n) => {
    latencies.push(ms);
    httpRequests += n;
  });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const client = process.cpuUsage(client0);
  return {
    planned: total,
    warmup,
    latencies,
    httpRequests,
    seconds,
    cpuTicks: ticksSince(cpu0, readTicks(target.cpuPids)),
    asideTicks: ticksSince(aside0, readTicks(target.asidePids)),
    clientCpuMs: (client.user + client.system) / 1000,
    resets: target.http.resets - resets0,
  };
}

/** One result from one or more measured parts of the same scenario on the same target. */
function summarize(target, scenario, parts) {
  const latencies = parts.flatMap((p) => p.latencies).sort((a, b) => a - b);
  const ops = latencies.length;
  const planned = parts.reduce((a, p) => a + p.planned, 0);
  const seconds = parts.reduce((a, p) => a + p.seconds, 0);
  const toMsPerOp = (ticks) => Object.fromEntries(Object.entries(ticks).map(([k, v]) => [k, (v * 1000) / CLK_TCK / ops]));
  const cpuBy = toMsPerOp(sumTicks(parts.map((p) => p.cpuTicks)));
  const cpuPerOp = Object.values(cpuBy).reduce((a, b) => a + b, 0);
  const result = {
    id: scenario.id,
    label: scenario.label,
    target: target.name,
    unit: scenario.unit ?? "req",
    requestsPerOp: ops ? parts.reduce((a, p) => a + p.httpRequests, 0) / ops : 1,
    ops,
    planned,
    parts: parts.length,
    warmup: parts.reduce((a, p) => a + p.warmup, 0),
    cutShort: ops < planned,
    resets: parts.reduce((a, p) => a + p.resets, 0),
    seconds,
    throughput: ops / seconds,
    p50: percentile(latencies, 50),
    p90: percentile(latencies, 90),
    p99: percentile(latencies, 99),
    max: latencies[latencies.length - 1],
    mean: latencies.reduce((a, b) => a + b, 0) / ops,
    // The sum over cpuPids: one workerd, or wrangler dev's two.
    workerdCpuMsPerOp: cpuPerOp,
    workerdCpuUtil: (cpuPerOp * ops) / 1000 / seconds,
    cpuMsPerOpBy: cpuBy,
    asideCpuMsPerOpBy: toMsPerOp(sumTicks(parts.map((p) => p.asideTicks))),
    clientCpuMsPerOp: parts.reduce((a, p) => a + p.clientCpuMs, 0) / ops,
    bodyBytes: scenario.bodyBytes ?? null,
    accounts: scenario.accounts ?? null,
    provider: scenario.provider ?? null,
    kind: scenario.kind ?? null,
  };
  console.error(
    `[load] ${result.target.padEnd(8)} ${result.label.padEnd(44)} ${result.throughput.toFixed(0).padStart(6)} ${result.unit}/s  ` +
      `p50 ${result.p50.toFixed(2).padStart(7)} ms  p99 ${result.p99.toFixed(2).padStart(7)} ms  ` +
      `cpu ${result.workerdCpuMsPerOp.toFixed(2).padStart(6)} ms/${result.unit}` +
      (result.cutShort ? `  (cut short at ${MAX_SECONDS} s per part: ${ops}/${planned})` : "") +
      (result.resets ? `  (${result.resets} connection resets, retried)` : ""),
  );
  return result;
}

/** A scenario on one target, in one part. */
async function runScenario(target, scenario) {
  return summarize(target, scenario, [await measure(target, scenario, plannedOps(scenario))]);
}

/**
 * A scenario on ours and on the peer, in the order A B B A (each part half the
 * requests), so that a machine getting steadily faster or slower during the pair
 * weighs on both alike. `swap` makes it B A A B, alternated between scenarios so that
 * neither always starts cold.
 */
async function runPair(a, b, swap) {
  const [first, second] = swap ? [b, a] : [a, b];
  const half = (x) => Math.ceil(plannedOps(x.scenario) / 2);
  const parts = new Map([[first, []], [second, []]]);
  for (const x of [first, second, second, first]) parts.get(x).push(await measure(x.target, x.scenario, half(x)));
  return [a, b].map((x) => summarize(x.target, x.scenario, parts.get(x)));
}

/**
 * The scheduler scenarios for one target (ours or the peer: same contract, each with
 * the tokens of its own seed). Ids are the same for both, so the report can pair them.
 */
function schedulerScenarios(target, seedInfo) {
  const { tokens, users, sizes } = seedInfo;
  const get = (path, token, status) => () =>
    expect(target.http.request("GET", path, { token }), status, `${target.name}: GET ${path}`).then(() => 1);

  const scenarios = [
    {
      id: "unmatched_404",
      label: "404 unknown path (no I/O)",
      kind: "baseline",
      op: get("/v1/nowhere", undefined, 404),
    },
    {
      id: "unauthorized_401",
      label: "401 unknown token (KV get + limiter)",
      kind: "baseline",
      op: get("/v1/kling/scheduler", "sk_bench_unknown_token_0000000000000000000000", 401),
    },
    {
      id: "kling_list_0",
      label: "GET /v1/kling/scheduler, 0 accounts",
      kind: "list",
      provider: "kling",
      accounts: 0,
      bodyBytes: sizes.kling_list_0,
      op: get("/v1/kling/scheduler", tokens.empty, 200),
    },
  ];
  for (const provider of ["kling", "dreamina"]) {
    for (const n of SCALE) {
      scenarios.push({
        id: `${provider}_list_${n}`,
        label: `GET /v1/${provider}/scheduler, ${n} account${n === 1 ? "" : "s"}`,
        kind: "list",
        provider,
        accounts: n,
        bodyBytes: sizes[`${provider}_list_${n}`],
        // Heavier scenarios get fewer requests so the whole run stays bounded.
        weight: n >= 50 ? 0.25 : n >= 10 ? 0.5 : 1,
        op: get(`/v1/${provider}/scheduler`, tokens[`n${n}`], 200),
      });
    }
  }
  scenarios.push({
    id: "kling_list_1x50",
    label: "GET /v1/kling/scheduler, 1 account x 50 jobs",
    kind: "profile",
    provider: "kling",
    accounts: 1,
    bodyBytes: sizes.kling_list_1x50,
    weight: 0.5,
    op: get("/v1/kling/scheduler", tokens.deep, 200),
  });
  for (const provider of ["kling", "dreamina"]) {
    scenarios.push({
      id: `${provider}_available_10`,
      bodyBytes: sizes[`${provider}_available_10`],
      label: `GET /v1/${provider}/scheduler/available, 10 accounts`,
      kind: "available",
      provider,
      accounts: 10,
      weight: 0.5,
      op: get(`/v1/${provider}/scheduler/available`, tokens.n10, 200),
    });
  }
  let pairId = 800_000_000;
  scenarios.push({
    id: "kling_register_complete",
    label: "Kling register + complete (1 account)",
    kind: "write",
    provider: "kling",
    accounts: 1,
    unit: "pair",
    weight: 0.5,
    op: async () => {
      const id = ++pairId;
      const base = `/admin/v1/users/${users.pair}/kling/jobs`;
      await expect(target.http.request("POST", base, { token: ADMIN, json: { id, email: "pair@bench.example" } }), 201, `${target.name}: register`);
      await expect(target.http.request("POST", `${base}/${id}/complete`, { token: ADMIN, json: { status: "completed" } }), 200, `${target.name}: complete`);
      return 2;
    },
  });
  return scenarios;
}

/** The ceiling (fixed body) and fan-out ceiling scenarios (bench/ceiling/src/lib.rs). */
function ceilingScenarios(ceiling, sizes) {
  const get = (path, what) => () => expect(ceiling.http.request("GET", path), 200, what).then(() => 1);
  const fixed = (suffix) => ({
    id: `ceiling${suffix}`,
    label: `ceiling: fixed ${sizes.kling_list_10}-byte JSON${suffix ? " (again)" : ""}`,
    kind: "ceiling",
    bodyBytes: sizes.kling_list_10,
    op: get("/", "ceiling"),
  });
  // N minimal Durable Objects asked in parallel: the floor of a list over N accounts.
  // Same weights as the lists.
  const fanout = (n) => ({
    id: `fanout_${n}`,
    label: `fan-out ceiling: ${n} minimal object${n === 1 ? "" : "s"} in parallel`,
    kind: "fanout",
    accounts: n,
    bodyBytes: sizes.kling_list_1 * n + n + 1,
    weight: n >= 50 ? 0.25 : n >= 10 ? 0.5 : 1,
    op: get(`/fanout/${n}`, `fanout ${n}`),
  });
  return { first: [fixed(""), ...SCALE.map(fanout)], last: [fixed("_again")] };
}

function settings(extra = {}) {
  return {
    concurrency: CONCURRENCY,
    requests: REQUESTS,
    warmup: WARMUP,
    maxSecondsPerScenario: MAX_SECONDS,
    clkTck: CLK_TCK,
    jobsPerAccount: JOBS_PER_ACCOUNT,
    deepAccountJobs: DEEP_JOBS,
    maxJobsPerAccount: MAX_JOBS,
    ...extra,
  };
}

async function bench(args) {
  const mainSeed = JSON.parse(readFileSync(args["main-seed"], "utf8"));
  const peerSeed = args.peer ? JSON.parse(readFileSync(args["peer-seed"], "utf8")) : null;
  const main = loadTarget("main", args.main);
  const peer = args.peer ? loadTarget("peer", args.peer) : null;
  const ceiling = loadTarget("ceiling", args.ceiling);

  const mainScenarios = schedulerScenarios(main, mainSeed);
  const peerScenarios = peer ? schedulerScenarios(peer, peerSeed) : [];
  const ceilings = ceilingScenarios(ceiling, mainSeed.sizes);

  const results = [];
  // The ceiling first and last: its two runs show how much the machine drifted.
  for (const s of ceilings.first) results.push(await runScenario(ceiling, s));
  for (const [i, s] of mainScenarios.entries()) {
    const p = peerScenarios.find((x) => x.id === s.id);
    if (p) results.push(...(await runPair({ target: main, scenario: s }, { target: peer, scenario: p }, i % 2 === 1)));
    else results.push(await runScenario(main, s));
  }
  for (const s of ceilings.last) results.push(await runScenario(ceiling, s));

  const out = {
    settings: settings({
      rateLimiter:
        "AUTH_FAILURES configured in Miniflare with limit 1e9 per period for both (the real limits would turn the 401s into 429s); one client address (Miniflare's entry worker sets CF-Connecting-IP to 127.0.0.1)",
      order: "ceilings first; then each scenario on ours and the peer in the order A B B A, each part half the requests (B A A B for every other scenario); the fixed ceiling again last",
    }),
    seed: { seeded: mainSeed.seeded, sizes: mainSeed.sizes },
    peerSeed: peerSeed ? { seeded: peerSeed.seeded, sizes: peerSeed.sizes } : null,
    results,
  };
  writeFileSync(args.out, JSON.stringify(out, null, 2));
  for (const t of [main, peer, ceiling]) t?.http.agent.destroy();
}

/** One scenario on one target: `--requests` measured requests (wrangler dev's Kling list). */
async function one(args) {
  const seedInfo = JSON.parse(readFileSync(args.seed, "utf8"));
  const target = loadTarget(args.name, args.target);
  const scenario = schedulerScenarios(target, seedInfo).find((s) => s.id === args.scenario);
  if (!scenario) throw new Error(`unknown scenario ${args.scenario}`);
  scenario.requests = Number(args.requests);
  const result = await runScenario(target, scenario);
  writeFileSync(args.out, JSON.stringify({ settings: settings(), seed: seedInfo.seeded, result }, null, 2));
  target.http.agent.destroy();
}

const args = parseArgs(process.argv.slice(2));
try {
  if (args._[0] === "seed") await seed(args);
  else if (args._[0] === "bench") await bench(args);
  else if (args._[0] === "one") await one(args);
  else throw new Error("usage: load.mjs seed|bench|one ...");
} catch (e) {
  console.error(`[load] FAILED: ${e?.stack ?? e}`);
  process.exit(1);
}
