//! `AccountObject`: one Durable Object per (provider, user, account), holding the
//! account's `maxJobs`, its executing jobs and its pending webhook deliveries in the
//! object's SQLite storage.
//!
//! Protocol: the worker POSTs one [`AccountRequest`] as JSON; the reply is the JSON
//! named on each variant.
//!
//! Why admission is atomic: SQL calls on Durable Object storage are synchronous, and
//! the object runs one event at a time between `await`s. `admit` checks the count and
//! inserts the job with no `await` in between, so no other request can slip in: any
//! number of concurrent registrations admit exactly `maxJobs - executing` of them.
//!
//! The alarm does two jobs (see `alarm.rs` for when it fires): it expires jobs older
//! than `JOB_TIMEOUT_SECONDS` and attempts due webhook deliveries. Alarms are
//! at-least-once, so the handler is idempotent: expiry deletes rows that are still
//! there, and a delivery row changes only after its attempt, keyed by its id; a rerun
//! after a crash at worst sends an attempt again with the same `webhook-id`.

use std::cell::{Cell, RefCell};

use futures_util::future::join_all;
use serde::Deserialize;
use serde_json::value::RawValue;
use wasm_bindgen::JsValue;
use worker::{
    durable_object, DurableObject, Env, Request, Response, ScheduledTime, SqlStorage,
    SqlStorageValue, State,
};

use crate::admission::{decide, Decision};
use crate::alarm::plan_wake;
use crate::config::Settings;
use crate::domain::Provider;
use crate::jobs::{FinalStatus, JobRecord};
use crate::protocol::{AccountRequest, AdmitReply, CompleteReply, DeliveryRow};
use crate::shapes::{to_json, AccountSnapshot};
use crate::time::format_iso_millis;
use crate::webhook::{dreamina_payload, judge, kling_payload, Ending, Outcome};

use super::objects::read_request;
use super::{delivery, now_ms, random_hex, string_var};

/// Deliveries attempted per alarm run, in parallel; more wait for the next run.
const DELIVERIES_PER_RUN: usize = 50;

const SCHEMA: [&str; 5] = [
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS jobs (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE,
        started_ms INTEGER NOT NULL, submit_id TEXT, model TEXT, reply_url TEXT, reply_ref TEXT)",
    "CREATE INDEX IF NOT EXISTS jobs_by_start ON jobs (started_ms)",
    "CREATE TABLE IF NOT EXISTS deliveries (seq INTEGER PRIMARY KEY, webhook_id TEXT NOT NULL UNIQUE,
        reply_url TEXT NOT NULL, payload TEXT NOT NULL, status TEXT NOT NULL,
        attempts INTEGER NOT NULL, next_at_ms INTEGER, last_error TEXT, created_ms INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (status, next_at_ms)",
];

const JOB_COLUMNS: &str = "seq, id, started_ms, submit_id, model, reply_url, reply_ref";

#[durable_object]
pub struct AccountObject {
    state: State,
    settings: Settings,
    /// The alarm time this instance last set; `None` when unknown (fresh instance) or
    /// none. Saves a storage write when the planned time has not changed.
    scheduled: Cell<Option<i64>>,
    /// The identity as last read or written; `None` until first read.
    identity: RefCell<Option<Option<Identity>>>,
    /// The last snapshot reply, kept until the next write. Lists are the hot path and
    /// the jobs change only through this instance (one object, one writer), so a
    /// repeated list skips the query and the encoding.
    listing: RefCell<Option<Listing>>,
}

/// A snapshot reply as sent, and when its oldest job started (to see when it is due).
struct Listing {
    json: String,
    oldest_started_ms: Option<i64>,
}

/// Who this object is, and its limit: written by `Configure`.
#[derive(Clone)]
struct Identity {
    provider: Provider,
    account: String,
    max_jobs: u32,
}

#[derive(Deserialize)]
struct MetaRow {
    key: String,
    value: String,
}

#[derive(Deserialize)]
struct MinRow {
    m: Option<i64>,
}

#[derive(Deserialize)]
struct CountRow {
    n: i64,
}

