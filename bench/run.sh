#!/usr/bin/env bash
# The benchmark, in one command:   bash bench/run.sh
#
# Three implementations in the same run and the same runtime (this repository's
# Miniflare and workerd binary): ours (./wrangler.toml), the peer (a plain JavaScript
# worker of the same contract, $BENCH_PEER_DIR, read-only, served in place) and the
# ceilings (bench/ceiling/wrangler.toml).
#
# 1. installs what is missing and builds the worker (scripts/setup.sh, scripts/build.sh)
#    and the ceiling worker (bench/ceiling/, same worker-build + wasm-opt pass);
# 2. size: release wasm raw and gzip -9, JS glue, and the total upload as
#    `wrangler deploy --dry-run` counts it (ours, the peer, the ceiling); fails (exit 3,
#    at the end, after everything else has still been measured and written) when ours is
#    over the budget;
# 3. speed: serves the three in workerd through Miniflare's API (bench/serve.mjs, options
#    from each wrangler.toml, each on its own 127.0.0.1 socket, no wrangler dev proxy),
#    seeds ours and the peer alike through the operator API and runs every scenario on
#    both (A B B A, so drift weighs on both alike) from a separate load-generator
#    process (bench/load.mjs), reading workerd's CPU time from /proc;
# 4. cold start: ours and the peer, BENCH_COLD_STARTS fresh starts each on a seeded
#    state, the first request's time and workerd CPU (bench/cold.mjs);
# 5. wrangler dev: the 10-account Kling list under `wrangler dev`, ours and the peer,
#    the CPU of its two workerd processes (bench/wrangler.mjs);
# 6. waiting and the live view, ours only (the peer has neither), served as in 3:
#    freed slot -> waiter's 201 latency, and what open live-view sockets cost writes,
#    lists and an idle workerd (bench/push.mjs);
# 7. writes bench/results/latest.md, latest.json and scale.svg and prints the tables,
#    with the issue's done criteria as PASS/FAIL.
#
# Knobs (environment): BENCH_REQUESTS (3000: measured requests per scenario, times the
# scenario's weight), BENCH_WARMUP (200), BENCH_CONCURRENCY (8), BENCH_MAX_SECONDS (40 per
# scenario), BENCH_COLD_STARTS (5), BENCH_DEV_REQUESTS (600), BENCH_PEER_DIR
# (/work/shared/peers/js-scheduler; BENCH_PEER_DIR= runs without the peer),
# BENCH_PUSH (1; 0 skips part 6; its own knobs are in bench/push.mjs),
# BENCH_ONLY=push (part 6 alone after the builds: its figures are printed, no report is
# written), BENCH_SKIP_BUILD=1 (reuse build/ and bench/ceiling/build/ as they are),
# BENCH_OURS_DIR (another checkout to measure as "ours", e.g. an older commit in a git
# worktree: its own scripts/build.sh builds it; the waiting/live part is skipped, and the
# report goes to bench/results/ours-<its commit>.{md,json} instead of latest).
# Every process it starts is stopped on exit, also on failure or Ctrl-C.
set -euo pipefail

