// wrangler itself, for the figures that must be wrangler's own (bench/run.sh):
//
//   node bench/wrangler.mjs dev --config wrangler.toml --work DIR --ready FILE [--var K:V ...]
//       Runs the worker under `wrangler dev` (this repository's wrangler, so the same
//       workerd binary as the Miniflare runs) on a free 127.0.0.1 port, persisting to
//       DIR/state. When it answers, writes FILE: {"url", "cpuPids": {"worker", "proxy"},
//       "asidePids": {"wrangler"}, "startupMs"} for bench/load.mjs. Runs until
//       SIGTERM/SIGINT, then stops wrangler's whole process group.
//
//   node bench/wrangler.mjs size --config wrangler.toml --work DIR --out FILE
//       `wrangler deploy --dry-run --outdir DIR/out`: parses its "Total Upload: X KiB /
//       gzip: Y KiB" line (the size Cloudflare's limits apply to) and lists the files of
//       the bundle with their raw and gzip -9 sizes.
//
// wrangler dev runs two workerd processes, both children of wrangler's Node process: a
// proxy (wrangler's ProxyWorker, on the public --port) that forwards every request to
// the worker's own workerd (on a port of its choosing). Both are in the request path;
// their CPU is read separately and summed. The one started with
// --socket-addr=entry=127.0.0.1:<our port> is the proxy.
//
// Both commands use a copy of the config in DIR, without its [build] section and with an
// absolute `main` (the e2e tests' server does the same, tests/support/server.mjs): run.sh
// has built already (SKIP_WASM_BUILD=1 is set all the same), a [build] section makes
// wrangler dev watch src/ and restart the worker mid-run when a file there changes, and
// wrangler writes .wrangler/ next to its config, which the peer's read-only directory
// does not allow. Bindings and migrations are the real file's. Only `main` is made
// absolute: should a config gain other relative paths ([assets] directory, [site]
// bucket), configCopy must rewrite them too.
import { spawn, spawnSync } from "node:child_process";
import { closeSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { gzipSync } from "node:zlib";
import { cmdline, descendantsOf } from "./procs.mjs";

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");
const WRANGLER = path.join(root, "node_modules/.bin/wrangler");
const START_TIMEOUT_MS = Number(process.env.BENCH_DEV_START_SECONDS ?? 90) * 1000;

function parseArgs(argv) {
  const args = { _: [], vars: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--var") args.vars.push(argv[++i]);
    else if (a.startsWith("--")) args[a.slice(2)] = argv[++i];
    else args._.push(a);
  }
  return args;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The config without [build] and with an absolute main, written as DIR/wrangler.toml. */
function configCopy(configPath, dir) {
  const base = path.dirname(path.resolve(configPath));
  const out = [];
  let inBuild = false;
  for (const line of readFileSync(configPath, "utf8").split("\n")) {
    const header = line.match(/^\s*\[\[?([^\]]+)\]\]?\s*$/);
    if (header) inBuild = header[1].trim() === "build";
    if (inBuild) continue;
    const main = line.match(/^main\s*=\s*"([^"]+)"/);
    out.push(main ? `main = ${JSON.stringify(path.resolve(base, main[1]))}` : line);
  }
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, "wrangler.toml");
  writeFileSync(file, out.join("\n"));
  return file;
}

/** wrangler's environment: no metrics, no colours, its config and cache in DIR. */
function wranglerEnv(dir) {
  return {
    ...process.env,
    SKIP_WASM_BUILD: "1",
    WRANGLER_SEND_METRICS: "false",
    XDG_CONFIG_HOME: path.join(dir, "xdg-config"),
    NO_COLOR: "1",
    FORCE_COLOR: "0",
  };
}

/** A port the kernel reports free now (another process may take it before wrangler). */
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// ---------------------------------------------------------------------------- dev

/** wrangler's two workerd processes, told apart by the socket the proxy listens on. */
function devWorkerds(wranglerPid, port) {
  const workerds = descendantsOf(wranglerPid).filter((p) => p.comm.startsWith("workerd"));
  const isProxy = (p) => cmdline(p.pid).some((a) => a === `--socket-addr=entry=127.0.0.1:${port}`);
  const proxy = workerds.find(isProxy);
  const worker = workerds.find((p) => !isProxy(p));
  // wrangler's CLI runs in a Node child of the `wrangler` launcher; both workerds are its children.
  const cli = descendantsOf(wranglerPid).find((p) => p.comm === "node" && cmdline(p.pid).some((a) => a.endsWith("wrangler-dist/cli.js")));
  return { proxy: proxy?.pid, worker: worker?.pid, cli: cli?.pid, count: workerds.length };
}

async function answers(url) {
  try {
    const res = await fetch(`${url}/__bench_ready`, { signal: AbortSignal.timeout(5000) });
    await res.arrayBuffer();
    return true;
  } catch {
    return false;
  }
}