#[derive(Deserialize)]
struct DeliveryRecord {
    webhook_id: String,
    reply_url: String,
    payload: String,
    status: String,
    attempts: u32,
    next_at_ms: Option<i64>,
    last_error: Option<String>,
    created_ms: i64,
}

impl DurableObject for AccountObject {
    fn new(state: State, env: Env) -> Self {
        let (settings, warnings) = Settings::from_vars(
            string_var(&env, "JOB_TIMEOUT_SECONDS").as_deref(),
            string_var(&env, "WEBHOOK_RETRY_SCHEDULE").as_deref(),
            string_var(&env, "WEBHOOK_SECRET").as_deref(),
        );
        for warning in warnings {
            worker::console_warn!("{warning}");
        }
        let object = AccountObject {
            state,
            settings,
            scheduled: Cell::new(None),
            identity: RefCell::new(None),
            listing: RefCell::new(None),
        };
        for statement in SCHEMA {
            if let Err(e) = object.sql().exec(statement, None) {
                worker::console_error!("account schema: {e}");
            }
        }
        object
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        let request: AccountRequest = match read_request(&mut req).await {
            Ok(request) => request,
            Err(e) => return Response::error(format!("account object: {e}"), 400),
        };
        Response::ok(self.handle(request).await?)
    }

    async fn alarm(&self) -> worker::Result<Response> {
        self.scheduled.set(None);
        let now = now_ms();
        self.expire_due(now)?;
        self.deliver_due(now).await?;
        self.reschedule(now_ms()).await?;
        Response::ok("")
    }
}

fn text(value: &str) -> SqlStorageValue {
    SqlStorageValue::from(value)
}

fn int(value: i64) -> SqlStorageValue {
    SqlStorageValue::Integer(value)
}

fn fail(e: impl std::fmt::Display) -> worker::Error {
    worker::Error::RustError(e.to_string())
}

impl AccountObject {
    fn sql(&self) -> SqlStorage {
        self.state.storage().sql()
    }

    async fn handle(&self, request: AccountRequest) -> worker::Result<String> {
        let now = now_ms();
        if !matches!(
            request,
            AccountRequest::Snapshot | AccountRequest::Webhooks { .. }
        ) {
            // Every other request may write the jobs: the cached listing goes first,
            // before any write (no await in between, so no list can see it stale).
            self.listing.take();
        }
        let reply = match request {
            AccountRequest::Configure {
                provider,
                user,
                account,
                max_jobs,
            } => {
                self.configure(&provider, &user, &account, max_jobs)?;
                to_json(&self.snapshot(now)?)
            }
            AccountRequest::Snapshot => self.listing(now).await?,
            AccountRequest::Admit { job } => {
                let reply = self.admit(job, now)?;
                self.reschedule(now).await?;
                to_json(&reply)
            }
            AccountRequest::Complete { id, status, result } => {
                let reply = self.complete(&id, status, result, now)?;
                self.reschedule(now).await?;
                to_json(&reply)
            }
            AccountRequest::Cancel { id } => {
                self.expire_due(now)?;
                let removed = self.identity()?.is_some() && self.remove_job(&id)?;
                self.reschedule(now).await?;
                to_json(&removed)
            }
            AccountRequest::Remove => {
                let existed = self.identity()?.is_some();
                self.sql().exec("DELETE FROM jobs", None)?;
                self.sql().exec("DELETE FROM meta", None)?;
                *self.identity.borrow_mut() = None;
                // Webhooks already queued are still delivered: the alarm keeps running.
                self.reschedule(now).await?;
                to_json(&existed)
            }
            AccountRequest::Webhooks { failed, pending } => {
                to_json(&self.deliveries(failed, pending)?)
            }
        };
        Ok(reply)
    }

