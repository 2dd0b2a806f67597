// Turns one bench run into bench/results/latest.{json,md} and bench/results/scale.svg,
// and prints the markdown to stdout. Called by bench/run.sh:
//
//   node bench/report.mjs --results RUN.json --meta META.json --out-dir bench/results
//
// RUN.json is bench/load.mjs bench's output (every scenario on ours, the peer and the
// ceilings); META.json (written by run.sh) holds the date, machine, versions, the size
// figures and the cold-start, wrangler dev and waiting/live-view (bench/push.mjs) parts.
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].slice(2)] = process.argv[i + 1];
const run = JSON.parse(readFileSync(args.results, "utf8"));
const meta = JSON.parse(readFileSync(args.meta, "utf8"));
const outDir = args["out-dir"];
// "latest", or "ours-<commit>" when another checkout was measured (BENCH_OURS_DIR).
const outName = args["name"] || "latest";

// The issue's done criteria: workerd CPU per request, ours ÷ the peer, at most `max`;
// and the size. Edit here when the aims change.
const CRITERIA = [
  { what: "Kling list, 10 accounts", id: "kling_list_10", max: 0.8 },
  { what: "Dreamina list, 10 accounts", id: "dreamina_list_10", max: 0.8 },
  { what: "Kling `available`, 10 accounts", id: "kling_available_10", max: 0.8 },
  { what: "Kling list, 50 accounts", id: "kling_list_50", max: 1.0 },
  { what: "Dreamina list, 50 accounts", id: "dreamina_list_50", max: 1.0 },
  { what: "401 unknown token", id: "unauthorized_401", max: 1.0 },
  { what: "Kling list, 10 accounts, under wrangler dev (its two workerd processes)", dev: true, max: 1.2 },
  { what: "size: gzip as `wrangler deploy --dry-run` counts it", size: true, maxKiB: 200 },
];

const of = (target) => Object.fromEntries(run.results.filter((r) => r.target === target).map((r) => [r.id, r]));
const ours = of("main");
const peer = of("peer");
const hasPeer = Object.keys(peer).length > 0;
const ceilings = run.results.filter((r) => r.kind === "ceiling");
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
const ceiling = {
  throughput: mean(ceilings.map((c) => c.throughput)),
  p50: mean(ceilings.map((c) => c.p50)),
  cpu: mean(ceilings.map((c) => c.workerdCpuMsPerOp)),
};
const fanoutById = Object.fromEntries(run.results.filter((r) => r.kind === "fanout").map((r) => [r.accounts, r]));

const f = (x, d = 2) => (x === null || x === undefined || Number.isNaN(x) || !Number.isFinite(x) ? "-" : x.toFixed(d));
const kb = (bytes) => `${(bytes / 1024).toFixed(1)} KiB`;
const ratio = (a, b) => (a === undefined || a === null || !b ? NaN : a / b);

// ---------------------------------------------------------------- derived figures

/** Least-squares slope and intercept of y over x. */
function fit(points) {
  const n = points.length;
  const mx = mean(points.map((p) => p[0]));
  const my = mean(points.map((p) => p[1]));
  const sxx = points.reduce((a, [x]) => a + (x - mx) ** 2, 0);
  const sxy = points.reduce((a, [x, y]) => a + (x - mx) * (y - my), 0);
  const slope = n > 1 && sxx > 0 ? sxy / sxx : NaN;
  return { slope, intercept: my - slope * mx };
}

/** List figures over 0/1/10/50 accounts for one implementation and provider. */
function scaleOf(byId, provider) {
  const pts = [0, 1, 10, 50]
    .map((n) => byId[`${provider}_list_${n}`])
    .filter(Boolean)
    .map((r) => ({ accounts: r.accounts, p50: r.p50, p99: r.p99, cpu: r.workerdCpuMsPerOp, throughput: r.throughput, bodyBytes: r.bodyBytes }));
  const withAccounts = pts.filter((p) => p.accounts > 0);
  const at = (n) => pts.find((p) => p.accounts === n);
  return {
    points: pts,
    cpuPerAccountMs: fit(withAccounts.map((p) => [p.accounts, p.cpu])).slope,
    p50PerAccountMs: fit(withAccounts.map((p) => [p.accounts, p.p50])).slope,
    growth1to10: at(1) && at(10) ? at(10).p50 / at(1).p50 : NaN,
    growth10to50: at(10) && at(50) ? at(50).p50 / at(10).p50 : NaN,
  };
}
const scale = { kling: scaleOf(ours, "kling"), dreamina: scaleOf(ours, "dreamina") };
const peerScale = hasPeer ? { kling: scaleOf(peer, "kling"), dreamina: scaleOf(peer, "dreamina") } : null;

// The fan-out ceiling: N minimal objects asked in parallel (bench/ceiling), the floor of
// any list that asks every account object, as the contract requires.
const fanout = [1, 10, 50]
  .map((n) => fanoutById[n])
  .filter(Boolean)
  .map((r) => ({ accounts: r.accounts, p50: r.p50, p99: r.p99, cpu: r.workerdCpuMsPerOp, throughput: r.throughput }));
const fanoutScale = {
  points: fanout,
  cpuPerObjectMs: fit(fanout.map((p) => [p.accounts, p.cpu])).slope,
  growth1to50: fanout.length === 3 ? fanout[2].p50 / fanout[0].p50 : NaN,
};

/**
 * Where the CPU of a list goes, from differences between scenarios (workerd CPU ms per
 * request; every term carries the noise of two measurements).
 */
