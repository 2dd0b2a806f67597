// The load generator of bench/run.sh: a separate Node process that talks HTTP/1.1 with
// keep-alive to workerd on 127.0.0.1 only. Two sub-commands:
//
//   node bench/load.mjs seed --url URL --out seed.json
//       Seeds the scheduler through the operator API (tokens, accounts, executing
//       jobs), checks the lists answer what was seeded, and records the body sizes.
//
//   node bench/load.mjs bench --seed seed.json --main URL,WORKERD_PID,SERVE_PID
//                             --ceiling URL,WORKERD_PID,SERVE_PID --out results.json
//       Runs every scenario: BENCH_WARMUP requests first (not measured), then
//       BENCH_REQUESTS x the scenario's weight requests at BENCH_CONCURRENCY in flight,
//       reading workerd's utime+stime (/proc/<pid>/stat) before and after the measured
//       part. A scenario stops early after BENCH_MAX_SECONDS (reported as such).
//
// Every request's status is checked; a wrong status fails the run (exit 1).
import http from "node:http";
import { readFileSync, writeFileSync } from "node:fs";

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

async function seed(args) {
  const c = client(args.url);
  const t0 = Date.now();
  const issue = async (user) =>
    JSON.parse((await expect(c.request("POST", "/admin/v1/tokens", { token: ADMIN, json: { user } }), 201, `token ${user}`)).body).token;

  const users = { empty: "bench-u0", pair: "bench-pair", deep: "bench-u1x50" };
  for (const n of SCALE) users[`n${n}`] = `bench-u${n}`;
  const tokens = {};
  for (const [key, user] of Object.entries(users)) tokens[key] = await issue(user);

  // Accounts, then executing jobs, for both providers at every scale.
  const now = Date.now();
  let klingId = 700_000_000;
  let dreaminaSeq = 0;
  const accountTasks = [];
  const jobTasks = [];
  for (const n of SCALE) {
    const user = users[`n${n}`];
    for (let a = 1; a <= n; a++) {
      for (const [provider, account] of [["kling", klingAccount(a)], ["dreamina", dreaminaAccount(a)]]) {
        accountTasks.push(() =>
          expect(
            c.request("PUT", `/admin/v1/users/${user}/${provider}/accounts/${encodeURIComponent(account)}`, {
              token: ADMIN,
              json: { maxJobs: MAX_JOBS },
            }),
            200,
            `PUT ${provider} account ${account}`,
          ),
        );
        for (let j = 0; j < JOBS_PER_ACCOUNT; j++) {
          // Back-dated a few seconds apart (oldest first), all well inside the timeout.
          const started = new Date(now - (JOBS_PER_ACCOUNT - j) * 7_000 - a * 100).toISOString();
          const body =
            provider === "kling"
              ? { id: ++klingId, email: account, replyUrl: REPLY_URL, replyRef: `bench-ref-${klingId}`, started }
              : { submitId: `bench-submit-${++dreaminaSeq}`, model: "dreamina-video-3.0", account, replyUrl: REPLY_URL, replyRef: `bench-ref-d${dreaminaSeq}`, started };
          jobTasks.push(() =>
            expect(c.request("POST", `/admin/v1/users/${user}/${provider}/jobs`, { token: ADMIN, json: body }), 201, `register ${provider} job`),
          );
        }
      }
    }
  }
  // The pair account: registration + completion cycles, never more than CONCURRENCY
  // executing at once, far below maxJobs 50.
  accountTasks.push(() =>
    expect(
      c.request("PUT", `/admin/v1/users/${users.pair}/kling/accounts/${encodeURIComponent("pair@bench.example")}`, {
        token: ADMIN,
        json: { maxJobs: 50 },
      }),
      200,
      "PUT pair account",
    ),
  );
  // One Kling account holding 50 jobs: against "10 accounts x 10 jobs" it separates the
  // cost of a Durable Object round trip from the cost per job (serde, SQL rows).
  accountTasks.push(() =>
    expect(
      c.request("PUT", `/admin/v1/users/${users.deep}/kling/accounts/${encodeURIComponent(klingAccount(1))}`, {
        token: ADMIN,
        json: { maxJobs: DEEP_JOBS },
      }),
      200,
      "PUT deep account",
    ),
  );
  for (let j = 0; j < DEEP_JOBS; j++) {
    const id = ++klingId;
    const started = new Date(now - (DEEP_JOBS - j) * 7_000).toISOString();
    const body = { id, email: klingAccount(1), replyUrl: REPLY_URL, replyRef: `bench-ref-${id}`, started };
    jobTasks.push(() =>
      expect(c.request("POST", `/admin/v1/users/${users.deep}/kling/jobs`, { token: ADMIN, json: body }), 201, "register deep job"),
    );
  }
  await pool(accountTasks, CONCURRENCY);
  await pool(jobTasks, CONCURRENCY);

  // Check the lists and record their sizes.
  const sizes = {};
  for (const n of [0, ...SCALE]) {
    const token = n === 0 ? tokens.empty : tokens[`n${n}`];
    const k = await expect(c.request("GET", "/v1/kling/scheduler", { token }), 200, `kling list ${n}`);
    const d = await expect(c.request("GET", "/v1/dreamina/scheduler", { token }), 200, `dreamina list ${n}`);
    const kItems = JSON.parse(k.body);
    const dTotal = JSON.parse(d.body).total;
    if (kItems.length !== n * JOBS_PER_ACCOUNT || dTotal !== n * JOBS_PER_ACCOUNT) {
      throw new Error(`seed check at ${n} accounts: kling ${kItems.length}, dreamina ${dTotal}, expected ${n * JOBS_PER_ACCOUNT}`);
    }
    sizes[`kling_list_${n}`] = Buffer.byteLength(k.body);
    sizes[`dreamina_list_${n}`] = Buffer.byteLength(d.body);
  }
  const deep = await expect(c.request("GET", "/v1/kling/scheduler", { token: tokens.deep }), 200, "deep list");
  if (JSON.parse(deep.body).length !== DEEP_JOBS) throw new Error("seed check: deep account");
  sizes.kling_list_1x50 = Buffer.byteLength(deep.body);
  for (const provider of ["kling", "dreamina"]) {
    const a = await expect(c.request("GET", `/v1/${provider}/scheduler/available`, { token: tokens.n10 }), 200, `${provider} available`);
    sizes[`${provider}_available_10`] = Buffer.byteLength(a.body);
  }
  const out = {
    users,
    tokens,
    sizes,
    seeded: { accounts: accountTasks.length, jobs: jobTasks.length, seconds: (Date.now() - t0) / 1000 },
  };
  writeFileSync(args.out, JSON.stringify(out, null, 2));
  console.error(
    `[load] seeded ${out.seeded.accounts} accounts and ${out.seeded.jobs} jobs in ${out.seeded.seconds.toFixed(1)} s; ` +
      `10-account Kling list: ${sizes.kling_list_10} bytes`,
  );
  c.agent.destroy();
}