    /// The snapshot reply. Lists are the hot path: the cached reply while no job in
    /// it is due to expire; otherwise expire what is due, then one query.
    async fn listing(&self, now: i64) -> worker::Result<String> {
        let timeout = self.settings.job_timeout_ms;
        let is_due = |oldest: Option<i64>| oldest.is_some_and(|s| s + timeout <= now);
        if let Some(listing) = self.listing.borrow().as_ref() {
            if !is_due(listing.oldest_started_ms) {
                return Ok(listing.json.clone());
            }
        }
        let mut snapshot = self.snapshot(now)?;
        let oldest = |s: &Option<AccountSnapshot>| {
            s.as_ref()
                .and_then(|s| s.jobs.first())
                .map(|j| j.started_ms)
        };
        if is_due(oldest(&snapshot)) {
            if self.expire_due(now)? {
                self.reschedule(now).await?;
            }
            snapshot = self.snapshot(now)?;
        }
        let json = to_json(&snapshot);
        *self.listing.borrow_mut() = Some(Listing {
            json: json.clone(),
            oldest_started_ms: oldest(&snapshot),
        });
        Ok(json)
    }

    fn configure(
        &self,
        provider: &str,
        user: &str,
        account: &str,
        max_jobs: u32,
    ) -> worker::Result<()> {
        let max_jobs = max_jobs.to_string();
        for (key, value) in [
            ("provider", provider),
            ("user", user),
            ("account", account),
            ("max_jobs", &max_jobs),
        ] {
            self.sql().exec(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                vec![text(key), text(value)],
            )?;
        }
        *self.identity.borrow_mut() = None;
        Ok(())
    }

    /// The object's identity, read from storage once and then kept in memory (it
    /// changes only through `configure` and `Remove`, which reset the copy). Saves
    /// a query on every request, lists included.
    fn identity(&self) -> worker::Result<Option<Identity>> {
        if let Some(known) = self.identity.borrow().as_ref() {
            return Ok(known.clone());
        }
        let loaded = self.load_identity()?;
        *self.identity.borrow_mut() = Some(loaded.clone());
        Ok(loaded)
    }

    fn load_identity(&self) -> worker::Result<Option<Identity>> {
        let rows: Vec<MetaRow> = self
            .sql()
            .exec("SELECT key, value FROM meta", None)?
            .to_array()?;
        let get = |key: &str| rows.iter().find(|r| r.key == key).map(|r| r.value.as_str());
        let identity = match (
            get("provider").and_then(Provider::parse),
            get("account"),
            get("max_jobs"),
        ) {
            (Some(provider), Some(account), Some(max_jobs)) => Some(Identity {
                provider,
                account: account.to_owned(),
                max_jobs: max_jobs.parse().map_err(fail)?,
            }),
            _ => None,
        };
        Ok(identity)
    }

    fn jobs(&self) -> worker::Result<Vec<JobRecord>> {
        let query = format!("SELECT {JOB_COLUMNS} FROM jobs ORDER BY started_ms, seq");
        self.sql().exec(&query, None)?.to_array()
    }

    fn job(&self, id: &str) -> worker::Result<Option<JobRecord>> {
        let query = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?");
        let rows: Vec<JobRecord> = self.sql().exec(&query, vec![text(id)])?.to_array()?;
        Ok(rows.into_iter().next())
    }

    fn remove_job(&self, id: &str) -> worker::Result<bool> {
        let existed = self.job(id)?.is_some();
        self.sql()
            .exec("DELETE FROM jobs WHERE id = ?", vec![text(id)])?;
        Ok(existed)
    }

    fn snapshot(&self, _now: i64) -> worker::Result<Option<AccountSnapshot>> {
        let Some(identity) = self.identity()? else {
            return Ok(None);
        };
        Ok(Some(AccountSnapshot {
            account: identity.account,
            max_jobs: identity.max_jobs,
            jobs: self.jobs()?,
        }))
    }

    /// Check and insert with no `await` in between: this is the atomic step.
    fn admit(&self, job: JobRecord, now: i64) -> worker::Result<AdmitReply> {
        let Some(identity) = self.identity()? else {
            return Ok(AdmitReply::NotConfigured);
        };
        self.expire_due(now)?;
        let count: Vec<CountRow> = self
            .sql()
            .exec("SELECT COUNT(*) AS n FROM jobs", None)?
            .to_array()?;
        let executing = count.first().map_or(0, |c| c.n);
        let executing = u32::try_from(executing).unwrap_or(u32::MAX);
        match decide(identity.max_jobs, executing, self.job(&job.id)?.is_some()) {
            Decision::Duplicate => return Ok(AdmitReply::Duplicate),
            Decision::Full => return Ok(AdmitReply::Full),
            Decision::Admit => {}
        }
        self.sql().exec(
            "INSERT INTO jobs (id, started_ms, submit_id, model, reply_url, reply_ref) VALUES (?, ?, ?, ?, ?, ?)",
            vec![
                text(&job.id),
                int(job.started_ms),
                job.submit_id.clone().into(),
                job.model.clone().into(),
                job.reply_url.clone().into(),
                job.reply_ref.clone().into(),
            ],
        )?;
        let stored = self
            .job(&job.id)?
            .ok_or_else(|| fail("job vanished after insert"))?;
        Ok(AdmitReply::Admitted { job: stored })
    }

