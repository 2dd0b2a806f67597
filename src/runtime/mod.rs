//! The Worker glue, compiled for wasm32 only: everything here reads requests, talks to
//! Workers KV and the Durable Objects, and writes responses. What it decides, it asks
//! the pure modules.
//!
//! - [`edge`]: the fetch entry point of the worker (runs near the caller): routes,
//!   authenticates, and hands each user's request to that user's directory object.
//! - [`directory`]: `UserDirectory`, one object per (provider, user): the account set,
//!   admission and waiting, the lists (asking the account objects beside it), the
//!   live view's subscribers.
//! - [`account`]: `AccountObject`, one per (provider, user, account): its jobs, its
//!   webhook outbox, its alarm.
//! - [`live_session`]: `LiveSession`, one per open live-view WebSocket (hibernating).

mod account;
mod auth;
mod directory;
mod edge;
mod http;
mod js;
mod live_session;
mod sql;
mod turnstile;

use wasm_bindgen::prelude::*;
use worker::worker_sys::web_sys;
use worker::{event, Env};

use crate::routes::Route;

/// Binding names (wrangler.toml).
pub const ACCOUNTS_BINDING: &str = "ACCOUNTS";
pub const DIRECTORY_BINDING: &str = "DIRECTORY";
pub const LIVE_BINDING: &str = "LIVE";
pub const TOKENS_BINDING: &str = "TOKENS";
pub const AUTH_LIMITER_BINDING: &str = "AUTH_FAILURES";

#[event(start)]
fn start() {
    console_error_panic_hook::set_once();
}

/// The worker's fetch handler (worker-build's entry calls it with the request, the
/// environment and the context). Written out rather than with `#[event(fetch)]`,
/// which converts every request into `worker::Request` first; the handlers read the
/// runtime's own request.
#[wasm_bindgen]
pub fn fetch(req: web_sys::Request, env: Env, _ctx: JsValue) -> JsValue {
    // A request that may carry a body gets it finished once answered, if nothing read
    // it (js::finish_body says why). GETs, the hot path, carry none.
    let may_have_body = !matches!(req.method().as_str(), "GET" | "HEAD" | "OPTIONS");
    let handling = edge::route(&req);
    match (&handling, may_have_body) {
        (edge::Handling::Now(response), false) => return response.into(),
        (edge::Handling::Later(Route::Public { provider, op }, _), false) => {
            if let Some(op) = edge::read_op(op, now_ms()) {
                return edge::read_public(&req, env, *provider, op);
            }
        }
        _ => {}
    }
    wasm_bindgen_futures::future_to_promise(async move {
        let response = match handling {
            edge::Handling::Now(response) => response,
            edge::Handling::Later(route, url) => edge::handle(&req, &env, route, &url).await,
        };
        if may_have_body {
            js::finish_body(&req).await;
        }
        Ok(JsValue::from(response))
    })
    .into()
}

pub(crate) fn now_ms() -> i64 {
    js_sys::Date::now() as i64
}

/// A var or secret, if set.
pub(crate) fn var(env: &Env, name: &str) -> Option<String> {
    js_sys::Reflect::get(env, &wasm_bindgen::JsValue::from_str(name))
        .ok()
        .and_then(|v| v.as_string())
}

/// The settings of this deployment, with a warning logged for each malformed var.
pub(crate) fn settings(env: &Env) -> crate::config::Settings {
    let (settings, warnings) = crate::config::Settings::from_vars(&|name| var(env, name));
    for warning in warnings {
        worker::console_warn!("{warning}");
    }
    settings
}

pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    // getrandom on wasm32 uses crypto.getRandomValues, which does not fail for
    // small buffers; zeros would only make a collision likelier, never unsafe.
    let _ = getrandom::getrandom(&mut bytes);
    bytes
}

pub(crate) fn random_hex<const N: usize>() -> String {
    let mut out = String::with_capacity(2 * N);
    crate::tokens::push_hex(&mut out, &random_bytes::<N>());
    out
}
