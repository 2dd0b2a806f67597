// Waiting for a slot and the live view (shared API.md "Waiting for a slot", "Live view"),
// measured on our worker only: the peer has neither. bench/run.sh serves ours for it as
// for every other part (bench/serve.mjs: workerd through Miniflare, a fresh state) and
// seeds it with bench/load.mjs seed (10 Kling accounts x 10 jobs, the register/complete
// account); this script seeds the rest itself through the operator API.
//
//   node bench/push.mjs --target READY --seed SEED --out FILE
//
// 1. Waiting: one account with maxJobs 1 holds a job; a registration with
//    "waitSeconds": 10 is sent, left ~150 ms to queue, then the running job is
//    completed. Timed from the completion's answer (and from its request) to the
//    waiter's 201; the waiter's job is the running one of the next iteration.
// 2. The live view (GET /v1/kling/scheduler/live, tests/support/live.mjs's client):
//    a. write pairs (register + complete, as load.mjs's scenario) with 0, 1 and 10
//       sockets open for that user, in the order 0 1 10 10 1 0 twice, so drift weighs
//       on all alike, as load.mjs's A B B A does;
//    b. the 10-account Kling list with 0 and 10 sockets (0 10 10 0, three times):
//       pushes must add nothing to the list path;
//    d. messages per change: single writes spaced past the coalescing window, for
//       three users at once with 0, 1 and 10 sockets (one message each per socket),
//       and bursts of 20 writes (at most four a second);
//    c. idle: many authenticated sockets left alone, workerd's CPU and RSS around it
//       (with hibernation an idle socket costs nothing), then one change to check they
//       still hear it. First, on a workerd that has only been seeded: memory the later
//       parts free is kept by workerd and reused, and would hide the sockets' own.
//
// CPU: a and b read workerd's utime+stime (bench/procs.mjs cpuTicks, 10 ms ticks) around
// hundreds of operations, as load.mjs does for every scenario (the median share of each
// socket count, see combine; schedstat beside it); c and d are short or
// nearly idle windows where ticks are too coarse, so they read the schedstat run time
// of workerd's threads (cpuNanos, ns), as cold.mjs does. RSS: VmRSS of workerd.
//
// Knobs: BENCH_WAIT_ITERATIONS (200), BENCH_PUSH_PAIRS (1500 write pairs per socket
// count, as load.mjs's scenario), BENCH_PUSH_LISTS (3000 lists per socket count),
// BENCH_PUSH_IDLE_SOCKETS (100), BENCH_PUSH_IDLE_SECONDS (30), BENCH_PUSH_SPACED_WRITES
// (16 per socket count), BENCH_CONCURRENCY (8, as load.mjs). Every status is checked;
// a wrong one fails the run.
import http from "node:http";
import { readFileSync, writeFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { connectLive } from "../tests/support/live.mjs";
import { cpuNanos, cpuTicks, rssKiB } from "./procs.mjs";

const ADMIN = process.env.BENCH_ADMIN_TOKEN ?? "bench-admin";
const CLK_TCK = Number(process.env.CLK_TCK ?? 100);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 8);
const WAIT_ITERATIONS = Number(process.env.BENCH_WAIT_ITERATIONS ?? 200);
const PAIRS = Number(process.env.BENCH_PUSH_PAIRS ?? 1500);
const LISTS = Number(process.env.BENCH_PUSH_LISTS ?? 3000);
const IDLE_SOCKETS = Number(process.env.BENCH_PUSH_IDLE_SOCKETS ?? 100);
const IDLE_SECONDS = Number(process.env.BENCH_PUSH_IDLE_SECONDS ?? 30);
// Even: registrations and completions alternate, so no job is left running.
const SPACED_WRITES = 2 * Math.ceil(Number(process.env.BENCH_PUSH_SPACED_WRITES ?? 16) / 2);

