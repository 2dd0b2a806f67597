// The load test's report: the object runLoad() returns (buildReport) and its printed
// form (printReport): the counts of what was sent and answered, the final ledger, the
// faults injected, the dev-server events that were not the worker's, and every
// invariant violation.

/**
 * The report of a finished run (`run`: runner.mjs). report.ok is true when no invariant
 * was violated; report.violations lists them (the first 500).
 */
export function buildReport(run, { loadMs, drainMs, tally }) {
  const { o, seed, started, stats, violations, faults, environment, target } = run;
  return {
    ok: violations.list.length === 0,
    seed,
    options: { users: o.users, requestsPerUser: o.requests, concurrency: o.concurrency, kills: o.kills, maxJobs: o.maxJobs, waitRate: o.waitRate, abortRate: o.abortRate, fifo: o.fifo },
    durationMs: Date.now() - started,
    loadMs,
    drainMs,
    requests: stats.requests,
    requestsPerSecond: Math.round((stats.byPhase.load / loadMs) * 1000),
    stats,
    faults,
    environment,
    contaminated: environment.length > 0,
    ledger: tally,
    violationCount: violations.total,
    violationCounts: violations.counts,
    violations: violations.list,
    worker: target.worker && { url: target.worker.url, logFile: target.worker.logFile, persistDir: target.worker.persistDir },
  };
}

/** The report as text: a PASS/FAIL line, the counts, then the first 40 violations. */
export function printReport(r, { title = 'load' } = {}) {
  const lines = [];
  lines.push(`===== ${title}: ${r.ok ? 'PASS' : 'FAIL'} (seed ${r.seed})`);
  if (r.contaminated) {
    lines.push('!!! wrangler dev reloaded the worker during this run (someone changed src/ or the build): violations after that point may be the reload, not the worker. Re-run on a quiet tree.');
  }
  lines.push(`requests: ${r.requests} in all (${JSON.stringify(r.stats.byPhase)}), load phase ${r.loadMs} ms, ~${r.requestsPerSecond} req/s`);
  lines.push(`by provider: ${Object.entries(r.stats.byProvider).map(([p, c]) => `${p} ${c.registered} registered/${c.rejected429} x 429/${c.completed} completed/${c.cancelled} cancelled/${c.expired} expired/${c.webhooks} webhooks`).join('; ')}`);
  const im = r.stats.images;
  lines.push(`MiniMax image jobs (take no slot): ${im.sent} sent, ${im.admitted} admitted (${im.admittedOnFullAccount} on an account whose video slots were all taken), ${im.refused} x 429 (only while their accounts may be paused)`);
  lines.push(`jobs: ${r.stats.registered} registered (201), ${r.stats.rejected429} x 429, ${r.stats.completed} completed, ${r.stats.cancelled} cancelled, ${r.stats.dup409} duplicate 409s, ${r.stats.races} concurrent same-id races (${r.stats.raceDoubleAdmits} double admits), second completion 404 x ${r.stats.secondCompletion404}, cancel-after-finish 404 x ${r.stats.cancelFinished404}`);
  const wt = r.stats.waiting;
  lines.push(
    `waiting: ${wt.sent} waiting registrations (waitSeconds 1..5), ${wt.admitted} admitted (${wt.admittedAfterRestart} by a restarted server; slowest 201 after ${wt.admittedAfterWaitingMs} ms), ` +
      `${wt.timedOut} x 429 after waiting (earliest at ${wt.earliest429Share ?? '-'} of its waitSeconds), ${wt.aborted} given up by the client ` +
      `(${wt.abortedNotAdmitted} never admitted, ${wt.abortedAdmittedBefore} admitted before the abort, ${wt.abortedAdmittedAfter} admitted AFTER it)`,
  );
  const f = r.stats.fifo;
  lines.push(`fifo user (1 account, maxJobs 1): ${f.waiters} waiters, ${f.admitted} admitted, ${f.timedOut} x 429, ${f.aborted} given up by the client, ${f.lost} lost in faults; ${f.pairsChecked} ordered pairs checked`);
  const pz = r.stats.pauses;
  lines.push(`pauses: ${pz.timed} timed, ${pz.untimed} untimed (each resumed), ${pz.resumes} resumes, ${pz.paused429} x 429 "Account … is paused", ${pz.lost} answers lost; progress: ${r.stats.progress.ok}/${r.stats.progress.sent} reports 200, ${r.stats.progress.jobsReads} operator jobs reads, ${r.stats.progress.checked} figures checked`);
  lines.push(`final ledger: ${JSON.stringify(r.ledger)}`);
  lines.push(`capacity samples: ${r.stats.capacitySamples} operator account lists (+ every public list), peak executing on one account ${r.stats.peakExecuting}`);
  lines.push(`webhooks: ${r.stats.webhookDistinctIds} distinct ids, ${r.stats.webhookRequests} requests (${r.stats.webhookFirstAttemptFailures} first attempts refused with 500), drained in ${r.drainMs} ms`);
  lines.push(`faults injected: ${r.faults.length}${r.faults.map((x) => `\n  #${x.n}: SIGKILL wrangler group ${x.pid} at load request ~${x.atRequest}, ${x.inflightAtKill} in flight (${x.waitersInflightAtKill} waiting for a slot), down ${x.downMs} ms`).join('')}`);
  lines.push(`unknown outcomes: ${JSON.stringify(r.stats.unknown)}, resolved: ${JSON.stringify(r.stats.resolved)}, lost in fault windows: ${r.stats.lostInFault} (+${r.stats.fault5xx} 5xx from the dying server)`);
  lines.push(`no-answer outside faults: ${r.stats.networkErrors}`);
  lines.push(`dev-server reloads: ${r.environment.length} events, ${r.stats.devReloads} x wrangler's 503 "restarted mid-request" (not the worker; outcome reconciled)${r.environment.slice(0, 5).map((e) => `\n  ${e}`).join('')}`);
  lines.push(`by route: ${Object.entries(r.stats.byRoute).map(([k, v]) => `${k} ${JSON.stringify(v)}`).join('; ')}`);
  lines.push(`invariant violations: ${r.violationCount} ${JSON.stringify(r.violationCounts)}`);
  for (const v of r.violations.slice(0, 40)) lines.push(`  - [${v.kind}] +${v.atMs}ms ${v.detail}`);
  if (r.violations.length > 40) lines.push(`  ... ${r.violations.length - 40} more`);
  return lines.join('\n');
}
