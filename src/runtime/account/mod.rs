//! `AccountObject`: one Durable Object per (provider, user, account), holding the
//! account's `maxJobs` and pause, its executing jobs and its webhook outbox in the
//! object's SQLite storage.
//!
//! Its methods are called over RPC by the user's directory object (`call` with one
//! operation of `protocol`, and `snapshot`, the list's hot path). Every method but the
//! alarm is synchronous: SQL on Durable Object storage is synchronous, and an object
//! runs one event at a time between `await`s, so each operation (admission's
//! check-and-insert above all) is atomic with no lock. Writes that must reach the
//! alarm (`setAlarm`) are not awaited: the object's output gate holds every reply
//! until they are durable.
//!
//! The parts: [`jobs`] (meta and jobs, with the in-memory copy lists are drawn from),
//! [`outbox`] (webhook deliveries), [`alarm`] (expiry, timed pauses, deliveries,
//! pruning).

mod alarm;
mod jobs;
mod outbox;

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use wasm_bindgen::prelude::*;
use worker::{durable_object, DurableObject, Env, Request, Response, State};

use crate::config::Settings;
use crate::protocol::{self as p, split_call, AccountCall};
use crate::wire::Reader;

use super::turnstile::Signal;

#[durable_object(alarm)]
pub struct AccountObject {
    inner: Rc<Account>,
}

/// The object's state; shared (`Rc`) with the futures of its alarm.
pub struct Account {
    state: State,
    env: Env,
    settings: Settings,
    /// The meta rows, read once (`None` until then).
    meta: RefCell<Option<Option<jobs::Meta>>>,
    /// The executing jobs with their list items drawn, read once and then kept in
    /// step with every write (this object is the only writer of its tables).
    jobs: RefCell<Option<Vec<jobs::Held>>>,
    /// The alarm time this instance last set; `None` when unknown or none.
    alarm_at: Cell<Option<i64>>,
    /// The time this instance's last alarm run was for (`crate::alarm::after_last_run`):
    /// kept after the run, since the runtime looks at the alarm after the handler ends.
    alarm_fired_ms: Cell<Option<i64>>,
    /// The last alarm run stopped at one of its limits (attempts per run, prune batch)
    /// with work left: the next alarm is set at once, off the 2 s grid, so a backlog
    /// drains at the pace of the runs rather than one run per grid slot.
    run_again: Cell<bool>,
    /// Set while the alarm's delivery pump runs: new deliveries wake it at once.
    pump: RefCell<Option<Signal>>,
}

impl DurableObject for AccountObject {
    fn new(state: State, env: Env) -> Self {
        let settings = super::settings(&env);
        let account = Account {
            state,
            env,
            settings,
            meta: RefCell::new(None),
            jobs: RefCell::new(None),
            alarm_at: Cell::new(None),
            alarm_fired_ms: Cell::new(None),
            run_again: Cell::new(false),
            pump: RefCell::new(None),
        };
        if let Err(e) = account.create_schema() {
            worker::console_error!("account schema: {e}");
        }
        AccountObject {
            inner: Rc::new(account),
        }
    }

    async fn fetch(&self, _req: Request) -> worker::Result<Response> {
        Response::error("account objects answer RPC only", 404)
    }

    async fn alarm(&self) -> worker::Result<Response> {
        self.inner.clone().run_alarm().await;
        Response::ok("")
    }
}

#[wasm_bindgen]
impl AccountObject {
    /// RPC: one operation (`{"op","args"}`), answered as JSON of its reply type.
    pub fn call(&self, request: String) -> Result<String, JsError> {
        self.inner.dispatch(&request).map_err(|e| {
            worker::console_error!("account object: {e}");
            JsError::new(&e)
        })
    }

    /// RPC: this account's part of a list at `now_ms` (`protocol::Snapshot`); empty
    /// when the account is not configured.
    pub fn snapshot(&self, now_ms: f64) -> Result<String, JsError> {
        self.inner
            .snapshot_text(now_ms as i64)
            .map_err(|e| JsError::new(&e))
    }
}

impl Account {
    fn sql(&self) -> worker::SqlStorage {
        self.state.storage().sql()
    }

    fn dispatch(&self, request: &str) -> Result<String, String> {
        let (op, mut args) = split_call(request).map_err(|e| e.to_string())?;
        let args = &mut args;
        match op.as_str() {
            p::Configure::OP => self.serve(args, |c: p::Configure| self.configure(c)),
            p::GetSummary::OP => self.serve(args, |c: p::GetSummary| self.get_summary(c.now_ms)),
            p::Admit::OP => self.serve(args, |c: p::Admit| self.admit(c)),
            p::Complete::OP => self.serve(args, |c: p::Complete| self.complete(c)),
            p::Cancel::OP => self.serve(args, |c: p::Cancel| self.cancel(c)),
            p::Progress::OP => self.serve(args, |c: p::Progress| self.progress(c)),
            p::Pause::OP => self.serve(args, |c: p::Pause| self.pause(c)),
            p::Resume::OP => self.serve(args, |c: p::Resume| self.resume(c)),
            p::Row::OP => self.serve(args, |c: p::Row| self.row(c.now_ms)),
            p::Remove::OP => self.serve(args, |_: p::Remove| self.remove()),
            p::AdminJobs::OP => self.serve(args, |c: p::AdminJobs| self.admin_jobs(c.now_ms)),
            p::Deliveries::OP => self.serve(args, |c: p::Deliveries| self.deliveries(c)),
            p::RetryDelivery::OP => self.serve(args, |c: p::RetryDelivery| self.retry_delivery(c)),
            p::RetrySince::OP => self.serve(args, |c: p::RetrySince| self.retry_since(c)),
            other => Err(format!("unknown operation {other}")),
        }
    }

    /// Reads the arguments of `C`, runs `handler`, writes its reply: the handler must
    /// answer `C::Reply`, so an operation cannot answer another's reply type.
    fn serve<C: AccountCall>(
        &self,
        args: &mut Reader<'_>,
        handler: impl FnOnce(C) -> Result<C::Reply, String>,
    ) -> Result<String, String> {
        let call = C::get(args).map_err(|e| format!("{}: {e}", C::OP))?;
        if !args.is_done() {
            return Err(format!("{}: text after the arguments", C::OP));
        }
        Ok(crate::wire::encode(&handler(call)?))
    }
}