/** Iterations of the waiting loop run first and not recorded (cold paths). */
const WAIT_WARMUP = 10;
/** How long a waiter is left to queue before the slot is freed (ample to be queued). */
const QUEUE_SETTLE_MS = 150;
/** Pushes are at least 250 ms apart (src/live.rs MIN_PUSH_INTERVAL_MS). */
const PUSH_INTERVAL_MS = 250;
/** Single writes this far apart each get their own push (past the 250 ms window). */
const SPACING_MS = 350;
/** After a measured part: room for the trailing push its last writes scheduled. */
const SETTLE_MS = 400;
/** Operations before each measured share, not measured. */
const WARMUP_OPS = 50;
/** Writes in a burst, sent at once (all answered well within 100 ms). */
const BURST = 20;
/** Users the idle sockets are spread over (one account and one job each). */
const IDLE_USERS = 10;
/** The idle window is read in slices this long... */
const SLICE_SECONDS = 5;
/** ...and from this far in, workerd has put the quiet objects to rest (see idleWindow). */
const SETTLED_AFTER_SECONDS = 15;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (s) => console.error(`[push] ${s}`);

function parseArgs(argv) {
  const args = {};
  for (let i = 0; i < argv.length; i += 2) args[argv[i].replace(/^--/, "")] = argv[i + 1];
  for (const k of ["target", "seed", "out"]) if (!args[k]) throw new Error(`--${k} is required`);
  return args;
}

// ---------------------------------------------------------------------------- HTTP

/**
 * A keep-alive HTTP/1.1 client (as load.mjs's). request() resolves { status, body,
 * sentAt, t }: performance.now() when the request was handed to the socket and when
 * its answer's last byte arrived, taken here rather than where the caller resumes, so
 * a busy event loop does not stretch the figures. A held waiting registration takes a
 * connection of its own, hence the spare sockets.
 */
function client(base) {
  const url = new URL(base);
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY + 4 });
  const request = (method, path, { token = ADMIN, json } = {}) => {
    const payload = json === undefined ? null : Buffer.from(JSON.stringify(json));
    const headers = { authorization: `Bearer ${token}` };
    if (payload) Object.assign(headers, { "content-type": "application/json", "content-length": payload.length });
    return new Promise((resolve, reject) => {
      const req = http.request({ host: url.hostname, port: url.port, method, path, headers, agent }, (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString("utf8"), sentAt, t: performance.now() }));
        res.on("error", reject);
      });
      req.setTimeout(30_000, () => req.destroy(new Error(`timeout: ${method} ${path}`)));
      req.on("error", reject);
      if (payload) req.write(payload);
      const sentAt = performance.now();
      req.end();
    });
  };
  return { agent, request };
}

async function expect(promise, status, what) {
  const res = await promise;
  if (res.status !== status) throw new Error(`${what}: expected ${status}, got ${res.status}: ${res.body.slice(0, 300)}`);
  return res;
}

/** The operator API of one user and provider (Kling throughout). */
function operator(h, user) {
  const base = `/admin/v1/users/${user}/kling`;
  return {
    account: (email, maxJobs) =>
      expect(h.request("PUT", `${base}/accounts/${encodeURIComponent(email)}`, { json: { maxJobs } }), 200, `PUT account ${user}/${email}`),
    /** Resolves the raw answer: a waiting registration may be a 201 or a 429. */
    register: (body) => h.request("POST", `${base}/jobs`, { json: body }),
    mustRegister: (body) => expect(h.request("POST", `${base}/jobs`, { json: body }), 201, `register ${user}/${body.id}`),
    complete: (id) => expect(h.request("POST", `${base}/jobs/${id}/complete`, { json: { status: "completed" } }), 200, `complete ${user}/${id}`),
  };
}

async function issueToken(h, user) {
  const res = await expect(h.request("POST", "/admin/v1/tokens", { json: { user } }), 201, `token ${user}`);
  return JSON.parse(res.body).token;
}

// ---------------------------------------------------------------------------- figures

function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

/** min, p50, p90, p99, max and mean of a list of numbers. */
function stats(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return {
    n: s.length,
    min: s[0] ?? NaN,
    p50: percentile(s, 50),
    p90: percentile(s, 90),
    p99: percentile(s, 99),
    max: s[s.length - 1] ?? NaN,
    mean: s.length ? s.reduce((a, b) => a + b, 0) / s.length : NaN,
  };
}

