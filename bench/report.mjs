// Turns one bench run into bench/results/latest.{json,md} and bench/results/scale.svg,
// and prints the markdown to stdout. Called by bench/run.sh:
//
//   node bench/report.mjs --results RUN.json --meta META.json --out-dir bench/results
//
// META.json (written by run.sh) holds the date, machine, versions and the size figures.
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].slice(2)] = process.argv[i + 1];
const run = JSON.parse(readFileSync(args.results, "utf8"));
const meta = JSON.parse(readFileSync(args.meta, "utf8"));
const outDir = args["out-dir"];

const byId = Object.fromEntries(run.results.map((r) => [r.id, r]));
const ceilings = run.results.filter((r) => r.kind === "ceiling");
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
const ceiling = {
  throughput: mean(ceilings.map((c) => c.throughput)),
  p50: mean(ceilings.map((c) => c.p50)),
  cpu: mean(ceilings.map((c) => c.workerdCpuMsPerOp)),
};

const f = (x, d = 2) => (x === null || x === undefined || Number.isNaN(x) ? "-" : x.toFixed(d));
const kb = (bytes) => `${(bytes / 1024).toFixed(1)} KiB`;

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

const scale = {};
for (const provider of ["kling", "dreamina"]) {
  const pts = [0, 1, 10, 50]
    .map((n) => byId[`${provider}_list_${n}`])
    .filter(Boolean)
    .map((r) => ({ accounts: r.accounts, p50: r.p50, p99: r.p99, cpu: r.workerdCpuMsPerOp, throughput: r.throughput, bodyBytes: r.bodyBytes }));
  const withAccounts = pts.filter((p) => p.accounts > 0);
  scale[provider] = {
    points: pts,
    cpuPerAccountMs: fit(withAccounts.map((p) => [p.accounts, p.cpu])).slope,
    p50PerAccountMs: fit(withAccounts.map((p) => [p.accounts, p.p50])).slope,
    growth1to10: withAccounts.length >= 2 ? pts.find((p) => p.accounts === 10).p50 / pts.find((p) => p.accounts === 1).p50 : NaN,
    growth10to50: withAccounts.length >= 3 ? pts.find((p) => p.accounts === 50).p50 / pts.find((p) => p.accounts === 10).p50 : NaN,
  };
}

// The fan-out ceiling: N minimal objects asked in parallel (bench/ceiling), the floor of
// any list that asks every account object, as the contract requires.
const fanout = [1, 10, 50]
  .map((n) => byId[`fanout_${n}`])
  .filter(Boolean)
  .map((r) => ({ accounts: r.accounts, p50: r.p50, p99: r.p99, cpu: r.workerdCpuMsPerOp, throughput: r.throughput }));
const fanoutFit = fit(fanout.map((p) => [p.accounts, p.cpu]));
const fanoutScale = {
  points: fanout,
  cpuPerObjectMs: fanoutFit.slope,
  growth1to50: fanout.length === 3 ? fanout[2].p50 / fanout[0].p50 : NaN,
};

// Where the CPU of a list goes, from differences between scenarios (workerd CPU ms per
// request; every term carries the noise of two measurements).
const cpu = (id) => byId[id]?.workerdCpuMsPerOp;
const profile = [];
const addTerm = (what, value, how) => profile.push({ what, value, how });
addTerm("runtime + HTTP + fixed body, no Rust logic (ceiling)", ceiling.cpu, "ceiling");
addTerm("our wasm entry, routing, error response (404 - ceiling)", cpu("unmatched_404") - ceiling.cpu, "404 - ceiling");
addTerm("auth: KV get (miss) + rate-limiter call (401 - 404)", cpu("unauthorized_401") - cpu("unmatched_404"), "401 - 404");
addTerm("directory DO round trip, roughly (0-account list - 401)", cpu("kling_list_0") - cpu("unauthorized_401"), "list0 - 401");
addTerm("first account DO round trip + 10 jobs (1-account list - 0-account list)", cpu("kling_list_1") - cpu("kling_list_0"), "list1 - list0");
const perJob = (cpu("kling_list_1x50") - cpu("kling_list_1")) / 40;
addTerm("per job, within one account (1x50 - 1x10) / 40", perJob, "(list1x50 - list1)/40");
const perAccount = scale.kling.cpuPerAccountMs;
addTerm("per extra account of 10 jobs (slope over 1/10/50 accounts)", perAccount, "slope");
addTerm("  of which the 10 jobs (10 x per job)", 10 * perJob, "10 x per job");
addTerm("  of which the DO round trip itself (slope - 10 x per job)", perAccount - 10 * perJob, "slope - 10 x per job");