// ---------------------------------------------------------------------------- bench

function cpuTicks(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // After "pid (comm) ": state=0 ppid=1 ... utime=11 stime=12 (fields 14 and 15 of stat(5)).
  return Number(fields[11]) + Number(fields[12]);
}

function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

/**
 * Runs one scenario. `op(i)` performs one operation (one or more requests) and
 * resolves the number of HTTP requests it made; it throws on a wrong status.
 */
async function runScenario(target, scenario) {
  const total = Math.max(50, Math.round(REQUESTS * (scenario.weight ?? 1)));
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
  const cpu0 = cpuTicks(target.workerdPid);
  const serveCpu0 = cpuTicks(target.servePid);
  const client0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await lanes(total, (ms, n) => {
    latencies.push(ms);
    httpRequests += n;
  });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpuMs = ((cpuTicks(target.workerdPid) - cpu0) * 1000) / CLK_TCK;
  const serveCpuMs = ((cpuTicks(target.servePid) - serveCpu0) * 1000) / CLK_TCK;
  const client = process.cpuUsage(client0);
  latencies.sort((a, b) => a - b);
  const ops = latencies.length;
  const result = {
    id: scenario.id,
    label: scenario.label,
    target: target.name,
    unit: scenario.unit ?? "req",
    requestsPerOp: ops ? httpRequests / ops : 1,
    ops,
    planned: total,
    warmup,
    cutShort: ops < total,
    resets: target.http.resets - resets0,
    seconds,
    throughput: ops / seconds,
    p50: percentile(latencies, 50),
    p90: percentile(latencies, 90),
    p99: percentile(latencies, 99),
    max: latencies[latencies.length - 1],
    mean: latencies.reduce((a, b) => a + b, 0) / ops,
    workerdCpuMsPerOp: cpuMs / ops,
    workerdCpuUtil: cpuMs / 1000 / seconds,
    serveNodeCpuMsPerOp: serveCpuMs / ops,
    clientCpuMsPerOp: (client.user + client.system) / 1000 / ops,
    bodyBytes: scenario.bodyBytes ?? null,
    accounts: scenario.accounts ?? null,
    provider: scenario.provider ?? null,
    kind: scenario.kind ?? null,
  };
  console.error(
    `[load] ${result.label.padEnd(44)} ${result.throughput.toFixed(0).padStart(6)} ${result.unit}/s  ` +
      `p50 ${result.p50.toFixed(2).padStart(7)} ms  p99 ${result.p99.toFixed(2).padStart(7)} ms  ` +
      `cpu ${result.workerdCpuMsPerOp.toFixed(2).padStart(6)} ms/${result.unit}` +
      (result.cutShort ? `  (cut short at ${MAX_SECONDS} s: ${ops}/${total})` : "") +
      (result.resets ? `  (${result.resets} connection resets, retried)` : ""),
  );
  return result;
}

