//! Who is calling: a user by API token (Workers KV), or the operator by `ADMIN_TOKEN`.

use worker::worker_sys::web_sys;
use worker::Env;

use crate::domain::{bearer_token, UserId};
use crate::errors::ApiError;
use crate::tokens::{constant_time_eq, kv_key, TokenCache};

use super::js::{self, TokenCheck};
use super::{now_ms, var, AUTH_LIMITER_BINDING, TOKENS_BINDING};

thread_local! {
    /// Per-isolate cache of verified tokens (wasm is single-threaded: one per isolate).
    static VERIFIED: std::cell::RefCell<TokenCache> = std::cell::RefCell::new(TokenCache::default());
}

/// Forgets a token in this isolate's cache (called when it is revoked here).
pub fn forget(kv_key: &str) {
    VERIFIED.with(|cache| cache.borrow_mut().remove(kv_key));
}

pub fn header(req: &web_sys::Request, name: &str) -> Option<String> {
    req.headers().get(name).ok().flatten()
}

/// A public request's token, as far as this isolate can tell without an await.
pub enum Presented {
    /// Verified here a moment ago.
    Known(UserId),
    /// Its KV key (`token:<digest>`): KV must say.
    Unverified(String),
    /// No usable `Authorization` header.
    Missing,
}

/// What a request presents; no I/O.
pub fn presented(req: &web_sys::Request) -> Presented {
    let header = header(req, "authorization");
    let Some(token) = bearer_token(header.as_deref()) else {
        return Presented::Missing;
    };
    let key = kv_key(token);
    match cached(&key) {
        Some(user) => Presented::Known(user),
        None => Presented::Unverified(key),
    }
}

/// The user this isolate verified `key` for lately, if any.
fn cached(key: &str) -> Option<UserId> {
    let user = VERIFIED.with(|cache| cache.borrow().get(key, now_ms()).map(str::to_owned))?;
    UserId::parse(&user).ok()
}

/// Notes that KV knows `key` as `user`'s token (this isolate trusts it for a while).
pub fn remember(key: String, user: &str) {
    VERIFIED.with(|cache| cache.borrow_mut().put(key, user.to_owned(), now_ms()));
}

/// The 429 of a client past its failed-authentication limit.
pub fn throttled_error() -> ApiError {
    throttled()
}

/// The user a request's bearer token belongs to.
///
/// KV is eventually consistent: a token revoked at one location can still be
/// accepted at another for up to about 60 s, and an isolate that verified it keeps
/// trusting it for up to `CACHE_TTL_MS` more (see the README).
pub async fn user_of(req: &web_sys::Request, env: &Env) -> Result<UserId, ApiError> {
    let limiter = js::binding(env, AUTH_LIMITER_BINDING);
    let check = match presented(req) {
        Presented::Known(user) => return Ok(user),
        Presented::Missing => js::refuse_token(req, &limiter).await,
        Presented::Unverified(key) => {
            // One call does the KV read and, for an unknown token, the throttling
            // count: one await on the path of every 401.
            let tokens = js::binding(env, TOKENS_BINDING);
            let check = js::check_token(req, &tokens, &limiter, &key)
                .await
                .map_err(|e| ApiError::internal(format!("KV get: {}", e.0)))?;
            if let TokenCheck::User(user) = &check {
                remember(key, user);
            }
            check
        }
    };
    match check {
        TokenCheck::User(user) => UserId::parse(&user)
            .map_err(|_| ApiError::internal("token record names an invalid user")),
        TokenCheck::Unknown => Err(ApiError::Unauthorized),
        TokenCheck::Throttled => Err(throttled()),
    }
}

fn throttled() -> ApiError {
    ApiError::TooManyRequests("Too many failed authentication attempts".to_owned())
}

/// The user a token's KV key (`token:<digest>`) belongs to, from this isolate's cache
/// or from KV.
pub async fn user_of_key(env: &Env, key: &str) -> Result<UserId, ApiError> {
    if let Some(user) = cached(key) {
        return Ok(user);
    }
    let user = lookup(env, key).await?.ok_or(ApiError::Unauthorized)?;
    remember(key.to_owned(), &user);
    UserId::parse(&user).map_err(|_| ApiError::internal("token record names an invalid user"))
}

/// The user KV holds for a token key, without any cache: `None` when unknown.
pub async fn lookup(env: &Env, key: &str) -> Result<Option<String>, ApiError> {
    let record = js::kv_get_text(&js::binding(env, TOKENS_BINDING), key)
        .await
        .map_err(|e| ApiError::internal(format!("KV get: {}", e.0)))?;
    Ok(record.and_then(|text| {
        crate::json::Fields::parse(&text)
            .ok()
            .and_then(|f| f.string("user").ok().flatten())
    }))
}

/// Counts a failed authentication against the client address (Workers Rate
/// Limiting). Past the limit the answer is 429 instead of 401, so a flood of guesses
/// is slowed down. The limiter failing must not lock users out: then 401.
pub async fn throttle_failure(env: &Env, client: Option<String>) -> ApiError {
    let limiter = js::binding(env, AUTH_LIMITER_BINDING);
    if limiter.is_undefined() {
        return ApiError::Unauthorized;
    }
    let client = client.unwrap_or_else(|| "unknown".to_owned());
    match js::limiter_allows(&limiter, &client).await {
        Ok(false) => throttled(),
        _ => ApiError::Unauthorized,
    }
}

/// Checks the operator's `ADMIN_TOKEN`, in constant time. No `ADMIN_TOKEN` set means
/// the operator API is off (403).
pub fn require_admin(req: &web_sys::Request, env: &Env) -> Result<(), ApiError> {
    let expected = var(env, "ADMIN_TOKEN")
        .filter(|v| !v.is_empty())
        .ok_or(ApiError::OperatorDisabled)?;
    let presented = header(req, "authorization");
    let presented = bearer_token(presented.as_deref()).unwrap_or("");
    if constant_time_eq(presented, &expected) {
        Ok(())
    } else {
        Err(ApiError::Unauthorized)
    }
}
