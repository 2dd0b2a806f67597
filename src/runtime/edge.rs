//! The worker's fetch handler: it runs near the caller, routes, authenticates, and
//! hands every request about a user's jobs or accounts to that user's directory object
//! in one call, whose answer it returns as it is (the body never enters wasm here).
//!
//! Nothing is logged per request: Workers Logs records every invocation (method, URL,
//! status) already. Logged here: internal errors, with the route and, once
//! authenticated, the user; never a token or unauthenticated text.

use js_sys::JsString;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::future_to_promise;
use worker::worker_sys::web_sys;
use worker::Env;

use crate::domain::{query_param, UserId};
use crate::errors::{ApiError, ErrorStyle};
use crate::jobs::{parse_completion, parse_progress, parse_registration, CompletionError};
use crate::json::Fields;
use crate::protocol::{Answer, DirectoryCall, DirectoryOp};
use crate::providers::Provider;
use crate::routes::{match_route, OperatorOp, PublicOp, Route};
use crate::time::parse_iso8601;
use crate::tokens::{kv_key, token_from_random};

use super::auth::Presented;
use super::http::{self, Audience, MAX_BODY_BYTES};
use super::js::{self, BodyError, Namespace};
use super::{
    auth, directory, now_ms, random_bytes, AUTH_LIMITER_BINDING, LIVE_BINDING, TOKENS_BINDING,
};

/// The OpenAPI document (`openapi.yaml`, turned into JSON by build.rs).
const OPENAPI_JSON: &str = include_str!(concat!(env!("OUT_DIR"), "/openapi.json"));
/// The live view page (`src/page/index.html`, without comments: build.rs).
const PAGE_HTML: &str = include_str!(concat!(env!("OUT_DIR"), "/page.html"));

/// The longest a registration's worker keeps asking for a slot: `waitSeconds` is at
/// most 60 and each ask is held at most a second; this only guards against a bug.
const MAX_POLLS: usize = 200;

/// What the router decided: an answer known at once, or work that awaits.
pub enum Handling {
    Now(web_sys::Response),
    Later(Route, String),
}

/// Routes a request. Unknown paths and methods, the page, the document and
/// preflights are answered at once, without any async machinery.
pub fn route(req: &web_sys::Request) -> Handling {
    let method = req.method();
    let url = req.url();
    let route = match match_route(&method, path_of(&url)) {
        Ok(route) => route,
        Err(e) => {
            let audience = if e.public {
                Audience::Public
            } else {
                Audience::Operator
            };
            return Handling::Now(http::error(&e.error, e.style, audience));
        }
    };
    match route {
        Route::Page => Handling::Now(PAGE.with(|page| http::html(page))),
        Route::OpenApi => Handling::Now(http::json(200, OPENAPI_JSON, Audience::Public)),
        Route::Preflight => Handling::Now(http::preflight()),
        route => Handling::Later(route, url),
    }
}

/// The routes that talk to KV or the objects.
pub async fn handle(
    req: &web_sys::Request,
    env: &Env,
    route: Route,
    url: &str,
) -> web_sys::Response {
    match route {
        Route::Public { provider, op } => public(req, env, provider, op).await,
        operator_route => match operator(req, env, operator_route, url).await {
            Ok(response) => response,
            Err(e) => http::error(&e, ErrorStyle::Coded, Audience::Operator),
        },
    }
}

/// The path of an absolute URL as the runtime serialises it (`https://host/p?q`).
fn path_of(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[after_scheme..];
    let path = rest.find('/').map_or("/", |i| &rest[i..]);
    path.split(['?', '#']).next().unwrap_or("/")
}

// ---------------------------------------------------------------------------------
// Public routes: the user's own token

/// The directory's question for a public read (a list or `available`); `None` for
/// the other public routes.
pub fn read_op(op: &PublicOp, now: i64) -> Option<DirectoryOp> {
    match op {
        PublicOp::List => Some(DirectoryOp::List { now_ms: now }),
        PublicOp::Available => Some(DirectoryOp::Available { now_ms: now }),
        _ => None,
    }
}