const ticksToMs = (ticks) => (ticks * 1000) / CLK_TCK;

/** Runs op(i) for i in 0..count-1 with at most `concurrency` in flight. */
async function lanes(count, concurrency, op) {
  let next = 0;
  const lane = async () => {
    while (next < count) await op(next++);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, lane));
}

// ---------------------------------------------------------------------------- sockets

/**
 * `n` live-view sockets for `token`, each authenticated (its first message received),
 * opened `batch` at a time. The client keeps reading every socket, so messages are
 * drained as they come.
 */
async function openViewers(url, token, n, batch = 10) {
  const out = [];
  for (let i = 0; i < n; i += batch) {
    const size = Math.min(batch, n - i);
    out.push(...(await Promise.all(Array.from({ length: size }, (_, j) => connectLive(url, "kling", token, { label: `viewer ${i + j}` })))));
  }
  return out;
}

/**
 * Closes sockets from our side and waits for the server's close (then a moment, so the
 * session objects have unsubscribed from the directory before the next part).
 */
async function closeViewers(clients) {
  for (const c of clients) c.close();
  await Promise.all(clients.map((c) => c.waitClose({ timeout: 5000 }).catch(() => c.destroy())));
  await sleep(300);
}

/** Messages each socket received since its mark. */
const marks = (clients) => clients.map((c) => c.mark());
const since = (clients, m) => clients.map((c, i) => c.messages.length - m[i]);

// ---------------------------------------------------------------------------- 1. waiting

/**
 * Freed slot -> the waiter's 201, WAIT_ITERATIONS times (after WAIT_WARMUP not
 * recorded). One account with maxJobs 1; each iteration queues a registration with
 * waitSeconds 10 behind the running job, then completes that job.
 */
async function waiting(h) {
  const user = "bench-wait";
  const op = operator(h, user);
  await op.account("wait@bench.example", 1);
  let id = 900_000_000;
  let running = id;
  await op.mustRegister({ id: running });
  const fromAnswer = [];
  const fromSent = [];
  const refused = []; // iterations whose waiter got the capacity 429
  let early = 0; // waiters answered before the slot was freed (not queued: unexpected)
  const t0 = performance.now();
  for (let i = 0; i < WAIT_WARMUP + WAIT_ITERATIONS; i++) {
    const next = ++id;
    let settled = false;
    const waiter = op.register({ id: next, waitSeconds: 10 }).finally(() => (settled = true));
    await sleep(QUEUE_SETTLE_MS);
    if (settled) early++;
    const done = await op.complete(running);
    const w = await waiter;
    if (w.status === 201) {
      if (i >= WAIT_WARMUP) {
        fromAnswer.push(w.t - done.t);
        fromSent.push(w.t - done.sentAt);
      }
      running = next;
    } else if (w.status === 429) {
      refused.push(i);
      // The slot is free: take it without waiting, so the next iteration has a job to end.
      running = ++id;
      await op.mustRegister({ id: running });
    } else {
      throw new Error(`waiter ${next}: ${w.status} ${w.body.slice(0, 300)}`);
    }
  }
  await op.complete(running);
  const out = {
    iterations: WAIT_ITERATIONS,
    warmup: WAIT_WARMUP,
    waitSeconds: 10,
    queueSettleMs: QUEUE_SETTLE_MS,
    admitted: fromAnswer.length,
    refused429: refused.filter((i) => i >= WAIT_WARMUP).length,
    refused429InWarmup: refused.filter((i) => i < WAIT_WARMUP).length,
    answeredBeforeSlotFreed: early,
    fromCompletionAnswerMs: stats(fromAnswer),
    fromCompletionSentMs: stats(fromSent),
    seconds: (performance.now() - t0) / 1000,
  };
  const s = out.fromCompletionAnswerMs;
  log(
    `waiting: ${out.admitted} admitted, ${out.refused429} x 429; completion answer -> waiter 201: min ${s.min.toFixed(1)} p50 ${s.p50.toFixed(1)} ` +
      `p99 ${s.p99.toFixed(1)} max ${s.max.toFixed(1)} ms (from sent: p50 ${out.fromCompletionSentMs.p50.toFixed(1)}) in ${out.seconds.toFixed(0)} s`,
  );
  return out;
}

