#!/usr/bin/env node
// The load of load.mjs with faults: the local server (the wrangler process group, and
// with it workerd) is SIGKILLed `--kills` times (default 2) at evenly spaced points of
// the run and restarted on the SAME --persist-to directory. Requests that were in flight
// are unknown-outcome and are reconciled from the lists after each restart; then every
// invariant of load.mjs must still hold. Prints the faults injected.
//
//   node tests/load/faults.mjs [--kills 2] [--users 6] [--requests 2000] [--seed N] [--json]

import { parseArgs, printReport, runLoad } from './load.mjs';

const args = { kills: 2, ...parseArgs(process.argv.slice(2)) };
if (!(args.kills > 0)) throw new Error('faults.mjs needs --kills >= 1');
const report = await runLoad(args);
if (args.json) console.log(JSON.stringify(report, null, 2));
else console.log(printReport(report, { title: `load with ${report.faults.length} faults` }));
process.exitCode = report.ok ? 0 : 1;
