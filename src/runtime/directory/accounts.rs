//! The user's accounts: the set (SQLite), the view of each (`admission::View`), and
//! the operator's account routes.
//!
//! `PUT` writes the account object first and the set second, so a failure in between
//! leaves an unlisted object that the next `PUT` lists, never a listed account without
//! a configuration. Removed accounts keep an inactive row: their objects may still hold
//! webhooks, which the webhooks routes must keep reaching.

use std::rc::Rc;

use crate::admission::{Summary, View};
use crate::errors::ApiError;
use crate::json::Object;
use crate::protocol::{self as p, Answer};

use super::super::sql::{self, text};
use super::{Directory, Scope};

const SCHEMA: [&str; 2] = [
    "CREATE TABLE IF NOT EXISTS directory (name TEXT PRIMARY KEY, active INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS viewers (session TEXT PRIMARY KEY, digest TEXT NOT NULL)",
];

/// Removed accounts remembered for their webhooks, at most.
const MAX_REMOVED: i64 = 1000;

impl Directory {
    pub(super) fn sql(&self) -> worker::SqlStorage {
        self.state.storage().sql()
    }

    pub(super) fn create_schema(&self) -> Result<(), String> {
        for statement in SCHEMA {
            sql::run(&self.sql(), statement, vec![])?;
        }
        Ok(())
    }

    /// The configured account names, ascending. Shared, not copied: every list reads
    /// them.
    pub(super) fn active_names(&self) -> Result<Rc<[String]>, ApiError> {
        if let Some(names) = self.names.borrow().as_ref() {
            return Ok(Rc::clone(names));
        }
        let rows = sql::rows(
            &self.sql(),
            "SELECT name FROM directory WHERE active = 1 ORDER BY name",
            vec![],
        )
        .map_err(ApiError::internal)?;
        let names: Rc<[String]> = rows.iter().map(|r| r.text(0)).collect();
        *self.names.borrow_mut() = Some(Rc::clone(&names));
        Ok(names)
    }

    /// Every account ever configured and still remembered, removed ones included.
    pub(super) fn all_names(&self) -> Result<Vec<String>, ApiError> {
        let rows = sql::rows(
            &self.sql(),
            "SELECT name FROM directory ORDER BY name",
            vec![],
        )
        .map_err(ApiError::internal)?;
        Ok(rows.iter().map(|r| r.text(0)).collect())
    }

    fn is_active(&self, account: &str) -> Result<bool, ApiError> {
        Ok(self.active_names()?.iter().any(|n| n == account))
    }

    /// Builds the view from every account's summary, once per instance.
    pub(super) async fn ensure_view(&self, scope: &Scope, now: i64) -> Result<(), ApiError> {
        if self.view_loaded.get() {
            return Ok(());
        }
        let names = self.active_names()?;
        let summaries = self
            .ask_each(scope, &names, &p::GetSummary { now_ms: now })
            .await?;
        let mut view = View::default();
        for (name, summary) in names.iter().zip(summaries) {
            if let Some(summary) = summary {
                view.apply(name, summary);
            }
        }
        if !self.view_loaded.get() {
            *self.view.borrow_mut() = view;
            self.view_loaded.set(true);
        }
        Ok(())
    }

    /// Asks the given accounts again and takes their summaries.
    pub(super) async fn refresh(
        &self,
        scope: &Scope,
        accounts: &[String],
        now: i64,
    ) -> Result<(), ApiError> {
        if accounts.is_empty() {
            return Ok(());
        }
        let summaries = self
            .ask_each(scope, accounts, &p::GetSummary { now_ms: now })
            .await?;
        let mut view = self.view.borrow_mut();
        for (name, summary) in accounts.iter().zip(summaries) {
            match summary {
                Some(summary) => view.apply(name, summary),
                None => view.remove(name),
            }
        }
        Ok(())
    }

    /// Takes a summary an account just sent.
    pub(super) fn take_summary(&self, account: &str, summary: Summary) {
        if self.view_loaded.get() {
            self.view.borrow_mut().apply(account, summary);
        }
    }

