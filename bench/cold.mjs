// Cold start (bench/run.sh): the first request a freshly started workerd answers.
//
//   node bench/cold.mjs --config wrangler.toml --name NAME --starts N --work DIR --out FILE
//                       [--var NAME=VALUE ...]
//
// What is measured, and why this way: the state is seeded once (one token, one Kling
// account with 10 executing jobs; serve.mjs + load.mjs seed, not measured), then the
// worker is started N times afresh (bench/serve.mjs: a new Miniflare, a new workerd
// process) on that same persisted state, and the first request of each start is an
// authenticated Kling list of that account. That is what a real cold start serves: the
// data is already there (a fresh, empty state could only answer a 401 or an empty list,
// which skips the Durable Object and SQLite paths a first real request pays for), and
// everything in the process is new: isolate, wasm instance or JS module, Durable Object
// instances, SQLite connections. A second identical request follows at once, for the
// warm figure beside it.
//
// For each start: startupMs (new Miniflare() to listening: workerd start, script
// compile, module evaluation; as serve.mjs reports it), the workerd process's CPU until
// then (all of it: the process is new), and for the first and the second request the
// wall time (a new connection each, from this process) and the workerd CPU spent from
// just before the request to its last byte (schedstat run time of workerd's threads, ns
// resolution; 10 ms clock ticks would be too coarse for one request). The medians go
// into the report.
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import path from "node:path";
import { cmdline, cpuNanos, cpuTicks } from "./procs.mjs";

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");
const CLK_TCK = Number(process.env.CLK_TCK ?? 100);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function parseArgs(argv) {
  const args = { vars: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--var") args.vars.push(argv[++i]);
    else if (a.startsWith("--")) args[a.slice(2)] = argv[++i];
    else throw new Error(`unknown argument ${a}`);
  }
  return args;
}

const live = new Set(); // serve.mjs children, stopped on any exit

/** Starts serve.mjs on `state`; resolves { child, ready } once its ready file is written. */
async function startServe(args, state, tag) {
  const ready = path.join(args.work, `${tag}.ready.json`);
  rmSync(ready, { force: true });
  const child = spawn(
    process.execPath,
    [path.join(root, "bench/serve.mjs"), "--config", args.config, "--state", state, "--ready", ready,
      "--log", path.join(args.work, "workerd.log"), ...args.vars.flatMap((v) => ["--var", v])],
    { stdio: ["ignore", "ignore", "inherit"] },
  );
  live.add(child);
  const exited = new Promise((resolve) => child.on("exit", resolve));
  child.exited = exited;
  // Polled often: the first request should follow readiness closely.
  for (let i = 0; i < 60_000 / 5; i++) {
    if (existsSync(ready)) {
      try {
        return { child, ready: JSON.parse(readFileSync(ready, "utf8")) };
      } catch {
        // written but not complete yet
      }
    }
    if (child.exitCode !== null) break;
    await sleep(5);
  }
  await stopServe(child);
  throw new Error(`${args.name}: serve.mjs did not become ready (${tag})`);
}

/** SIGTERM (serve.mjs disposes Miniflare, which ends workerd), SIGKILL after 10 s. */
async function stopServe(child, workerdPid) {
  if (child.exitCode === null && child.signalCode === null) {
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
    await child.exited;
    clearTimeout(timer);
  }
  live.delete(child);
  // Its workerd, should it have outlived it (checked by command line, so never a reused PID).
  if (workerdPid && cmdline(workerdPid)[0]?.endsWith("workerd")) {
    for (let i = 0; i < 25 && cmdline(workerdPid).length; i++) await sleep(200);
    if (cmdline(workerdPid)[0]?.endsWith("workerd")) process.kill(workerdPid, "SIGKILL");
  }
}

function stopAllAndExit(code) {
  for (const child of live) child.kill("SIGTERM");
  setTimeout(() => process.exit(code), 2000).unref();
  if (live.size === 0) process.exit(code);
}
process.on("SIGTERM", () => stopAllAndExit(143));
process.on("SIGINT", () => stopAllAndExit(130));

/** Seeds one token, one Kling account and 10 jobs through load.mjs (not measured). */
async function seedOnce(args, state) {
  const { child, ready } = await startServe(args, state, "seed");
  const seedFile = path.join(args.work, "seed.json");
  const seeder = spawn(
    process.execPath,
    [path.join(root, "bench/load.mjs"), "seed", "--url", ready.url, "--out", seedFile,
      "--scales", "1", "--providers", "kling", "--extras", "0"],
    { stdio: ["ignore", "inherit", "inherit"] },
  );
  const code = await new Promise((resolve) => seeder.on("exit", resolve));
  await stopServe(child, ready.workerdPid);
  if (code !== 0) throw new Error(`${args.name}: seeding failed`);
  return JSON.parse(readFileSync(seedFile, "utf8"));
}

