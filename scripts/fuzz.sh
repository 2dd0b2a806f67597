#!/usr/bin/env bash
# Schema-driven fuzzing of the running worker with schemathesis (PyPI), against the
# hand-written openapi.yaml. Exits non-zero on any finding.
#
#   1. installs schemathesis (pinned, with its dependencies: tests/fuzz/fuzz-requirements.txt)
#      into a project-local venv, .venv-fuzz/ (idempotent: skipped once installed)
#   2. builds the worker unless SKIP_WASM_BUILD=1 and a build exists (scripts/build.sh)
#   3. starts it under wrangler dev and seeds fixtures (tests/fuzz/fuzz-worker.mjs): for
#      user 12345 (the public token's) and every provider, accounts with room, accounts the
#      fuzzer may reconfigure and remove, executing jobs with known ids, failed webhook
#      deliveries and real page cursors; tokens of other users to revoke
#   4. runs `schemathesis run` on every operation: examples, coverage, fuzzing and stateful
#      phases, positive and negative data, with the user token for the public routes and
#      the admin token for the operator routes (per security scheme). The config
#      (tests/fuzz/fuzz_config.py) points most generated parameters at the fixtures; the
#      hooks (tests/fuzz/fuzz_hooks.py) put used-up fixtures back, keep webhooks local and
#      count the answers. The stateful phase follows the document's OpenAPI links
#      (token -> revoke/use; account -> register -> complete/progress/cancel; complete ->
#      webhooks -> retry), in a second run bounded by FUZZ_STATEFUL_SCENARIOS chains of at
#      most FUZZ_STATEFUL_STEPS calls and FUZZ_STATEFUL_SECONDS. Checks:
#        not_a_server_error, status_code_conformance, content_type_conformance,
#        response_headers_conformance, response_schema_conformance, ignored_auth,
#        unsupported_method (405 + Allow for undocumented methods)
#   5. prints, per operation, how many answers were 2xx / 4xx / 5xx (and the 2xx share),
#      the number of operations and cases, and fails when an operation that can succeed
#      never got a 2xx (the live views are WebSocket upgrades: their success is a 101,
#      which tests/e2e/openapi.test.mjs checks; here they answer 426); stops the worker
#
#   FUZZ_MAX_EXAMPLES=25        examples per operation and phase (schemathesis -n)
#   FUZZ_STATEFUL_SCENARIOS=200 stateful scenarios (each one a chain of linked calls)
#   FUZZ_STATEFUL_STEPS=8       calls per stateful scenario at most
#   FUZZ_STATEFUL_SECONDS=45    time budget of the stateful phase
#   FUZZ_SEED=...               reproduce a run (schemathesis --seed); default random
#   FUZZ_SCHEMA=path            the document to fuzz against (default openapi.yaml; another
#                               one shows that a wrong document is caught)
#   FUZZ_KEEP=dir               copy the run's files there (logs, config, per-call tally;
#                               info.json holds the run's throwaway tokens)
#   FUZZ_WORKERS=1              concurrent schemathesis workers (threads; more than one trips
#                               a CPython 3.11 ast.parse thread-safety bug inside hypothesis:
#                               "AST constructor recursion depth mismatch")
#
# Every request carries its own `cf-connecting-ip` (tests/fuzz/fuzz_hooks.py): the worker
# throttles failed authentications per client address (429 after 30 a minute), and the
# fuzzer's deliberate no-auth probes would otherwise trip it and be judged as "auth not
# enforced". The 429 itself is covered by tests/e2e/openapi.test.mjs.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$PWD"

SCHEMATHESIS_VERSION="4.32.5"
VENV="$ROOT/.venv-fuzz"
MAX_EXAMPLES="${FUZZ_MAX_EXAMPLES:-25}"
SCENARIOS="${FUZZ_STATEFUL_SCENARIOS:-200}"
STATEFUL_SECONDS="${FUZZ_STATEFUL_SECONDS:-45}"
STEPS="${FUZZ_STATEFUL_STEPS:-8}"
SCHEMA="$(realpath "${FUZZ_SCHEMA:-openapi.yaml}")"
WORKERS="${FUZZ_WORKERS:-1}"

log() { printf '[fuzz] %s\n' "$*"; }

