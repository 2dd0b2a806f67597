//! The operator API: tokens, accounts, job registration and completion, webhooks.
//! Every handler here runs after `require_admin` has passed.

use serde::Deserialize;
use worker::{Env, Request};

use crate::domain::{query_param, JobId, Provider, UserId};
use crate::errors::ApiError;
use crate::jobs::{parse_completion, parse_object, parse_registration};
use crate::protocol::{
    AccountRequest, CompleteReply, DeliveryRow, DirectoryRequest, RegisterReply,
};
use crate::shapes::{self, to_json, AccountSnapshot, Registered};
use crate::tokens::{kv_key, token_from_random, TokenRecord};

use super::auth::TOKENS_BINDING;
use super::http::{read_body, Reply};
use super::objects::UserScope;
use super::random_bytes;

fn parse_json<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, ApiError> {
    parse_object(body)
}

fn parse_user(text: &str) -> Result<UserId, ApiError> {
    UserId::parse(text).map_err(ApiError::BadRequest)
}

/// `POST /admin/v1/tokens` `{"user"}` -> 201 `{"token","user"}`.
pub async fn issue_token(req: &mut Request, env: &Env) -> Result<Reply, ApiError> {
    #[derive(Deserialize)]
    struct Body {
        user: String,
    }
    let body: Body = parse_json(&read_body(req).await?)?;
    let user = parse_user(&body.user)?;
    let token = token_from_random(&random_bytes::<32>()?);
    let record = to_json(&TokenRecord {
        user: user.as_str().to_owned(),
    });
    kv(env)?
        .put(&kv_key(&token), record)
        .map_err(|e| ApiError::internal(format!("KV put: {e}")))?
        .execute()
        .await
        .map_err(|e| ApiError::internal(format!("KV put: {e}")))?;
    #[derive(serde::Serialize)]
    struct Issued<'a> {
        token: &'a str,
        user: &'a str,
    }
    Ok(Reply::Json(
        201,
        to_json(&Issued {
            token: &token,
            user: user.as_str(),
        }),
    ))
}

/// `POST /admin/v1/tokens/revoke` `{"token"}` -> 204, or 404 when unknown.
pub async fn revoke_token(req: &mut Request, env: &Env) -> Result<Reply, ApiError> {
    #[derive(Deserialize)]
    struct Body {
        token: String,
    }
    let body: Body = parse_json(&read_body(req).await?)?;
    let store = kv(env)?;
    let key = kv_key(&body.token);
    let known = store
        .get(&key)
        .text()
        .await
        .map_err(|e| ApiError::internal(format!("KV get: {e}")))?
        .is_some();
    if !known {
        return Err(ApiError::NotFound("Unknown token".to_owned()));
    }
    store
        .delete(&key)
        .await
        .map_err(|e| ApiError::internal(format!("KV delete: {e}")))?;
    super::auth::forget(&key);
    Ok(Reply::Empty)
}

fn kv(env: &Env) -> Result<worker::KvStore, ApiError> {
    env.kv(TOKENS_BINDING)
        .map_err(|e| ApiError::internal(format!("KV binding: {e}")))
}

/// `PUT .../accounts/{account}` `{"maxJobs": 1..50}` -> 200 `{"account","maxJobs"}`.
pub async fn put_account(
    req: &mut Request,
    scope: &UserScope<'_>,
    account: &str,
) -> Result<Reply, ApiError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Body {
        max_jobs: u32,
    }
    let account = scope.parse_account(account)?;
    let body: Body = parse_json(&read_body(req).await?)?;
    if !(1..=50).contains(&body.max_jobs) {
        return Err(ApiError::BadRequest(
            "maxJobs must be an integer from 1 to 50".to_owned(),
        ));
    }
    // The object first, the directory second: a failure in between leaves an
    // unlisted object that the next PUT lists, never a listed account without one.
    let configure = AccountRequest::Configure {
        provider: scope.provider.as_str().to_owned(),
        user: scope.user.as_str().to_owned(),
        account: account.as_str().to_owned(),
        max_jobs: body.max_jobs,
    };
    let snapshot: AccountSnapshot = scope.account(account.as_str(), &configure).await?;
    let _new: bool = scope
        .directory(&DirectoryRequest::Add {
            account: account.as_str().to_owned(),
        })
        .await?;
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Configured<'a> {
        account: &'a str,
        max_jobs: u32,
    }
    Ok(Reply::Json(
        200,
        to_json(&Configured {
            account: &snapshot.account,
            max_jobs: snapshot.max_jobs,
        }),
    ))
}

/// `GET .../accounts` -> `[{"account","maxJobs","executing"}]`.
pub async fn list_accounts(scope: &UserScope<'_>) -> Result<Reply, ApiError> {
    Ok(Reply::Json(
        200,
        shapes::accounts_json(&scope.snapshots().await?),
    ))
}

