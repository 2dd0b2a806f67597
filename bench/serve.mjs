// Serves a BUILT worker in workerd through Miniflare's API, without wrangler dev and its
// proxy, on its own 127.0.0.1 socket. Used by bench/run.sh, once for the scheduler and
// once for the ceiling (bench/ceiling/).
//
//   node bench/serve.mjs --script build/index.js [--port N] --state DIR --ready FILE
//                        [--ceiling] [--var NAME=VALUE ...] [--log FILE]
//
// --port 0 (the default) lets the kernel choose a free port, so a bench never collides
// with a wrangler dev or test run on the same machine. When workerd listens, writes FILE: {"url", "workerdPid", "servePid", "miniflare",
// "socket"}. workerdPid is the workerd child of this process, whose /proc/<pid>/stat
// utime+stime bench/load.mjs reads around each scenario. Runs until SIGTERM/SIGINT,
// then disposes Miniflare (which ends workerd) and exits.
//
// The socket is Miniflare's regular one: requests pass Miniflare's small entry worker
// (core:entry, in the same workerd process; it adds request.cf and CF-Connecting-IP)
// and then the user worker - no wrangler dev proxy, no Node in the request path.
// Miniflare's "direct sockets" (unsafeDirectSockets, no entry worker) were tried and
// dropped: with workerd 2026-04-26 they reset keep-alive connections under long
// requests (about 1 in 50 of the 50-account lists at 8 in flight: ECONNRESET after
// 1-5 s, no error logged), while the regular socket served the same load cleanly.
import { readFileSync, readdirSync, writeFileSync, mkdirSync, createWriteStream } from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");
const { Miniflare, Log, LogLevel } = require(path.join(root, "node_modules/miniflare"));

function parseArgs(argv) {
  const args = { vars: {}, ceiling: false, port: 0 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => argv[++i];
    if (a === "--script") args.script = next();
    else if (a === "--port") args.port = Number(next());
    else if (a === "--state") args.state = next();
    else if (a === "--ready") args.ready = next();
    else if (a === "--log") args.log = next();
    else if (a === "--ceiling") args.ceiling = true;
    else if (a === "--var") {
      const [k, ...v] = next().split("=");
      args.vars[k] = v.join("=");
    } else throw new Error(`unknown argument ${a}`);
  }
  for (const k of ["script", "state", "ready"]) {
    if (args[k] === undefined) throw new Error(`--${k} is required`);
  }
  return args;
}

/** PIDs of the direct children of `pid` (from /proc, no ps needed). */
function childrenOf(pid) {
  const out = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      // pid (comm) state ppid ...: comm may contain spaces, so split after the last ')'.
      const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      if (Number(rest[1]) === pid) out.push({ pid: Number(name), comm });
    } catch {
      // the process went away while we looked
    }
  }
  return out;
}

function findWorkerd(pid) {
  // workerd is normally a direct child; look one level further just in case a wrapper
  // sits between (e.g. a shell).
  const kids = childrenOf(pid);
  const direct = kids.find((k) => k.comm.startsWith("workerd"));
  if (direct) return direct.pid;
  for (const k of kids) {
    const grand = childrenOf(k.pid).find((g) => g.comm.startsWith("workerd"));
    if (grand) return grand.pid;
  }
  return null;
}

const args = parseArgs(process.argv.slice(2));
mkdirSync(args.state, { recursive: true });
const logStream = args.log ? createWriteStream(args.log, { flags: "a" }) : null;

const worker = {
  name: args.ceiling ? "ceiling" : "edge-scheduler",
  modules: true,
  scriptPath: path.resolve(args.script),
  // Module names are paths relative to this root ("index.js", "index_bg.wasm").
  modulesRoot: path.dirname(path.resolve(args.script)),
  modulesRules: [{ type: "CompiledWasm", include: ["**/*.wasm"], fallthrough: true }],
  compatibilityDate: "2026-04-01",
  bindings: args.vars,
};
if (args.ceiling) {
  // The fan-out ceiling's minimal objects (bench/ceiling/src/lib.rs), SQLite-backed like
  // the scheduler's account objects, though they never touch storage.
  worker.durableObjects = { SLICES: { className: "Slice", useSQLite: true } };
} else {
  Object.assign(worker, {
    kvNamespaces: ["TOKENS"],
    durableObjects: {
      ACCOUNTS: { className: "AccountObject", useSQLite: true },
      DIRECTORY: { className: "UserDirectory", useSQLite: true },
    },
    // The worker's own limit is 30 failures/min per client address; the bench sends
    // thousands of 401s from one address, so the limiter gets a limit it never reaches
    // (the limiter call itself stays in the measured path).
    ratelimits: { AUTH_FAILURES: { simple: { limit: 1_000_000_000, period: 60 } } },
  });
}

const startedAt = performance.now();
const mf = new Miniflare({
  workers: [worker],
  host: "127.0.0.1",
  port: args.port,
  kvPersist: path.join(args.state, "kv"),
  durableObjectsPersist: path.join(args.state, "do"),
  cachePersist: path.join(args.state, "cache"),
  // No request.cf download from the network: Miniflare's placeholder is enough.
  cf: false,
  // BENCH_SERVE_VERBOSE=1: workerd's own diagnostics, for debugging a run.
  verbose: process.env.BENCH_SERVE_VERBOSE === "1",
  log: new Log(LogLevel.WARN),
  // The scheduler logs one JSON line per request: keep it out of the terminal.
  handleRuntimeStdio(stdout, stderr) {
    const sink = (chunk) => logStream?.write(chunk);
    stdout.on("data", sink);
    stderr.on("data", sink);
  },
});

let closing = false;
async function close(code) {
  if (closing) return;
  closing = true;
  try {
    await mf.dispose();
  } catch (e) {
    console.error(`[serve] dispose: ${e?.message ?? e}`);
  }
  logStream?.end();
  process.exit(code);
}
process.on("SIGTERM", () => close(0));
process.on("SIGINT", () => close(0));

try {
  await mf.ready;
} catch (e) {
  console.error(`[serve] Miniflare failed to start ${args.script}: ${e?.stack ?? e}`);
  await close(1);
}
const url = new URL(await mf.ready);
const startupMs = performance.now() - startedAt;
const workerdPid = findWorkerd(process.pid);
if (!workerdPid) {
  console.error("[serve] could not find the workerd child process");
  await close(1);
}
const version = JSON.parse(readFileSync(path.join(root, "node_modules/miniflare/package.json"), "utf8")).version;
writeFileSync(
  args.ready,
  JSON.stringify({
    url: `http://127.0.0.1:${url.port}`,
    workerdPid,
    servePid: process.pid,
    startupMs,
    miniflare: version,
    socket: "Miniflare's own socket (its entry worker, then ours; no wrangler dev proxy)",
  }),
);
console.error(`[serve] ${worker.name} on http://127.0.0.1:${url.port} (workerd pid ${workerdPid})`);
