// The worker under test: starts the real worker under `wrangler dev` (workerd, local KV
// and Durable Objects) and stops or kills it. Also the ports it and the receivers listen
// on, the per-worker temp dirs and logs, and the exit handler that kills any worker a
// test left running.
//
// Every worker gets its own port, inspector port and --persist-to directory, so several
// test files can run in parallel (node --test --test-concurrency). The worker must have
// been built already (scripts/build.sh); wrangler is started with SKIP_WASM_BUILD=1 so
// its [build] command reuses that build.
//
// No npm dependencies: node:test, node:http, global fetch (Node 20).

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const ADMIN_TOKEN = 'test-admin-token';
const WRANGLER = path.join(ROOT, 'node_modules', '.bin', 'wrangler');
const HANG_UP_CONFIG = path.join(ROOT, 'tests', 'support', 'hang-up', 'wrangler.toml');
const START_TIMEOUT_MS = Number(process.env.E2E_START_TIMEOUT_MS || 90_000);

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------
// Ports

/** A port that was free on 127.0.0.1 a moment ago (the OS picks it). */
export async function freePort() {
  const srv = net.createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const { port } = srv.address();
  await new Promise((r) => srv.close(r));
  return port;
}

/**
 * A free port for a receiver that is down now and comes up later on the same port.
 * freePort() picks from the kernel's ephemeral range, where every parallel test's
 * listen(0) (wrangler, workerd, receivers) and every outgoing connection also draw: in
 * the seconds a port stays unbound, any of them could take it. This one is picked at
 * random below that range, where nothing here binds unless it asks for that number.
 */
export async function downPort() {
  let low = 32768;
  try {
    low = Number(fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) || low;
  } catch {
    /* not Linux: keep the usual bound */
  }
  const floor = 10_000;
  for (let i = 0; i < 50; i++) {
    const port = floor + Math.floor(Math.random() * Math.max(1, low - floor));
    const srv = net.createServer();
    const ok = await new Promise((resolve) => {
      srv.once('error', () => resolve(false));
      srv.listen(port, '127.0.0.1', () => resolve(true));
    });
    if (ok) {
      await new Promise((r) => srv.close(r));
      return port;
    }
  }
  throw new Error('no free port below the ephemeral range');
}

// ---------------------------------------------------------------------------------------
// Processes, temp dirs and logs

// Workers still running when the test process exits (a crash, a failed assertion before
// stop()) are killed here, so no wrangler/workerd outlives its test file. The temp dirs
// (persisted state, wrangler logs) are removed when the file passed, and kept (and
// named) when it failed or E2E_KEEP_TMP=1.
const running = new Set();
const tempDirs = [];
const logByUrl = new Map(); // worker url -> its log file, for the 5xx message
process.on('exit', (code) => {
  for (const child of running) {
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  if (code === 0 && process.env.E2E_KEEP_TMP !== '1') {
    for (const d of tempDirs) fs.rmSync(d, { recursive: true, force: true });
  } else if (tempDirs.length) {
    console.error(`e2e temp dirs kept (wrangler logs, state): ${tempDirs.join(' ')}`);
  }
});

/** The last `lines` lines of a log file ('(no log)' when it cannot be read). */
export function tail(file, lines = 60) {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** The log file of the worker started on `url` (undefined for a worker not started here). */
export function workerLogFile(url) {
  return logByUrl.get(url);
}

/**
 * The project's wrangler.toml without its [build] section and with an absolute `main`,
 * written into `dir`. Tests run the already-built worker: with a [build] command,
 * wrangler dev also watches src/ and restarts the worker when anything there is
 * touched, answering the requests in flight with a 503 of its own ("Your worker
 * restarted mid-request"). Everything else (bindings, migrations) is the real file's.
 */
function testConfig(dir, vars) {
  const lines = fs.readFileSync(path.join(ROOT, 'wrangler.toml'), 'utf8').split('\n');
  const out = [];
  let inBuild = false;
  for (const line of lines) {
    const header = line.match(/^\s*\[\[?([^\]]+)\]\]?\s*$/);
    if (header) inBuild = header[1].trim() === 'build';
    if (inBuild) continue;
    const main = line.match(/^main\s*=\s*"([^"]+)"/);
    out.push(main ? `main = ${JSON.stringify(path.join(ROOT, main[1]))}` : line);
  }
  const file = path.join(dir, 'wrangler.toml');
  fs.writeFileSync(file, out.join('\n'));
  // The vars go into a .dev.vars beside it, not --var: with two configs (hangUps),
  // wrangler dev gives --var to the first worker only, and the scheduler is the second.
  // wrangler reads .dev.vars as secrets, so it never prints their values in the log.
  const dotenv = Object.entries(vars).map(([k, v]) => `${k}=${JSON.stringify(String(v))}`);
  fs.writeFileSync(path.join(dir, '.dev.vars'), dotenv.join('\n') + '\n');
  return file;
}

