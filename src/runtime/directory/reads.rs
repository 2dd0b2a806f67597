//! Reads and job endings: the public lists (the hot path), the operator's jobs list,
//! completion, cancel and progress, and the webhooks routes.
//!
//! A list asks every configured account object at once for its `snapshot` (items
//! already written, clocks filled in at `now`) and concatenates: no JSON is parsed.

use std::rc::Rc;

use wasm_bindgen::JsValue;

use crate::errors::ApiError;
use crate::jobs::Completion;
use crate::json::array;
use crate::lists::{available_body, list_body, push_oldest_first, AccountPart};
use crate::outbox::{next_link, Cursor, PageQuery, MAX_PAGE_BYTES};
use crate::protocol::{self as p, account_object_name, Answer, Ended, RetryOutcome, Snapshot};
use crate::providers::PathId;

use super::{account_unavailable, Directory, Scope};
use crate::runtime::js::CallFailed;

impl Directory {
    /// `GET …/scheduler` and `…/available`.
    pub(super) async fn list(
        self: &Rc<Self>,
        scope: &Scope,
        now: i64,
        with_capacity: bool,
    ) -> Result<Answer, ApiError> {
        let body = self.list_text(scope, now, with_capacity).await?;
        Ok(Answer::new(200, body))
    }

    /// The list body; also what live viewers are sent (`available`).
    pub(super) async fn list_text(
        self: &Rc<Self>,
        scope: &Scope,
        now: i64,
        with_capacity: bool,
    ) -> Result<String, ApiError> {
        let names = self.active_names()?;
        let objects: Vec<String> = names
            .iter()
            .map(|a| account_object_name(scope.provider, &scope.user, a))
            .collect();
        let refs: Vec<&str> = objects.iter().map(String::as_str).collect();
        let texts = self
            .accounts_ns
            .call_each(&refs, "snapshot", &JsValue::from_f64(now as f64))
            .await
            .map_err(|e| account_unavailable(scope, "(list)", e))?;
        let mut parts: Vec<AccountPart<'_>> = Vec::with_capacity(names.len());
        let mut drifted = false;
        for (name, text) in names.iter().zip(&texts) {
            let text = text.as_deref().ok_or_else(|| {
                account_unavailable(scope, name, CallFailed("snapshot failed".to_owned()))
            })?;
            // An empty snapshot: a half-finished removal, not listed.
            if let Some(snapshot) = Snapshot::parse(text) {
                drifted |= self.saw_revision(name, snapshot.rev);
                parts.push((name.as_str(), snapshot));
            }
        }
        if drifted {
            // An account changed by itself (a job expired at this read): viewers hear.
            self.changed(scope);
        }
        Ok(if with_capacity {
            available_body(scope.provider, &parts)
        } else {
            list_body(scope.provider, &parts)
        })
    }

    /// Notes an account's revision; whether it was newer than the view's.
    fn saw_revision(&self, account: &str, rev: u64) -> bool {
        if !self.view_loaded.get() {
            return false;
        }
        let mut view = self.view.borrow_mut();
        let before = view.needs_refresh(account, i64::MIN);
        view.saw_revision(account, rev);
        !before && view.needs_refresh(account, i64::MIN)
    }

    /// `GET /admin/…/jobs`: every executing job, oldest first.
    pub(super) async fn list_jobs(&self, scope: &Scope, now: i64) -> Result<Answer, ApiError> {
        let names = self.active_names()?;
        let lists = self
            .ask_each(scope, &names, &p::AdminJobs { now_ms: now })
            .await?;
        let mut body = String::new();
        let jobs = lists.iter().map(|jobs| {
            jobs.iter()
                .map(|(started, seq, item)| (*started, *seq, item.as_str()))
        });
        push_oldest_first(&mut body, jobs);
        Ok(Answer::new(200, body))
    }

