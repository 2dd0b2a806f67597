#!/usr/bin/env bash
# Load test with invariants against the real worker under `wrangler dev` (issue 5):
#   1. tests/load/load.mjs    concurrent users reading and writing jobs of all five
#                             providers (tests/load/providers.mjs); invariants checked
#                             during and after the run (capacity, conservation, webhooks,
#                             no 5xx)
#   2. tests/load/faults.mjs  the same load with the local server SIGKILLed and restarted
#                             on the same persist dir; lost answers reconciled, same
#                             invariants
# Needs a wasm build (scripts/build.sh); every wrangler start reuses it (SKIP_WASM_BUILD=1).
# Exits non-zero when an invariant is violated in either run.
#
#   LOAD_MODE=all|load|faults  which runs (default all)
#   LOAD_USERS=6               simulated users, each its own token and accounts
#   LOAD_REQUESTS=2000         requests per user (plus sampling, setup and final checks)
#   LOAD_CONCURRENCY=3         request loops per user
#   LOAD_KILLS=2               server kills in the faults run
#   LOAD_SEED=...              repeat a run
# Extra arguments go to both runs, e.g. `bash scripts/load.sh --json`.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [[ ! -f build/worker/shim.mjs ]]; then
  echo "load.sh: no build/worker/shim.mjs; run scripts/build.sh first" >&2
  exit 2
fi
export SKIP_WASM_BUILD=1

mode="${LOAD_MODE:-all}"
common=(--users "${LOAD_USERS:-6}" --requests "${LOAD_REQUESTS:-2000}" --concurrency "${LOAD_CONCURRENCY:-3}")
if [[ -n "${LOAD_SEED:-}" ]]; then common+=(--seed "$LOAD_SEED"); fi

rc=0
if [[ "$mode" == all || "$mode" == load ]]; then
  node tests/load/load.mjs "${common[@]}" "$@" || rc=1
fi
if [[ "$mode" == all || "$mode" == faults ]]; then
  node tests/load/faults.mjs "${common[@]}" --kills "${LOAD_KILLS:-2}" "$@" || rc=1
fi
if [[ $rc -eq 0 ]]; then echo "load.sh: every invariant held"; else echo "load.sh: FAILED (invariant violations above)"; fi
exit $rc
