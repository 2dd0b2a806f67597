//! The public scheduler routes, called with the user's own token.

use worker::{Env, Request};

use crate::domain::{JobId, Provider};
use crate::errors::ApiError;
use crate::protocol::AccountRequest;
use crate::shapes;

use super::auth::user_of;
use super::http::Reply;
use super::objects::UserScope;

/// `GET /v1/{provider}/scheduler` and `.../available`.
pub async fn list(
    req: &Request,
    env: &Env,
    provider: Provider,
    with_capacity: bool,
    now_ms: i64,
) -> Result<(Reply, String), ApiError> {
    let user = user_of(req, env).await?;
    let scope = UserScope {
        env,
        provider,
        user: &user,
    };
    let accounts = scope.snapshots().await?;
    let body = match (provider, with_capacity) {
        (Provider::Kling, false) => shapes::kling_list_json(&accounts, now_ms),
        (Provider::Kling, true) => shapes::kling_available_json(&accounts, now_ms),
        (Provider::Dreamina, false) => shapes::dreamina_list_json(&accounts, now_ms),
        (Provider::Dreamina, true) => shapes::dreamina_available_json(&accounts, now_ms),
    };
    Ok((Reply::Json(200, body), user.as_str().to_owned()))
}

/// `DELETE /v1/{provider}/scheduler/{id}`: stop tracking a job. The upstream job is
/// not touched and no webhook is sent.
pub async fn cancel(
    req: &Request,
    env: &Env,
    provider: Provider,
    raw_id: &str,
) -> Result<(Reply, String), ApiError> {
    let user = user_of(req, env).await?;
    let id = JobId::parse_for(provider, raw_id).map_err(|message| match provider {
        Provider::Kling => ApiError::BadRequest(message),
        // Any text may be sent as a Dreamina jobid; one we could never store is
        // simply not running.
        Provider::Dreamina => not_running(provider, raw_id),
    })?;
    let scope = UserScope {
        env,
        provider,
        user: &user,
    };
    let names = scope.account_names().await?;
    let request = AccountRequest::Cancel {
        id: id.as_str().to_owned(),
    };
    let removed: Vec<bool> = scope.fan_out(&names, &request).await?;
    if removed.contains(&true) {
        Ok((Reply::Empty, user.as_str().to_owned()))
    } else {
        Err(not_running(provider, raw_id))
    }
}

fn not_running(provider: Provider, raw_id: &str) -> ApiError {
    ApiError::NotFound(match provider {
        Provider::Kling => format!("Unable to locate running task_id {raw_id}"),
        Provider::Dreamina => format!("Unable to locate running jobid {raw_id}"),
    })
}
