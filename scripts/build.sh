#!/usr/bin/env bash
# Builds the worker (Rust -> wasm + JS shim in build/worker/). wrangler.toml's [build]
# command runs this from the repository root before every `wrangler dev` / `deploy`.
#
#   SKIP_WASM_BUILD=1  reuse an existing build/worker/shim.mjs (the e2e suite builds
#                      once, then starts many wrangler instances without rebuilding).
#
# Run scripts/setup.sh first on a fresh machine (dev.sh and test.sh do).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [[ "${SKIP_WASM_BUILD:-}" == "1" && -f build/worker/shim.mjs ]]; then
  echo "[build] SKIP_WASM_BUILD=1 and build/worker/shim.mjs exists: reusing the build"
  exit 0
fi

# shellcheck source=scripts/env.sh
source scripts/env.sh

if [[ -z "$WASM_BINDGEN_BIN" ]]; then
  echo "[build] error: wasm-bindgen CLI not found; run scripts/setup.sh" >&2
  exit 1
fi
if [[ ! -x "$WASM_OPT_BIN" ]]; then
  echo "[build] error: $WASM_OPT_BIN not found; run scripts/setup.sh" >&2
  exit 1
fi

echo "[build] worker-build --release (wasm-bindgen: $WASM_BINDGEN_BIN, wasm-opt: $WASM_OPT_BIN, esbuild: $ESBUILD_BIN)"
worker-build --release

# Size pass (see Cargo.toml): optimise for size and drop the names/producers sections.
# The feature list matches the one worker-build passes, so nothing newer than workerd
# understands is emitted.
echo "[build] wasm-opt -Oz --strip-debug --strip-producers build/index_bg.wasm"
"$WASM_OPT_BIN" build/index_bg.wasm -Oz --strip-debug --strip-producers \
  --enable-mutable-globals --enable-sign-ext --enable-nontrapping-float-to-int \
  --enable-bulk-memory --enable-multivalue --enable-reference-types --enable-exception-handling \
  -o build/index_bg.wasm.opt
mv build/index_bg.wasm.opt build/index_bg.wasm
ls -l build/index_bg.wasm | awk '{print "[build] build/index_bg.wasm: " $5 " bytes"}'
