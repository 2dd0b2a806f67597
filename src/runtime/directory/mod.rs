//! `UserDirectory`: one Durable Object per (provider, user), the one place a user's
//! requests go to.
//!
//! - It knows which accounts the user configured (SQLite, strongly consistent: an
//!   account added a moment ago is used at once, a removed one is gone at once).
//! - It answers lists by asking every account object at once (they live beside it,
//!   where the gateway first used them), so a caller far away pays one round trip to
//!   this object, not one to it and one more to the accounts.
//! - It runs admission: a view of every account (`crate::admission::View`) decides
//!   where a job goes with one call to that account, registrations run one at a time
//!   (so a job id is never admitted twice), and registrations that may wait queue here.
//! - It keeps the live view's subscribers and pushes them changes.
//!
//! The worker calls it over RPC with one `protocol::DirectoryCall` and hands its
//! `protocol::Answer` back to the client as it is.

mod accounts;
mod admission;
mod reads;
mod viewers;

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;

use wasm_bindgen::prelude::*;
use worker::{durable_object, DurableObject, Env, Request, Response, State};

use crate::admission::{Left, Queue, View};
use crate::config::Settings;
use crate::errors::{ApiError, ErrorStyle};
use crate::jobs::Registration;
use crate::protocol::{
    account_object_name, directory_object_name, encode_call, AccountCall, Answer, DirectoryCall,
    DirectoryOp,
};
use crate::providers::Provider;

use super::js::{CallFailed, Namespace};
use super::turnstile::{Signal, Turnstile};
use super::{ACCOUNTS_BINDING, DIRECTORY_BINDING, LIVE_BINDING};

#[durable_object(fetch)]
pub struct UserDirectory {
    inner: Rc<Directory>,
}

pub struct Directory {
    state: State,
    settings: Settings,
    accounts_ns: Namespace,
    sessions_ns: Namespace,
    /// The configured account names, ascending (from SQLite, kept until they change).
    names: RefCell<Option<Rc<[String]>>>,
    view: RefCell<View>,
    view_loaded: Cell<bool>,
    /// Registrations run one at a time behind this gate.
    gate: Turnstile,
    queue: RefCell<Queue<Registration>>,
    /// Why recent waiters left, for their worker's next ask.
    departed: RefCell<VecDeque<(u64, Left)>>,
    /// Held asks of waiters, woken when a slot is reserved for them.
    held: RefCell<Vec<(u64, Signal)>>,
    viewers: RefCell<viewers::Viewers>,
}

impl DurableObject for UserDirectory {
    fn new(state: State, env: Env) -> Self {
        let directory = Directory {
            settings: super::settings(&env),
            accounts_ns: Namespace::from_env(&env, ACCOUNTS_BINDING),
            sessions_ns: Namespace::from_env(&env, LIVE_BINDING),
            state,
            names: RefCell::new(None),
            view: RefCell::new(View::default()),
            view_loaded: Cell::new(false),
            gate: Turnstile::default(),
            // Tickets start at a different number for every instance, so a ticket from
            // before a restart is never mistaken for a new waiter's.
            queue: RefCell::new(Queue::starting_at(super::now_ms() as u64 * 1024)),
            departed: RefCell::new(VecDeque::new()),
            held: RefCell::new(Vec::new()),
            viewers: RefCell::new(viewers::Viewers::default()),
        };
        if let Err(e) = directory.create_schema() {
            worker::console_error!("directory schema: {e}");
        }
        UserDirectory {
            inner: Rc::new(directory),
        }
    }

    async fn fetch(&self, _req: Request) -> worker::Result<Response> {
        Response::error("directory objects answer RPC only", 404)
    }
}

#[wasm_bindgen]
impl UserDirectory {
    /// RPC: one `DirectoryCall` (JSON); answers a `protocol::Answer`.
    pub fn call(&self, request: String) -> js_sys::Promise {
        let directory = self.inner.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            Ok(JsValue::from_str(
                &directory.handle(&request).await.encode(),
            ))
        })
    }
}

/// Who a directory serves, passed along to every step.
#[derive(Clone)]
pub struct Scope {
    pub provider: Provider,
    pub user: String,
}

impl Directory {
    async fn handle(self: &Rc<Self>, request: &str) -> Answer {
        let call: DirectoryCall = match crate::wire::decode(request) {
            Ok(call) => call,
            Err(e) => {
                return failure(
                    &ApiError::internal(format!("bad directory call: {e}")),
                    ErrorStyle::Coded,
                )
            }
        };
        let scope = Scope {
            provider: call.provider,
            user: call.user,
        };
        let public = matches!(
            call.op,
            DirectoryOp::List { .. } | DirectoryOp::Available { .. } | DirectoryOp::Cancel { .. }
        );
        let style = if public {
            scope.provider.error_style()
        } else {
            ErrorStyle::Coded
        };
        match self.run(&scope, call.op).await {
            Ok(answer) => answer,
            Err(e) => failure(&e, style),
        }
    }