async function dev(args) {
  const dir = path.resolve(args.work);
  rmSync(args.ready, { force: true }); // a stale one would announce a server that is gone
  const config = configCopy(args.config, dir);
  const port = await freePort();
  const inspectorPort = await freePort();
  const wranglerArgs = [
    "dev",
    "--config", config,
    "--ip", "127.0.0.1",
    "--port", String(port),
    // Its own inspector port: the default 9229 may belong to another wrangler dev.
    "--inspector-port", String(inspectorPort),
    "--show-interactive-dev-session=false",
    "--persist-to", path.join(dir, "state"),
    ...args.vars.flatMap((v) => ["--var", v]),
  ];
  const log = openSync(path.join(dir, "wrangler.log"), "a");
  const startedAt = performance.now();
  const child = spawn(WRANGLER, wranglerArgs, {
    cwd: dir,
    detached: true, // its own process group: stopping it stops wrangler and both workerds
    stdio: ["ignore", log, log],
    env: wranglerEnv(dir),
  });
  closeSync(log);
  let exited = false;
  const exitedPromise = new Promise((resolve) => child.on("exit", () => ((exited = true), resolve())));

  const stop = async (code) => {
    if (!exited) {
      try { process.kill(-child.pid, "SIGTERM"); } catch { /* gone */ }
      await Promise.race([exitedPromise, sleep(5000)]);
    }
    // workerd may outlive wrangler for a moment: the whole group goes.
    try { process.kill(-child.pid, "SIGKILL"); } catch { /* gone */ }
    process.exit(code);
  };
  process.on("SIGTERM", () => stop(0));
  process.on("SIGINT", () => stop(0));

  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + START_TIMEOUT_MS;
  let pids = null;
  while (Date.now() < deadline && !exited) {
    if (await answers(url)) {
      pids = devWorkerds(child.pid, port);
      break;
    }
    await sleep(200);
  }
  // Someone else's server on the port would answer too: the proxy must be ours.
  if (!pids?.proxy || !pids?.worker) {
    console.error(`[wrangler] dev did not come up on ${url} (${exited ? "wrangler exited" : "no answer or not ours"}); see ${dir}/wrangler.log`);
    await stop(1);
  }
  writeFileSync(
    args.ready,
    JSON.stringify({
      url,
      cpuPids: { worker: pids.worker, proxy: pids.proxy },
      asidePids: pids.cli ? { wrangler: pids.cli } : {},
      wranglerPid: child.pid,
      startupMs: performance.now() - startedAt,
      socket: "wrangler dev: its proxy workerd on the port, then the worker's workerd",
    }),
  );
  console.error(`[wrangler] dev on ${url} (worker workerd ${pids.worker}, proxy workerd ${pids.proxy})`);
}

// ---------------------------------------------------------------------------- size

/** "Total Upload: 642.80 KiB / gzip: 234.33 KiB" -> { totalKiB, gzipKiB }. */
function parseTotalUpload(output) {
  const m = output.match(/Total Upload:\s*([\d.]+)\s*KiB\s*\/\s*gzip:\s*([\d.]+)\s*KiB/);
  if (!m) throw new Error(`no "Total Upload: ... / gzip: ..." line in wrangler's output:\n${output}`);
  return { totalKiB: Number(m[1]), gzipKiB: Number(m[2]) };
}

function size(args) {
  const dir = path.resolve(args.work);
  const config = configCopy(args.config, dir);
  const outdir = path.join(dir, "out");
  const res = spawnSync(WRANGLER, ["deploy", "--dry-run", "--outdir", outdir, "--config", config], {
    cwd: dir,
    env: wranglerEnv(dir),
    encoding: "utf8",
    timeout: 120_000,
  });
  const output = `${res.stdout ?? ""}${res.stderr ?? ""}`;
  if (res.status !== 0) throw new Error(`wrangler deploy --dry-run failed (${res.status ?? res.signal}):\n${output}`);
  const files = readdirSync(outdir)
    .filter((f) => !f.endsWith(".map") && f !== "README.md")
    .map((f) => {
      const p = path.join(outdir, f);
      return { file: f, bytes: statSync(p).size, gzip9: gzipSync(readFileSync(p), { level: 9 }).length };
    });
  const result = { ...parseTotalUpload(output), files, command: "wrangler deploy --dry-run --outdir" };
  writeFileSync(args.out, JSON.stringify(result, null, 2));
  console.error(`[wrangler] ${args.config}: Total Upload ${result.totalKiB} KiB / gzip ${result.gzipKiB} KiB`);
}

const args = parseArgs(process.argv.slice(2));
try {
  if (args._[0] === "dev") await dev(args);
  else if (args._[0] === "size") size(args);
  else throw new Error("usage: wrangler.mjs dev|size ...");
} catch (e) {
  console.error(`[wrangler] FAILED: ${e?.stack ?? e}`);
  process.exit(1);
}
