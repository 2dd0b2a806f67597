//! `UserDirectory`: one Durable Object per (provider, user) that knows which accounts
//! the user has configured, and runs that user's job registrations one at a time.
//!
//! Why an object and not a KV list: KV is eventually consistent, so an account added
//! a moment ago could be missing from the next registration's automatic choice, or a
//! removed one could still be asked. The directory is read once per list request,
//! before the account objects are asked in parallel.
//!
//! Removed accounts keep their row (marked inactive): their objects may still hold
//! undelivered webhooks, which the operator's webhook list must keep showing.

use worker::{durable_object, DurableObject, Env, Request, Response, SqlStorageValue, State};

use crate::domain::{Provider, UserId};
use crate::errors::ApiError;
use crate::protocol::{DirectoryRequest, RegisterReply};

use super::objects::{read_request, UserScope};
use super::registration::{register, Turnstile};

#[durable_object]
pub struct UserDirectory {
    state: State,
    env: Env,
    registrations: Turnstile,
}

impl DurableObject for UserDirectory {
    fn new(state: State, env: Env) -> Self {
        let directory = UserDirectory {
            state,
            env,
            registrations: Turnstile::default(),
        };
        if let Err(e) = directory.sql().exec(
            "CREATE TABLE IF NOT EXISTS directory (name TEXT PRIMARY KEY, active INTEGER NOT NULL)",
            None,
        ) {
            worker::console_error!("directory schema: {e}");
        }
        directory
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        let request: DirectoryRequest = match read_request(&mut req).await {
            Ok(request) => request,
            Err(e) => return Response::error(format!("directory object: {e}"), 400),
        };
        let reply = match request {
            DirectoryRequest::List => serde_json::to_string(&self.names(true)?),
            DirectoryRequest::ListAll => serde_json::to_string(&self.names(false)?),
            DirectoryRequest::Add { account } => serde_json::to_string(&self.add(account)?),
            DirectoryRequest::Remove { account } => serde_json::to_string(&self.remove(account)?),
            DirectoryRequest::Register {
                provider,
                user,
                body,
                now_ms,
            } => serde_json::to_string(&self.register(&provider, &user, &body, now_ms).await),
        };
        Response::ok(reply.map_err(|e| worker::Error::RustError(e.to_string()))?)
    }
}

#[derive(serde::Deserialize)]
struct NameRow {
    name: String,
}

impl UserDirectory {
    fn sql(&self) -> worker::SqlStorage {
        self.state.storage().sql()
    }

    /// Account names, ascending: the active ones, or all.
    fn names(&self, active_only: bool) -> worker::Result<Vec<String>> {
        let query = if active_only {
            "SELECT name FROM directory WHERE active = 1 ORDER BY name"
        } else {
            "SELECT name FROM directory ORDER BY name"
        };
        let rows: Vec<NameRow> = self.sql().exec(query, None)?.to_array()?;
        Ok(rows.into_iter().map(|r| r.name).collect())
    }

    fn is_active(&self, account: &str) -> worker::Result<bool> {
        let rows: Vec<NameRow> = self
            .sql()
            .exec(
                "SELECT name FROM directory WHERE name = ? AND active = 1",
                vec![SqlStorageValue::from(account)],
            )?
            .to_array()?;
        Ok(!rows.is_empty())
    }

    fn add(&self, account: String) -> worker::Result<bool> {
        let was_active = self.is_active(&account)?;
        self.sql().exec(
            "INSERT INTO directory (name, active) VALUES (?, 1)
             ON CONFLICT (name) DO UPDATE SET active = 1",
            vec![SqlStorageValue::from(account)],
        )?;
        Ok(!was_active)
    }

    fn remove(&self, account: String) -> worker::Result<bool> {
        let was_active = self.is_active(&account)?;
        self.sql().exec(
            "UPDATE directory SET active = 0 WHERE name = ?",
            vec![SqlStorageValue::from(account)],
        )?;
        Ok(was_active)
    }

    /// Runs one registration, after every earlier one has finished.
    async fn register(&self, provider: &str, user: &str, body: &str, now_ms: i64) -> RegisterReply {
        let _pass = self.registrations.enter().await;
        let outcome = match (Provider::parse(provider), UserId::parse(user)) {
            (Some(provider), Ok(user)) => {
                let scope = UserScope {
                    env: &self.env,
                    provider,
                    user: &user,
                };
                register(&scope, body, now_ms).await
            }
            _ => Err(ApiError::internal("directory: bad provider or user")),
        };
        match outcome {
            Ok((account, job)) => RegisterReply::Admitted { account, job },
            Err(ApiError::Internal(detail)) => {
                worker::console_error!("registration failed: {detail}");
                RegisterReply::Refused {
                    status: 500,
                    message: "Internal error".to_owned(),
                }
            }
            Err(e) => RegisterReply::Refused {
                status: e.status(),
                message: e.message().to_owned(),
            },
        }
    }
}
