#!/usr/bin/env node
// Load test with invariants (issue 5). Several simulated users, each with its own token
// and 2-3 accounts of each of the five providers (small maxJobs), read (lists, available,
// the operator's account list) and write (register with a replyUrl to a real local
// receiver, complete, public cancel) jobs of every provider at once, for a fixed number
// of requests; MiniMax image jobs, which take no slot, among them. A client-side ledger
// records what every answer said; the invariants are checked during the run and
// afterwards:
//
//   (a) capacity: no account ever shows more executing jobs than its maxJobs, in any
//       operator account list or public list sampled during the run (MiniMax image jobs
//       do not count; they are admitted even on a full account);
//   (b) conservation: every registered job (201) is exactly one of still listed,
//       completed (200) or cancelled (204) (or expired, for the back-dated ones); none
//       lost, none listed twice, no list shows a job this user never registered, a
//       finished job never shows up again;
//   (c) webhooks: every 2xx completion of a job with a replyUrl produced exactly one
//       delivered webhook event id (retries of one id count once: delivery is at least
//       once), the id the completion answered with; no webhook id arrives that no
//       completion or expiry produced; the queue drains;
//   and no 5xx, no network error, no request without an answer outside a fault window.
//   Also (issue 12): waiting registrations (waitSeconds 1..5; some given up by the
//   client, which must then never be admitted), pauses (timed, untimed + resume) and
//   resumes, progress reports, and a dedicated FIFO user whose waiters must be admitted
//   in arrival order (invariants.mjs (e), (f), (g)).
//
// Faults (`--kills N`, or tests/load/faults.mjs): the wrangler process group is SIGKILLed
// N times at evenly spaced points of the run and restarted on the same --persist-to
// directory. Writes whose answer was lost are "unknown outcome" and are reconciled from
// the lists right after the restart (a lost register may or may not have landed; a lost
// completion may or may not have queued a webhook); then the same invariants hold.
//
// The parts, in reading order:
//   providers.mjs   how the five providers differ (paths, accounts, bodies, ids, lists)
//   runner.mjs      runLoad(): start, load with faults, drain, final checks, report
//   operations.mjs  each kind of request the simulated users make
//   ledger.mjs      the client-side record: users, jobs and their states, webhook ids
//   invariants.mjs  the checks (a), (b), (c) against the ledger
//   target.mjs      the worker under load: the request function, the kill and restart
//   report.mjs      the report object and its printed form
// The server, HTTP, fixtures and receiver come from the e2e support (tests/support/).
// Node 20, no npm dependencies.
//
//   node tests/load/load.mjs [--users 6] [--requests 2000] [--concurrency 3]
//        [--kills 0] [--max-jobs 3] [--seed N] [--url URL --admin-token T] [--json]
//        [--wait-rate 0.25] [--abort-rate 0.25] [--fifo-abort-rate 0.2] [--pause-rate 0.02] [--resume-rate 0.015] [--no-fifo]
//
// As a module: `const report = await runLoad({ users, requests, kills, ... })`;
// report.violations is the list of broken invariants (empty on success).

import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { printReport } from './report.mjs';
import { runLoad } from './runner.mjs';

export { printReport } from './report.mjs';
export { DEFAULTS, runLoad } from './runner.mjs';

export function parseArgs(argv) {
  const out = {};
  const names = {
    '--users': 'users',
    '--requests': 'requests',
    '--concurrency': 'concurrency',
    '--kills': 'kills',
    '--max-jobs': 'maxJobs',
    '--seed': 'seed',
    '--drain-timeout-ms': 'drainTimeoutMs',
    '--race-rate': 'raceRate',
    '--wait-rate': 'waitRate',
    '--abort-rate': 'abortRate',
    '--fifo-abort-rate': 'fifoAbortRate',
    '--pause-rate': 'pauseRate',
    '--resume-rate': 'resumeRate',
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--json') out.json = true;
    else if (a === '--quiet') out.progress = false;
    else if (a === '--no-fifo') out.fifo = false;
    else if (a === '--url') out.url = argv[++i];
    else if (a === '--admin-token') out.adminToken = argv[++i];
    else if (names[a]) out[names[a]] = Number(argv[++i]);
    else throw new Error(`unknown argument ${a}`);
  }
  return out;
}

if (process.argv[1] && fs.realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = parseArgs(process.argv.slice(2));
  const report = await runLoad(args);
  if (args.json) console.log(JSON.stringify(report, null, 2));
  else console.log(printReport(report, { title: report.options.kills ? 'load with faults' : 'load' }));
  process.exitCode = report.ok ? 0 : 1;
}