/// A public list or `available`: the hot path, a GET without a body. A token this
/// isolate verified lately goes straight to the directory. Any other is checked by
/// `authenticate` in JavaScript, which answers a refusal itself (the 401 path never
/// waits in wasm) and hands a known user's request back to [`resume`].
pub fn read_public(
    req: &web_sys::Request,
    env: Env,
    provider: Provider,
    op: DirectoryOp,
) -> JsValue {
    match auth::presented(req) {
        Presented::Known(user) => {
            future_to_promise(async move { Ok(read_as(&env, provider, &user, op).await.into()) })
                .into()
        }
        Presented::Unverified(key) => authenticate(req, &env, provider, &key),
        Presented::Missing => authenticate(req, &env, provider, ""),
    }
}

thread_local! {
    /// The page with the registry's providers written in, made once per isolate.
    static PAGE: String = crate::page::with_providers(PAGE_HTML);
    /// Where `authenticate` hands a request back once KV knows its token: one closure
    /// for the isolate's life, never one per request.
    static RESUME: Closure<dyn Fn(web_sys::Request, JsValue, String, String) -> JsValue> =
        Closure::new(resume);
    /// The 401 and 429 bodies of each error style, made into JS strings once.
    static REFUSALS: [(JsValue, JsValue); 2] = [ErrorStyle::Plain, ErrorStyle::Coded].map(|style| {
        (
            JsValue::from_str(&ApiError::Unauthorized.body(style)),
            JsValue::from_str(&auth::throttled_error().body(style)),
        )
    });
}

fn authenticate(req: &web_sys::Request, env: &Env, provider: Provider, key: &str) -> JsValue {
    let plain = provider.error_style() == ErrorStyle::Plain;
    REFUSALS
        .with(|refusals| {
            let (refused, throttled) = &refusals[usize::from(!plain)];
            RESUME.with(|resume| {
                js::authenticate(
                    req,
                    env.as_ref(),
                    &js::binding(env, TOKENS_BINDING),
                    &js::binding(env, AUTH_LIMITER_BINDING),
                    key,
                    refused,
                    throttled,
                    resume.as_ref().unchecked_ref(),
                )
            })
        })
        .into()
}

/// A public read whose token KV just confirmed as `user`'s.
fn resume(req: web_sys::Request, env: JsValue, user: String, key: String) -> JsValue {
    let env: Env = env.unchecked_into();
    let (provider, op) = match route(&req) {
        Handling::Later(Route::Public { provider, op }, _) => (provider, op),
        _ => return internal_public("a resumed request is no public read", ErrorStyle::Coded),
    };
    let (Ok(user), Some(op)) = (UserId::parse(&user), read_op(&op, now_ms())) else {
        return internal_public("token record names an invalid user", provider.error_style());
    };
    auth::remember(key, user.as_str());
    future_to_promise(async move { Ok(read_as(&env, provider, &user, op).await.into()) }).into()
}

fn internal_public(what: &str, style: ErrorStyle) -> JsValue {
    http::error(&ApiError::internal(what), style, Audience::Public).into()
}

/// A public read for an authenticated user: one call to their directory.
async fn read_as(
    env: &Env,
    provider: Provider,
    user: &UserId,
    op: DirectoryOp,
) -> web_sys::Response {
    match ask_directory(env, provider, user, op).await {
        Ok(answer) => js::respond(&answer, true),
        Err(e) => http::error(&e, provider.error_style(), Audience::Public),
    }
}