# ---- size budget: the issue's aim, 200 KiB gzip as `wrangler deploy --dry-run` counts it
# (its "Total Upload: ... / gzip: ..." line: the wasm and the bundled JS, compressed).
WASM_GZIP_BUDGET_BYTES=$((200 * 1024))
WASM_GZIP_TARGET_BYTES=$((200 * 1024))

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$PWD"
RESULTS="bench/results"
TMP="$RESULTS/tmp/run-$$"
mkdir -p "$TMP"
started_at=$SECONDS
PEER_DIR="${BENCH_PEER_DIR-/work/shared/peers/js-scheduler}"
COLD_STARTS="${BENCH_COLD_STARTS:-5}"
DEV_REQUESTS="${BENCH_DEV_REQUESTS:-600}"
PUSH="${BENCH_PUSH:-1}"
# Ours: this checkout, or BENCH_OURS_DIR (absolute path).
OURS="${BENCH_OURS_DIR:-$ROOT}"
OURS_CONFIG="$OURS/wrangler.toml"
[[ -f "$OURS_CONFIG" ]] || { echo "[bench] no wrangler.toml in $OURS" >&2; exit 1; }
if [[ "$OURS" != "$ROOT" ]]; then PUSH=0; fi
ONLY="${BENCH_ONLY:-}"
[[ -z "$ONLY" || "$ONLY" == "push" ]] || { echo "[bench] BENCH_ONLY: only 'push' is known" >&2; exit 1; }
# Vars beyond each wrangler.toml's, as NAME=VALUE (wrangler dev gets them as NAME:VALUE).
# Ours also gets MAX_ACCOUNTS=50: wrangler.toml caps a user at fewer accounts per provider
# (the Free plan's subrequest limit), and the issue measures lists at 50 accounts; like
# the rate limiter's, a limit raised for the bench only. The peer has no such cap.
MAIN_VARS=(ADMIN_TOKEN=bench-admin MAX_ACCOUNTS=50)
PEER_VARS=(ADMIN_TOKEN=bench-admin)
# Sets VAR_ARGS to --var arguments: NAME=VALUE for serve.mjs and cold.mjs (SEPARATOR
# "="), NAME:VALUE for wrangler dev (SEPARATOR ":").
var_args() { # SEPARATOR NAME=VALUE...
  local sep="$1" v
  shift
  VAR_ARGS=()
  for v in "$@"; do VAR_ARGS+=(--var "${v%%=*}$sep${v#*=}"); done
}

log() { printf '[bench] %s\n' "$*" >&2; }

# ---- process bookkeeping: only what this script started is stopped.
# bg_pids[i] is a helper started in the background (serve.mjs, wrangler.mjs dev,
# cold.mjs); bg_ready[i] its ready file, if any, naming the processes it started.
bg_pids=()
bg_ready=()
track() { bg_pids+=("$1"); bg_ready+=("${2:-}"); }