/// `DELETE .../accounts/{account}` -> 204 (its jobs stop being tracked), 404.
pub async fn delete_account(scope: &UserScope<'_>, account: &str) -> Result<Reply, ApiError> {
    let account = scope.parse_account(account)?;
    // Unlist first so no new job is routed there, then clear the object.
    let listed: bool = scope
        .directory(&DirectoryRequest::Remove {
            account: account.as_str().to_owned(),
        })
        .await?;
    let existed: bool = scope
        .account(account.as_str(), &AccountRequest::Remove)
        .await?;
    if listed || existed {
        Ok(Reply::Empty)
    } else {
        Err(ApiError::NotFound("Account not configured".to_owned()))
    }
}

/// `POST .../jobs`: admit a job on the named account or on the one with the most
/// free slots. The whole decision runs in the user's directory object, one
/// registration at a time (see `registration.rs`), so a job id can never be admitted
/// on two accounts at once.
pub async fn register_job(
    req: &mut Request,
    scope: &UserScope<'_>,
    now_ms: i64,
) -> Result<Reply, ApiError> {
    let body = String::from_utf8(read_body(req).await?)
        .map_err(|_| ApiError::BadRequest("request body must be UTF-8 JSON".to_owned()))?;
    // Refuse malformed bodies here, without a Durable Object round trip.
    parse_registration(scope.provider, body.as_bytes(), now_ms)?;
    let request = DirectoryRequest::Register {
        provider: scope.provider.as_str().to_owned(),
        user: scope.user.as_str().to_owned(),
        body,
        now_ms,
    };
    let (account, job) = match scope.directory::<RegisterReply>(&request).await? {
        RegisterReply::Admitted { account, job } => (account, job),
        RegisterReply::Refused { status, message } => {
            return Err(ApiError::from_status(status, message))
        }
    };
    let body = match scope.provider {
        Provider::Kling => to_json(&Registered {
            job: shapes::kling_job(&account, &job, now_ms),
            account,
        }),
        Provider::Dreamina => to_json(&Registered {
            job: shapes::dreamina_job(&job, now_ms),
            account,
        }),
    };
    Ok(Reply::Json(201, body))
}

/// `POST .../jobs/{id}/complete` `{"status","result"?}`: the job leaves the list and its
/// webhook (if any) is queued. 404 when it is not executing, so a second completion
/// sends no second webhook.
pub async fn complete_job(
    req: &mut Request,
    scope: &UserScope<'_>,
    raw_id: &str,
) -> Result<Reply, ApiError> {
    let not_found = || ApiError::NotFound(format!("Unable to locate running job {raw_id}"));
    let id = JobId::parse_for(scope.provider, raw_id).map_err(|_| not_found())?;
    let completion = parse_completion(&read_body(req).await?)?;
    let names = scope.account_names().await?;
    let request = AccountRequest::Complete {
        id: id.as_str().to_owned(),
        status: completion.status,
        result: completion.result.map(|r| r.get().to_owned()),
    };
    let replies: Vec<CompleteReply> = scope.fan_out(&names, &request).await?;
    let found = names
        .iter()
        .zip(replies)
        .find_map(|(name, reply)| match reply {
            CompleteReply::Completed { webhook_id } => Some((name, webhook_id)),
            CompleteReply::NotFound => None,
        });
    let (account, webhook_id) = found.ok_or_else(not_found)?;
    let mut body = serde_json::Map::new();
    match scope.provider {
        Provider::Kling => body.insert("id".into(), id.as_str().parse::<u64>().unwrap_or(0).into()),
        Provider::Dreamina => body.insert("jobid".into(), id.as_str().into()),
    };
    body.insert("account".into(), account.as_str().into());
    body.insert("status".into(), completion.status.as_str().into());
    if let Some(webhook_id) = webhook_id {
        body.insert("webhookId".into(), webhook_id.into());
    }
    Ok(Reply::Json(200, to_json(&body)))
}

/// `GET .../webhooks?status=failed|pending`: undelivered webhooks of every account.
pub async fn list_webhooks(req: &Request, scope: &UserScope<'_>) -> Result<Reply, ApiError> {
    // The raw URL string, not `req.url()`: parsing it with the `url` crate would pull
    // its IDNA tables into the wasm for one query parameter.
    let status = query_param(&req.inner().url(), "status").map_err(ApiError::BadRequest)?;
    let (failed, pending) = match status.as_deref() {
        None => (true, true),
        Some("failed") => (true, false),
        Some("pending") => (false, true),
        Some(_) => {
            return Err(ApiError::BadRequest(
                "status must be failed or pending".to_owned(),
            ))
        }
    };
    // Removed accounts too: their objects keep delivering, and keep failed deliveries.
    let names: Vec<String> = scope.directory(&DirectoryRequest::ListAll).await?;
    let per_account: Vec<Vec<DeliveryRow>> = scope
        .fan_out(&names, &AccountRequest::Webhooks { failed, pending })
        .await?;
    let mut rows: Vec<DeliveryRow> = names
        .iter()
        .zip(per_account)
        .flat_map(|(name, rows)| {
            rows.into_iter().map(move |row| DeliveryRow {
                account: name.clone(),
                ..row
            })
        })
        .collect();
    rows.sort_by(|a, b| a.created.cmp(&b.created));
    Ok(Reply::Json(200, to_json(&rows)))
}