function profileOf(byId, s) {
  const cpu = (id) => byId[id]?.workerdCpuMsPerOp;
  const perJob = (cpu("kling_list_1x50") - cpu("kling_list_1")) / 40;
  const perAccount = s.kling.cpuPerAccountMs;
  return [
    ["runtime + HTTP + fixed body, no scheduler logic (ceiling)", ceiling.cpu, "ceiling"],
    ["entry, routing, error response (404 - ceiling)", cpu("unmatched_404") - ceiling.cpu, "404 - ceiling"],
    ["auth: KV get (miss) + rate-limiter call (401 - 404)", cpu("unauthorized_401") - cpu("unmatched_404"), "401 - 404"],
    ["the user's account list (0-account list - 401): ours a directory DO round trip, the peer a KV read", cpu("kling_list_0") - cpu("unauthorized_401"), "list0 - 401"],
    ["first account round trip + 10 jobs (1-account list - 0-account list)", cpu("kling_list_1") - cpu("kling_list_0"), "list1 - list0"],
    ["per job, within one account (1x50 - 1x10) / 40", perJob, "(list1x50 - list1)/40"],
    ["per extra account of 10 jobs (slope over 1/10/50 accounts)", perAccount, "slope"],
    ["  of which the 10 jobs (10 x per job)", 10 * perJob, "10 x per job"],
    ["  of which the DO round trip itself (slope - 10 x per job)", perAccount - 10 * perJob, "slope - 10 x per job"],
  ].map(([what, value, how]) => ({ what, value, how }));
}
const profile = profileOf(ours, scale);
const peerProfile = hasPeer ? profileOf(peer, peerScale) : null;

const cold = meta.cold ?? {};
const dev = meta.dev ?? {};
const push = meta.push ?? null;
const deploy = meta.size.deploy ?? {};

/** The done criteria, measured: { what, value, max, pass, note }. */
function criteria() {
  return CRITERIA.map((c) => {
    if (c.size) {
      const kib = deploy.main?.gzipKiB;
      return { what: c.what, value: kib, shown: kib === undefined ? "not measured" : `${f(kib)} KiB`, aim: `≤ ${c.maxKiB} KiB`, pass: kib !== undefined && kib <= c.maxKiB };
    }
    const [a, b] = c.dev
      ? [dev.main?.result?.workerdCpuMsPerOp, dev.peer?.result?.workerdCpuMsPerOp]
      : [ours[c.id]?.workerdCpuMsPerOp, peer[c.id]?.workerdCpuMsPerOp];
    const r = ratio(a, b);
    let note = `${f(a)} ÷ ${f(b)} ms`;
    if (c.dev) {
      const w = ratio(dev.main?.result?.cpuMsPerOpBy?.worker, dev.peer?.result?.cpuMsPerOpBy?.worker);
      note += `; the worker's workerd alone: ${f(w)}`;
    }
    return { what: c.what, value: r, shown: Number.isNaN(r) ? "not measured" : f(r), aim: `≤ ${c.max}`, pass: !Number.isNaN(r) && r <= c.max, note };
  });
}
const done = criteria();

// ---------------------------------------------------------------- markdown

const lines = [];
const out = (s = "") => lines.push(s);

function header() {
  out(`# Benchmark: edge scheduler (bench/run.sh)`);
  out();
  out(`- date: ${meta.date}`);
  out(`- machine: ${meta.machine.nproc} cores, ${meta.machine.cpu}, ${meta.machine.memory}`);
  out(`- versions: node ${meta.versions.node}, workerd ${meta.versions.workerd}, miniflare ${meta.versions.miniflare}, wrangler ${meta.versions.wrangler}, ${meta.versions.rustc}, worker-build ${meta.versions.workerBuild}`);
  out(`- code: ${meta.git}`);
  if (meta.peer) {
    out(
      `- peer: \`${meta.peer}\`, plain JavaScript of the same contract (account lists in KV, one SQLite Durable Object per account over RPC), ` +
        `served by the same Miniflare and workerd binary, seeded with the same data, measured in the same run (each scenario on ours and on it in the order A B B A, each part half the requests, so drift weighs on both alike)`,
    );
  }
  out(
    `- how: each worker loaded as its wrangler.toml says, in workerd via Miniflare; ${meta.socket}; load generator: separate Node process, ` +
      `HTTP/1.1 keep-alive, ${run.settings.concurrency} in flight, ${run.settings.warmup} warm-up requests per scenario not measured, ` +
      `${run.settings.requests} x weight measured requests per scenario (cap ${run.settings.maxSecondsPerScenario} s).`,
  );
  out(`- seed: ${run.seed.seeded.accounts} accounts, ${run.seed.seeded.jobs} executing jobs (${run.settings.jobsPerAccount} per account, maxJobs ${run.settings.maxJobsPerAccount}), through the operator API in ${f(run.seed.seeded.seconds, 1)} s (ours)${run.peerSeed ? ` and ${f(run.peerSeed.seeded.seconds, 1)} s (peer)` : ""}`);
  out(`- rate limiter: ${run.settings.rateLimiter}`);
  if (meta.vars) {
    out(`- vars added to each wrangler.toml's: ours ${meta.vars.main.map((v) => `\`${v}\``).join(", ")}; the peer ${meta.vars.peer.map((v) => `\`${v}\``).join(", ")}`);
  }
  out(`- CPU: workerd's utime+stime from /proc/<pid>/stat around the measured part (clock tick ${1000 / run.settings.clkTck} ms), divided by the request count; it includes the DOs, KV and limiter, which run in the same workerd process`);
  out(`- **noisy**: a 2-core machine shared with other work (load average at start: ${meta.loadavg}); the load generator shares the cores with workerd. Compare runs on one machine only; the ceiling runs first and last to show drift.`);
  out();
}

function doneCriteria() {
  out(`## Done criteria (issue 10)`);
  out();
  out(`workerd CPU per request, ours ÷ the peer, same run, same runtime; one run's figures, so a ratio within a few percent of its aim can flip between runs.`);
  out();
  out(`| aim | measured | target | result | from |`);
  out(`| --- | ---: | ---: | :---: | --- |`);
  for (const c of done) out(`| ${c.what} | ${c.shown} | ${c.aim} | **${c.pass ? "PASS" : "FAIL"}** | ${c.note ?? ""} |`);
  out();
  out(`${done.filter((c) => c.pass).length} of ${done.length} met.`);
  out();
}