// ---------------------------------------------------------------- markdown

const lines = [];
const out = (s = "") => lines.push(s);
out(`# Benchmark: edge scheduler (bench/run.sh)`);
out();
out(`- date: ${meta.date}`);
out(`- machine: ${meta.machine.nproc} cores, ${meta.machine.cpu}, ${meta.machine.memory}`);
out(`- versions: node ${meta.versions.node}, workerd ${meta.versions.workerd}, miniflare ${meta.versions.miniflare}, wrangler ${meta.versions.wrangler}, ${meta.versions.rustc}, worker-build ${meta.versions.workerBuild}`);
out(`- code: ${meta.git}`);
out(
  `- how: built worker in workerd via Miniflare (${meta.socket}); load generator: separate Node process, ` +
    `HTTP/1.1 keep-alive, ${run.settings.concurrency} in flight, ${run.settings.warmup} warm-up requests per scenario not measured, ` +
    `${run.settings.requests} x weight measured requests per scenario (cap ${run.settings.maxSecondsPerScenario} s).`,
);
out(`- seed: ${run.seed.seeded.accounts} accounts, ${run.seed.seeded.jobs} executing jobs (${run.settings.jobsPerAccount} per account, maxJobs ${run.settings.maxJobsPerAccount}), seeded in ${f(run.seed.seeded.seconds, 1)} s through the operator API`);
out(`- rate limiter: ${run.settings.rateLimiter}`);
out(`- CPU: workerd's utime+stime from /proc/<pid>/stat around the measured part (clock tick ${1000 / run.settings.clkTck} ms), divided by the request count; it includes the DOs, KV and limiter, which run in the same workerd process`);
out(`- **noisy**: a 2-core machine shared with other work (load average at start: ${meta.loadavg}); the load generator shares the cores with workerd. Compare runs on one machine only; the ceiling runs first and last to show drift.`);
out();
out(`## Size`);
out();
out(`| artefact | raw | gzip -9 |`);
out(`| --- | ---: | ---: |`);
out(`| build/index_bg.wasm (release, wasm-opt -Oz) | ${meta.size.wasmRaw} B (${kb(meta.size.wasmRaw)}) | ${meta.size.wasmGzip} B (${kb(meta.size.wasmGzip)}) |`);
out(`| build/index.js (JS glue) | ${meta.size.glueRaw} B (${kb(meta.size.glueRaw)}) | ${meta.size.glueGzip} B (${kb(meta.size.glueGzip)}) |`);
out(`| build/worker/shim.mjs | ${meta.size.shimRaw} B | - |`);
out(`| ceiling wasm (workers-rs floor, with the fan-out object) | ${meta.size.ceilingWasmRaw} B (${kb(meta.size.ceilingWasmRaw)}) | ${meta.size.ceilingWasmGzip} B (${kb(meta.size.ceilingWasmGzip)}) |`);
out(`| ceiling JS glue | ${meta.size.ceilingGlueRaw} B (${kb(meta.size.ceilingGlueRaw)}) | ${meta.size.ceilingGlueGzip} B |`);
out();
out(
  `Budget: wasm gzip <= ${meta.size.budgetGzip} B (${kb(meta.size.budgetGzip)}): **${meta.size.wasmGzip <= meta.size.budgetGzip ? "PASS" : "FAIL"}**. ` +
    `Target ${kb(meta.size.targetGzip)}: ${meta.size.wasmGzip <= meta.size.targetGzip ? "met" : `not met (${kb(meta.size.wasmGzip - meta.size.targetGzip)} over)`}.`,
);
if (meta.size.startupMs) {
  out(
    `Start-up, new Miniflare() to listening (workerd start + wasm compile + module evaluation; one sample, a rough cold-start proxy): ` +
      `main ${f(meta.size.startupMs.main, 0)} ms, ceiling ${f(meta.size.startupMs.ceiling, 0)} ms.`,
  );
}
out();
out(`## Speed`);
out();
out(`Ratios are against the ceiling (mean of its two runs: ${f(ceiling.throughput, 0)} req/s, p50 ${f(ceiling.p50)} ms, ${f(ceiling.cpu, 3)} ms CPU/req): throughput as a fraction of the ceiling's, p50 as a multiple of the ceiling's.`);
out();
out(`| scenario | ops | req/s | p50 ms | p99 ms | workerd CPU ms/op | CPU util | body B | resets | x ceiling req/s | x ceiling p50 |`);
out(`| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |`);
for (const r of run.results) {
  const unit = r.unit === "req" ? "" : ` (per ${r.unit} = ${f(r.requestsPerOp, 0)} requests)`;
  out(
    `| ${r.label}${unit}${r.cutShort ? " (cut short)" : ""} | ${r.ops} | ${f(r.throughput, 0)} | ${f(r.p50)} | ${f(r.p99)} | ${f(r.workerdCpuMsPerOp)} | ${f(r.workerdCpuUtil)} | ${r.bodyBytes ?? "-"} | ${r.resets ?? 0} | ${f(r.throughput / ceiling.throughput, 3)} | ${f(r.p50 / ceiling.p50, 1)} |`,
  );
}
out();
out(
  `Columns: ops = measured operations (warm-up excluded); CPU util = workerd CPU seconds per wall second (1.0 = one core busy); ` +
    `resets = GETs whose keep-alive connection workerd closed before answering, retried once on a new connection (their latency includes the retry).`,
);
out();
out(`## Scale: list latency by number of accounts (10 executing jobs each)`);
out();
out(`| accounts | Kling p50 ms | Kling p99 ms | Kling CPU ms/req | Kling body B | Dreamina p50 ms | Dreamina p99 ms | Dreamina CPU ms/req | Dreamina body B |`);
out(`| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |`);
for (const n of [0, 1, 10, 50]) {
  const k = scale.kling.points.find((p) => p.accounts === n);
  const d = scale.dreamina.points.find((p) => p.accounts === n);
  out(`| ${n} | ${f(k?.p50)} | ${f(k?.p99)} | ${f(k?.cpu)} | ${k?.bodyBytes ?? "-"} | ${f(d?.p50)} | ${f(d?.p99)} | ${f(d?.cpu)} | ${d?.bodyBytes ?? "-"} |`);
}
out();
for (const provider of ["kling", "dreamina"]) {
  const s = scale[provider];
  out(
    `- ${provider}: p50 x${f(s.growth1to10, 1)} from 1 to 10 accounts, x${f(s.growth10to50, 1)} from 10 to 50; ` +
      `about ${f(s.cpuPerAccountMs, 3)} ms workerd CPU and ${f(s.p50PerAccountMs, 2)} ms p50 per extra account (least squares over 1/10/50).`,
  );
}
out(`- plot: [scale.svg](scale.svg)`);
out();
if (fanout.length) {
  out(`## Against the fan-out ceiling (N minimal Durable Objects asked in parallel)`);
  out();
  out(
    `The contract builds a list by asking every account object, so no list can be cheaper than N Durable Object round trips. ` +
      `The fan-out ceiling (bench/ceiling, \`GET /fanout/N\`) does exactly that and nothing else: N bodiless GETs to objects that answer ` +
      `a fixed body of one account's size, joined into one array. Ratios: the list's throughput as a fraction of the fan-out ceiling's, its CPU and p50 as multiples.`,
  );
  out();
  out(`| accounts | fan-out req/s | fan-out p50 ms | fan-out CPU ms/req | Kling list req/s | Kling ÷ fan-out req/s | Kling ÷ fan-out CPU | Dreamina ÷ fan-out req/s | Dreamina ÷ fan-out CPU |`);
  out(`| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |`);
  for (const p of fanout) {
    const k = byId[`kling_list_${p.accounts}`];
    const d = byId[`dreamina_list_${p.accounts}`];
    out(
      `| ${p.accounts} | ${f(p.throughput, 0)} | ${f(p.p50)} | ${f(p.cpu)} | ${f(k?.throughput, 0)} | ${f(k?.throughput / p.throughput, 2)} | ${f(k?.workerdCpuMsPerOp / p.cpu, 2)} | ${f(d?.throughput / p.throughput, 2)} | ${f(d?.workerdCpuMsPerOp / p.cpu, 2)} |`,
    );
  }
  out();
  out(
    `- fan-out ceiling: about ${f(fanoutScale.cpuPerObjectMs, 3)} ms workerd CPU per extra object (least squares), p50 x${f(fanoutScale.growth1to50, 1)} from 1 to 50 objects; ` +
      `the scheduler's list: ${f(scale.kling.cpuPerAccountMs, 3)} ms (Kling), ${f(scale.dreamina.cpuPerAccountMs, 3)} ms (Dreamina) per extra account.`,
  );
  out(
    `- Locally every object runs in the one workerd process on one thread, so the "parallel" round trips queue for the same CPU and latency grows with N even for the ceiling; ` +
      `on Cloudflare each object runs where it lives and the round trips overlap.`,
  );
  out();
}
out(`## Where the CPU of a list goes (differences of the rows above, workerd CPU ms per request)`);
out();
out(`| part | CPU ms | from |`);
out(`| --- | ---: | --- |`);
for (const t of profile) out(`| ${t.what} | ${f(t.value, 3)} | ${t.how} |`);
const list10 = cpu("kling_list_10");
out();
out(
  `A 10-account Kling list costs ${f(list10)} ms CPU; ${f(ceiling.cpu, 3)} of it is the runtime floor (ceiling), ` +
    `${f(cpu("unauthorized_401") - ceiling.cpu, 3)} the entry + auth, ` +
    `${f(list10 - cpu("kling_list_0"), 3)} the ten account round trips and their jobs. Local KV and the limiter are Miniflare's simulations (a KV get here is a SQLite read in another local object), not production's edge cache.`,
);
out();

