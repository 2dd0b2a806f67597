#!/usr/bin/env bash
# Installs, idempotently, everything a fresh machine lacks to build, run and test the
# worker. Only package registries are reachable (crates.io, npm): worker-build's own
# GitHub downloads of wasm-bindgen / wasm-opt would fail, so we install both ourselves:
#   - the wasm32-unknown-unknown Rust target        (rustup)
#   - worker-build 0.8.7                             (cargo install, crates.io)
#   - wasm-bindgen CLI, same version as Cargo.lock   (cargo install, crates.io)
#   - wrangler (workerd) and binaryen (wasm-opt)     (npm ci, npm registry)
#   - Chromium for the page's browser tests          (apt-get, Debian's package;
#     playwright-core drives /usr/bin/chromium and never downloads a browser)
# Every step is skipped when what it installs is already there, so running this again
# costs a second or two. It exports nothing: scripts/env.sh sets the build variables.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

WORKER_BUILD_VERSION="0.8.7"

log() { printf '[setup] %s\n' "$*"; }

# ~/.cargo/bin may be missing from PATH in a non-login shell (CI).
if [[ -d "${CARGO_HOME:-$HOME/.cargo}/bin" ]]; then
  export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
fi

# 1. The wasm target.
if rustup target list --installed | grep -qx 'wasm32-unknown-unknown'; then
  log "rust target wasm32-unknown-unknown: present"
else
  log "rust target wasm32-unknown-unknown: installing"
  rustup target add wasm32-unknown-unknown
fi

# 2. worker-build, pinned to the workers-rs version we use.
current_wb="$(worker-build --version 2>/dev/null | awk '{print $NF}' || true)"
if [[ "$current_wb" == "$WORKER_BUILD_VERSION" ]]; then
  log "worker-build $WORKER_BUILD_VERSION: present"
else
  log "worker-build $WORKER_BUILD_VERSION: installing (found '${current_wb:-none}')"
  cargo install worker-build --version "$WORKER_BUILD_VERSION" --locked
fi

# 3. The wasm-bindgen CLI must match the wasm-bindgen crate in Cargo.lock exactly,
#    or the generated JS glue does not fit the wasm module.
wbg_version="$(awk '
  $0 == "name = \"wasm-bindgen\"" { found = 1; next }
  found && /^version = / { gsub(/"/, "", $3); print $3; exit }
' Cargo.lock)"
if [[ -z "$wbg_version" ]]; then
  log "error: no wasm-bindgen package in Cargo.lock" >&2
  exit 1
fi
current_wbg="$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)"
if [[ "$current_wbg" == "$wbg_version" ]]; then
  log "wasm-bindgen-cli $wbg_version: present"
else
  log "wasm-bindgen-cli $wbg_version: installing (found '${current_wbg:-none}')"
  # Not --locked: the CLI's own lock file pins crates that no longer build on a
  # current toolchain; the version pin is what has to match.
  cargo install wasm-bindgen-cli --version "$wbg_version"
fi

# 4. npm packages (wrangler -> workerd, binaryen -> wasm-opt, playwright-core for the
#    browser tests; it downloads no browser), from package-lock.json.
#    A stamp written after a successful `npm ci` records when node_modules was
#    installed; a package-lock.json newer than it means node_modules is stale.
stamp="node_modules/.setup-stamp"
reference="$stamp"
[[ -f "$reference" ]] || reference="node_modules/.package-lock.json"
if [[ ! -f node_modules/.package-lock.json || ! -x node_modules/.bin/wrangler \
      || ! -x node_modules/.bin/wasm-opt || ! -f node_modules/playwright-core/package.json \
      || package-lock.json -nt "$reference" ]]; then
  log "npm packages: installing (npm ci)"
  npm ci --no-audit --no-fund
  touch "$stamp"
else
  log "npm packages: up to date"
fi

# 5. Chromium for tests/browser (headless, driven by playwright-core). Debian's own
#    package: no npm package may fetch a browser build. `apt-get update` only when
#    the install fails without it (a fresh machine's package lists may be empty or old).
if [[ -x /usr/bin/chromium ]]; then
  log "chromium: present"
else
  log "chromium: installing (apt-get install -y chromium)"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y --no-install-recommends chromium; then
    log "chromium: install failed, refreshing package lists (apt-get update) and retrying"
    apt-get update
    apt-get install -y --no-install-recommends chromium
  fi
fi

log "done"