// ---------------------------------------------------------------------------- 2a/2b. CPU

/**
 * One measured share: WARMUP_OPS operations (not measured), then `count` at CONCURRENCY
 * in flight, workerd's CPU read before and after `settleMs` more (for writes, the
 * trailing push of the last ones belongs to them; the same wait at every socket count).
 */
async function measureShare(target, op, count, viewers, settleMs) {
  await lanes(WARMUP_OPS, CONCURRENCY, op);
  await sleep(settleMs);
  const m = marks(viewers);
  const ticks0 = cpuTicks(target.workerdPid);
  const ns0 = cpuNanos(target.workerdPid);
  const t0 = performance.now();
  await lanes(count, CONCURRENCY, op);
  const seconds = (performance.now() - t0) / 1000;
  await sleep(settleMs);
  const ticks = cpuTicks(target.workerdPid) - ticks0;
  const ns = cpuNanos(target.workerdPid) - ns0;
  return { ops: count, seconds, windowSeconds: seconds + settleMs / 1000, ticks, ns, messages: since(viewers, m) };
}

const median = (xs) => percentile([...xs].sort((a, b) => a - b), 50);

/**
 * The shares of one socket count as per-operation figures. CPU per operation is the
 * median over the shares: workerd's CPU for the same work swings by a fifth from one
 * share to the next on this machine (a garbage collection, a neighbour on the core),
 * and the median keeps one such share from deciding a ratio; the pooled figure (all
 * ticks over all operations, as load.mjs computes it) is kept beside it.
 */
function combine(sockets, shares) {
  const sum = (key) => shares.reduce((a, x) => a + x[key], 0);
  const ops = sum("ops");
  const seconds = sum("seconds");
  const messages = shares.reduce((a, x) => a + x.messages.reduce((b, n) => b + n, 0), 0);
  return {
    sockets,
    ops,
    shares: shares.length,
    seconds,
    throughput: ops / seconds,
    cpuMsPerOp: median(shares.map((x) => ticksToMs(x.ticks) / x.ops)),
    pooledCpuMsPerOp: ticksToMs(sum("ticks")) / ops,
    // The same windows read from schedstat (ns): a finer cross-check of the ticks.
    schedstatCpuMsPerOp: median(shares.map((x) => x.ns / 1e6 / x.ops)),
    sharesCpuMsPerOp: shares.map((x) => x.ns / 1e6 / x.ops),
    // Pushes each socket received while the part ran (0 when none is open).
    messagesPerSocket: sockets ? messages / sockets : 0,
    messagesPerSocketPerSecond: sockets ? messages / sockets / sum("windowSeconds") : 0,
  };
}

/**
 * Runs `op` at each socket count of `pattern`, `rounds` times over (e.g. 0 1 10 10 1 0,
 * twice: a steady drift weighs on every count alike, as load.mjs's A B B A), opening
 * or closing sockets for `token` in between; every share of a count gets the same
 * number of operations, `count` in all.
 */