# 1. schemathesis in .venv-fuzz (Python >= 3.10), every package pinned by
#    tests/fuzz/fuzz-requirements.txt; a stamp of that file's digest makes this a no-op
#    once installed.
REQS="tests/fuzz/fuzz-requirements.txt"
want="$(sha256sum "$REQS" | awk '{print $1}')"
have="$(cat "$VENV/.requirements.sha256" 2>/dev/null || true)"
if [[ "$want" == "$have" && -x "$VENV/bin/schemathesis" ]]; then
  log "schemathesis $SCHEMATHESIS_VERSION: present in .venv-fuzz"
else
  log "schemathesis $SCHEMATHESIS_VERSION: installing into .venv-fuzz ($REQS)"
  PY="${PYTHON:-python3}"
  if ! "$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)'; then
    log "error: $PY is older than 3.10; schemathesis $SCHEMATHESIS_VERSION needs 3.10+" >&2
    exit 2
  fi
  if [[ ! -x "$VENV/bin/python" ]]; then
    "$PY" -m venv "$VENV" || {
      log "error: python3 -m venv failed (on Debian: apt-get install python3-venv)" >&2
      exit 2
    }
  fi
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQS"
  installed="$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("schemathesis"))')"
  if [[ "$installed" != "$SCHEMATHESIS_VERSION" ]]; then
    log "error: $REQS installed schemathesis $installed, expected $SCHEMATHESIS_VERSION" >&2
    exit 2
  fi
  echo "$want" >"$VENV/.requirements.sha256"
fi

# 2. The wasm build (wrangler dev reuses it: tests/support/server.mjs sets SKIP_WASM_BUILD=1).
if [[ "${SKIP_WASM_BUILD:-}" == "1" && -f build/worker/shim.mjs ]]; then
  log "reusing the existing build (SKIP_WASM_BUILD=1)"
else
  bash scripts/setup.sh
  env -u SKIP_WASM_BUILD bash scripts/build.sh
fi

