// The worker under load and the one function every load request goes through. call()
// never throws: a 5xx or a request without an answer is an invariant violation, unless
// the server was being killed at the time (then the answer is "lost" and the ledger
// settles the outcome from the lists). Also the fault itself (SIGKILL of the local
// server, restart on the same state) and the check that wrangler dev did not reload
// the worker under the run.
//
// The server start and kill, the request shape and the recognition of wrangler dev's
// proxy 503 are the e2e support's (tests/support/server.mjs, client.mjs).

import fs from 'node:fs';
import { isDevProxyDropAnswer, parseJson, requestInit, REQUEST_TIMEOUT_MS } from '../support/client.mjs';
import { sleep, startWorker } from '../support/server.mjs';

export class Target {
  /**
   * stats: ledger.createStats(); violation(kind, detail); environment: the list of
   * events of the dev server that are not the worker's; started: the run's start (ms).
   */
  constructor({ stats, violation, environment, started, adminToken, vars }) {
    Object.assign(this, { stats, violation, environment, started, adminToken, vars });
    this.url = undefined;
    this.worker = undefined; // undefined for a worker this run did not start (--url)
    this.epoch = 0; // restarts so far
    this.down = false; // killed, not yet restarted
    this.gate = null; // a promise new requests wait for while a fault is handled
    this.inflight = 0;
    this.waitersInflight = 0; // registrations with waitSeconds > 0 in flight
    this.logFiles = [];
  }

  /** Starts a worker with the run's vars (or uses the one at `url`). */
  async start(url) {
    if (url) {
      this.url = url;
      return;
    }
    // hangUps: an abort is a request cancelled inside workerd, as Cloudflare cancels one
    // whose client disconnected (locally a client's disconnect reaches no worker).
    this.worker = await startWorker({ vars: this.vars, adminToken: this.adminToken, hangUps: true });
    this.url = this.worker.url;
    this.logFiles.push(this.worker.logFile);
  }