/// The public routes other than the reads: the live view's upgrade and a cancel.
/// (Lists and `available` are GETs, which `fetch` always hands to [`read_public`].)
async fn public(
    req: &web_sys::Request,
    env: &Env,
    provider: Provider,
    op: PublicOp,
) -> web_sys::Response {
    let style = provider.error_style();
    let op = match op {
        PublicOp::Live => return live(req, env, style).await,
        PublicOp::Cancel(id) => DirectoryOp::Cancel { id },
        PublicOp::List | PublicOp::Available => {
            let e = ApiError::internal("a public read reached the handler for writes");
            return http::error(&e, style, Audience::Public);
        }
    };
    let user = match auth::user_of(req, env).await {
        Ok(user) => user,
        Err(e) => return http::error(&e, style, Audience::Public),
    };
    match ask_directory(env, provider, &user, op).await {
        Ok(answer) => js::respond(&answer, true),
        Err(e) => http::error(&e, style, Audience::Public),
    }
}

/// `GET …/scheduler/live`: the socket goes to a live session object of its own, which
/// reads the token from the first message.
async fn live(req: &web_sys::Request, env: &Env, style: ErrorStyle) -> web_sys::Response {
    let upgrade = auth::header(req, "upgrade").unwrap_or_default();
    if !upgrade.eq_ignore_ascii_case("websocket") {
        let e = ApiError::UpgradeRequired;
        return http::error(&e, style, Audience::Public);
    }
    match Namespace::from_env(env, LIVE_BINDING)
        .fetch_unique(req)
        .await
    {
        Ok(response) => response,
        Err(e) => {
            worker::console_error!("live session: {}", e.0);
            http::error(&unavailable(), style, Audience::Public)
        }
    }
}

/// One call to a user's directory object; its answer stays a JavaScript string.
async fn ask_directory(
    env: &Env,
    provider: Provider,
    user: &UserId,
    op: DirectoryOp,
) -> Result<JsString, ApiError> {
    let call = DirectoryCall {
        provider,
        user: user.as_str().to_owned(),
        op,
    };
    directory::call(env, &call).await.map_err(|e| {
        worker::console_error!(
            "directory {provider} of user {user}: {}",
            e.0,
            user = user.as_str()
        );
        unavailable()
    })
}

fn unavailable() -> ApiError {
    ApiError::Unavailable(
        "The scheduler did not answer; retry (a registration may have been admitted: its retry answers 409 then)"
            .to_owned(),
    )
}

// ---------------------------------------------------------------------------------
// Operator routes: `ADMIN_TOKEN`

