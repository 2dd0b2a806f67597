//! The Worker glue: the fetch entry point, routing to handlers, and a structured log
//! line per request. Everything that decides lives in the pure modules; this layer
//! reads the request, calls KV and the Durable Objects, and writes the response.

mod account_object;
mod admin;
mod auth;
mod delivery;
mod directory_object;
mod http;
mod objects;
mod public;
mod registration;

use worker::{event, Context, Env, Request, Response};

use crate::domain::UserId;
use crate::errors::{ApiError, ErrorStyle};
use crate::routes::{match_route, style_for, Route};

use http::{error_response, preflight, reply, Audience, Reply};
use objects::UserScope;

/// The OpenAPI document (`openapi.yaml`, turned into JSON by build.rs).
const OPENAPI_JSON: &str = include_str!(concat!(env!("OUT_DIR"), "/openapi.json"));

#[event(start)]
fn start() {
    console_error_panic_hook::set_once();
}

#[event(fetch)]
async fn fetch(mut req: Request, env: Env, _ctx: Context) -> worker::Result<Response> {
    let started = now_ms();
    let method = req.method().to_string();
    let path = req.path();
    let (response, route, user) = dispatch(&mut req, &env, &method, &path).await?;
    log_request(
        &method,
        route,
        response.status_code(),
        now_ms() - started,
        user.as_deref(),
    );
    Ok(response)
}

/// Routes one request. Returns the response, a route label and the user id for the log.
async fn dispatch(
    req: &mut Request,
    env: &Env,
    method: &str,
    path: &str,
) -> worker::Result<(Response, &'static str, Option<String>)> {
    let route = match match_route(method, path) {
        Ok(route) => route,
        Err(e) => {
            let audience = if e.public {
                Audience::Public
            } else {
                Audience::Operator
            };
            return Ok((
                error_response(&e.error, e.style, audience)?,
                "unmatched",
                None,
            ));
        }
    };
    let label = route_label(&route);
    let now = now_ms();
    let (response, user) = match route {
        Route::Preflight => (preflight()?, None),
        Route::OpenApi => (
            http::json_response(200, OPENAPI_JSON.to_owned(), Audience::Public)?,
            None,
        ),
        Route::ListJobs { provider } | Route::ListAvailable { provider } => {
            let with_capacity = matches!(route, Route::ListAvailable { .. });
            let result = public::list(req, env, provider, with_capacity, now).await;
            public_reply(result, style_for(provider))?
        }
        Route::CancelJob { provider, ref job } => {
            let result = public::cancel(req, env, provider, job).await;
            public_reply(result, style_for(provider))?
        }
        admin_route => {
            let user = admin_user(&admin_route);
            let result = match auth::require_admin(req, env) {
                Ok(()) => operator(admin_route, req, env, now).await,
                Err(e) => Err(e),
            };
            (reply(result, ErrorStyle::Coded, Audience::Operator)?, user)
        }
    };
    Ok((response, label, user))
}

fn public_reply(
    result: Result<(Reply, String), ApiError>,
    style: ErrorStyle,
) -> worker::Result<(Response, Option<String>)> {
    match result {
        Ok((body, user)) => Ok((reply(Ok(body), style, Audience::Public)?, Some(user))),
        Err(e) => Ok((error_response(&e, style, Audience::Public)?, None)),
    }
}

async fn operator(route: Route, req: &mut Request, env: &Env, now: i64) -> Result<Reply, ApiError> {
    let (user, provider) = match &route {
        Route::IssueToken => return admin::issue_token(req, env).await,
        Route::RevokeToken => return admin::revoke_token(req, env).await,
        Route::PutAccount { user, provider, .. }
        | Route::ListAccounts { user, provider }
        | Route::DeleteAccount { user, provider, .. }
        | Route::RegisterJob { user, provider }
        | Route::CompleteJob { user, provider, .. }
        | Route::ListWebhooks { user, provider } => (user, *provider),
        _ => return Err(ApiError::not_found()),
    };
    // Every per-user operator route works on one user's accounts of one provider.
    let user = UserId::parse(user).map_err(ApiError::BadRequest)?;
    let scope = UserScope {
        env,
        provider,
        user: &user,
    };
    match &route {
        Route::PutAccount { account, .. } => admin::put_account(req, &scope, account).await,
        Route::ListAccounts { .. } => admin::list_accounts(&scope).await,
        Route::DeleteAccount { account, .. } => admin::delete_account(&scope, account).await,
        Route::RegisterJob { .. } => admin::register_job(req, &scope, now).await,
        Route::CompleteJob { job, .. } => admin::complete_job(req, &scope, job).await,
        Route::ListWebhooks { .. } => admin::list_webhooks(req, &scope).await,
        _ => Err(ApiError::not_found()),
    }
}

/// The `{user}` of an operator path, for the log (a user id is not a secret).
fn admin_user(route: &Route) -> Option<String> {
    match route {
        Route::PutAccount { user, .. }
        | Route::ListAccounts { user, .. }
        | Route::DeleteAccount { user, .. }
        | Route::RegisterJob { user, .. }
        | Route::CompleteJob { user, .. }
        | Route::ListWebhooks { user, .. } => Some(user.clone()),
        _ => None,
    }
}

fn route_label(route: &Route) -> &'static str {
    match route {
        Route::ListJobs { .. } => "list_jobs",
        Route::ListAvailable { .. } => "list_available",
        Route::CancelJob { .. } => "cancel_job",
        Route::Preflight => "preflight",
        Route::OpenApi => "openapi",
        Route::IssueToken => "issue_token",
        Route::RevokeToken => "revoke_token",
        Route::ListAccounts { .. } => "list_accounts",
        Route::PutAccount { .. } => "put_account",
        Route::DeleteAccount { .. } => "delete_account",
        Route::RegisterJob { .. } => "register_job",
        Route::CompleteJob { .. } => "complete_job",
        Route::ListWebhooks { .. } => "list_webhooks",
    }
}

/// One JSON line per request. Never a token: only the method, the route label, the
/// status, the duration and the user id.
fn log_request(method: &str, route: &str, status: u16, duration_ms: i64, user: Option<&str>) {
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Line<'a> {
        method: &'a str,
        route: &'a str,
        status: u16,
        duration_ms: i64,
        #[serde(skip_serializing_if = "Option::is_none")]
        user: Option<&'a str>,
    }
    let line = crate::shapes::to_json(&Line {
        method,
        route,
        status,
        duration_ms,
        user,
    });
    worker::console_log!("{line}");
}

pub(crate) fn now_ms() -> i64 {
    worker::Date::now().as_millis() as i64
}

/// A string var or secret, if set.
pub(crate) fn string_var(env: &Env, name: &str) -> Option<String> {
    env.var(name).ok().map(|v| v.to_string())
}

pub(crate) fn random_bytes<const N: usize>() -> Result<[u8; N], ApiError> {
    let mut bytes = [0u8; N];
    getrandom::getrandom(&mut bytes).map_err(|e| ApiError::internal(format!("random: {e}")))?;
    Ok(bytes)
}

pub(crate) fn random_hex<const N: usize>() -> Result<String, ApiError> {
    Ok(random_bytes::<N>()?
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}