async function bySockets(target, token, { pattern, rounds, count, settleMs }, op, what) {
  const order = Array.from({ length: rounds }, () => pattern).flat();
  const viewers = [];
  const shares = new Map();
  const perShare = (n) => Math.ceil(count / order.filter((x) => x === n).length);
  for (const n of order) {
    if (viewers.length < n) viewers.push(...(await openViewers(target.url, token, n - viewers.length)));
    if (viewers.length > n) await closeViewers(viewers.splice(n));
    const share = await measureShare(target, op, perShare(n), viewers, settleMs);
    shares.set(n, [...(shares.get(n) ?? []), share]);
  }
  await closeViewers(viewers.splice(0));
  const rows = [...shares.entries()].sort((a, b) => a[0] - b[0]).map(([n, xs]) => combine(n, xs));
  const base = rows.find((r) => r.sockets === 0);
  for (const r of rows) {
    r.cpuRatioToNoSockets = r.cpuMsPerOp / base.cpuMsPerOp;
    r.pooledCpuRatioToNoSockets = r.pooledCpuMsPerOp / base.pooledCpuMsPerOp;
    r.schedstatCpuRatioToNoSockets = r.schedstatCpuMsPerOp / base.schedstatCpuMsPerOp;
    log(
      `${what}, ${String(r.sockets).padStart(2)} sockets: ${r.throughput.toFixed(0)} ops/s, cpu ${r.cpuMsPerOp.toFixed(3)} ms/op ` +
        `(x${r.cpuRatioToNoSockets.toFixed(2)} of 0 sockets; pooled x${r.pooledCpuRatioToNoSockets.toFixed(2)}; schedstat x${r.schedstatCpuRatioToNoSockets.toFixed(2)}), ` +
        `${r.messagesPerSocket.toFixed(1)} messages per socket`,
    );
  }
  return { order, rows };
}

/** 2a: register + complete pairs on the pair account, with 0, 1 and 10 sockets. */
function writeCost(target, h, seed) {
  const op = operator(h, seed.users.pair);
  let id = 910_000_000;
  const pair = async () => {
    const n = ++id;
    await op.mustRegister({ id: n, email: "pair@bench.example" });
    await op.complete(n);
  };
  const plan = { pattern: [0, 1, 10, 10, 1, 0], rounds: 2, count: PAIRS, settleMs: SETTLE_MS };
  return bySockets(target, seed.tokens.pair, plan, pair, "write pair");
}

/**
 * 2b: the 10-account Kling list, with 0 and 10 sockets of that same user. Nothing is
 * written, so nothing is pushed and no settling is needed; cheap shares, so more rounds.
 */
function listCost(target, h, seed) {
  const list = () => expect(h.request("GET", "/v1/kling/scheduler", { token: seed.tokens.n10 }), 200, "Kling list");
  const plan = { pattern: [0, 10, 10, 0], rounds: 3, count: LISTS, settleMs: 0 };
  return bySockets(target, seed.tokens.n10, plan, list, "Kling list 10");
}

// ---------------------------------------------------------------------------- 2d. messages

/** One user per socket count of the spaced writes, each with one Kling account. */
async function seedLoneUsers(h, counts) {
  const users = [];
  for (const sockets of counts) {
    const user = `bench-lone-${sockets}`;
    await operator(h, user).account("lone@bench.example", 5);
    users.push({ sockets, user, token: await issueToken(h, user) });
  }
  return users;
}

/**
 * Single writes SPACING_MS apart, past the coalescing window, for three users at once,
 * one with no socket open, one with 1 and one with 10: round after round, each user
 * gets one write (a registration in even rounds, its completion in odd ones), so the
 * three see the same machine, with no socket opened or closed in between. For each:
 * the messages each socket got per write (expected: exactly 1), the time from the
 * write's answer to each socket's message, and workerd's CPU per write including its
 * push (schedstat, over the spacing window). A registration and a completion cost
 * differently, so each kind gets its own median and a write is their mean; medians,
 * because a window is short and one stray burst of workerd's own would weigh on a mean.
 */