    /// The account an executing job is on, from the view.
    async fn holder(&self, scope: &Scope, id: &str, now: i64) -> Result<Option<String>, ApiError> {
        self.ensure_view(scope, now).await?;
        Ok(self.view.borrow().holder_of(id).map(str::to_owned))
    }

    /// `DELETE …/scheduler/{id}`: stop tracking, no webhook.
    pub(super) async fn cancel(
        self: &Rc<Self>,
        scope: &Scope,
        raw: &str,
    ) -> Result<Answer, ApiError> {
        let now = super::super::now_ms();
        let not_running = || ApiError::NotFound(scope.provider.not_running(raw));
        let id = match scope.provider.path_id(raw) {
            PathId::Id(id) => id,
            PathId::NeverRunning => return Err(not_running()),
            PathId::Invalid(message) => return Err(ApiError::BadRequest(message.to_owned())),
        };
        let Some(account) = self.holder(scope, &id, now).await? else {
            return Err(not_running());
        };
        match self
            .ask(scope, &account, &p::Cancel { id, now_ms: now })
            .await?
        {
            Ended::Ended { summary, .. } => {
                self.take_summary(&account, summary);
                self.slots_may_have_freed(scope);
                self.changed(scope);
                Ok(Answer::empty())
            }
            Ended::NotRunning(summary) => {
                self.took_maybe(&account, summary);
                Err(not_running())
            }
        }
    }

    fn took_maybe(&self, account: &str, summary: Option<crate::admission::Summary>) {
        match summary {
            Some(summary) => self.take_summary(account, summary),
            None => self.view.borrow_mut().remove(account),
        }
    }

    /// The id of an operator path, or the 404/400 it deserves.
    fn operator_id(scope: &Scope, raw: &str) -> Result<String, ApiError> {
        match scope.provider.path_id(raw) {
            PathId::Id(id) => Ok(id),
            PathId::NeverRunning => Err(job_not_running(raw)),
            PathId::Invalid(message) => Err(ApiError::BadRequest(message.to_owned())),
        }
    }

    /// `POST /admin/…/jobs/{id}/complete`: 200 `{"account","status",<id members>,
    /// "webhookId"?}`.
    pub(super) async fn complete(
        self: &Rc<Self>,
        scope: &Scope,
        raw: &str,
        completion: Completion,
    ) -> Result<Answer, ApiError> {
        let now = super::super::now_ms();
        let id = Self::operator_id(scope, raw)?;
        let Some(account) = self.holder(scope, &id, now).await? else {
            return Err(job_not_running(raw));
        };
        let call = p::Complete {
            id,
            status: completion.status,
            result: completion.result,
            now_ms: now,
        };
        match self.ask(scope, &account, &call).await? {
            Ended::Ended { answer, summary } => {
                self.take_summary(&account, summary);
                self.slots_may_have_freed(scope);
                self.changed(scope);
                Ok(Answer::new(200, answer))
            }
            Ended::NotRunning(summary) => {
                self.took_maybe(&account, summary);
                Err(job_not_running(raw))
            }
        }
    }

    /// `POST /admin/…/jobs/{id}/progress`: the job's timeout restarts from now.
    pub(super) async fn progress(
        &self,
        scope: &Scope,
        raw: &str,
        progress: Option<u8>,
        now: i64,
    ) -> Result<Answer, ApiError> {
        let id = Self::operator_id(scope, raw)?;
        let Some(account) = self.holder(scope, &id, now).await? else {
            return Err(job_not_running(raw));
        };
        match self
            .ask(
                scope,
                &account,
                &p::Progress {
                    id,
                    progress,
                    now_ms: now,
                },
            )
            .await?
        {
            Some(item) => Ok(Answer::new(200, item)),
            None => Err(job_not_running(raw)),
        }
    }