async fn operator(
    req: &web_sys::Request,
    env: &Env,
    route: Route,
    url: &str,
) -> Result<web_sys::Response, ApiError> {
    auth::require_admin(req, env)?;
    let (user, provider, op) = match route {
        Route::IssueToken => return issue_token(req, env).await,
        Route::RevokeToken => return revoke_token(req, env).await,
        Route::Operator { user, provider, op } => (user, provider, op),
        _ => return Err(ApiError::not_found()),
    };
    let user = UserId::parse(&user).map_err(ApiError::BadRequest)?;
    let provider = Provider::parse(&provider)
        .ok_or_else(|| ApiError::NotFound("Unknown provider".to_owned()))?;
    let now = now_ms();
    if let OperatorOp::PutAccount(account)
    | OperatorOp::DeleteAccount(account)
    | OperatorOp::Pause(account)
    | OperatorOp::Resume(account) = &op
    {
        provider
            .check_account(account)
            .map_err(ApiError::BadRequest)?;
    }
    let op = match op {
        OperatorOp::ListAccounts => DirectoryOp::ListAccounts { now_ms: now },
        OperatorOp::PutAccount(account) => {
            let body = read_body(req).await?;
            let limit = i64::from(provider.max_jobs_limit());
            let fields = Fields::parse(&body).map_err(ApiError::BadRequest)?;
            let max_jobs = fields
                .integer_in("maxJobs", 1..=limit)
                .map_err(ApiError::BadRequest)?
                .ok_or_else(|| {
                    ApiError::BadRequest(format!("maxJobs is required (1 to {limit})"))
                })?;
            DirectoryOp::PutAccount {
                account,
                max_jobs: max_jobs as u32,
            }
        }
        OperatorOp::DeleteAccount(account) => DirectoryOp::DeleteAccount { account },
        OperatorOp::Pause(account) => {
            let body = read_body_or_empty(req).await?;
            let fields = Fields::parse(&body).map_err(ApiError::BadRequest)?;
            let seconds = fields
                .integer_in("seconds", 1..=604_800)
                .map_err(ApiError::BadRequest)?;
            let reason = fields.string("reason").map_err(ApiError::BadRequest)?;
            if reason
                .as_deref()
                .is_some_and(|r| crate::json::char_len(r) > 256)
            {
                return Err(ApiError::BadRequest(
                    "reason must be at most 256 characters".to_owned(),
                ));
            }
            DirectoryOp::Pause {
                account,
                until_ms: seconds.map(|s| now + s * 1000),
                reason,
                now_ms: now,
            }
        }
        OperatorOp::Resume(account) => DirectoryOp::Resume {
            account,
            now_ms: now,
        },
        OperatorOp::ListJobs => DirectoryOp::ListJobs { now_ms: now },
        OperatorOp::RegisterJob => {
            let body = read_body(req).await?;
            let registration = parse_registration(provider, &body, now, &js::check_url)
                .map_err(ApiError::BadRequest)?;
            return register(
                env,
                provider,
                &user,
                DirectoryOp::Register {
                    registration,
                    now_ms: now,
                },
            )
            .await;
        }
        OperatorOp::CompleteJob(id) => {
            let body = read_body(req).await?;
            let completion = parse_completion(&body).map_err(|e| match e {
                CompletionError::Invalid(m) => ApiError::BadRequest(m),
                CompletionError::TooLarge => ApiError::PayloadTooLarge(format!(
                    "result must be at most {} bytes of JSON",
                    crate::jobs::MAX_RESULT_BYTES
                )),
            })?;
            DirectoryOp::Complete { id, completion }
        }
        OperatorOp::Progress(id) => {
            let body = read_body_or_empty(req).await?;
            let progress = parse_progress(&body).map_err(ApiError::BadRequest)?;
            DirectoryOp::Progress {
                id,
                progress,
                now_ms: now,
            }
        }
        OperatorOp::ListWebhooks => {
            let param = |name| query_param(url, name).map_err(ApiError::BadRequest);
            let (status, limit, cursor) = (param("status")?, param("limit")?, param("cursor")?);
            let query = crate::outbox::PageQuery::parse(
                status.as_deref(),
                limit.as_deref(),
                cursor.as_deref(),
            )
            .map_err(ApiError::BadRequest)?;
            DirectoryOp::Webhooks {
                query,
                path: path_of(url).to_owned(),
            }
        }
        OperatorOp::RetryWebhook(webhook_id) => DirectoryOp::RetryWebhook { webhook_id },
        OperatorOp::RetryWebhooks => {
            let body = read_body(req).await?;
            let fields = Fields::parse(&body).map_err(ApiError::BadRequest)?;
            let since = fields
                .required_string("since")
                .map_err(ApiError::BadRequest)?;
            let since_ms = parse_iso8601(&since).map_err(|_| {
                ApiError::BadRequest(
                    "since must be an ISO-8601 time such as 2025-04-18T12:34:56.789Z".to_owned(),
                )
            })?;
            DirectoryOp::RetryWebhooksSince { since_ms }
        }
    };
    let answer = ask_directory(env, provider, &user, op).await?;
    Ok(js::respond(&answer, false))
}