function size() {
  const s = meta.size;
  out(`## Size`);
  out();
  out(`| artefact | raw | gzip -9 |`);
  out(`| --- | ---: | ---: |`);
  out(`| build/index_bg.wasm (release, wasm-opt -Oz) | ${s.wasmRaw} B (${kb(s.wasmRaw)}) | ${s.wasmGzip} B (${kb(s.wasmGzip)}) |`);
  out(`| build/index.js (JS glue) | ${s.glueRaw} B (${kb(s.glueRaw)}) | ${s.glueGzip} B (${kb(s.glueGzip)}) |`);
  out(`| ceiling wasm (workers-rs floor, with the fan-out object) | ${s.ceilingWasmRaw} B (${kb(s.ceilingWasmRaw)}) | ${s.ceilingWasmGzip} B (${kb(s.ceilingWasmGzip)}) |`);
  out(`| ceiling JS glue | ${s.ceilingGlueRaw} B (${kb(s.ceilingGlueRaw)}) | ${s.ceilingGlueGzip} B |`);
  out();
  if (Object.values(deploy).some(Boolean)) {
    out(`As \`wrangler deploy --dry-run --outdir\` counts it (its "Total Upload: X KiB / gzip: Y KiB" line: wrangler's bundle, every module; the limits Cloudflare applies are on this):`);
    out();
    out(`| worker | total upload | gzip (wrangler) | files (raw / gzip -9) |`);
    out(`| --- | ---: | ---: | --- |`);
    for (const [name, d] of [["ours", deploy.main], ["peer", deploy.peer], ["ceiling", deploy.ceiling]]) {
      if (!d) continue;
      out(`| ${name} | ${f(d.totalKiB)} KiB | ${f(d.gzipKiB)} KiB | ${d.files.map((x) => `${x.file.replace(/^[0-9a-f]{40}-/, "")} ${kb(x.bytes)} / ${kb(x.gzip9)}`).join(", ")} |`);
    }
    out();
  }
  const gz = deploy.main?.gzipKiB;
  const budgetKiB = s.budgetGzip / 1024;
  out(
    `Budget: gzip as wrangler counts it <= ${f(budgetKiB, 0)} KiB (run.sh WASM_GZIP_BUDGET_BYTES): ` +
      (gz === undefined ? "not measured." : `**${gz <= budgetKiB ? "PASS" : "FAIL"}** (${f(gz)} KiB${gz > budgetKiB ? `, ${f(gz - budgetKiB)} KiB over` : ""}).`),
  );
  out();
}

function speed() {
  out(`## Speed: ours and the peer`);
  out();
  out(`Same scenarios, same seed, same runtime; ratios are ours ÷ the peer (CPU: below 1 is ours cheaper; req/s: above 1 is ours faster).`);
  out();
  out(`| scenario | ours req/s | peer req/s | ours ÷ peer req/s | ours CPU ms/op | peer CPU ms/op | **ours ÷ peer CPU** | ours p50 ms | peer p50 ms | ours p99 ms | peer p99 ms |`);
  out(`| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |`);
  for (const r of Object.values(ours)) {
    const p = peer[r.id];
    out(
      `| ${label(r)} | ${f(r.throughput, 0)} | ${f(p?.throughput, 0)} | ${f(ratio(r.throughput, p?.throughput))} | ${f(r.workerdCpuMsPerOp)} | ${f(p?.workerdCpuMsPerOp)} | **${f(ratio(r.workerdCpuMsPerOp, p?.workerdCpuMsPerOp))}** | ${f(r.p50)} | ${f(p?.p50)} | ${f(r.p99)} | ${f(p?.p99)} |`,
    );
  }
  out();
  out(`## Speed: against the ceilings`);
  out();
  out(
    `The ceiling (fixed body, no I/O; mean of its two runs: ${f(ceiling.throughput, 0)} req/s, p50 ${f(ceiling.p50)} ms, ${f(ceiling.cpu, 3)} ms CPU/req) and, for the lists and \`available\` at N accounts, ` +
      `the fan-out ceiling at N objects (the floor of anything that asks every account object). req/s as a fraction of the ceiling's; CPU as a multiple.`,
  );
  out();
  out(`| scenario | ours ÷ ceiling req/s | peer ÷ ceiling req/s | ours ÷ ceiling CPU | peer ÷ ceiling CPU | ours ÷ fan-out CPU | peer ÷ fan-out CPU |`);
  out(`| --- | ---: | ---: | ---: | ---: | ---: | ---: |`);
  for (const r of Object.values(ours)) {
    const p = peer[r.id];
    const fo = r.accounts && ["list", "available"].includes(r.kind) ? fanoutById[r.accounts] : null;
    out(
      `| ${label(r)} | ${f(ratio(r.throughput, ceiling.throughput), 3)} | ${f(ratio(p?.throughput, ceiling.throughput), 3)} | ${f(ratio(r.workerdCpuMsPerOp, ceiling.cpu), 1)} | ${f(ratio(p?.workerdCpuMsPerOp, ceiling.cpu), 1)} | ${f(ratio(r.workerdCpuMsPerOp, fo?.workerdCpuMsPerOp))} | ${f(ratio(p?.workerdCpuMsPerOp, fo?.workerdCpuMsPerOp))} |`,
    );
  }
  out();
}

function label(r) {
  const unit = r.unit === "req" ? "" : ` (per ${r.unit} = ${f(r.requestsPerOp, 0)} requests)`;
  return `${r.label}${unit}${r.cutShort ? " (cut short)" : ""}`;
}