async function spacedWrites(target, h) {
  const users = await seedLoneUsers(h, [0, 1, 10]);
  for (const u of users) {
    u.op = operator(h, u.user);
    u.viewers = await openViewers(target.url, u.token, u.sockets);
    Object.assign(u, { perWrite: [], latencies: [], cpu: { register: [], complete: [] } });
  }
  await sleep(SPACING_MS);
  let id = 920_000_000;
  for (let k = 0; k < SPACED_WRITES; k++) {
    const kind = k % 2 === 0 ? "register" : "complete";
    if (kind === "register") id++;
    for (const u of users) {
      const m = marks(u.viewers);
      const ns0 = cpuNanos(target.workerdPid);
      const res = kind === "register" ? await u.op.mustRegister({ id, email: "lone@bench.example" }) : await u.op.complete(id);
      await sleep(SPACING_MS);
      u.cpu[kind].push((cpuNanos(target.workerdPid) - ns0) / 1e6);
      u.perWrite.push(since(u.viewers, m));
      u.viewers.forEach((c, i) => {
        const first = c.messages[m[i]];
        if (first) u.latencies.push(first.t - res.t);
      });
    }
  }
  await closeViewers(users.flatMap((u) => u.viewers));
  return users.map((u) => {
    const counts = u.perWrite.flat();
    const register = stats(u.cpu.register);
    const complete = stats(u.cpu.complete);
    return {
      sockets: u.sockets,
      writes: SPACED_WRITES,
      spacingMs: SPACING_MS,
      messagesPerWritePerSocket: u.sockets ? { min: Math.min(...counts), max: Math.max(...counts), mean: counts.reduce((a, b) => a + b, 0) / counts.length } : null,
      writesWithoutExactlyOne: u.sockets ? u.perWrite.filter((w) => w.some((n) => n !== 1)).length : null,
      answerToMessageMs: u.sockets ? stats(u.latencies) : null,
      cpuMsPerRegistration: register,
      cpuMsPerCompletion: complete,
      cpuMsPerWrite: (register.p50 + complete.p50) / 2,
    };
  });
}

/**
 * A burst of BURST registrations sent at once (then BURST completions) with one socket
 * open: how many messages it produced, their spacing (at least 250 ms apart), and
 * whether the last one shows the state after the burst (coalescing must not lose it).
 */
async function bursts(target, h, seed) {
  const op = operator(h, seed.users.pair);
  const [viewer] = await openViewers(target.url, seed.tokens.pair, 1);
  const ids = Array.from({ length: BURST }, (_, i) => 930_000_000 + i);
  const one = async (kind, write, expectExecuting) => {
    await sleep(SPACING_MS); // the previous push is past the 250 ms window
    const m = viewer.mark();
    const t0 = performance.now();
    await Promise.all(ids.map(write));
    const spanMs = performance.now() - t0;
    await sleep(1000); // room for the coalesced push (250 ms after the first)
    const got = viewer.messages.slice(m);
    const gaps = got.slice(1).map((x, i) => x.t - got[i].t);
    const window = got.length ? got[got.length - 1].t - t0 : 0;
    const last = got[got.length - 1]?.json;
    return {
      kind,
      writes: BURST,
      spanMs,
      messages: got.length,
      // One push at once, then at most one per 250 ms while changes keep coming.
      allowed: 1 + Math.ceil(window / PUSH_INTERVAL_MS),
      minGapMs: gaps.length ? Math.min(...gaps) : null,
      lastShowsFinalState: last?.type === "available" && last.body.executing.length === expectExecuting,
    };
  };
  const out = [
    await one("registrations", (id) => op.mustRegister({ id, email: "pair@bench.example" }), BURST),
    await one("completions", (id) => op.complete(id), 0),
  ];
  await closeViewers([viewer]);
  for (const b of out) {
    log(`burst of ${b.writes} ${b.kind} in ${b.spanMs.toFixed(0)} ms: ${b.messages} messages (min gap ${b.minGapMs?.toFixed(0) ?? "-"} ms), last shows the final state: ${b.lastShowsFinalState}`);
  }
  return out;
}

async function messagesPerChange(target, h, seed) {
  const spaced = await spacedWrites(target, h);
  for (const s of spaced) {
    s.cpuRatioToNoSockets = s.cpuMsPerWrite / spaced[0].cpuMsPerWrite;
    // What the push adds to a write, per open socket (its fixed part, reading the body
    // once, shared among them: so more at 1 socket than at 10).
    s.pushCpuMsPerSocket = s.sockets ? (s.cpuMsPerWrite - spaced[0].cpuMsPerWrite) / s.sockets : null;
    const per = s.messagesPerWritePerSocket;
    log(
      `spaced writes, ${String(s.sockets).padStart(2)} sockets: ${per ? `messages per write per socket ${per.min}..${per.max}, answer -> message p50 ${s.answerToMessageMs.p50.toFixed(1)} ms, ` : ""}` +
        `cpu per write ${s.cpuMsPerWrite.toFixed(2)} ms (x${s.cpuRatioToNoSockets.toFixed(2)} of 0 sockets)`,
    );
  }
  return { spaced, bursts: await bursts(target, h, seed) };
}