    async fn run(self: &Rc<Self>, scope: &Scope, op: DirectoryOp) -> Result<Answer, ApiError> {
        match op {
            DirectoryOp::List { now_ms } => self.list(scope, now_ms, false).await,
            DirectoryOp::Available { now_ms } => self.list(scope, now_ms, true).await,
            DirectoryOp::Cancel { id } => self.cancel(scope, &id).await,
            DirectoryOp::Register {
                registration,
                now_ms,
            } => self.register(scope, registration, now_ms).await,
            DirectoryOp::Poll { ticket } => self.poll(scope, ticket).await,
            DirectoryOp::Confirm { ticket } => self.confirm(scope, ticket).await,
            DirectoryOp::PutAccount { account, max_jobs } => {
                self.put_account(scope, &account, max_jobs).await
            }
            DirectoryOp::DeleteAccount { account } => self.delete_account(scope, &account).await,
            DirectoryOp::ListAccounts { now_ms } => self.list_accounts(scope, now_ms).await,
            DirectoryOp::Pause {
                account,
                until_ms,
                reason,
                now_ms,
            } => self.pause(scope, &account, until_ms, reason, now_ms).await,
            DirectoryOp::Resume { account, now_ms } => self.resume(scope, &account, now_ms).await,
            DirectoryOp::ListJobs { now_ms } => self.list_jobs(scope, now_ms).await,
            DirectoryOp::Complete { id, completion } => self.complete(scope, &id, completion).await,
            DirectoryOp::Progress {
                id,
                progress,
                now_ms,
            } => self.progress(scope, &id, progress, now_ms).await,
            DirectoryOp::Webhooks { query, path } => self.webhooks(scope, query, &path).await,
            DirectoryOp::RetryWebhook { webhook_id } => {
                self.retry_webhook(scope, &webhook_id).await
            }
            DirectoryOp::RetryWebhooksSince { since_ms } => self.retry_since(scope, since_ms).await,
            DirectoryOp::Subscribe { session, digest } => {
                self.subscribe(scope, &session, &digest).await
            }
            DirectoryOp::Unsubscribe { session } => self.unsubscribe(&session),
            DirectoryOp::TokenRevoked { digest } => self.token_revoked(&digest).await,
            DirectoryOp::AccountChanged { account, summary } => {
                if self.view_loaded.get() {
                    self.view.borrow_mut().apply(&account, summary);
                }
                self.slots_may_have_freed(scope);
                self.changed(scope);
                Ok(Answer::empty())
            }
        }
    }

    /// One operation on one account object, answered with the operation's own reply
    /// type.
    async fn ask<C: AccountCall>(
        &self,
        scope: &Scope,
        account: &str,
        call: &C,
    ) -> Result<C::Reply, ApiError> {
        let name = account_object_name(scope.provider, &scope.user, account);
        let text = self
            .accounts_ns
            .call_named_text(&name, "call", &encode_call(call))
            .await
            .map_err(|e| account_unavailable(scope, account, e))?;
        decode::<C::Reply>(&text)
    }

    /// The same operation on several accounts at once; replies in their order.
    async fn ask_each<C: AccountCall>(
        &self,
        scope: &Scope,
        accounts: &[String],
        call: &C,
    ) -> Result<Vec<C::Reply>, ApiError> {
        let names: Vec<String> = accounts
            .iter()
            .map(|a| account_object_name(scope.provider, &scope.user, a))
            .collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let answers = self
            .accounts_ns
            .call_each(&refs, "call", &JsValue::from_str(&encode_call(call)))
            .await
            .map_err(|e| account_unavailable(scope, "(several)", e))?;
        answers
            .into_iter()
            .zip(accounts)
            .map(|(answer, account)| match answer {
                Some(text) => decode::<C::Reply>(&text),
                None => Err(account_unavailable(
                    scope,
                    account,
                    CallFailed("call failed".to_owned()),
                )),
            })
            .collect()
    }
}

/// One call to the directory of `call`'s provider and user, from the worker, a live
/// session or an account object; its answer (an encoded [`Answer`]) stays a
/// JavaScript string.
pub async fn call(env: &Env, call: &DirectoryCall) -> Result<js_sys::JsString, CallFailed> {
    let name = directory_object_name(call.provider, &call.user);
    Namespace::from_env(env, DIRECTORY_BINDING)
        .call_named(&name, "call", &crate::wire::encode(call))
        .await
}

fn decode<T: crate::wire::Wire>(text: &str) -> Result<T, ApiError> {
    crate::wire::decode(text).map_err(|e| ApiError::internal(format!("account reply: {e}")))
}

fn account_unavailable(scope: &Scope, account: &str, e: CallFailed) -> ApiError {
    worker::console_error!(
        "account object {}|{}|{account}: {}",
        scope.provider,
        scope.user,
        e.0
    );
    ApiError::Unavailable(
        "An account of this user did not answer; nothing was changed. Retry.".to_owned(),
    )
}

/// An error as the client sees it, in the route's style.
fn failure(error: &ApiError, style: ErrorStyle) -> Answer {
    if let ApiError::Internal(detail) = error {
        worker::console_error!("directory: {detail}");
    }
    Answer::new(error.status(), error.body(style))
}