function coldStart() {
  if (!cold.main && !cold.peer) return;
  const c = (x) => x?.median ?? {};
  const total = (m) => (m.startupCpuMs ?? NaN) + (m.firstCpuMs ?? NaN);
  const m = c(cold.main);
  const p = c(cold.peer);
  out(`## Cold start (median of ${cold.main?.starts ?? cold.peer?.starts} fresh starts each)`);
  out();
  out(
    `Each start is a new Miniflare and a new workerd process on state seeded by an earlier start (one token, one Kling account with 10 executing jobs); ` +
      `its first request is that account's Kling list (authenticated), a second identical one follows at once. ` +
      `Persisted state rather than a fresh one, because a real cold start serves existing data: an empty state could only answer a 401 or an empty list and would skip ` +
      `the Durable Object and SQLite paths a first real request pays for. Request CPU: workerd's threads' schedstat run time (ns) from just before the request to its last byte.`,
  );
  out();
  out(`| | start-up to listening ms | workerd CPU to listening ms | first request ms | first request workerd CPU ms | second request ms | second request CPU ms | CPU to listening + first request ms |`);
  out(`| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |`);
  const row = (name, x) => out(`| ${name} | ${f(x.startupMs, 0)} | ${f(x.startupCpuMs, 1)} | ${f(x.firstMs, 1)} | ${f(x.firstCpuMs, 1)} | ${f(x.secondMs, 1)} | ${f(x.secondCpuMs, 1)} | ${f(total(x), 1)} |`);
  if (cold.main) row("ours", m);
  if (cold.peer) row("peer", p);
  if (cold.main && cold.peer) {
    out(
      `| ours ÷ peer | ${f(ratio(m.startupMs, p.startupMs))} | ${f(ratio(m.startupCpuMs, p.startupCpuMs))} | ${f(ratio(m.firstMs, p.firstMs))} | ${f(ratio(m.firstCpuMs, p.firstCpuMs))} | ${f(ratio(m.secondMs, p.secondMs))} | ${f(ratio(m.secondCpuMs, p.secondCpuMs))} | ${f(ratio(total(m), total(p)))} |`,
    );
  }
  out();
  out(`Start-up to listening: new Miniflare() to workerd listening (Miniflare's own set-up included, the same for both). workerd compiles and instantiates lazily, so most of a worker's own start-up cost lands on its first request.`);
  out();
}

function wranglerDev() {
  if (!dev.main && !dev.peer) return;
  const r = (x) => x?.result;
  out(`## Under wrangler dev: GET /v1/kling/scheduler, 10 accounts`);
  out();
  out(
    `\`wrangler dev\` (the same wrangler and workerd; its config without [build], --persist-to a fresh directory), seeded with 10 Kling accounts x 10 jobs, ` +
      `${r(dev.main ?? dev.peer).ops} measured requests at ${run.settings.concurrency} in flight. wrangler dev runs two workerd processes, both in the request path: ` +
      `its proxy (on the public port) and the worker's own; their CPU is read separately. wrangler's Node process (request and console logging, the inspector connection) is shown aside.`,
  );
  out();
  out(`| | requests | req/s | p50 ms | p99 ms | worker workerd CPU ms/req | proxy workerd CPU ms/req | both workerd CPU ms/req | wrangler Node CPU ms/req |`);
  out(`| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |`);
  const row = (name, x) =>
    out(`| ${name} | ${x.ops} | ${f(x.throughput, 0)} | ${f(x.p50)} | ${f(x.p99)} | ${f(x.cpuMsPerOpBy.worker)} | ${f(x.cpuMsPerOpBy.proxy)} | ${f(x.workerdCpuMsPerOp)} | ${f(x.asideCpuMsPerOpBy?.wrangler)} |`);
  if (dev.main) row("ours", r(dev.main));
  if (dev.peer) row("peer", r(dev.peer));
  if (dev.main && dev.peer) {
    const a = r(dev.main);
    const b = r(dev.peer);
    out(
      `| ours ÷ peer | | ${f(ratio(a.throughput, b.throughput))} | ${f(ratio(a.p50, b.p50))} | ${f(ratio(a.p99, b.p99))} | ${f(ratio(a.cpuMsPerOpBy.worker, b.cpuMsPerOpBy.worker))} | ${f(ratio(a.cpuMsPerOpBy.proxy, b.cpuMsPerOpBy.proxy))} | **${f(ratio(a.workerdCpuMsPerOp, b.workerdCpuMsPerOp))}** | ${f(ratio(a.asideCpuMsPerOpBy?.wrangler, b.asideCpuMsPerOpBy?.wrangler))} |`,
    );
  }
  out();
}

