// Serves a worker described by a wrangler.toml in workerd through Miniflare's API,
// without wrangler dev and its proxy, on its own 127.0.0.1 socket. bench/run.sh uses it
// for the scheduler (./wrangler.toml), the ceiling (bench/ceiling/wrangler.toml) and the
// peer (/work/shared/peers/js-scheduler/wrangler.toml), so all three run in the same
// Miniflare and the same workerd binary (this repository's node_modules).
//
//   node bench/serve.mjs --config wrangler.toml --state DIR --ready FILE
//                        [--port N] [--var NAME=VALUE ...] [--log FILE]
//
// The worker's options come from the config itself, through wrangler's own
// unstable_getMiniflareWorkerOptions (the function wrangler's platform proxy uses): vars,
// KV namespaces, Durable Object classes (SQLite or not, from the migrations), rate
// limiters, compatibility date and flags. So a new binding or Durable Object class in
// wrangler.toml needs no change here. The script is the config's `main`, loaded as it
// is, unbundled: its ES module imports are followed (*.js and *.mjs as ES modules, the
// .wasm as CompiledWasm, as wrangler's bundler treats them).
//
// Two things differ from the config, both on purpose:
//   - every rate limiter gets a limit it never reaches (1e9 per period): the bench sends
//     thousands of 401s from one address, which the real limits would turn into 429s;
//     the limiter call itself stays in the measured path;
//   - --var NAME=VALUE adds or overrides vars (ADMIN_TOKEN, the ceiling's body sizes).
//
// --port 0 (the default) lets the kernel choose a free port, so a bench never collides
// with a wrangler dev or test run on the same machine. When workerd listens, writes FILE:
// {"url", "workerdPid", "servePid", "startupMs", "name", ...}. workerdPid is the workerd
// child of this process, whose /proc/<pid>/stat utime+stime bench/load.mjs reads around
// each scenario. Runs until SIGTERM/SIGINT, then disposes Miniflare (which ends workerd)
// and exits.
//
// The socket is Miniflare's regular one: requests pass Miniflare's small entry worker
// (core:entry, in the same workerd process; it adds request.cf and CF-Connecting-IP)
// and then the user worker - no wrangler dev proxy, no Node in the request path.
// Miniflare's "direct sockets" (unsafeDirectSockets, no entry worker) were tried and
// dropped: with workerd 2026-04-26 they reset keep-alive connections under long
// requests (about 1 in 50 of the 50-account lists at 8 in flight: ECONNRESET after
// 1-5 s, no error logged), while the regular socket served the same load cleanly.
import { readFileSync, writeFileSync, mkdirSync, createWriteStream } from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { findWorkerd } from "./procs.mjs";

const require = createRequire(import.meta.url);
const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");
const { Miniflare, Log, LogLevel } = require(path.join(root, "node_modules/miniflare"));
const { unstable_getMiniflareWorkerOptions } = require(path.join(root, "node_modules/wrangler"));

/** A limit no bench reaches (see the header). */
const UNREACHABLE_LIMIT = 1_000_000_000;

function parseArgs(argv) {
  const args = { vars: {}, port: 0 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => argv[++i];
    if (a === "--config") args.config = next();
    else if (a === "--port") args.port = Number(next());
    else if (a === "--state") args.state = next();
    else if (a === "--ready") args.ready = next();
    else if (a === "--log") args.log = next();
    else if (a === "--var") {
      const [k, ...v] = next().split("=");
      args.vars[k] = v.join("=");
    } else throw new Error(`unknown argument ${a}`);
  }
  for (const k of ["config", "state", "ready"]) {
    if (args[k] === undefined) throw new Error(`--${k} is required`);
  }
  return args;
}

/** The config's rate limiters, each with the same period and an unreachable limit. */
function relaxedRatelimits(ratelimits = {}) {
  return Object.fromEntries(
    Object.entries(ratelimits).map(([name, rl]) => [
      name,
      { simple: { limit: UNREACHABLE_LIMIT, period: rl.simple?.period ?? 60 } },
    ]),
  );
}

/** Miniflare worker options for the wrangler.toml at `configPath`. */
function workerFromConfig(configPath, vars) {
  const { workerOptions, main, define, externalWorkers } = unstable_getMiniflareWorkerOptions(configPath);
  if (!main) throw new Error(`${configPath} has no main`);
  // esbuild `define`s only exist in a bundle; we serve the modules unbundled.
  if (define && Object.keys(define).length) throw new Error(`${configPath}: [define] is not supported unbundled`);
  if (externalWorkers?.length) throw new Error(`${configPath}: service bindings to other workers are not supported`);
  const name = readConfigName(configPath);
  return {
    ...workerOptions,
    name,
    modules: true,
    scriptPath: path.resolve(main),
    // Module names are paths relative to the config's directory ("build/index.js",
    // "build/index_bg.wasm", "src/entry.mjs"): every module of a project lives below it.
    modulesRoot: path.dirname(path.resolve(configPath)),
    // Miniflare's own default treats *.js as CommonJS; wrangler's bundler reads them as
    // ES modules (worker-build's glue is one), so say so first. wrangler's rules (the
    // .wasm as CompiledWasm, text and data blobs) follow.
    modulesRules: [{ type: "ESModule", include: ["**/*.js", "**/*.mjs"] }, ...(workerOptions.modulesRules ?? [])],
    bindings: { ...workerOptions.bindings, ...vars },
    ratelimits: relaxedRatelimits(workerOptions.ratelimits),
  };
}

/** `name = "..."` of a wrangler.toml (also the Miniflare worker's name). */
function readConfigName(configPath) {
  const m = readFileSync(configPath, "utf8").match(/^name\s*=\s*"([^"]+)"/m);
  return m ? m[1] : path.basename(path.dirname(path.resolve(configPath)));
}

const args = parseArgs(process.argv.slice(2));
mkdirSync(args.state, { recursive: true });
const logStream = args.log ? createWriteStream(args.log, { flags: "a" }) : null;
const worker = workerFromConfig(args.config, args.vars);

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

let url;
try {
  url = new URL(await mf.ready);
} catch (e) {
  console.error(`[serve] Miniflare failed to start ${args.config}: ${e?.stack ?? e}`);
  await close(1);
}
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
    name: worker.name,
    config: path.resolve(args.config),
    main: worker.scriptPath,
    durableObjects: Object.fromEntries(Object.entries(worker.durableObjects ?? {}).map(([k, v]) => [k, v.className])),
    miniflare: version,
    socket: "requests enter through Miniflare's own socket (its entry worker, then the worker; no wrangler dev proxy)",
  }),
);
console.error(`[serve] ${worker.name} on http://127.0.0.1:${url.port} (workerd pid ${workerdPid})`);
