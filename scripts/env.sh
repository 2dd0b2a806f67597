# Sourced (not run) by scripts/build.sh: points worker-build at locally installed tools
# so it does not try to download them from GitHub (which this environment cannot reach):
#   WASM_BINDGEN_BIN  the wasm-bindgen CLI installed by scripts/setup.sh (cargo install)
#   WASM_OPT_BIN      binaryen's wasm-opt from node_modules
#   ESBUILD_BIN       the esbuild that wrangler ships in node_modules
# Expects the repository root as the current directory.

if [[ -d "${CARGO_HOME:-$HOME/.cargo}/bin" ]]; then
  export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
fi

WASM_BINDGEN_BIN="$(command -v wasm-bindgen || true)"
WASM_OPT_BIN="$PWD/node_modules/.bin/wasm-opt"
ESBUILD_BIN="$PWD/node_modules/.bin/esbuild"
export WASM_BINDGEN_BIN WASM_OPT_BIN ESBUILD_BIN
