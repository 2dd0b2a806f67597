// The worker's module entry (wrangler.toml `main`): the wasm build of the crate, as
// worker-build emits it in build/, plus two things that build cannot say itself.
import { DurableObject } from "cloudflare:workers";
import worker, * as wasm from "../build/index.js";

// workerd accepts RPC calls (`stub.call(...)`) only on Durable Object classes that
// derive from `DurableObject`; worker-build exports the Rust classes as plain classes.
// Giving them that base is all this does; every method stays the Rust one.
function rpcCapable(cls) {
  Object.setPrototypeOf(cls.prototype, DurableObject.prototype);
  Object.setPrototypeOf(cls, DurableObject);
  return cls;
}

export const AccountObject = rpcCapable(wasm.AccountObject);
export const UserDirectory = rpcCapable(wasm.UserDirectory);
export const LiveSession = rpcCapable(wasm.LiveSession);

// The fetch handler. worker-build's default export is a WorkerEntrypoint class behind
// Proxies that re-instantiate the wasm after a panic: a new instance and several proxy
// traps on every request. Its fetch is called directly instead. After a panic (the
// state worker-build keeps on globalThis says so), one request takes the class path,
// which re-instantiates the wasm, and the next ones the direct path again.
const wasmFetch = worker.prototype.fetch;
const wasmState = globalThis.__worker_init_state;
export default {
  fetch(request, env, ctx) {
    if (wasmState?.criticalError) return new worker(ctx, env).fetch(request);
    try {
      return wasmFetch.call({ env, ctx }, request);
    } catch (e) {
      if (e instanceof WebAssembly.RuntimeError && wasmState) wasmState.criticalError = true;
      throw e;
    }
  },
};