/// A registration, which may wait for a slot: while the directory answers "waiting",
/// ask again with the ticket (each ask is held up to a second); when it answers
/// "reserved", confirm. The worker asking is what keeps the place in the queue: when
/// the client goes away the runtime cancels this handler, the asking stops, and the
/// directory gives the place (and any slot reserved for it) to the next waiter.
async fn register(
    env: &Env,
    provider: Provider,
    user: &UserId,
    first: DirectoryOp,
) -> Result<web_sys::Response, ApiError> {
    let mut answer = ask_directory(env, provider, user, first).await?;
    for _ in 0..MAX_POLLS {
        let status = js::answer_status(&answer);
        if status != Answer::WAITING && status != Answer::RESERVED {
            return Ok(js::respond(&answer, false));
        }
        let ticket = js::answer_text(&answer)
            .parse::<u64>()
            .map_err(|_| ApiError::internal("directory sent a malformed ticket"))?;
        let next = if status == Answer::WAITING {
            DirectoryOp::Poll { ticket }
        } else {
            DirectoryOp::Confirm { ticket }
        };
        answer = ask_directory(env, provider, user, next).await?;
    }
    Err(ApiError::internal("a waiting registration did not end"))
}

/// Reads the body within its limit: a declared size over it is refused before
/// reading, and a chunked one is counted as it arrives and dropped at the limit.
async fn read_body(req: &web_sys::Request) -> Result<String, ApiError> {
    let too_large = || ApiError::PayloadTooLarge("request body must be at most 1 MiB".to_owned());
    let declared = auth::header(req, "content-length").and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(too_large());
    }
    match js::read_body(req, MAX_BODY_BYTES).await {
        Ok(text) => Ok(text),
        Err(BodyError::TooLarge) => Err(too_large()),
        Err(BodyError::NotUtf8) => Err(ApiError::BadRequest(
            "request body must be UTF-8 JSON".to_owned(),
        )),
        Err(BodyError::Unreadable(e)) => Err(ApiError::BadRequest(format!(
            "could not read the request body: {e}"
        ))),
    }
}

/// A body that may be left out: no body reads as `{}`.
async fn read_body_or_empty(req: &web_sys::Request) -> Result<String, ApiError> {
    let body = read_body(req).await?;
    Ok(if body.trim().is_empty() {
        "{}".to_owned()
    } else {
        body
    })
}

async fn issue_token(req: &web_sys::Request, env: &Env) -> Result<web_sys::Response, ApiError> {
    let body = read_body(req).await?;
    let fields = Fields::parse(&body).map_err(ApiError::BadRequest)?;
    let user = fields
        .required_string("user")
        .map_err(ApiError::BadRequest)?;
    let user = UserId::parse(&user).map_err(ApiError::BadRequest)?;
    let token = token_from_random(&random_bytes::<32>());
    let record = {
        let mut out = String::new();
        let mut o = crate::json::Object::new(&mut out);
        o.str("user", user.as_str());
        o.end();
        out
    };
    js::kv_put_text(&js::binding(env, TOKENS_BINDING), &kv_key(&token), &record)
        .await
        .map_err(|e| ApiError::internal(format!("KV put: {}", e.0)))?;
    let mut out = String::new();
    let mut o = crate::json::Object::new(&mut out);
    o.str("token", &token).str("user", user.as_str());
    o.end();
    Ok(http::json(201, &out, Audience::Operator))
}

/// Revokes a token: its KV record goes, this isolate forgets it, and every live view
/// socket opened with it is closed at once.
async fn revoke_token(req: &web_sys::Request, env: &Env) -> Result<web_sys::Response, ApiError> {
    let body = read_body(req).await?;
    let fields = Fields::parse(&body).map_err(ApiError::BadRequest)?;
    let token = fields
        .required_string("token")
        .map_err(ApiError::BadRequest)?;
    let key = kv_key(&token);
    let user = auth::lookup(env, &key)
        .await?
        .ok_or_else(|| ApiError::NotFound("Unknown token".to_owned()))?;
    js::kv_remove(&js::binding(env, TOKENS_BINDING), &key)
        .await
        .map_err(|e| ApiError::internal(format!("KV delete: {}", e.0)))?;
    auth::forget(&key);
    if let Ok(user) = UserId::parse(&user) {
        for provider in Provider::all() {
            let op = DirectoryOp::TokenRevoked {
                digest: key.clone(),
            };
            // A live socket that misses this is closed at its next token check.
            let _ = ask_directory(env, provider, &user, op).await;
        }
    }
    Ok(http::empty(204))
}
