#!/usr/bin/env bash
# The one test command (README, .ci/run). Runs, in order:
#   1. scripts/setup.sh                       install missing tools (idempotent)
#   2. cargo fmt --check                      formatting
#   3. cargo clippy (native, all targets)     lints, warnings are errors
#   4. cargo clippy (wasm32, lib)             lints of the wasm-only code
#   5. cargo test                             native unit tests
#   6. scripts/build.sh                       the wasm build, once
#   7. node --test tests/e2e/*.test.mjs       end-to-end tests against wrangler dev
#                                             (SKIP_WASM_BUILD=1: every start reuses 6)
#   8. node --test tests/browser/*.test.mjs   the live-view page in headless Chromium
#                                             (a fake server, and the real worker of 6)
#   9. scripts/fuzz.sh                        schemathesis against openapi.yaml
# A failing check does not stop the later independent ones, so one run shows every
# problem; the e2e and browser suites are skipped when the build failed. Exits non-zero
# on any failure and ends with a summary: each step's result, then the test counts.
#
#   E2E_CONCURRENCY=2          test files run at once (each starts its own wrangler dev)
#   E2E_FILES="..."            run only these test files
#   E2E_TEST_TIMEOUT_MS=300000 per-test time limit (e2e and browser tests)
#   SCREENSHOT_DIR=docs        where the browser test saves the page's screenshots (default: a temp dir)
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [[ -d "${CARGO_HOME:-$HOME/.cargo}/bin" ]]; then
  export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
fi

logs="$(mktemp -d)"
trap 'rm -rf "$logs"' EXIT

declare -a names=() results=() durations=()
failed=0

# step NAME CMD...: runs one check, records PASS/FAIL and its duration.
step() {
  local name="$1"; shift
  local start=$SECONDS rc
  printf '\n===== %s: %s\n' "$name" "$*"
  "$@"
  rc=$?
  names+=("$name"); durations+=($((SECONDS - start)))
  if [[ $rc -eq 0 ]]; then
    results+=("PASS")
  else
    results+=("FAIL (exit $rc)"); failed=1
  fi
  return $rc
}

skip() {
  names+=("$1"); results+=("SKIPPED ($2)"); durations+=(0); failed=1
}

unit_tests() {
  cargo test 2>&1 | tee "$logs/unit.log"
}

e2e_tests() {
  local files
  read -r -a files <<<"${E2E_FILES:-$(echo tests/e2e/*.test.mjs)}"
  SKIP_WASM_BUILD=1 node --test \
    --test-concurrency="${E2E_CONCURRENCY:-2}" \
    --test-reporter=spec \
    --test-timeout="${E2E_TEST_TIMEOUT_MS:-300000}" \
    "${files[@]}" 2>&1 | tee "$logs/e2e.log"
}

browser_tests() {
  SKIP_WASM_BUILD=1 node --test \
    --test-concurrency=1 \
    --test-reporter=spec \
    --test-timeout="${E2E_TEST_TIMEOUT_MS:-300000}" \
    tests/browser/*.test.mjs 2>&1 | tee "$logs/browser.log"
}

# Test counts: cargo prints "test result: ok. N passed; M failed; ..." per test binary,
# node's spec reporter "ℹ pass N" / "ℹ fail N" once.
count() {
  local unit_pass unit_fail e2e_pass e2e_fail browser_pass browser_fail
  unit_pass=$(grep -a '^test result:' "$logs/unit.log" 2>/dev/null | grep -o '[0-9]\+ passed' | awk '{s+=$1} END {print s+0}')
  unit_fail=$(grep -a '^test result:' "$logs/unit.log" 2>/dev/null | grep -o '[0-9]\+ failed' | awk '{s+=$1} END {print s+0}')
  e2e_pass=$(grep -ao '^ℹ pass [0-9]\+' "$logs/e2e.log" 2>/dev/null | awk '{s+=$3} END {print s+0}')
  e2e_fail=$(grep -ao '^ℹ fail [0-9]\+' "$logs/e2e.log" 2>/dev/null | awk '{s+=$3} END {print s+0}')
  browser_pass=$(grep -ao '^ℹ pass [0-9]\+' "$logs/browser.log" 2>/dev/null | awk '{s+=$3} END {print s+0}')
  browser_fail=$(grep -ao '^ℹ fail [0-9]\+' "$logs/browser.log" 2>/dev/null | awk '{s+=$3} END {print s+0}')
  printf '  unit tests: %s passed, %s failed\n' "$unit_pass" "$unit_fail"
  printf '  e2e tests:  %s passed, %s failed\n' "$e2e_pass" "$e2e_fail"
  printf '  browser tests: %s passed, %s failed\n' "$browser_pass" "$browser_fail"
  total_pass=$((unit_pass + e2e_pass + browser_pass))
  total_fail=$((unit_fail + e2e_fail + browser_fail))
}

summary() {
  printf '\n===== summary\n'
  local i
  for i in "${!names[@]}"; do
    printf '  %-14s %-24s %4ss\n' "${names[$i]}" "${results[$i]}" "${durations[$i]}"
  done
  total_pass=0 total_fail=0
  count
  if [[ $failed -eq 0 ]]; then
    printf 'test.sh: every step passed\n'
  else
    printf 'test.sh: FAILED (see the steps above)\n'
  fi
  printf 'tests: %s passed, %s failed\n' "$total_pass" "$total_fail"
  failure_details
}

# The failing tests' own messages, printed last so that a log cut to its tail (a CI
# excerpt) still says what failed and why: node's "✖ failing tests:" section of each
# suite's log, at most 60 lines of at most 600 characters each.
failure_details() {
  local log
  for log in "$logs/e2e.log" "$logs/browser.log"; do
    [[ -f "$log" ]] && grep -aq '^✖ failing tests:' "$log" || continue
    printf '\n===== failing tests (%s)\n' "$(basename "$log" .log)"
    sed -n '/^✖ failing tests:/,$p' "$log" | sed -n '2,61p' | cut -c1-600
  done
}

if ! step setup bash scripts/setup.sh; then
  skip "rest" "setup failed"; summary; exit 1
fi

step fmt cargo fmt --check
step clippy-native cargo clippy --all-targets -- -D warnings
step clippy-wasm cargo clippy --target wasm32-unknown-unknown --lib -- -D warnings
step unit-tests unit_tests

# Always rebuild here (never reuse a stale build/ from an earlier source tree).
if step wasm-build env -u SKIP_WASM_BUILD bash scripts/build.sh; then
  step e2e e2e_tests
  # The live-view page in headless Chromium (tests/browser/page.mjs), against a fake
  # server and against the real worker.
  step browser browser_tests
  # Schema-driven fuzzing (schemathesis) against openapi.yaml, bounded examples.
  step fuzz env SKIP_WASM_BUILD=1 bash scripts/fuzz.sh
else
  skip e2e "no wasm build"
  skip browser "no wasm build"
  skip fuzz "no wasm build"
fi

summary
exit $failed