/** Waiting for a slot and the live view (bench/push.mjs): ours only. */
function pushSection() {
  if (!push) return;
  const { waiting: w, writes, lists, messages, idle } = push;
  const at = (part, n) => part.rows.find((r) => r.sockets === n);
  const spacedAt = (n) => messages.spaced.find((x) => x.sockets === n);
  const maxSockets = Math.max(...writes.rows.map((r) => r.sockets));
  const listSockets = Math.max(...lists.rows.map((r) => r.sockets));
  const yes = (ok) => (ok ? "yes" : "**no**");
  out(`## Waiting for a slot and the live view (ours only)`);
  out();
  out(
    `The peer has neither, so these are ours alone, and every comparison is within this part of the run. ` +
      `Ours served as in the speed part (workerd via Miniflare, a fresh state), seeded with the same 10 Kling accounts x 10 jobs and the register/complete account, ` +
      `measured by bench/push.mjs in ${f(push.seconds, 0)} s (idle sockets ${f(idle.partSeconds, 0)} s, waiting ${f(w.partSeconds, 0)} s, writes ${f(writes.partSeconds, 0)} s, ` +
      `lists ${f(lists.partSeconds, 0)} s, messages ${f(messages.partSeconds, 0)} s).`,
  );
  out();
  out(`| in short | measured | expected |`);
  out(`| --- | ---: | --- |`);
  out(`| freed slot -> waiter's 201, p50 / p99 (from the completion's answer) | ${f(w.fromCompletionAnswerMs.p50, 1)} / ${f(w.fromCompletionAnswerMs.p99, 1)} ms | within a second (API.md) |`);
  out(`| waiters refused (429) | ${w.refused429} of ${w.iterations} | 0 |`);
  out(`| write pair CPU, ${maxSockets} sockets ÷ 0 sockets | ${f(at(writes, maxSockets).cpuRatioToNoSockets)} | small: pushes coalesce to ≤ 4/s |`);
  out(`| Kling list CPU, ${listSockets} sockets ÷ 0 sockets | ${f(at(lists, listSockets).cpuRatioToNoSockets)} | 1 (lists never push) |`);
  const spaced = messages.spaced.filter((x) => x.sockets > 0);
  const lone = spacedAt(Math.max(...messages.spaced.map((x) => x.sockets)));
  out(`| lone write's CPU with its push, ${lone.sockets} sockets ÷ 0 sockets | ${f(lone.cpuRatioToNoSockets)} | one push per write, its cost growing with the sockets |`);
  out(`| messages per spaced write, per socket | ${spaced.map((x) => `${x.messagesPerWritePerSocket.min}..${x.messagesPerWritePerSocket.max} (${x.sockets} socket${x.sockets === 1 ? "" : "s"})`).join(", ")} | exactly 1 |`);
  out(`| messages per burst of ${messages.bursts[0].writes} writes | ${messages.bursts.map((b) => `${b.messages} (≤ ${b.allowed})`).join(", ")} | ≤ 1 + one per 250 ms |`);
  out(`| idle workerd CPU, per socket per minute (${idle.sockets} sockets, from ${idle.idle.settledAfterSeconds} s on) | ${f(idle.idle.settledCpuMsPerSocketPerMinute, 3)} ms | ~0 (hibernation) |`);
  out(`| workerd RSS per open socket | ${f(idle.rssKiBPerSocket.afterOpen, 0)} KiB | |`);
  out();

  out(`### Freed slot -> the waiter's 201`);
  out();
  out(
    `One user, one Kling account with maxJobs 1 holding a job. Each iteration sends a registration with \`"waitSeconds": ${w.waitSeconds}\`, ` +
      `lets it queue ${w.queueSettleMs} ms, then completes the running job; the waiter's job is the running one of the next. ` +
      `${w.iterations} iterations measured after ${w.warmup} not recorded; times are taken when each answer's last byte arrives.`,
  );
  out();
  out(`| from | n | min ms | p50 ms | p90 ms | p99 ms | max ms | mean ms |`);
  out(`| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |`);
  for (const [what, x] of [["the completion's answer", w.fromCompletionAnswerMs], ["the completion's request sent", w.fromCompletionSentMs]]) {
    out(`| ${what} | ${x.n} | ${f(x.min)} | ${f(x.p50)} | ${f(x.p90)} | ${f(x.p99)} | ${f(x.max)} | ${f(x.mean)} |`);
  }
  out();
  out(
    `Waiters: ${w.admitted} admitted (201), **${w.refused429}** refused with the capacity 429 (expected 0; ${w.refused429InWarmup} in the iterations not recorded), ` +
      `${w.answeredBeforeSlotFreed} answered before the slot was freed (expected 0).` +
      (w.fromCompletionAnswerMs.min < 0 ? ` A negative time: the waiter's 201 arrived before the completion's 200.` : ""),
  );
  out();

  const cpuTable = (part, unit) => {
    out(`| sockets open for the user | ${unit}s (shares) | ${unit}s/s | workerd CPU ms/${unit} | ÷ 0 sockets | pooled ÷ 0 | schedstat ÷ 0 | messages per socket | per socket per s |`);
    out(`| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |`);
    for (const r of part.rows) {
      out(
        `| ${r.sockets} | ${r.ops} (${r.shares}) | ${f(r.throughput, 0)} | ${f(r.cpuMsPerOp, 3)} | **${f(r.cpuRatioToNoSockets)}** | ${f(r.pooledCpuRatioToNoSockets)} | ${f(r.schedstatCpuRatioToNoSockets)} | ` +
          `${f(r.messagesPerSocket, 1)} | ${f(r.messagesPerSocketPerSecond, 1)} |`,
      );
    }
    out();
  };
  out(`### What the live view costs: workerd CPU per operation, same run`);
  out();
  out(
    `Sockets: \`GET /v1/kling/scheduler/live\` upgraded, \`{"token"}\` sent, first message received, every message read as it comes (tests/support/live.mjs). ` +
      `Socket counts run in the order ${writes.order.join(" ")} (lists ${lists.order.join(" ")}), each time an equal share of the operations after ${push.settings.warmupOpsPerShare} not measured, ` +
      `${push.settings.concurrency} in flight, so drift weighs on all alike. CPU: workerd's utime+stime around each share (for writes, plus ${push.settings.settleMs} ms for the trailing push), ` +
      `as the speed part reads it; per operation, the median share of each socket count (the same work swings by a fifth from one share to the next here: one share must not decide a ratio), ` +
      `with the pooled figure (all ticks over all operations) and schedstat's (the same windows in ns) beside it. Messages: what each socket received meanwhile.`,
  );
  out();
  out(`Write pairs (register + complete on one account, as the speed part's scenario), sockets of that same user:`);
  out();
  cpuTable(writes, "pair");
  out(
    `Under a steady stream of writes the pushes are coalesced (at most four a second per user and provider), so their cost is spread over every write of that quarter second; ` +
      `the spaced writes below show what one push costs when it is not.`,
  );
  out();
  out(`The 10-account Kling list (${push.settings.listBodyBytes} bytes), sockets of that same user (nothing changes, so nothing is pushed):`);
  out();
  cpuTable(lists, "list");

  out(`### Messages per change`);
  out();
  out(
    `Single writes (registration and completion in turn) ${messages.spaced[0].spacingMs} ms apart, past the 250 ms coalescing window, for three users at once ` +
      `(one per socket count, one write each per round, so all three see the same machine); ` +
      `CPU per write: workerd's schedstat run time from just before the write to ${messages.spaced[0].spacingMs} ms later (its push included); ` +
      `the median registration and the median completion, and a write as their mean.`,
  );
  out();
  out(`| sockets | writes | messages per write per socket | writes without exactly 1 each | write's answer -> message p50 / max ms | CPU ms per registration / completion | CPU ms per write | ÷ 0 sockets | (CPU - CPU at 0 sockets) ÷ sockets, ms |`);
  out(`| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |`);
  for (const x of messages.spaced) {
    const per = x.messagesPerWritePerSocket;
    out(
      `| ${x.sockets} | ${x.writes} | ${per ? `${per.min}..${per.max}` : "-"} | ${x.writesWithoutExactlyOne ?? "-"} | ${x.answerToMessageMs ? `${f(x.answerToMessageMs.p50, 1)} / ${f(x.answerToMessageMs.max, 1)}` : "-"} | ` +
        `${f(x.cpuMsPerRegistration.p50)} / ${f(x.cpuMsPerCompletion.p50)} | ${f(x.cpuMsPerWrite)} | **${f(x.cpuRatioToNoSockets)}** | ${f(x.pushCpuMsPerSocket, 3)} |`,
    );
  }
  out();
  out(`Bursts, one socket open: ${messages.bursts[0].writes} writes sent at once, messages counted for a second after.`);
  out();
  out(`| burst | writes | all answered in ms | messages | at most (1 + one per 250 ms) | shortest gap ms | last message shows the final state |`);
  out(`| --- | ---: | ---: | ---: | ---: | ---: | :---: |`);
  for (const b of messages.bursts) {
    out(`| ${b.kind} | ${b.writes} | ${f(b.spanMs, 0)} | ${b.messages} | ${b.allowed} | ${f(b.minGapMs, 0)} | ${yes(b.lastShowsFinalState)} |`);
  }
  out();

  const i = idle.idle;
  const mib = (k) => f(k / 1024, 1);
  out(`### Idle sockets`);
  out();
  out(
    `Run first, on a workerd that has only been seeded, so that memory the other parts free does not hide the sockets' own. ` +
      `${idle.sockets} authenticated sockets over ${idle.users} users (one Kling account and one job each), then ${i.seconds} s with nothing sent either way. ` +
      `CPU: workerd's schedstat run time in ${i.slices.length} slices (workerd's own idling included, so an upper bound). The first slices carry a burst about ten seconds ` +
      `after the last event (workerd putting the quiet objects to rest, it appears), so the figure from ${i.settledAfterSeconds} s on is what an idle socket costs for good.`,
  );
  out();
  out(`| | value |`);
  out(`| --- | ---: |`);
  out(`| open + authenticate ${idle.sockets} sockets | ${f(idle.open.seconds, 1)} s, ${f(idle.open.cpuMsPerSocket)} ms workerd CPU per socket |`);
  out(`| workerd CPU over the ${i.seconds} s idle (slices of ${i.slices[0]?.seconds} s) | ${f(i.cpuMs, 1)} ms (${i.slices.map((x) => f(x.cpuMs, 1)).join(", ")}); utime+stime ${f(i.cpuTickMs, 0)} ms |`);
  out(`| per socket per minute, whole window | ${f(i.cpuMsPerSocketPerMinute, 3)} ms |`);
  out(`| per socket per minute, from ${i.settledAfterSeconds} s on (${i.settledSeconds} s) | ${f(i.settledCpuMsPerSocketPerMinute, 3)} ms |`);
  out(`| messages received while idle (expected 0) | ${i.messages} |`);
  out(`| workerd RSS before opening / after opening / after the idle time | ${mib(idle.rssKiB.before)} / ${mib(idle.rssKiB.afterOpen)} / ${mib(idle.rssKiB.afterIdle)} MiB |`);
  out(`| RSS per socket after opening / after the idle time | ${f(idle.rssKiBPerSocket.afterOpen, 0)} / ${f(idle.rssKiBPerSocket.afterIdle, 0)} KiB |`);
  const awake = spacedAt(maxSockets)?.answerToMessageMs?.p50;
  out(
    `| then one change for one user: its sockets with exactly one message | ${idle.wake.exactlyOne} of ${idle.wake.sockets}, p50 ${f(idle.wake.latencyMs.p50, 1)} ms after the write's answer` +
      `${awake === undefined ? "" : ` (${f(awake, 1)} ms with awake sockets above; the difference, it appears, is the wake-up from hibernation)`} |`,
  );
  out();
}