/** The log written since byte `from` (one start attempt's part of the file). */
function logSince(logFile, from) {
  try {
    return fs.readFileSync(logFile).subarray(from).toString('utf8');
  } catch {
    return '';
  }
}

/** Whether this attempt's wrangler could not bind its port. */
function bindFailed(logFile, from) {
  return /address already in use|EADDRINUSE/i.test(logSince(logFile, from));
}

/** Whether the request for `nonce` reached this worker: its access line is in our log. */
async function answeredByThisWorker(logFile, from, nonce) {
  for (let i = 0; i < 40; i++) {
    if (logSince(logFile, from).includes(nonce)) return true;
    if (bindFailed(logFile, from)) return false;
    await sleep(50);
  }
  return false;
}

// ---------------------------------------------------------------------------------------
// Starting and stopping the worker

/**
 * Starts the worker under `wrangler dev`.
 *
 * options:
 *   vars:       extra `--var K:V` bindings, e.g. { WEBHOOK_SECRET: 'whsec_...' }
 *   adminToken: the ADMIN_TOKEN var (default 'test-admin-token'); null starts the worker
 *               without one (operator routes answer 403)
 *   persistDir: reuse this --persist-to directory (restart tests); default a fresh temp dir
 *   port:       listen on this port (a page reconnects to its own origin, so a worker
 *               restarted for it must come back on the same port; see downPort())
 *   hangUps:    put the hang-up stand-in in front (tests/support/hang-up/worker.mjs): a
 *               request with `x-test-hang-up-after-ms: N` is cancelled inside workerd
 *               after N ms, as Cloudflare cancels one whose client disconnected; the
 *               test gets 499 {"hungUp":true}
 *
 * Returns { url, port, pid, persistDir, logFile, logs(), stop(), kill() }. stop() kills
 * the whole process group (wrangler and its workerd) and waits for it to exit; it is
 * safe to call twice. kill() is a crash instead: SIGKILL to the whole group at once, then
 * the same wait; it resolves false when the worker had exited already. `pid` is the
 * process group's (wrangler's). On a start failure the log tail is printed and the error
 * thrown.
 */