    fn require_active(&self, account: &str) -> Result<(), ApiError> {
        if self.is_active(account)? {
            Ok(())
        } else {
            Err(not_configured())
        }
    }

    pub(super) async fn put_account(
        self: &Rc<Self>,
        scope: &Scope,
        account: &str,
        max_jobs: u32,
    ) -> Result<Answer, ApiError> {
        scope
            .provider
            .check_account(account)
            .map_err(ApiError::BadRequest)?;
        let names = self.active_names()?;
        let limit = self.settings.max_accounts;
        if !names.iter().any(|n| n == account) && names.len() >= limit {
            return Err(ApiError::Conflict(format!(
                "At most {limit} accounts per user and provider; remove one first"
            )));
        }
        let summary = self
            .ask(
                scope,
                account,
                &p::Configure {
                    provider: scope.provider,
                    user: scope.user.clone(),
                    account: account.to_owned(),
                    max_jobs,
                },
            )
            .await?;
        sql::run(
            &self.sql(),
            "INSERT INTO directory (name, active) VALUES (?, 1) ON CONFLICT (name) DO UPDATE SET active = 1",
            vec![text(account)],
        )
        .map_err(ApiError::internal)?;
        *self.names.borrow_mut() = None;
        self.take_summary(account, summary);
        self.slots_may_have_freed(scope);
        self.changed(scope);
        let mut body = String::new();
        let mut o = Object::new(&mut body);
        o.str("account", account)
            .int("maxJobs", i64::from(max_jobs));
        o.end();
        Ok(Answer::new(200, body))
    }

    pub(super) async fn delete_account(
        self: &Rc<Self>,
        scope: &Scope,
        account: &str,
    ) -> Result<Answer, ApiError> {
        self.require_active(account)?;
        self.ask(scope, account, &p::Remove).await?;
        let db = self.sql();
        sql::run(
            &db,
            "UPDATE directory SET active = 0 WHERE name = ?",
            vec![text(account)],
        )
        .map_err(ApiError::internal)?;
        sql::run(
            &db,
            "DELETE FROM directory WHERE active = 0 AND rowid NOT IN
               (SELECT rowid FROM directory WHERE active = 0 ORDER BY rowid DESC LIMIT ?)",
            vec![sql::int(MAX_REMOVED)],
        )
        .map_err(ApiError::internal)?;
        *self.names.borrow_mut() = None;
        self.view.borrow_mut().remove(account);
        // Waiters that named it leave with a 404 at their next ask.
        self.slots_may_have_freed(scope);
        self.changed(scope);
        Ok(Answer::empty())
    }

    pub(super) async fn list_accounts(&self, scope: &Scope, now: i64) -> Result<Answer, ApiError> {
        let names = self.active_names()?;
        let rows = self
            .ask_each(scope, &names, &p::Row { now_ms: now })
            .await?;
        Ok(Answer::new(
            200,
            crate::json::array(rows.into_iter().flatten()),
        ))
    }

    pub(super) async fn pause(
        self: &Rc<Self>,
        scope: &Scope,
        account: &str,
        until_ms: Option<i64>,
        reason: Option<String>,
        now: i64,
    ) -> Result<Answer, ApiError> {
        self.require_active(account)?;
        let reply = self
            .ask(
                scope,
                account,
                &p::Pause {
                    until_ms,
                    reason,
                    now_ms: now,
                },
            )
            .await?
            .ok_or_else(not_configured)?;
        self.take_summary(account, reply.summary);
        self.changed(scope);
        Ok(Answer::new(200, reply.row))
    }

    pub(super) async fn resume(
        self: &Rc<Self>,
        scope: &Scope,
        account: &str,
        now: i64,
    ) -> Result<Answer, ApiError> {
        self.require_active(account)?;
        let reply = self
            .ask(scope, account, &p::Resume { now_ms: now })
            .await?
            .ok_or_else(not_configured)?;
        self.take_summary(account, reply.summary);
        self.slots_may_have_freed(scope);
        self.changed(scope);
        Ok(Answer::new(200, reply.row))
    }
}

pub(super) fn not_configured() -> ApiError {
    ApiError::NotFound("Account not configured".to_owned())
}