function everyRun() {
  out(`## Every run`);
  out();
  out(`| target | scenario | ops | req/s | p50 ms | p99 ms | workerd CPU ms/op | CPU util | body B | resets |`);
  out(`| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |`);
  const name = { main: "ours", peer: "peer", ceiling: "ceiling" };
  for (const r of run.results) {
    out(
      `| ${name[r.target] ?? r.target} | ${label(r)} | ${r.ops} | ${f(r.throughput, 0)} | ${f(r.p50)} | ${f(r.p99)} | ${f(r.workerdCpuMsPerOp)} | ${f(r.workerdCpuUtil)} | ${r.bodyBytes ?? "-"} | ${r.resets ?? 0} |`,
    );
  }
  out();
  out(
    `Columns: ops = measured operations (warm-up excluded); CPU util = workerd CPU seconds per wall second (1.0 = one core busy); ` +
      `resets = GETs whose keep-alive connection workerd closed before answering, retried once on a new connection (their latency includes the retry); ` +
      `body B = the response body from our seed (the peer's, from its own seed, are in latest.json's peerSeed).`,
  );
  out();
}

function scaleSection() {
  out(`## Scale: lists by number of accounts (10 executing jobs each)`);
  out();
  out(`| accounts | Kling p50 ms | Kling p99 ms | Kling CPU ms/req | peer Kling CPU | Kling body B | Dreamina p50 ms | Dreamina p99 ms | Dreamina CPU ms/req | peer Dreamina CPU | Dreamina body B |`);
  out(`| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |`);
  for (const n of [0, 1, 10, 50]) {
    const k = scale.kling.points.find((p) => p.accounts === n);
    const d = scale.dreamina.points.find((p) => p.accounts === n);
    const pk = peerScale?.kling.points.find((p) => p.accounts === n);
    const pd = peerScale?.dreamina.points.find((p) => p.accounts === n);
    out(`| ${n} | ${f(k?.p50)} | ${f(k?.p99)} | ${f(k?.cpu)} | ${f(pk?.cpu)} | ${k?.bodyBytes ?? "-"} | ${f(d?.p50)} | ${f(d?.p99)} | ${f(d?.cpu)} | ${f(pd?.cpu)} | ${d?.bodyBytes ?? "-"} |`);
  }
  out();
  for (const provider of ["kling", "dreamina"]) {
    const s = scale[provider];
    const p = peerScale?.[provider];
    out(
      `- ${provider}: p50 x${f(s.growth1to10, 1)} from 1 to 10 accounts, x${f(s.growth10to50, 1)} from 10 to 50; ` +
        `about ${f(s.cpuPerAccountMs, 3)} ms workerd CPU and ${f(s.p50PerAccountMs, 2)} ms p50 per extra account (least squares over 1/10/50)` +
        (p ? `; the peer: ${f(p.cpuPerAccountMs, 3)} ms CPU and ${f(p.p50PerAccountMs, 2)} ms p50 per extra account.` : "."),
    );
  }
  out(`- plot: [scale.svg](scale.svg)`);
  out();
}

