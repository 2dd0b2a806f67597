//! The live view's subscribers: the live session objects following this user and
//! provider, and the pushes they get.
//!
//! A change (admission, ending, pause, limit, an account changing by itself) only
//! marks the viewers stale and schedules one push, at most four a second
//! (`live::next_push_at`); the push reads the `available` body once, as a list does,
//! and sends it to every session. With no viewer a change costs one check of an
//! in-memory count; lists never push.

use std::rc::Rc;

use crate::errors::ApiError;
use crate::live::{available_message, next_push_at};
use crate::protocol::Answer;

use super::super::now_ms;
use super::super::sql::{self, text};
use super::super::turnstile::sleep;
use super::{Directory, Scope};

/// The subscribers, read from SQLite once per instance.
#[derive(Default)]
pub struct Viewers {
    /// `(session id, token key)`; `None` until read.
    sessions: Option<Vec<(String, String)>>,
    last_push_ms: Option<i64>,
    scheduled: bool,
}

impl Directory {
    /// Whether anyone is watching: what every change asks, so it copies nothing.
    fn has_viewers(&self) -> bool {
        if let Some(sessions) = &self.viewers.borrow().sessions {
            return !sessions.is_empty();
        }
        !self.sessions().is_empty()
    }

    fn sessions(&self) -> Vec<(String, String)> {
        if let Some(sessions) = &self.viewers.borrow().sessions {
            return sessions.clone();
        }
        let rows = sql::rows(&self.sql(), "SELECT session, digest FROM viewers", vec![])
            .unwrap_or_default();
        let sessions: Vec<(String, String)> = rows.iter().map(|r| (r.text(0), r.text(1))).collect();
        self.viewers.borrow_mut().sessions = Some(sessions.clone());
        sessions
    }

    fn forget_sessions(&self, gone: &[String]) {
        for session in gone {
            let _ = sql::run(
                &self.sql(),
                "DELETE FROM viewers WHERE session = ?",
                vec![text(session)],
            );
        }
        if let Some(sessions) = self.viewers.borrow_mut().sessions.as_mut() {
            sessions.retain(|(s, _)| !gone.contains(s));
        }
    }

    /// A live session follows this user and provider from now on; answers the
    /// current `available` body.
    pub(super) async fn subscribe(
        self: &Rc<Self>,
        scope: &Scope,
        session: &str,
        digest: &str,
    ) -> Result<Answer, ApiError> {
        sql::run(
            &self.sql(),
            "INSERT INTO viewers (session, digest) VALUES (?, ?) ON CONFLICT (session) DO UPDATE SET digest = excluded.digest",
            vec![text(session), text(digest)],
        )
        .map_err(ApiError::internal)?;
        self.viewers.borrow_mut().sessions = None;
        let body = self.list_text(scope, now_ms(), true).await?;
        Ok(Answer::new(200, body))
    }

    pub(super) fn unsubscribe(&self, session: &str) -> Result<Answer, ApiError> {
        self.forget_sessions(&[session.to_owned()]);
        Ok(Answer::empty())
    }

    /// Closes the sessions opened with a revoked token.
    pub(super) async fn token_revoked(&self, digest: &str) -> Result<Answer, ApiError> {
        let revoked: Vec<String> = self
            .sessions()
            .into_iter()
            .filter(|(_, d)| d == digest)
            .map(|(s, _)| s)
            .collect();
        if !revoked.is_empty() {
            let _ = self
                .sessions_ns
                .call_each_by_id(&revoked, "revoke", "")
                .await;
            self.forget_sessions(&revoked);
        }
        Ok(Answer::empty())
    }

    /// The user's jobs or accounts changed: schedule one push to the viewers.
    pub(super) fn changed(self: &Rc<Self>, scope: &Scope) {
        self.schedule_push(scope);
    }

    fn schedule_push(self: &Rc<Self>, scope: &Scope) {
        if !self.has_viewers() {
            return;
        }
        let at = {
            let mut viewers = self.viewers.borrow_mut();
            if viewers.scheduled {
                return;
            }
            viewers.scheduled = true;
            next_push_at(viewers.last_push_ms, now_ms())
        };
        let directory = self.clone();
        let scope = scope.clone();
        wasm_bindgen_futures::spawn_local(async move {
            sleep(at - now_ms()).await;
            {
                // Changes from here on schedule the next push.
                let mut viewers = directory.viewers.borrow_mut();
                viewers.scheduled = false;
                viewers.last_push_ms = Some(now_ms());
            }
            if let Err(e) = directory.push(&scope).await {
                worker::console_warn!("live push: {}", e.message());
            }
        });
    }

    async fn push(self: &Rc<Self>, scope: &Scope) -> Result<(), ApiError> {
        let sessions: Vec<String> = self.sessions().into_iter().map(|(s, _)| s).collect();
        if sessions.is_empty() {
            return Ok(());
        }
        let body = self.list_text(scope, now_ms(), true).await?;
        let message = available_message(&body);
        let delivered = self
            .sessions_ns
            .call_each_by_id(&sessions, "push", &message)
            .await
            .map_err(|e| ApiError::internal(e.0))?;
        let gone: Vec<String> = sessions
            .into_iter()
            .zip(delivered)
            .filter(|(_, ok)| !ok)
            .map(|(s, _)| s)
            .collect();
        self.forget_sessions(&gone);
        Ok(())
    }
}