# Runs a step to its end, in the background so that a signal is handled at once (bash
# runs a trap only after the foreground command ends) and the step is stopped with the
# rest. Its exit status is the step's.
step() {
  "$@" &
  local pid=$! rc=0
  track "$pid"
  wait "$pid" || rc=$?
  # Reaped: its PID may be reused from now on, so cleanup must not signal it.
  bg_pids[${#bg_pids[@]} - 1]=""
  return "$rc"
}

# A PID from a ready file's field, if that process is still what it was: its command
# line must contain WORD, so a reused PID is never killed.
ready_pid() { # FILE FIELD WORD
  local pid
  pid="$(node -e 'try{const v=require(process.argv[1])[process.argv[2]];if(v)process.stdout.write(String(v))}catch{}' "$ROOT/$1" "$2" 2>/dev/null || true)"
  if [[ -n "$pid" ]] && tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -q -- "$3"; then echo "$pid"; fi
  return 0
}

stop_bg() { # INDEX: SIGTERM, wait up to 10 s, SIGKILL; then its leftovers, if any
  local i="$1" pid="${bg_pids[$1]}" ready="${bg_ready[$1]}" left
  [[ -z "$pid" ]] && return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then
    log "helper $pid did not stop: killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
  if [[ -n "$ready" ]]; then
    left="$(ready_pid "$ready" workerdPid workerd)"
    [[ -n "$left" ]] && kill -KILL "$left" 2>/dev/null || true
    # wrangler dev's process group (wrangler and its two workerds).
    left="$(ready_pid "$ready" wranglerPid wrangler)"
    [[ -n "$left" ]] && kill -KILL -- "-$left" 2>/dev/null || true
  fi
  bg_pids[$i]=""
}

cleanup() {
  local rc=$?
  local i
  for i in "${!bg_pids[@]}"; do stop_bg "$i"; done
  if [[ $rc -eq 0 || $rc -eq 3 ]]; then
    rm -rf "$TMP"
  else
    rm -rf "$TMP"/state-* "$TMP"/cold-*/state "$TMP"/dev-*/state
    log "failed (exit $rc); logs kept in $TMP"
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- 1. tools and builds
bash scripts/setup.sh
if [[ "${BENCH_SKIP_BUILD:-}" == "1" ]]; then
  (cd "$OURS" && SKIP_WASM_BUILD=1 bash scripts/build.sh)
else
  (cd "$OURS" && bash scripts/build.sh)
fi
# shellcheck source=scripts/env.sh
source scripts/env.sh

if [[ "${BENCH_SKIP_BUILD:-}" == "1" && -f bench/ceiling/build/index.js ]]; then
  log "BENCH_SKIP_BUILD=1: reusing bench/ceiling/build"
elif [[ "$ONLY" == "push" ]]; then
  log "BENCH_ONLY=push: the ceiling worker is not needed"
else
  log "building the ceiling worker (bench/ceiling)"
  # Same versions as the root: the ceiling's lock file is the root one (cargo drops what
  # the ceiling does not use), so its wasm-bindgen matches the installed CLI.
  cp Cargo.lock bench/ceiling/Cargo.lock
  (cd bench/ceiling && worker-build --release) >"$TMP/ceiling-build.log" 2>&1 || {
    tail -40 "$TMP/ceiling-build.log" >&2
    log "ceiling build failed"
    exit 1
  }
  "$WASM_OPT_BIN" bench/ceiling/build/index_bg.wasm -Oz --strip-debug --strip-producers \
    --enable-mutable-globals --enable-sign-ext --enable-nontrapping-float-to-int \
    --enable-bulk-memory --enable-multivalue --enable-reference-types --enable-exception-handling \
    -o bench/ceiling/build/index_bg.wasm.opt
  mv bench/ceiling/build/index_bg.wasm.opt bench/ceiling/build/index_bg.wasm
fi
log "builds ready after $((SECONDS - started_at)) s"

PEER_CONFIG=""
if [[ -n "$PEER_DIR" ]]; then
  PEER_CONFIG="$PEER_DIR/wrangler.toml"
  [[ -f "$PEER_CONFIG" ]] || { log "no peer at $PEER_CONFIG (BENCH_PEER_DIR= runs without it)"; exit 1; }
  # Served in place by our own Miniflare and wrangler: it needs nothing else (its
  # package.json asks only for wrangler 4.86.0, the version installed here).
  log "peer: $PEER_DIR (wrangler $(node -p 'require(process.argv[1]).devDependencies.wrangler' "$PEER_DIR/package.json"))"
fi

# ---- serving (parts 3 and 6): serve.mjs in the background, its seed through load.mjs
start_serve() { # NAME CONFIG ARGS... ; sets READY to its ready file
  local name="$1" config="$2"
  shift 2
  READY="$TMP/$name.ready.json"
  rm -f "$READY"
  node bench/serve.mjs --config "$config" --state "$TMP/state-$name" --ready "$READY" --log "$TMP/$name-workerd.log" "$@" \
    2>>"$TMP/$name-serve.log" &
  track "$!" "$READY"
  wait_ready "$name" "$!" "$READY" "$TMP/$name-serve.log"
}

wait_ready() { # NAME PID READY LOG
  for _ in $(seq 600); do
    [[ -s "$3" ]] && break
    if ! kill -0 "$2" 2>/dev/null; then
      cat "$4" >&2
      log "$1: exited before it was ready"
      exit 1
    fi
    sleep 0.2
  done
  [[ -s "$3" ]] || { log "$1: not ready after 120 s"; exit 1; }
  log "$1: $(cat "$3")"
}

seed() { # NAME READY [load.mjs seed options]
  local name="$1" ready="$2"
  shift 2
  log "seeding $name"
  step timeout 300 node bench/load.mjs seed --url "$(node -p 'require(process.argv[1]).url' "$ROOT/$ready")" --out "$TMP/$name-seed.json" "$@"
}

export CLK_TCK="$(getconf CLK_TCK)"
loadavg="$(cut -d' ' -f1-3 /proc/loadavg)"

var_args = "${MAIN_VARS[@]}"
main_var_args=("${VAR_ARGS[@]}")
var_args = "${PEER_VARS[@]}"
peer_var_args=("${VAR_ARGS[@]}")

# Part 6, defined here so that BENCH_ONLY=push can run it alone: a fresh Miniflare on a
# fresh state, as in part 3, seeded with the 10-account Kling user and the
# register/complete account (load.mjs seed); bench/push.mjs seeds the rest and measures.
push_part() {
  log "waiting and live view: ours (bench/push.mjs)"
  start_serve push "$OURS_CONFIG" "${main_var_args[@]}"
  local index=$((${#bg_pids[@]} - 1))
  seed push "$READY" --scales 10 --providers kling --extras 1
  step timeout 600 node bench/push.mjs --target "$TMP/push.ready.json" --seed "$TMP/push-seed.json" --out "$TMP/push.json"
  stop_bg "$index"
}
if [[ "$ONLY" == "push" ]]; then
  push_part
  # Kept past the run's clean-up (bench/results/tmp/ is not committed).
  cp "$TMP/push.json" "$RESULTS/tmp/push.json"
  log "BENCH_ONLY=push: done in $((SECONDS - started_at)) s; figures above and in $RESULTS/tmp/push.json (no report written)"
  exit 0
fi

# ---- 2. size
bytes() { stat -c %s "$1"; }
gz() { gzip -9 -c "$1" | wc -c; }
wasm_raw=$(bytes "$OURS/build/index_bg.wasm")
wasm_gzip=$(gz "$OURS/build/index_bg.wasm")
glue_raw=$(bytes "$OURS/build/index.js")
glue_gzip=$(gz "$OURS/build/index.js")
c_wasm_raw=$(bytes bench/ceiling/build/index_bg.wasm)
c_wasm_gzip=$(gz bench/ceiling/build/index_bg.wasm)
c_glue_raw=$(bytes bench/ceiling/build/index.js)
c_glue_gzip=$(gz bench/ceiling/build/index.js)

# What Cloudflare counts: wrangler's own bundle and its "Total Upload" line.
deploy_size() { # NAME CONFIG
  node bench/wrangler.mjs size --config "$2" --work "$TMP/size-$1" --out "$TMP/size-$1.json" 2>>"$TMP/size.log" || {
    cat "$TMP/size.log" >&2
    log "wrangler deploy --dry-run failed for $1"
    exit 1
  }
}
deploy_size main "$OURS_CONFIG"
deploy_size ceiling bench/ceiling/wrangler.toml
if [[ -n "$PEER_CONFIG" ]]; then deploy_size peer "$PEER_CONFIG"; fi
deploy_gzip_kib="$(node -p 'require(process.argv[1]).gzipKiB' "$ROOT/$TMP/size-main.json")"
deploy_gzip_bytes="$(node -p 'Math.round(require(process.argv[1]).gzipKiB * 1024)' "$ROOT/$TMP/size-main.json")"
log "size: wrangler deploy --dry-run gzip ${deploy_gzip_kib} KiB (budget $((WASM_GZIP_BUDGET_BYTES / 1024)) KiB); wasm ${wasm_raw} B raw, ${wasm_gzip} B gzip -9; glue ${glue_raw} B"
size_ok=1
if ((deploy_gzip_bytes > WASM_GZIP_BUDGET_BYTES)); then
  size_ok=0
  log "!!!!! SIZE BUDGET EXCEEDED: ${deploy_gzip_kib} KiB gzip (wrangler deploy --dry-run) > $((WASM_GZIP_BUDGET_BYTES / 1024)) KiB (the run continues; it exits 3 at the end) !!!!!"
fi

# ---- 3. speed (Miniflare)
start_serve main "$OURS_CONFIG" "${main_var_args[@]}"
seed main "$READY"
peer_args=()
if [[ -n "$PEER_CONFIG" ]]; then
  start_serve peer "$PEER_CONFIG" "${peer_var_args[@]}"
  seed peer "$READY"
  peer_args=(--peer "$TMP/peer.ready.json" --peer-seed "$TMP/peer-seed.json")
fi
body_bytes="$(node -p 'require(process.argv[1]).sizes.kling_list_10' "$ROOT/$TMP/main-seed.json")"
# One account's share of a list: the fan-out ceiling's objects answer this many bytes.
slice_bytes="$(node -p 'require(process.argv[1]).sizes.kling_list_1' "$ROOT/$TMP/main-seed.json")"
start_serve ceiling bench/ceiling/wrangler.toml --var "BODY_BYTES=$body_bytes" --var "SLICE_BYTES=$slice_bytes"

log "measuring (${BENCH_REQUESTS:-3000} requests x weight per scenario, concurrency ${BENCH_CONCURRENCY:-8})"
step timeout 1500 node bench/load.mjs bench --main "$TMP/main.ready.json" --main-seed "$TMP/main-seed.json" \
  "${peer_args[@]}" --ceiling "$TMP/ceiling.ready.json" --out "$TMP/run.json"
# The Miniflare servers are done: stop them before the next parts start their own.
for i in "${!bg_pids[@]}"; do stop_bg "$i"; done

# ---- 4. cold start
cold_start() { # NAME CONFIG VAR_ARGS...
  local name="$1" config="$2"
  shift 2
  log "cold start: $name, $COLD_STARTS fresh starts"
  step node bench/cold.mjs --config "$config" --name "$name" --starts "$COLD_STARTS" --work "$TMP/cold-$name" \
    --out "$TMP/cold-$name.json" "$@" 2>>"$TMP/cold.log" ||
    { tail -30 "$TMP/cold.log" >&2; log "cold start failed for $name"; exit 1; }
}
if ((COLD_STARTS > 0)); then
  cold_start main "$OURS_CONFIG" "${main_var_args[@]}"
  if [[ -n "$PEER_CONFIG" ]]; then cold_start peer "$PEER_CONFIG" "${peer_var_args[@]}"; fi
fi

# ---- 5. wrangler dev: the 10-account Kling list
dev_list() { # NAME CONFIG NAME=VALUE...
  local name="$1" config="$2" ready="$TMP/dev-$1.ready.json"
  shift 2
  var_args : "$@"
  log "wrangler dev: $name"
  node bench/wrangler.mjs dev --config "$config" --work "$TMP/dev-$name" --ready "$ready" \
    "${VAR_ARGS[@]}" 2>>"$TMP/dev-$name.log" &
  local pid=$! index=${#bg_pids[@]}
  track "$pid" "$ready"
  wait_ready "dev-$name" "$pid" "$ready" "$TMP/dev-$name.log"
  seed "dev-$name" "$ready" --scales 10 --providers kling --extras 0
  step timeout 600 node bench/load.mjs one --target "$ready" --seed "$TMP/dev-$name-seed.json" --scenario kling_list_10 \
    --name "$name" --requests "$DEV_REQUESTS" --out "$TMP/dev-$name.json"
  stop_bg "$index"
}
if ((DEV_REQUESTS > 0)); then
  dev_list main "$OURS_CONFIG" "${MAIN_VARS[@]}"
  if [[ -n "$PEER_CONFIG" ]]; then dev_list peer "$PEER_CONFIG" "${PEER_VARS[@]}"; fi
fi

# ---- 6. waiting and the live view, ours only (push_part above; about 2 minutes)
if [[ "$PUSH" != "0" ]]; then push_part; fi

# ---- 7. report
workerd_version="$(node_modules/.bin/workerd --version 2>/dev/null | awk '{print $2}')"
git_desc="$(git -C "$OURS" rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [[ -n "$(git -C "$OURS" status --porcelain -- src Cargo.toml Cargo.lock build.rs openapi.yaml wrangler.toml 2>/dev/null)" ]]; then
  git_desc="$git_desc + uncommitted changes in the worker sources"
fi
# The optional parts' files, as NAME=FILE pairs for the report (absent parts are skipped).
optional_json() {
  local out=() f
  for f in "$@"; do [[ -f "$ROOT/$TMP/$f.json" ]] && out+=("$f=$ROOT/$TMP/$f.json"); done
  echo "${out[*]:-}"
}
META="$TMP/meta.json" PARTS="$(optional_json size-main size-peer size-ceiling cold-main cold-peer dev-main dev-peer push)" \
  MAIN_READY="$TMP/main.ready.json" PEER_DIR="$PEER_DIR" MAIN_VARS="${MAIN_VARS[*]}" PEER_VARS="${PEER_VARS[*]}" node -e '
  const fs = require("fs");
  const [date, nproc, cpu, mem, node, workerd, rustc, wb, git, loadavg,
         wasmRaw, wasmGzip, glueRaw, glueGzip, cWasmRaw, cWasmGzip, cGlueRaw, cGlueGzip, budget, target] = process.argv.slice(1);
  const pkg = (p) => JSON.parse(fs.readFileSync(p, "utf8")).version;
  const read = (f) => JSON.parse(fs.readFileSync(f, "utf8"));
  const parts = Object.fromEntries((process.env.PARTS || "").split(" ").filter(Boolean).map((p) => p.split("=")).map(([k, f]) => [k, read(f)]));
  fs.writeFileSync(process.env.META, JSON.stringify({
    date, loadavg, git, socket: read(process.env.MAIN_READY).socket,
    peer: process.env.PEER_DIR || null,
    vars: { main: process.env.MAIN_VARS.split(" "), peer: process.env.PEER_VARS.split(" ") },
    machine: { nproc: Number(nproc), cpu, memory: mem },
    versions: { node, workerd, miniflare: pkg("node_modules/miniflare/package.json"), wrangler: pkg("node_modules/wrangler/package.json"), rustc, workerBuild: wb },
    size: { wasmRaw: +wasmRaw, wasmGzip: +wasmGzip, glueRaw: +glueRaw, glueGzip: +glueGzip,
            ceilingWasmRaw: +cWasmRaw, ceilingWasmGzip: +cWasmGzip, ceilingGlueRaw: +cGlueRaw, ceilingGlueGzip: +cGlueGzip,
            budgetGzip: +budget, targetGzip: +target,
            deploy: { main: parts["size-main"], peer: parts["size-peer"], ceiling: parts["size-ceiling"] } },
    cold: { main: parts["cold-main"], peer: parts["cold-peer"] },
    dev: { main: parts["dev-main"], peer: parts["dev-peer"] },
    push: parts["push"],
  }, null, 2));
' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$(nproc)" \
  "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')" \
  "$(awk '/MemTotal/ {printf "%.0f GiB RAM", $2/1048576}' /proc/meminfo)" \
  "$(node --version)" "$workerd_version" "$(rustc --version)" "$(worker-build --version 2>/dev/null | awk '{print $NF}')" \
  "$git_desc" "$loadavg" \
  "$wasm_raw" "$wasm_gzip" "$glue_raw" "$glue_gzip" "$c_wasm_raw" "$c_wasm_gzip" "$c_glue_raw" "$c_glue_gzip" \
  "$WASM_GZIP_BUDGET_BYTES" "$WASM_GZIP_TARGET_BYTES"

out_name=latest
if [[ "$OURS" != "$ROOT" ]]; then out_name="ours-${git_desc%% *}"; fi
node bench/report.mjs --results "$TMP/run.json" --meta "$TMP/meta.json" --out-dir "$RESULTS" --name "$out_name"
log "wrote $RESULTS/$out_name.md, $RESULTS/$out_name.json and the scale chart in $((SECONDS - started_at)) s"

if ((size_ok == 0)); then
  log "FAIL: ${deploy_gzip_kib} KiB gzip (wrangler deploy --dry-run) is over the budget of $((WASM_GZIP_BUDGET_BYTES / 1024)) KiB (bench/run.sh, WASM_GZIP_BUDGET_BYTES)"
  exit 3
fi