export async function startWorker({ vars = {}, adminToken = ADMIN_TOKEN, persistDir, hangUps = false, port: fixedPort } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sched-e2e-'));
  tempDirs.push(dir);
  const allVars = { ...vars };
  if (adminToken !== null) allVars.ADMIN_TOKEN = adminToken;
  const config = testConfig(dir, allVars);
  // hangUps: the hang-up stand-in (tests/support/hang-up/) answers on the port and
  // forwards to the scheduler, cancelling requests that ask for it (a client that left).
  const configs = hangUps ? [HANG_UP_CONFIG, config] : [config];
  persistDir ??= path.join(dir, 'state');
  fs.mkdirSync(persistDir, { recursive: true });
  const logFile = path.join(dir, 'wrangler.log');

  let lastError;
  // A port picked by freePort() can be taken by a parallel test in between: retry with
  // another. A fixed port (a restart on the same port) may still be held for a moment
  // by the worker just killed: retry it for about 15 s.
  const attempts = fixedPort ? 30 : 5;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    if (attempt > 1 && fixedPort) await sleep(500);
    const port = fixedPort ?? (await freePort());
    const inspectorPort = await freePort();
    const args = [
      'dev',
      ...configs.flatMap((c) => ['--config', c]),
      '--ip', '127.0.0.1',
      '--port', String(port),
      '--inspector-port', String(inspectorPort),
      '--show-interactive-dev-session=false',
      '--persist-to', persistDir,
    ];

    const logStart = fs.existsSync(logFile) ? fs.statSync(logFile).size : 0;
    const log = fs.openSync(logFile, 'a');
    fs.writeSync(log, `\n### attempt ${attempt}: wrangler ${args.join(' ')}\n`);
    const child = spawn(WRANGLER, args, {
      cwd: ROOT,
      detached: true, // own process group: stop() kills wrangler and workerd together
      stdio: ['ignore', log, log],
      env: {
        ...process.env,
        SKIP_WASM_BUILD: '1',
        WRANGLER_SEND_METRICS: 'false',
        // Keep wrangler's config/cache writes out of the way of parallel instances.
        XDG_CONFIG_HOME: path.join(dir, 'xdg-config'),
        NO_COLOR: '1',
        FORCE_COLOR: '0',
      },
    });
    fs.closeSync(log);
    running.add(child);
    let exited = false;
    let exitCode = null;
    const exitPromise = new Promise((resolve) =>
      child.on('exit', (code, signal) => {
        exited = true;
        exitCode = code ?? signal;
        running.delete(child);
        resolve();
      }),
    );

    const url = `http://127.0.0.1:${port}`;
    const stop = async () => {
      if (exited) return;
      try {
        process.kill(-child.pid, 'SIGTERM');
      } catch {
        /* gone */
      }
      const killer = setTimeout(() => {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }, 5000);
      await exitPromise;
      clearTimeout(killer);
      // workerd may outlive wrangler for a moment; make sure the group is gone.
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    };
    const kill = async () => {
      if (exited) return false;
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
      await stop();
      return true;
    };

    // Ready once THIS worker answers: any HTTP answer is not enough, because when the
    // port was taken between freePort() and the bind, another test's server answers
    // on it. The probe carries a nonce that must then show up in this worker's own log.
    const deadline = Date.now() + START_TIMEOUT_MS;
    let ready = false;
    while (Date.now() < deadline && !exited) {
      const nonce = `__e2e_ready_${process.pid}_${attempt}_${Math.random().toString(36).slice(2)}`;
      try {
        const res = await fetch(`${url}/${nonce}`, { signal: AbortSignal.timeout(5000) });
        await res.arrayBuffer();
        ready = await answeredByThisWorker(logFile, logStart, nonce);
        if (ready || bindFailed(logFile, logStart)) break;
      } catch (err) {
        lastError = err;
        if (bindFailed(logFile, logStart)) break;
        await sleep(250);
      }
    }
    if (ready) {
      logByUrl.set(url, logFile);
      return {
        url,
        port,
        pid: child.pid,
        persistDir,
        logFile,
        logs: () => fs.readFileSync(logFile, 'utf8'),
        stop,
        kill,
      };
    }
    await stop();
    lastError = new Error(
      exited
        ? `wrangler dev exited (${exitCode}) before answering on ${url}`
        : `wrangler dev did not answer on ${url} within ${START_TIMEOUT_MS} ms`,
    );
    if (!bindFailed(logFile, logStart)) break;
  }
  console.error(`--- wrangler log tail (${logFile}) ---\n${tail(logFile)}\n---`);
  throw lastError;
}