work="$(mktemp -d)"
worker_pid=""
cleanup() {
  if [[ -n "$worker_pid" ]] && kill -0 "$worker_pid" 2>/dev/null; then
    kill -TERM "$worker_pid" 2>/dev/null || true
    wait "$worker_pid" 2>/dev/null || true
  fi
  if [[ -n "${FUZZ_KEEP:-}" ]]; then cp -r "$work/." "$FUZZ_KEEP/" || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# 3. The worker. fuzz-worker.mjs prints one JSON line when ready and runs until SIGTERM.
log "starting the worker (wrangler dev) and seeding fixtures"
node tests/fuzz/fuzz-worker.mjs >"$work/info.json" 2>"$work/worker.err" </dev/null &
worker_pid=$!
for _ in $(seq 1 180); do
  [[ -s "$work/info.json" ]] && break
  if ! kill -0 "$worker_pid" 2>/dev/null; then
    log "error: the worker did not start:" >&2
    cat "$work/worker.err" >&2
    exit 2
  fi
  sleep 1
done
if [[ ! -s "$work/info.json" ]]; then
  log "error: the worker did not start within 180 s" >&2
  cat "$work/worker.err" >&2
  exit 2
fi
field() { "$VENV/bin/python" -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$work/info.json" "$1"; }
URL="$(field url)"
USER_TOKEN="$(field userToken)"
ADMIN_TOKEN="$(field adminToken)"
WORKER_LOG="$(field logFile)"
log "worker on $URL"

# 4. schemathesis. Tokens go to the config file through the environment (not argv).
"$VENV/bin/python" tests/fuzz/fuzz_config.py "$work/info.json" "$work/schemathesis.toml" "$SCENARIOS" "$STEPS"

seed_args=()
if [[ -n "${FUZZ_SEED:-}" ]]; then seed_args=(--seed "$FUZZ_SEED"); fi

# One schemathesis run over every operation: run_schemathesis <name> <phases> [options].
run_schemathesis() {
  local name="$1" phases="$2"
  shift 2
  FUZZ_USER_TOKEN="$USER_TOKEN" FUZZ_ADMIN_TOKEN="$ADMIN_TOKEN" \
  FUZZ_FIXTURES="$work/info.json" FUZZ_STATS="$work/stats.tsv" FUZZ_SEED="${FUZZ_SEED:-}" \
  PYTHONPATH="$ROOT/tests/fuzz${PYTHONPATH:+:$PYTHONPATH}" SCHEMATHESIS_HOOKS=fuzz_hooks \
    "$VENV/bin/schemathesis" --config-file "$work/schemathesis.toml" run "$SCHEMA" \
      --url "$URL" \
      --phases "$phases" \
      --mode all \
      --max-examples "$MAX_EXAMPLES" \
      --workers "$WORKERS" \
      --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance,ignored_auth,unsupported_method \
      --request-timeout 30 \
      --no-color \
      "${seed_args[@]}" "$@" 2>&1 | tee "$work/$name.log"
  return "${PIPESTATUS[0]}"
}

set +e
log "schemathesis run 1/2: examples, coverage, fuzzing: $MAX_EXAMPLES examples per operation and phase, modes positive+negative"
run_schemathesis schemathesis examples,coverage,fuzzing
rc=$?
# The stateful phase on its own, so that its budget is its own: schemathesis repeats
# its suite (each one a set of linked chains) until $SCENARIOS chains ran or the time is
# spent.
log "schemathesis run 2/2: stateful: $SCENARIOS scenarios of <= $STEPS calls, at most ${STATEFUL_SECONDS}s"
run_schemathesis stateful stateful --max-time "$STATEFUL_SECONDS"
rc2=$?
set -e
[[ $rc -ne 0 ]] || rc=$rc2

# 5. Counts: per operation (from the hooks' tally), then schemathesis' own totals.
"$VENV/bin/python" - "$work/stats.tsv" "$SCHEMA" <<'PY' | tee "$work/per-operation.txt"
import collections, json, sys
import yaml
lines = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
rows = [l for l in lines if not l[0].startswith("#")]
resent = sum(1 for l in lines if l[0] == "#resent")
refills = [l for l in lines if l[0] == "#refill"]
doc = yaml.safe_load(open(sys.argv[2]))
ops = [o["operationId"] for item in doc["paths"].values() for m, o in item.items() if isinstance(o, dict) and "operationId" in o]
by = collections.defaultdict(collections.Counter)
stateful = collections.Counter()
for op, phase, status, *_ in rows:
    by[op][status[0] + "xx"] += 1
    if phase == "stateful":
        stateful[op] += 1
print(f"{'operation':32} {'calls':>6} {'2xx':>5} {'4xx':>5} {'5xx':>4} {'other':>5} {'2xx%':>5} {'stateful':>8}")
never = []
for op in sorted(ops):
    c = by[op]
    total = sum(c.values())
    other = total - c["2xx"] - c["4xx"] - c["5xx"]
    share = 100 * c["2xx"] / total if total else 0
    print(f"{op:32} {total:6} {c['2xx']:5} {c['4xx']:5} {c['5xx']:4} {other:5} {share:5.0f} {stateful[op]:8}")
    if c["2xx"] == 0 and not op.endswith("Live"):
        never.append(op)
calls = sum(sum(c.values()) for c in by.values())
ok = sum(c["2xx"] for c in by.values())
print(f"{len(ops)} operations, {calls} calls, {ok} 2xx ({100 * ok / max(calls, 1):.0f}%), {sum(stateful.values())} in the stateful phase")
if resent:
    print(f"{resent} request(s) resent after a wrangler dev proxy 503 (never the worker's answer)")
if refills:
    print(f"{len(refills)} used-up fixture(s) could not be put back, e.g. {refills[0][1]}: {refills[0][2]} {refills[0][3]}")
if never:
    print("NO 2xx: " + " ".join(never))
PY
ops="$(grep -ao 'Tested: [0-9]\+' "$work/schemathesis.log" | awk '{print $2}' | tail -1)"
cases="$(grep -ao '[0-9]\+ generated' "$work/schemathesis.log" | awk '{print $1}' | tail -1)"
scenarios="$(grep -ao 'Scenarios: *[0-9]\+' "$work/stateful.log" | awk '{print $2}' | tail -1)"
links="$(grep -ao 'API Links: *[0-9]\+ covered / [0-9]\+' "$work/stateful.log" | tail -1 | sed 's/API Links: *//')"
steps="$(grep -ao '[0-9]\+ generated' "$work/stateful.log" | awk '{print $1}' | tail -1)"
log "operations tested: ${ops:-?}, cases: ${cases:-?}; stateful: ${scenarios:-?} scenarios, ${steps:-?} calls, links ${links:-?}"
if [[ $rc -ne 0 ]]; then
  log "FAILED (schemathesis exit $rc). Worker log tail ($WORKER_LOG):" >&2
  tail -n 40 "$WORKER_LOG" >&2 || true
  exit "$rc"
fi
if grep -q '^NO 2xx:' "$work/per-operation.txt"; then
  log "FAILED: $(grep '^NO 2xx:' "$work/per-operation.txt") (an operation that can succeed never did)" >&2
  exit 1
fi
log "passed"