  #record(method, label, status) {
    const k = `${method} ${label}`;
    this.stats.byRoute[k] ??= {};
    this.stats.byRoute[k][status] = (this.stats.byRoute[k][status] || 0) + 1;
  }

  /**
   * One request. Never throws. Returns { status, json, text, t0, t1 } or, when no answer
   * came back, { status: 0, error, lost: true }. A 5xx or a network error is a violation
   * unless the server was killed while the request was in flight (then it is "lost").
   * label: the route's name in stats.byRoute; phase: the stats.byPhase it counts in;
   * bypassGate: sent even while a fault is being handled (the reconciling reads);
   * abortAfterMs: the client hangs up after that long: the hang-up stand-in in front of
   * the worker (tests/support/hang-up/) cancels the request inside workerd and answers
   * 499; then the answer is { status: 0, aborted: true, abortedAt } (abortedAt: when the
   * 499 came, the latest the cancel can have happened) and nothing is a violation.
   * Every answer also carries `epoch`, the server generation it was sent to.
   */
  async call(method, path, { token, body, label, phase = 'load', bypassGate = false, abortAfterMs } = {}) {
    if (!bypassGate) while (this.gate) await this.gate;
    const { stats } = this;
    const epoch = this.epoch;
    const url = this.url;
    const headers = abortAfterMs === undefined ? {} : { 'x-test-hang-up-after-ms': String(abortAfterMs) };
    const init = requestInit(method, { body, token: token || undefined, headers });
    const waiting = Boolean(body && typeof body === 'object' && body.waitSeconds > 0);
    stats.requests += 1;
    stats.byPhase[phase] += 1;
    this.inflight += 1;
    if (waiting) this.waitersInflight += 1;
    const t0 = Date.now();
    const signal = AbortSignal.timeout(REQUEST_TIMEOUT_MS);
    try {
      const res = await fetch(url + path, { ...init, signal });
      const text = await res.text();
      const t1 = Date.now();
      const json = parseJson(text);
      if (abortAfterMs !== undefined && res.status === 499 && json?.hungUp === true) {
        this.#record(method, label, 'aborted by the client');
        return { status: 0, aborted: true, abortedAt: t1, t0, t1, epoch };
      }
      this.#record(method, label, res.status);
      if (res.status >= 500) {
        if (isDevProxyDropAnswer(res, text)) {
          // Not the worker: wrangler dev's proxy answers this for a non-GET request in
          // flight while wrangler reloads the runtime (it watches src/ and the build, so
          // an edit by someone else does it). The outcome is unknown; reconciled later.
          stats.devReloads += 1;
          this.environment.push(`+${t1 - this.started} ms ${method} ${path}: wrangler dev reloaded the worker mid-request (503 from its proxy)`);
          return { status: res.status, text, t0, t1, epoch, lost: true };
        }
        if (this.down || this.epoch !== epoch) {
          stats.fault5xx += 1;
          return { status: res.status, text, t0, t1, epoch, lost: true };
        }
        this.violation('5xx', `${method} ${path} -> ${res.status}: ${text.slice(0, 300)}`);
        return { status: res.status, json, text, t0, t1, epoch, lost: true };
      }
      return { status: res.status, json, text, t0, t1, epoch };
    } catch (err) {
      const t1 = Date.now();
      this.#record(method, label, 'no answer');
      const error = String(err?.cause?.code || err?.name || err);
      if (this.down || this.epoch !== epoch) {
        stats.lostInFault += 1;
      } else {
        stats.networkErrors += 1;
        this.violation('no answer', `${method} ${path}: ${error} after ${t1 - t0} ms`);
      }
      return { status: 0, error, t0, t1, epoch, lost: true };
    } finally {
      this.inflight -= 1;
      if (waiting) this.waitersInflight -= 1;
    }
  }

  /** An operator request (the admin token). */
  admin(method, path, body, extra = {}) {
    return this.call(method, path, { token: this.adminToken, body, ...extra });
  }

  /** Holds every new request (but bypassGate ones) until the returned function is called. */
  hold() {
    let open;
    this.gate = new Promise((r) => {
      open = r;
    });
    return () => {
      this.gate = null;
      open();
    };
  }

  /**
   * The fault: SIGKILLs the local server's whole process group (wrangler and workerd at
   * once: a crash, not a shutdown), waits for the requests in flight to come back and
   * starts a new server on the same --persist-to directory. Returns { pid, inflight and
   * waitersInflight (at the kill), killedAt, restartedAt }.
   */
  async killAndRestart(n) {
    const old = this.worker;
    const inflight = this.inflight;
    const waitersInflight = this.waitersInflight;
    this.down = true;
    const killedAt = Date.now();
    if (!(await old.kill())) throw new Error(`fault ${n}: the wrangler process on port ${old.port} had exited already`);
    while (this.inflight > 0) await sleep(20);
    const w = await startWorker({ vars: this.vars, adminToken: this.adminToken, persistDir: old.persistDir, hangUps: true });
    this.worker = w;
    this.logFiles.push(w.logFile);
    this.url = w.url;
    this.epoch += 1;
    this.down = false;
    return { pid: old.pid, inflight, waitersInflight, killedAt, restartedAt: Date.now() };
  }

  /**
   * wrangler dev reloads the worker when a file under src/ or the build changes (another
   * engineer's edit or build): a run that saw one did not test one binary throughout.
   * Adds each reload found in the logs to `environment`.
   */
  noteDevReloads() {
    for (const f of this.logFiles) {
      let text = '';
      try {
        text = fs.readFileSync(f, 'utf8');
      } catch {
        continue;
      }
      const afterReady = text.slice(Math.max(0, text.indexOf('Ready on')));
      const reloads = afterReady.split('\n').filter((l) => /changed, restarting build|Reloading local server|Local server updated/.test(l));
      for (const l of reloads) this.environment.push(`wrangler dev reloaded the worker during the run: "${l.trim()}" (${f})`);
    }
  }
}