const markdown = lines.join("\n");
writeFileSync(path.join(outDir, "latest.md"), markdown + "\n");
writeFileSync(
  path.join(outDir, "latest.json"),
  JSON.stringify({ ...meta, settings: run.settings, seed: run.seed, ceiling, fanoutCeiling: fanoutScale, scale, profile, results: run.results }, null, 2) + "\n",
);
writeFileSync(path.join(outDir, "scale.svg"), svg());
process.stdout.write(markdown + "\n");

// ---------------------------------------------------------------- SVG

function svg() {
  const W = 920, H = 430, T = 62, B = 78, gap = 70, L = 62, Rm = 20;
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
  panels.forEach((panel, pi) => {
    const x0 = L + pi * (pw + gap);
    const series = ["kling", "dreamina"].map((provider) => ({
      name: provider,
      color: colors[provider],
      pts: scale[provider].points.map((p) => [p.accounts, p[panel.key]]),
    }));
    if (fanout.length) {
      series.push({ name: "fan-out ceiling", color: colors["fan-out ceiling"], pts: fanout.map((p) => [p.accounts, p[panel.key]]) });
    }
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
      parts.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="2"/>`);
      for (const p of s.pts) {
        parts.push(`<circle cx="${x(p[0]).toFixed(1)}" cy="${y(p[1]).toFixed(1)}" r="3.5" fill="${s.color}"><title>${esc(s.name)}: ${p[0]} accounts, ${p[1].toFixed(2)} ms</title></circle>`);
      }
    }
    // End-of-line labels, top to bottom, at least 14 px apart so they never overlap.
    const labels = series
      .map((s) => ({ s, last: s.pts[s.pts.length - 1] }))
      .sort((a, b) => b.last[1] - a.last[1]);
    let nextY = -Infinity;
    for (const { s, last } of labels) {
      const ly = Math.max(y(last[1]) + 16, nextY);
      nextY = ly + 14;
      parts.push(`<text x="${(x(last[0]) - 8).toFixed(1)}" y="${ly.toFixed(1)}" text-anchor="end" fill="${s.color}">${esc(s.name)} ${last[1].toFixed(1)}</text>`);
    }
  });
  // legend
  const ly = H - 14;
  const legend = fanout.length ? ["kling", "dreamina", "fan-out ceiling"] : ["kling", "dreamina"];
  legend.forEach((provider, i) => {
    const lx = L + i * 110;
    parts.push(`<line x1="${lx}" y1="${ly - 4}" x2="${lx + 28}" y2="${ly - 4}" stroke="${colors[provider]}" stroke-width="2"/>`);
    parts.push(`<text x="${lx + 34}" y="${ly}">${provider}</text>`);
  });
  parts.push(`<line x1="${L + 360}" y1="${ly - 4}" x2="${L + 388}" y2="${ly - 4}" stroke="#2ca02c" stroke-dasharray="4,3"/>`);
  parts.push(`<text x="${L + 394}" y="${ly}">ceiling (fixed body of the 10-account Kling list's size)</text>`);
  parts.push(`</svg>`);
  return parts.join("\n") + "\n";
}

function niceStep(raw) {
  const p = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= raw) return m * p;
  return 10 * p;
}
