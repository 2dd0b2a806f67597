// The worker's module entry (wrangler.toml `main`): the wasm build of the crate, as
// worker-build emits it in build/, plus the one thing that build cannot say itself.
//
// workerd accepts RPC calls (`stub.call(...)`) only on Durable Object classes that
// derive from `DurableObject`; worker-build exports the Rust classes as plain classes.
// Giving them that base is all this file does; every method stays the Rust one.
import { DurableObject } from "cloudflare:workers";
import worker, * as wasm from "../build/index.js";

function rpcCapable(cls) {
  Object.setPrototypeOf(cls.prototype, DurableObject.prototype);
  Object.setPrototypeOf(cls, DurableObject);
  return cls;
}

export const AccountObject = rpcCapable(wasm.AccountObject);
export const UserDirectory = rpcCapable(wasm.UserDirectory);
export const LiveSession = rpcCapable(wasm.LiveSession);
export default worker;
