#!/usr/bin/env bash
# Schema-driven fuzzing of the running worker with schemathesis (PyPI), against the
# hand-written openapi.yaml. Exits non-zero on any finding.
#
#   1. installs schemathesis (pinned, with its dependencies: tests/fuzz/fuzz-requirements.txt)
#      into a project-local venv, .venv-fuzz/ (idempotent: skipped once installed)
#   2. builds the worker unless SKIP_WASM_BUILD=1 and a build exists (scripts/build.sh)
#   3. starts it under wrangler dev through the e2e support (tests/fuzz/fuzz-worker.mjs: fresh
#      --persist-to temp dir, ADMIN_TOKEN set), issues an API token for user 12345 and
#      configures Kling a@x.com, b@x.com and Dreamina US:a@x.com, US:b@x.com for it
#   4. runs `schemathesis run` on every operation: examples, coverage and fuzzing phases,
#      positive and negative data, with the user token for the public routes and the
#      admin token for the operator routes (per security scheme), checking
#        not_a_server_error, status_code_conformance, content_type_conformance,
#        response_headers_conformance, response_schema_conformance, ignored_auth
#   5. prints the number of operations and cases, stops the worker
#
#   FUZZ_MAX_EXAMPLES=30   examples per operation and phase (schemathesis -n)
#   FUZZ_SEED=...          reproduce a run (schemathesis --seed); default random
#   FUZZ_SCHEMA=path       the document to fuzz against (default openapi.yaml; another one
#                          shows that a wrong document is caught)
#   FUZZ_WORKERS=1         concurrent schemathesis workers (threads; more than one trips a
#                          CPython 3.11 ast.parse thread-safety bug inside hypothesis:
#                          "AST constructor recursion depth mismatch")
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
MAX_EXAMPLES="${FUZZ_MAX_EXAMPLES:-30}"
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
  rm -rf "$work"
}
trap cleanup EXIT

# 3. The worker. fuzz-worker.mjs prints one JSON line when ready and runs until SIGTERM.
log "starting the worker (wrangler dev)"
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
cat >"$work/schemathesis.toml" <<'EOF'
[auth.openapi.userToken]
bearer = "${FUZZ_USER_TOKEN}"

[auth.openapi.adminToken]
bearer = "${FUZZ_ADMIN_TOKEN}"

# Most generated path and body values name the configured user and accounts, so cases
# get past the 400/404s into admission, completion and the lists.
[dictionaries.users]
values = ["12345"]

[dictionaries.accounts]
values = ["a@x.com", "US:a@x.com", "b@x.com", "US:b@x.com"]

[dictionaries.kling_accounts]
values = ["a@x.com", "b@x.com"]

[dictionaries.dreamina_accounts]
values = ["US:a@x.com", "US:b@x.com"]

[parameters]
"path.user" = { dictionary = "users", probability = 0.8 }
"path.account" = { dictionary = "accounts", probability = 0.5 }
"body.email" = { dictionary = "kling_accounts", probability = 0.5 }
"body.account" = { dictionary = "dreamina_accounts", probability = 0.5 }
EOF

seed_args=()
if [[ -n "${FUZZ_SEED:-}" ]]; then seed_args=(--seed "$FUZZ_SEED"); fi

log "schemathesis run: $MAX_EXAMPLES examples per operation and phase, modes positive+negative"
set +e
FUZZ_USER_TOKEN="$USER_TOKEN" FUZZ_ADMIN_TOKEN="$ADMIN_TOKEN" \
PYTHONPATH="$ROOT/tests/fuzz${PYTHONPATH:+:$PYTHONPATH}" SCHEMATHESIS_HOOKS=fuzz_hooks \
  "$VENV/bin/schemathesis" --config-file "$work/schemathesis.toml" run "$SCHEMA" \
    --url "$URL" \
    --phases examples,coverage,fuzzing \
    --mode all \
    --max-examples "$MAX_EXAMPLES" \
    --workers "$WORKERS" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance,ignored_auth \
    --request-timeout 30 \
    --no-color \
    "${seed_args[@]}" 2>&1 | tee "$work/schemathesis.log"
rc=${PIPESTATUS[0]}
set -e

# 5. Counts.
ops="$(grep -ao 'Tested: [0-9]\+' "$work/schemathesis.log" | awk '{print $2}' | tail -1)"
cases="$(grep -ao '[0-9]\+ generated' "$work/schemathesis.log" | awk '{print $1}' | tail -1)"
log "operations tested: ${ops:-?}, cases: ${cases:-?}"
if [[ $rc -ne 0 ]]; then
  log "FAILED (schemathesis exit $rc). Worker log tail ($WORKER_LOG):" >&2
  tail -n 40 "$WORKER_LOG" >&2 || true
  exit "$rc"
fi
log "passed"