    fn complete(
        &self,
        id: &str,
        status: FinalStatus,
        result: Option<String>,
        now: i64,
    ) -> worker::Result<CompleteReply> {
        let Some(identity) = self.identity()? else {
            return Ok(CompleteReply::NotFound);
        };
        // A job past its timeout has already failed; completing it is too late.
        self.expire_due(now)?;
        let Some(job) = self.job(id)? else {
            return Ok(CompleteReply::NotFound);
        };
        self.sql()
            .exec("DELETE FROM jobs WHERE id = ?", vec![text(id)])?;
        let result = result
            .map(RawValue::from_string)
            .transpose()
            .map_err(fail)?;
        let ending = Ending {
            status,
            finished_ms: now,
            result: result.as_deref(),
            error: None,
        };
        let webhook_id = self.queue_webhook(&identity, &job, &ending, now)?;
        Ok(CompleteReply::Completed { webhook_id })
    }

    /// Expires jobs executing longer than the timeout: each leaves the list and, with
    /// a `replyUrl`, gets a `failed`/`timeout` webhook. Returns whether any was queued.
    fn expire_due(&self, now: i64) -> worker::Result<bool> {
        let Some(identity) = self.identity()? else {
            return Ok(false);
        };
        let timeout = self.settings.job_timeout_ms;
        let query = format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE started_ms <= ? ORDER BY started_ms, seq"
        );
        let expired: Vec<JobRecord> = self
            .sql()
            .exec(&query, vec![int(now - timeout)])?
            .to_array()?;
        let mut queued = false;
        if !expired.is_empty() {
            self.listing.take();
        }
        for job in expired {
            self.sql()
                .exec("DELETE FROM jobs WHERE id = ?", vec![text(&job.id)])?;
            // The job failed when its time ran out, however late the alarm noticed.
            let finished_ms = job.started_ms + timeout;
            let ending = Ending {
                status: FinalStatus::Failed,
                finished_ms,
                result: None,
                error: Some("timeout"),
            };
            queued |= self.queue_webhook(&identity, &job, &ending, now)?.is_some();
        }
        Ok(queued)
    }

    /// Stores a delivery for `job`'s webhook, due now. `None` when it has no `replyUrl`.
    fn queue_webhook(
        &self,
        identity: &Identity,
        job: &JobRecord,
        ending: &Ending<'_>,
        now: i64,
    ) -> worker::Result<Option<String>> {
        let Some(url) = &job.reply_url else {
            return Ok(None);
        };
        let payload = match identity.provider {
            Provider::Kling => kling_payload(&identity.account, job, ending),
            Provider::Dreamina => dreamina_payload(&identity.account, job, ending),
        };
        let webhook_id = format!(
            "msg_{}",
            random_hex::<16>().map_err(|e| fail(format!("{e:?}")))?
        );
        self.sql().exec(
            "INSERT INTO deliveries (webhook_id, reply_url, payload, status, attempts, next_at_ms, created_ms)
             VALUES (?, ?, ?, 'pending', 0, ?, ?)",
            vec![text(&webhook_id), text(url), text(&payload), int(now), int(now)],
        )?;
        Ok(Some(webhook_id))
    }

    /// Attempts every delivery due by `now`, in parallel, and records each outcome.
    async fn deliver_due(&self, now: i64) -> worker::Result<()> {
        let due: Vec<DeliveryRecord> = self
            .sql()
            .exec(
                "SELECT webhook_id, reply_url, payload, status, attempts, next_at_ms, last_error, created_ms
                 FROM deliveries WHERE status = 'pending' AND next_at_ms <= ? ORDER BY next_at_ms LIMIT ?",
                vec![int(now), int(DELIVERIES_PER_RUN as i64)],
            )?
            .to_array()?;
        let secret = self.settings.webhook_secret.as_ref();
        let attempts = due.iter().map(|d| async move {
            let answer =
                delivery::attempt(&d.reply_url, &d.payload, &d.webhook_id, secret, now_ms()).await;
            (d, judge(answer))
        });
        for (d, outcome) in join_all(attempts).await {
            self.record_attempt(d, outcome)?;
        }
        Ok(())
    }

    fn record_attempt(&self, d: &DeliveryRecord, outcome: Outcome) -> worker::Result<()> {
        let attempts = d.attempts + 1;
        let id = text(&d.webhook_id);
        match outcome {
            Outcome::Delivered => {
                self.sql()
                    .exec("DELETE FROM deliveries WHERE webhook_id = ?", vec![id])?;
            }
            Outcome::Gone => {
                self.sql().exec(
                    "UPDATE deliveries SET status = 'failed', attempts = ?, next_at_ms = NULL,
                     last_error = 'HTTP 410: receiver gone, not retried' WHERE webhook_id = ?",
                    vec![int(attempts.into()), id],
                )?;
            }
            Outcome::Retry(reason) => {
                let next = self
                    .settings
                    .retry_schedule
                    .next_attempt_at(attempts, now_ms());
                let status = if next.is_some() { "pending" } else { "failed" };
                self.sql().exec(
                    "UPDATE deliveries SET status = ?, attempts = ?, next_at_ms = ?, last_error = ?
                     WHERE webhook_id = ?",
                    vec![
                        text(status),
                        int(attempts.into()),
                        next.into(),
                        text(&reason),
                        id,
                    ],
                )?;
            }
        }
        Ok(())
    }

    fn deliveries(&self, failed: bool, pending: bool) -> worker::Result<Vec<DeliveryRow>> {
        // The worker fills in the account name: a removed account has no identity left.
        let account = self.identity()?.map(|i| i.account).unwrap_or_default();
        let rows: Vec<DeliveryRecord> = self
            .sql()
            .exec(
                "SELECT webhook_id, reply_url, payload, status, attempts, next_at_ms, last_error, created_ms
                 FROM deliveries ORDER BY seq",
                None,
            )?
            .to_array()?;
        rows.into_iter()
            .filter(|r| (failed && r.status == "failed") || (pending && r.status == "pending"))
            .map(|r| {
                Ok(DeliveryRow {
                    webhook_id: r.webhook_id,
                    account: account.clone(),
                    reply_url: r.reply_url,
                    status: r.status,
                    attempts: r.attempts,
                    last_error: r.last_error,
                    next_attempt: r.next_at_ms.map(format_iso_millis),
                    created: format_iso_millis(r.created_ms),
                    payload: RawValue::from_string(r.payload).map_err(fail)?,
                })
            })
            .collect()
    }

    /// Sets the alarm to the next planned wake (or deletes it when nothing is due).
    async fn reschedule(&self, now: i64) -> worker::Result<()> {
        let min = |query: &str| -> worker::Result<Option<i64>> {
            let rows: Vec<MinRow> = self.sql().exec(query, None)?.to_array()?;
            Ok(rows.into_iter().next().and_then(|r| r.m))
        };
        let oldest_start = min("SELECT MIN(started_ms) AS m FROM jobs")?;
        let next_delivery =
            min("SELECT MIN(next_at_ms) AS m FROM deliveries WHERE status = 'pending'")?;
        let expiry = oldest_start.map(|s| s + self.settings.job_timeout_ms);
        let storage = self.state.storage();
        match plan_wake(expiry, next_delivery, now) {
            Some(at) if self.scheduled.get() != Some(at) => {
                let when = js_sys::Date::new(&JsValue::from_f64(at as f64));
                storage.set_alarm(ScheduledTime::new(when)).await?;
                self.scheduled.set(Some(at));
            }
            Some(_) => {}
            None => {
                if self.scheduled.get().is_some() {
                    storage.delete_alarm().await?;
                }
                self.scheduled.set(None);
            }
        }
        Ok(())
    }
}