// ---------------------------------------------------------------------------- 2c. idle

/** IDLE_USERS users with one Kling account and one job each; their tokens. */
async function seedIdleUsers(h) {
  const tokens = [];
  for (let u = 0; u < IDLE_USERS; u++) {
    const user = `bench-idle-${u}`;
    const op = operator(h, user);
    await op.account("idle@bench.example", 5);
    await op.mustRegister({ id: 940_000_000 + u, email: "idle@bench.example", replyUrl: "http://127.0.0.1:9/bench-hook" });
    tokens.push(await issueToken(h, user));
  }
  return tokens;
}

/**
 * workerd's CPU over `seconds` of doing nothing, read every SLICE_SECONDS (schedstat,
 * ms; ticks for the whole window). The slices show when the CPU is spent: workerd puts
 * objects that went quiet to rest about ten seconds after their last event, so the
 * first slices carry that and the later ones what an idle socket costs for good.
 */
async function idleWindow(pid, seconds) {
  const slices = [];
  const ticks0 = cpuTicks(pid);
  let ns = cpuNanos(pid);
  for (let left = seconds; left > 0; left -= SLICE_SECONDS) {
    const length = Math.min(SLICE_SECONDS, left);
    await sleep(length * 1000);
    const now = cpuNanos(pid);
    slices.push({ seconds: length, cpuMs: (now - ns) / 1e6 });
    ns = now;
  }
  const sum = (xs) => xs.reduce((a, x) => a + x.cpuMs, 0);
  const settled = slices.filter((_, i) => i * SLICE_SECONDS >= SETTLED_AFTER_SECONDS);
  const settledSeconds = settled.reduce((a, x) => a + x.seconds, 0);
  return {
    seconds,
    cpuMs: sum(slices),
    cpuTickMs: ticksToMs(cpuTicks(pid) - ticks0),
    slices,
    settledAfterSeconds: SETTLED_AFTER_SECONDS,
    settledSeconds,
    settledCpuMs: sum(settled),
  };
}

/**
 * IDLE_SOCKETS authenticated sockets spread over IDLE_USERS users, left idle
 * IDLE_SECONDS: workerd's CPU during that time (workerd's own idling included, so an
 * upper bound) and its RSS before opening, after opening and after the idle time. Then
 * one change for the first user: each of its sockets must still get exactly one
 * message (the session objects woken from hibernation).
 */
