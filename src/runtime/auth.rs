//! Who is calling: a user by API token (Workers KV), or the operator by `ADMIN_TOKEN`.

use worker::{Env, Request};

use crate::domain::{bearer_token, UserId};
use crate::errors::ApiError;
use crate::tokens::{constant_time_eq, kv_key, TokenCache, TokenRecord};

use super::now_ms;

thread_local! {
    /// Per-isolate cache of verified tokens (wasm is single-threaded: one per isolate).
    static VERIFIED: std::cell::RefCell<TokenCache> = std::cell::RefCell::new(TokenCache::default());
}

/// Forgets a token in this isolate's cache (called when it is revoked here).
pub fn forget(kv_key: &str) {
    VERIFIED.with(|cache| cache.borrow_mut().remove(kv_key));
}

pub const TOKENS_BINDING: &str = "TOKENS";
const AUTH_LIMITER_BINDING: &str = "AUTH_FAILURES";

fn authorization(req: &Request) -> Option<String> {
    req.headers().get("authorization").ok().flatten()
}

/// The user a request's bearer token belongs to.
///
/// KV is eventually consistent: a token revoked at one location can still be
/// accepted at another for up to about 60 s, and an isolate that verified it keeps
/// trusting it for up to `CACHE_TTL_MS` more (see the README).
pub async fn user_of(req: &Request, env: &Env) -> Result<UserId, ApiError> {
    let result = lookup(req, env).await;
    if matches!(result, Err(ApiError::Unauthorized)) {
        return Err(throttle_failure(req, env).await);
    }
    result
}

async fn lookup(req: &Request, env: &Env) -> Result<UserId, ApiError> {
    let header = authorization(req);
    let token = bearer_token(header.as_deref()).ok_or(ApiError::Unauthorized)?;
    let key = kv_key(token);
    let now = now_ms();
    let cached = VERIFIED.with(|cache| cache.borrow().get(&key, now).map(str::to_owned));
    let user = match cached {
        Some(user) => user,
        None => {
            let kv = env
                .kv(TOKENS_BINDING)
                .map_err(|e| ApiError::internal(format!("KV binding: {e}")))?;
            let record: Option<TokenRecord> = kv
                .get(&key)
                .json()
                .await
                .map_err(|e| ApiError::internal(format!("KV get: {e}")))?;
            let user = record.ok_or(ApiError::Unauthorized)?.user;
            VERIFIED.with(|cache| cache.borrow_mut().put(key, user.clone(), now));
            user
        }
    };
    UserId::parse(&user).map_err(|_| ApiError::internal("token record names an invalid user"))
}

/// Counts a failed authentication against the client address (Workers Rate
/// Limiting). Past the limit the answer is 429 instead of 401, so a flood of
/// guesses is slowed down. The limiter failing must not lock users out: then 401.
async fn throttle_failure(req: &Request, env: &Env) -> ApiError {
    let client = req
        .headers()
        .get("cf-connecting-ip")
        .ok()
        .flatten()
        .unwrap_or_else(|| "unknown".to_owned());
    let Ok(limiter) = env.rate_limiter(AUTH_LIMITER_BINDING) else {
        return ApiError::Unauthorized;
    };
    match limiter.limit(client).await {
        Ok(outcome) if !outcome.success => {
            ApiError::TooManyRequests("Too many failed authentication attempts".to_owned())
        }
        _ => ApiError::Unauthorized,
    }
}

/// Checks the operator's `ADMIN_TOKEN`, in constant time. No `ADMIN_TOKEN` set means
/// the operator API is off (403).
pub fn require_admin(req: &Request, env: &Env) -> Result<(), ApiError> {
    let expected = env
        .var("ADMIN_TOKEN")
        .map(|v| v.to_string())
        .ok()
        .filter(|v| !v.is_empty())
        .ok_or(ApiError::OperatorDisabled)?;
    let header = authorization(req);
    let presented = bearer_token(header.as_deref()).unwrap_or("");
    if constant_time_eq(presented, &expected) {
        Ok(())
    } else {
        Err(ApiError::Unauthorized)
    }
}