function parseTarget(name, spec) {
  const [url, workerdPid, servePid] = spec.split(",");
  return { name, url, workerdPid: Number(workerdPid), servePid: Number(servePid), http: client(url) };
}

async function bench(args) {
  const seedInfo = JSON.parse(readFileSync(args.seed, "utf8"));
  const main = parseTarget("main", args.main);
  const ceiling = parseTarget("ceiling", args.ceiling);
  const { tokens, users, sizes } = seedInfo;
  const get = (path, token, status) => () =>
    expect(main.http.request("GET", path, { token }), status, `GET ${path}`).then(() => 1);

  const scenarios = [
    {
      id: "unmatched_404",
      label: "404 unknown path (no I/O)",
      kind: "baseline",
      op: () => expect(main.http.request("GET", "/v1/nowhere"), 404, "GET /v1/nowhere").then(() => 1),
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
      await expect(main.http.request("POST", base, { token: ADMIN, json: { id, email: "pair@bench.example" } }), 201, "register");
      await expect(main.http.request("POST", `${base}/${id}/complete`, { token: ADMIN, json: { status: "completed" } }), 200, "complete");
      return 2;
    },
  });

  const results = [];
  // The ceiling first and last: its two runs show how much the machine drifted.
  const ceilingScenario = (suffix) => ({
    id: `ceiling${suffix}`,
    label: `ceiling: fixed ${sizes.kling_list_10}-byte JSON${suffix ? " (again)" : ""}`,
    kind: "ceiling",
    bodyBytes: sizes.kling_list_10,
    op: () => expect(ceiling.http.request("GET", "/"), 200, "ceiling").then(() => 1),
  });
  // The fan-out ceiling: N minimal Durable Objects asked in parallel, the floor of a
  // list over N accounts (bench/ceiling/src/lib.rs). Same weights as the lists.
  const fanoutScenario = (n) => ({
    id: `fanout_${n}`,
    label: `fan-out ceiling: ${n} minimal object${n === 1 ? "" : "s"} in parallel`,
    kind: "fanout",
    accounts: n,
    bodyBytes: sizes.kling_list_1 * n + n + 1,
    weight: n >= 50 ? 0.25 : n >= 10 ? 0.5 : 1,
    op: () => expect(ceiling.http.request("GET", `/fanout/${n}`), 200, `fanout ${n}`).then(() => 1),
  });
  results.push(await runScenario(ceiling, ceilingScenario("")));
  for (const n of SCALE) results.push(await runScenario(ceiling, fanoutScenario(n)));
  for (const s of scenarios) results.push(await runScenario(main, s));
  results.push(await runScenario(ceiling, ceilingScenario("_again")));

  const out = {
    settings: {
      concurrency: CONCURRENCY,
      requests: REQUESTS,
      warmup: WARMUP,
      maxSecondsPerScenario: MAX_SECONDS,
      clkTck: CLK_TCK,
      jobsPerAccount: JOBS_PER_ACCOUNT,
      deepAccountJobs: DEEP_JOBS,
      maxJobsPerAccount: MAX_JOBS,
      rateLimiter:
        "AUTH_FAILURES configured in Miniflare with limit 1e9/60 s (the worker's 30/min would turn the 401s into 429s); one client address (Miniflare's entry worker sets CF-Connecting-IP to 127.0.0.1)",
    },
    seed: { seeded: seedInfo.seeded, sizes },
    results,
  };
  writeFileSync(args.out, JSON.stringify(out, null, 2));
  main.http.agent.destroy();
  ceiling.http.agent.destroy();
}

const args = parseArgs(process.argv.slice(2));
try {
  if (args._[0] === "seed") await seed(args);
  else if (args._[0] === "bench") await bench(args);
  else throw new Error("usage: load.mjs seed|bench ...");
} catch (e) {
  console.error(`[load] FAILED: ${e?.stack ?? e}`);
  process.exit(1);
}