async function idle(target, h) {
  const pid = target.workerdPid;
  const tokens = await seedIdleUsers(h);
  await sleep(1000);
  const rssBefore = rssKiB(pid);

  const ns0 = cpuNanos(pid);
  const t0 = performance.now();
  const viewers = [];
  const perUser = Math.ceil(IDLE_SOCKETS / IDLE_USERS);
  for (let u = 0; viewers.length < IDLE_SOCKETS; u++) {
    viewers.push(...(await openViewers(target.url, tokens[u], Math.min(perUser, IDLE_SOCKETS - viewers.length))));
  }
  const open = { seconds: (performance.now() - t0) / 1000, cpuMsPerSocket: (cpuNanos(pid) - ns0) / 1e6 / IDLE_SOCKETS };
  await sleep(1000);
  const rssOpen = rssKiB(pid);

  const m = marks(viewers);
  const window = await idleWindow(pid, IDLE_SECONDS);
  const idleMessages = since(viewers, m).reduce((a, b) => a + b, 0);
  const rssIdle = rssKiB(pid);

  // Still listening after the idle window: one change for the first user.
  const first = viewers.slice(0, perUser);
  const fm = marks(first);
  const res = await operator(h, "bench-idle-0").mustRegister({ id: 949_999_999, email: "idle@bench.example" });
  await sleep(1500);
  const woke = since(first, fm);
  const wakeLatency = first.map((c, i) => c.messages[fm[i]]?.t - res.t).filter((x) => Number.isFinite(x));
  await closeViewers(viewers);

  const perSocketPerMinute = (ms, seconds) => (seconds ? (ms * 60) / seconds / IDLE_SOCKETS : NaN);
  const out = {
    sockets: IDLE_SOCKETS,
    users: IDLE_USERS,
    open,
    idle: {
      ...window,
      cpuMsPerSocketPerMinute: perSocketPerMinute(window.cpuMs, window.seconds),
      settledCpuMsPerSocketPerMinute: perSocketPerMinute(window.settledCpuMs, window.settledSeconds),
      messages: idleMessages,
    },
    rssKiB: { before: rssBefore, afterOpen: rssOpen, afterIdle: rssIdle },
    rssKiBPerSocket: { afterOpen: (rssOpen - rssBefore) / IDLE_SOCKETS, afterIdle: (rssIdle - rssBefore) / IDLE_SOCKETS },
    wake: { sockets: first.length, exactlyOne: woke.filter((n) => n === 1).length, messages: woke.reduce((a, b) => a + b, 0), latencyMs: stats(wakeLatency) },
  };
  log(
    `idle: ${IDLE_SOCKETS} sockets opened in ${open.seconds.toFixed(1)} s (${open.cpuMsPerSocket.toFixed(2)} ms cpu each); ` +
      `${IDLE_SECONDS} s idle: ${window.cpuMs.toFixed(1)} ms cpu (slices ${window.slices.map((x) => x.cpuMs.toFixed(1)).join(" ")}), ` +
      `${idleMessages} messages; RSS ${(rssBefore / 1024).toFixed(1)} -> ${(rssOpen / 1024).toFixed(1)} -> ${(rssIdle / 1024).toFixed(1)} MiB; ` +
      `after idle ${out.wake.exactlyOne}/${first.length} sockets got exactly one message`,
  );
  return out;
}

// ---------------------------------------------------------------------------- main

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const ready = JSON.parse(readFileSync(args.target, "utf8"));
  const seed = JSON.parse(readFileSync(args.seed, "utf8"));
  const target = { url: ready.url, workerdPid: ready.workerdPid };
  const h = client(ready.url);
  const started = performance.now();
  // Each part with its own duration, for the report.
  const timed = async (fn) => {
    const t0 = performance.now();
    const result = await fn();
    return { ...result, partSeconds: (performance.now() - t0) / 1000 };
  };
  const out = {
    settings: {
      concurrency: CONCURRENCY,
      clkTck: CLK_TCK,
      waitIterations: WAIT_ITERATIONS,
      pairsPerSocketCount: PAIRS,
      listsPerSocketCount: LISTS,
      warmupOpsPerShare: WARMUP_OPS,
      settleMs: SETTLE_MS,
      idleSockets: IDLE_SOCKETS,
      idleSeconds: IDLE_SECONDS,
      spacedWrites: SPACED_WRITES,
      spacingMs: SPACING_MS,
      burst: BURST,
      listBodyBytes: seed.sizes.kling_list_10,
    },
    // Idle first: later parts free memory workerd keeps and reuses, which would hide
    // what the sockets take (RSS even fell while 100 opened, measured last).
    idle: await timed(() => idle(target, h)),
    waiting: await timed(() => waiting(h)),
    writes: await timed(() => writeCost(target, h, seed)),
    lists: await timed(() => listCost(target, h, seed)),
    messages: await timed(() => messagesPerChange(target, h, seed)),
  };
  out.seconds = (performance.now() - started) / 1000;
  writeFileSync(args.out, JSON.stringify(out, null, 2));
  log(`done in ${out.seconds.toFixed(0)} s`);
  h.agent.destroy();
}

try {
  await main();
  process.exit(0);
} catch (e) {
  console.error(`[push] FAILED: ${e?.stack ?? e}`);
  process.exit(1);
}