function fanoutSection() {
  if (!fanout.length) return;
  out(`## Against the fan-out ceiling (N minimal Durable Objects asked in parallel)`);
  out();
  out(
    `The contract builds a list by asking every account object, so no list can be cheaper than N Durable Object round trips. ` +
      `The fan-out ceiling (bench/ceiling, \`GET /fanout/N\`) does exactly that and nothing else: N bodiless GETs to objects that answer ` +
      `a fixed body of one account's size, joined into one array. Ratios: the list's throughput as a fraction of the fan-out ceiling's, its CPU as a multiple.`,
  );
  out();
  out(`| accounts | fan-out req/s | fan-out p50 ms | fan-out CPU ms/req | Kling ÷ fan-out req/s | Kling ÷ fan-out CPU | peer Kling ÷ fan-out CPU | Dreamina ÷ fan-out req/s | Dreamina ÷ fan-out CPU | peer Dreamina ÷ fan-out CPU |`);
  out(`| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |`);
  for (const p of fanout) {
    const k = ours[`kling_list_${p.accounts}`];
    const d = ours[`dreamina_list_${p.accounts}`];
    const pk = peer[`kling_list_${p.accounts}`];
    const pd = peer[`dreamina_list_${p.accounts}`];
    out(
      `| ${p.accounts} | ${f(p.throughput, 0)} | ${f(p.p50)} | ${f(p.cpu)} | ${f(ratio(k?.throughput, p.throughput))} | ${f(ratio(k?.workerdCpuMsPerOp, p.cpu))} | ${f(ratio(pk?.workerdCpuMsPerOp, p.cpu))} | ${f(ratio(d?.throughput, p.throughput))} | ${f(ratio(d?.workerdCpuMsPerOp, p.cpu))} | ${f(ratio(pd?.workerdCpuMsPerOp, p.cpu))} |`,
    );
  }
  out();
  out(
    `- fan-out ceiling: about ${f(fanoutScale.cpuPerObjectMs, 3)} ms workerd CPU per extra object (least squares), p50 x${f(fanoutScale.growth1to50, 1)} from 1 to 50 objects; ` +
      `ours: ${f(scale.kling.cpuPerAccountMs, 3)} ms (Kling), ${f(scale.dreamina.cpuPerAccountMs, 3)} ms (Dreamina) per extra account` +
      (peerScale ? `; the peer: ${f(peerScale.kling.cpuPerAccountMs, 3)} ms, ${f(peerScale.dreamina.cpuPerAccountMs, 3)} ms.` : "."),
  );
  out(
    `- Locally every object runs in the one workerd process on one thread, so the "parallel" round trips queue for the same CPU and latency grows with N even for the ceiling; ` +
      `on Cloudflare each object runs where it lives and the round trips overlap.`,
  );
  out();
}

function profileSection() {
  out(`## Where the CPU of a list goes (differences of the rows above, workerd CPU ms per request)`);
  out();
  out(`| part | ours CPU ms | peer CPU ms | from |`);
  out(`| --- | ---: | ---: | --- |`);
  profile.forEach((t, i) => out(`| ${t.what} | ${f(t.value, 3)} | ${f(peerProfile?.[i].value, 3)} | ${t.how} |`));
  const cpu = (id) => ours[id]?.workerdCpuMsPerOp;
  const list10 = cpu("kling_list_10");
  out();
  if (peerProfile) {
    out(`The ceiling is a workers-rs floor; a plain JavaScript worker starts below it, so the peer's "404 - ceiling" can be negative.`);
    out();
  }
  out(
    `Ours: a 10-account Kling list costs ${f(list10)} ms CPU; ${f(ceiling.cpu, 3)} of it is the runtime floor (ceiling), ` +
      `${f(cpu("unauthorized_401") - ceiling.cpu, 3)} the entry + auth, ` +
      `${f(list10 - cpu("kling_list_0"), 3)} the ten account round trips and their jobs. Local KV and the limiter are Miniflare's simulations (a KV get here is a SQLite read in another local object), not production's edge cache.`,
  );
  out();
}

header();
doneCriteria();
size();
speed();
coldStart();
wranglerDev();
pushSection();
everyRun();
scaleSection();
fanoutSection();
profileSection();

const markdown = lines.join("\n");
writeFileSync(path.join(outDir, `${outName}.md`), markdown + "\n");
writeFileSync(
  path.join(outDir, `${outName}.json`),
  JSON.stringify(
    {
      ...meta,
      settings: run.settings,
      seed: run.seed,
      peerSeed: run.peerSeed,
      doneCriteria: done,
      ceiling,
      fanoutCeiling: fanoutScale,
      scale,
      peerScale,
      profile,
      peerProfile,
      results: run.results,
    },
    null,
    2,
  ) + "\n",
);
writeFileSync(path.join(outDir, outName === "latest" ? "scale.svg" : `${outName}.svg`), svg());
process.stdout.write(markdown + "\n");

// ---------------------------------------------------------------- SVG