    /// `GET /admin/…/webhooks`: one page, walking the accounts (removed ones too) in
    /// name order and each account's rows of the asked status in sequence order.
    pub(super) async fn webhooks(
        &self,
        scope: &Scope,
        query: PageQuery,
        path: &str,
    ) -> Result<Answer, ApiError> {
        let names = self.all_names()?;
        let start = query.cursor.clone();
        let mut rows: Vec<String> = Vec::new();
        let mut bytes = 0usize;
        let mut next: Option<Cursor> = None;
        let accounts = names.iter().filter(|name| {
            start
                .as_ref()
                .is_none_or(|c| name.as_str() >= c.account.as_str())
        });
        for account in accounts {
            let after_seq = match &start {
                Some(c) if &c.account == account => c.seq,
                _ => 0,
            };
            let full = rows.len() >= query.limit || bytes >= MAX_PAGE_BYTES;
            let call = p::Deliveries {
                status: query.status,
                after_seq,
                // A full page only asks whether more rows follow.
                limit: if full { 1 } else { query.limit - rows.len() },
                max_bytes: MAX_PAGE_BYTES.saturating_sub(bytes).max(1),
            };
            let page = self.ask(scope, account, &call).await?;
            if full {
                if !page.rows.is_empty() {
                    // The page is full and rows follow: it gets a next link.
                    return Ok(page_answer(path, &query, rows, next));
                }
                continue;
            }
            bytes += page.rows.iter().map(String::len).sum::<usize>();
            rows.extend(page.rows);
            if let Some(seq) = page.last_seq {
                next = Some(Cursor {
                    account: account.clone(),
                    seq,
                });
            }
            if page.more {
                // This account has more: the next page starts here.
                return Ok(page_answer(path, &query, rows, next));
            }
        }
        // Every account was read to its end: this is the last page.
        Ok(page_answer(path, &query, rows, None))
    }

    /// `POST /admin/…/webhooks/{webhookId}/retry`
    pub(super) async fn retry_webhook(
        &self,
        scope: &Scope,
        webhook_id: &str,
    ) -> Result<Answer, ApiError> {
        let names = self.all_names()?;
        let call = p::RetryDelivery {
            webhook_id: webhook_id.to_owned(),
            now_ms: super::super::now_ms(),
        };
        let outcomes = self.ask_each(scope, &names, &call).await?;
        let found = |o: &RetryOutcome| outcomes.iter().any(|x| x == o);
        if found(&RetryOutcome::Requeued) {
            let mut body = String::new();
            let mut o = crate::json::Object::new(&mut body);
            o.str("webhookId", webhook_id).str("status", "pending");
            o.end();
            Ok(Answer::new(202, body))
        } else if found(&RetryOutcome::StillPending) {
            Err(ApiError::Conflict(format!(
                "Webhook {webhook_id} is still pending"
            )))
        } else if found(&RetryOutcome::Delivered) {
            Err(ApiError::Conflict(format!(
                "Webhook {webhook_id} was delivered; only failed deliveries are retried"
            )))
        } else {
            Err(ApiError::NotFound(format!("Unknown webhook {webhook_id}")))
        }
    }

    /// `POST /admin/…/webhooks/retry` with `{"since"}`.
    pub(super) async fn retry_since(
        &self,
        scope: &Scope,
        since_ms: i64,
    ) -> Result<Answer, ApiError> {
        let names = self.all_names()?;
        let call = p::RetrySince {
            since_ms,
            now_ms: super::super::now_ms(),
        };
        let counts = self.ask_each(scope, &names, &call).await?;
        let total: u64 = counts.iter().sum();
        Ok(Answer::new(200, format!(r#"{{"requeued":{total}}}"#)))
    }
}

fn job_not_running(raw: &str) -> ApiError {
    ApiError::NotFound(format!("Unable to locate running job {raw}"))
}

fn page_answer(path: &str, query: &PageQuery, rows: Vec<String>, next: Option<Cursor>) -> Answer {
    Answer {
        status: 200,
        link: next.map(|cursor| next_link(path, query, &cursor)),
        body: array(rows),
    }
}