/** One GET on a new connection: { status, ms, body, cpuMs } (workerd CPU during it). */
function timedGet(url, pathname, token, workerdPid) {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const cpu0 = cpuNanos(workerdPid);
    const t0 = process.hrtime.bigint();
    const req = http.request(
      { host: u.hostname, port: u.port, path: pathname, headers: { authorization: `Bearer ${token}` }, agent: false },
      (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () => {
          const ms = Number(process.hrtime.bigint() - t0) / 1e6;
          const cpu1 = cpuNanos(workerdPid);
          resolve({
            status: res.statusCode,
            ms,
            body: Buffer.concat(chunks).toString("utf8"),
            cpuMs: cpu0 === null || cpu1 === null ? null : (cpu1 - cpu0) / 1e6,
          });
        });
        res.on("error", reject);
      },
    );
    req.setTimeout(30_000, () => req.destroy(new Error(`timeout: GET ${pathname}`)));
    req.on("error", reject);
    req.end();
  });
}

/** The Kling list of the seeded account, checked (10 jobs). */
async function listOnce(ready, token) {
  const r = await timedGet(ready.url, "/v1/kling/scheduler", token, ready.workerdPid);
  if (r.status !== 200 || JSON.parse(r.body).length !== 10) {
    throw new Error(`cold start: expected 200 with 10 jobs, got ${r.status}: ${r.body.slice(0, 200)}`);
  }
  return { ms: r.ms, cpuMs: r.cpuMs };
}

async function oneStart(args, state, i, token) {
  const { child, ready } = await startServe(args, state, `start-${i}`);
  try {
    // All of workerd's CPU so far: schedstat (ns) of its threads, and the clock-tick
    // figure from /proc/<pid>/stat beside it (which also counts threads that exited).
    const startupCpuMs = (cpuNanos(ready.workerdPid) ?? NaN) / 1e6;
    const startupCpuTicksMs = (cpuTicks(ready.workerdPid) * 1000) / CLK_TCK;
    const first = await listOnce(ready, token);
    const second = await listOnce(ready, token);
    return { startupMs: ready.startupMs, startupCpuMs, startupCpuTicksMs, first, second };
  } finally {
    await stopServe(child, ready.workerdPid);
  }
}

function median(xs) {
  const s = xs.filter((x) => x !== null && !Number.isNaN(x)).sort((a, b) => a - b);
  if (!s.length) return null;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const starts = Number(args.starts ?? 5);
  mkdirSync(args.work, { recursive: true });
  const state = path.join(args.work, "state");
  const seeded = await seedOnce(args, state);
  const token = seeded.tokens.n1;
  const samples = [];
  for (let i = 1; i <= starts; i++) {
    const s = await oneStart(args, state, i, token);
    samples.push(s);
    console.error(
      `[cold] ${args.name} start ${i}/${starts}: ready in ${s.startupMs.toFixed(0)} ms (workerd CPU ${s.startupCpuMs.toFixed(0)} ms); ` +
        `first list ${s.first.ms.toFixed(1)} ms, ${s.first.cpuMs?.toFixed(1)} ms CPU; second ${s.second.ms.toFixed(1)} ms, ${s.second.cpuMs?.toFixed(1)} ms CPU`,
    );
  }
  const out = {
    name: args.name,
    starts,
    request: "GET /v1/kling/scheduler, 1 account x 10 jobs, authenticated, on state persisted by an earlier start",
    median: {
      startupMs: median(samples.map((s) => s.startupMs)),
      startupCpuMs: median(samples.map((s) => s.startupCpuMs)),
      firstMs: median(samples.map((s) => s.first.ms)),
      firstCpuMs: median(samples.map((s) => s.first.cpuMs)),
      secondMs: median(samples.map((s) => s.second.ms)),
      secondCpuMs: median(samples.map((s) => s.second.cpuMs)),
    },
    samples,
  };
  writeFileSync(args.out, JSON.stringify(out, null, 2));
}

try {
  await main();
} catch (e) {
  console.error(`[cold] FAILED: ${e?.stack ?? e}`);
  stopAllAndExit(1);
}