function svg() {
  const W = 920, H = 450, T = 62, B = 98, gap = 70, L = 62, Rm = 20;
  const pw = (W - L - Rm - gap) / 2, ph = H - T - B;
  const colors = { kling: "#1f77b4", dreamina: "#d62728", "fan-out ceiling": "#7f7f7f" };
  const esc = (s) => String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;");
  const parts = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  parts.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  parts.push(`<text x="${L}" y="22" font-size="15" font-weight="bold">GET /v1/{provider}/scheduler by number of accounts (10 executing jobs each)</text>`);
  parts.push(`<text x="${L}" y="40" fill="#555">${esc(meta.date)} - ${esc(meta.machine.nproc)} cores ${esc(meta.machine.cpu)} - ${run.settings.concurrency} in flight - workerd via Miniflare - noisy (shared machine)</text>`);
  const panels = [
    { title: "latency p50 (ms)", key: "p50", ceilingValue: ceiling.p50, ceilingLabel: `ceiling p50 ${ceiling.p50.toFixed(2)} ms` },
    { title: "workerd CPU per request (ms)", key: "cpu", ceilingValue: ceiling.cpu, ceilingLabel: `ceiling ${ceiling.cpu.toFixed(2)} ms` },
  ];
  // Ours solid, the peer dashed in the same colour, the fan-out ceiling grey.
  const seriesOf = (key) => {
    const series = ["kling", "dreamina"].map((provider) => ({
      name: `ours ${provider}`,
      color: colors[provider],
      pts: scale[provider].points.map((p) => [p.accounts, p[key]]),
    }));
    if (peerScale) {
      for (const provider of ["kling", "dreamina"]) {
        series.push({ name: `peer ${provider}`, color: colors[provider], dash: "6,4", pts: peerScale[provider].points.map((p) => [p.accounts, p[key]]) });
      }
    }
    if (fanout.length) series.push({ name: "fan-out ceiling", color: colors["fan-out ceiling"], pts: fanout.map((p) => [p.accounts, p[key]]) });
    return series;
  };
  panels.forEach((panel, pi) => {
    const x0 = L + pi * (pw + gap);
    const series = seriesOf(panel.key);
    const yMaxRaw = Math.max(panel.ceilingValue, ...series.flatMap((s) => s.pts.map((p) => p[1])));
    const step = niceStep(yMaxRaw / 5);
    const yMax = Math.ceil(yMaxRaw / step) * step;
    const x = (v) => x0 + (v / 50) * pw;
    const y = (v) => T + ph - (v / yMax) * ph;
    parts.push(`<text x="${x0}" y="${T - 8}" font-weight="bold">${esc(panel.title)}</text>`);
    for (let v = 0; v <= yMax + 1e-9; v += step) {
      parts.push(`<line x1="${x0}" y1="${y(v).toFixed(1)}" x2="${x0 + pw}" y2="${y(v).toFixed(1)}" stroke="#e5e5e5"/>`);
      parts.push(`<text x="${x0 - 6}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end">${+v.toFixed(3)}</text>`);
    }
    for (const v of [0, 10, 20, 30, 40, 50]) {
      parts.push(`<line x1="${x(v).toFixed(1)}" y1="${T + ph}" x2="${x(v).toFixed(1)}" y2="${T + ph + 5}" stroke="#333"/>`);
      parts.push(`<text x="${x(v).toFixed(1)}" y="${T + ph + 19}" text-anchor="middle">${v}</text>`);
    }
    parts.push(`<line x1="${x0}" y1="${T}" x2="${x0}" y2="${T + ph}" stroke="#333"/>`);
    parts.push(`<line x1="${x0}" y1="${T + ph}" x2="${x0 + pw}" y2="${T + ph}" stroke="#333"/>`);
    parts.push(`<text x="${x0 + pw / 2}" y="${T + ph + 38}" text-anchor="middle">accounts per user (0, 1, 10, 50)</text>`);
    parts.push(`<line x1="${x0}" y1="${y(panel.ceilingValue).toFixed(1)}" x2="${x0 + pw}" y2="${y(panel.ceilingValue).toFixed(1)}" stroke="#2ca02c" stroke-dasharray="4,3"/>`);
    parts.push(`<text x="${x0 + pw - 4}" y="${(y(panel.ceilingValue) - 5).toFixed(1)}" text-anchor="end" fill="#2ca02c">${esc(panel.ceilingLabel)}</text>`);
    for (const s of series) {
      const d = s.pts.map((p, j) => `${j ? "L" : "M"}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(" ");
      parts.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="2"${s.dash ? ` stroke-dasharray="${s.dash}"` : ""}/>`);
      for (const p of s.pts) {
        parts.push(`<circle cx="${x(p[0]).toFixed(1)}" cy="${y(p[1]).toFixed(1)}" r="3.5" fill="${s.dash ? "white" : s.color}" stroke="${s.color}"><title>${esc(s.name)}: ${p[0]} accounts, ${p[1].toFixed(2)} ms</title></circle>`);
      }
    }
    // End-of-line labels, top to bottom, at least 14 px apart so they never overlap.
    const labels = series
      .map((s) => ({ s, last: s.pts[s.pts.length - 1] }))
      .filter((l) => l.last)
      .sort((a, b) => b.last[1] - a.last[1]);
    let nextY = -Infinity;
    for (const { s, last } of labels) {
      const ly = Math.max(y(last[1]) + 16, nextY);
      nextY = ly + 14;
      parts.push(`<text x="${(x(last[0]) - 8).toFixed(1)}" y="${ly.toFixed(1)}" text-anchor="end" fill="${s.color}">${esc(s.name)} ${last[1].toFixed(1)}</text>`);
    }
  });
  // legend, two rows
  const legend = seriesOf("cpu");
  legend.forEach((s, i) => {
    const lx = L + (i % 3) * 150;
    const ly = H - 34 + Math.floor(i / 3) * 18;
    parts.push(`<line x1="${lx}" y1="${ly - 4}" x2="${lx + 28}" y2="${ly - 4}" stroke="${s.color}" stroke-width="2"${s.dash ? ` stroke-dasharray="${s.dash}"` : ""}/>`);
    parts.push(`<text x="${lx + 34}" y="${ly}">${esc(s.name)}</text>`);
  });
  const cx = L + 460;
  parts.push(`<line x1="${cx}" y1="${H - 38}" x2="${cx + 28}" y2="${H - 38}" stroke="#2ca02c" stroke-dasharray="4,3"/>`);
  parts.push(`<text x="${cx + 34}" y="${H - 34}">ceiling (fixed body of the 10-account Kling list's size)</text>`);
  parts.push(`</svg>`);
  return parts.join("\n") + "\n";
}

function niceStep(raw) {
  const p = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= raw) return m * p;
  return 10 * p;
}
