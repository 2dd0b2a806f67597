//! The account's webhook outbox: deliveries queued when jobs end, their attempts'
//! outcomes, the operator's pages and replays, and how much is kept.
//!
//! Rows live in the `outbox` table with a sequence number that only grows. Indexes on
//! `(status, seq)`, `(status, next_at_ms)`, `(status, finished_ms)` and
//! `(status, created_ms)` make every query here a range scan of what it returns: a
//! page, the due deliveries, the rows past retention, the replay by time.

use crate::jobs::Ending;
use crate::json::Object;
use crate::outbox::{
    prune_before, MAX_DELIVERED_ROWS, MAX_FAILED_ROWS, MAX_PENDING_ROWS, PRUNE_BATCH,
};
use crate::protocol::{self as p, DeliveryPage, RetryOutcome};
use crate::time::format_iso_millis;
use crate::webhook::{AfterAttempt, DeliveryStatus};

use super::super::random_hex;
use super::super::sql::{self, int, text};
use super::jobs::{Held, Meta};
use super::Account;

// The `status` column holds `DeliveryStatus::as_i64`: 0 pending, 1 delivered, 2 failed
// (written as literals in the statements below, where SQLite sees them as constants).
const FINISHED: [DeliveryStatus; 2] = [DeliveryStatus::Delivered, DeliveryStatus::Failed];

/// A delivery whose attempt is due.
pub struct Due {
    pub seq: i64,
    pub webhook_id: String,
    pub reply_url: String,
    pub payload: String,
    pub attempts: u32,
}

impl Account {
    /// Stores the webhook of a job that ended, due at once. `None` when the job has
    /// no `replyUrl`.
    pub fn queue_webhook(
        &self,
        meta: &Meta,
        job: &Held,
        ending: &Ending<'_>,
        now: i64,
    ) -> Result<Option<String>, String> {
        let Some(url) = &job.reply_url else {
            return Ok(None);
        };
        let payload = meta.provider.webhook(&job.facts(&meta.account), ending);
        let webhook_id = format!("msg_{}", random_hex::<16>());
        let sql = self.sql();
        let pending =
            sql::scalar(&sql, "SELECT COUNT(*) FROM outbox WHERE status = 0", vec![])?.unwrap_or(0);
        if pending >= MAX_PENDING_ROWS {
            // Full: the oldest pending delivery fails now (it can be replayed later).
            sql::run(
                &sql,
                "UPDATE outbox SET status = 2, next_at_ms = NULL, finished_ms = ?,
                   last_error = 'dropped: more than 10000 deliveries pending for this account'
                 WHERE seq = (SELECT seq FROM outbox WHERE status = 0 ORDER BY seq LIMIT 1)",
                vec![int(now)],
            )?;
        }
        sql::run(
            &sql,
            "INSERT INTO outbox (webhook_id, reply_url, payload, status, attempts, next_at_ms, created_ms)
             VALUES (?, ?, ?, 0, 0, ?, ?)",
            vec![text(&webhook_id), text(url), text(&payload), int(now), int(now)],
        )?;
        self.wake_pump();
        Ok(Some(webhook_id))
    }

    /// The account name the outbox rows carry (kept after the account is removed).
    fn outbox_account(&self) -> Result<String, String> {
        Ok(sql::first(
            &self.sql(),
            "SELECT value FROM meta WHERE key = 'account'",
            vec![],
        )?
        .map(|r| r.text(0))
        .unwrap_or_default())
    }

    /// A page of one status, after `after_seq`, within the row and byte limits.
    pub fn deliveries(&self, c: p::Deliveries) -> Result<DeliveryPage, String> {
        let status = c.status;
        let account = self.outbox_account()?;
        let rows = sql::rows(
            &self.sql(),
            "SELECT seq, webhook_id, reply_url, payload, attempts, next_at_ms, last_error, created_ms, finished_ms
             FROM outbox WHERE status = ? AND seq > ? ORDER BY seq LIMIT ?",
            vec![int(status.as_i64()), int(c.after_seq), int(c.limit as i64 + 1)],
        )?;
        let mut page = DeliveryPage::default();
        let mut bytes = 0;
        for (i, r) in rows.iter().enumerate() {
            if i == c.limit || (i > 0 && bytes >= c.max_bytes) {
                page.more = true;
                break;
            }
            let mut row = String::new();
            let mut o = Object::new(&mut row);
            o.str("webhookId", &r.text(1))
                .str("account", &account)
                .str("replyUrl", &r.text(2))
                .str("status", status.as_str())
                .int("attempts", r.int(4));
            o.opt_str("lastError", r.opt_text(6).as_deref());
            if let Some(next) = r.opt_int(5) {
                o.str("nextAttempt", &format_iso_millis(next));
            }
            o.str("created", &format_iso_millis(r.int(7)));
            if let Some(finished) = r.opt_int(8) {
                o.str("finished", &format_iso_millis(finished));
            }
            if let Some(payload) = r.opt_text(3) {
                o.raw("payload", &payload);
            }
            o.end();
            bytes += row.len();
            page.rows.push(row);
            page.last_seq = Some(r.int(0));
        }
        Ok(page)
    }

    /// Puts one failed delivery back to pending: same webhook id, fresh schedule.
    pub fn retry_delivery(&self, c: p::RetryDelivery) -> Result<RetryOutcome, String> {
        let row = sql::first(
            &self.sql(),
            "SELECT status FROM outbox WHERE webhook_id = ?",
            vec![text(&c.webhook_id)],
        )?;
        let outcome = match row.map(|r| DeliveryStatus::from_i64(r.int(0))) {
            None => RetryOutcome::NotFound,
            Some(Some(DeliveryStatus::Pending)) => RetryOutcome::StillPending,
            Some(Some(DeliveryStatus::Delivered)) => RetryOutcome::Delivered,
            Some(_) => {
                self.requeue("webhook_id = ?", vec![text(&c.webhook_id)], c.now_ms)?;
                RetryOutcome::Requeued
            }
        };
        Ok(outcome)
    }

    /// Puts every failed delivery created since `since_ms` back to pending.
    pub fn retry_since(&self, c: p::RetrySince) -> Result<u64, String> {
        let n = self.requeue("created_ms >= ?", vec![int(c.since_ms)], c.now_ms)?;
        Ok(n as u64)
    }

    fn requeue(
        &self,
        condition: &str,
        mut args: Vec<sql::Value>,
        now: i64,
    ) -> Result<usize, String> {
        let query = format!(
            "UPDATE outbox SET status = 0, attempts = 0, next_at_ms = ?, finished_ms = NULL
             WHERE status = 2 AND {condition} RETURNING seq"
        );
        args.insert(0, int(now));
        let n = sql::changed(&self.sql(), &query, args)?;
        if n > 0 {
            self.wake_pump();
            self.reschedule(now);
        }
        Ok(n)
    }

    /// Deliveries due by `now`, earliest first, leaving out those already in flight.
    pub fn due_deliveries(
        &self,
        now: i64,
        limit: usize,
        in_flight: &[i64],
    ) -> Result<Vec<Due>, String> {
        let rows = sql::rows(
            &self.sql(),
            "SELECT seq, webhook_id, reply_url, payload, attempts FROM outbox
             WHERE status = 0 AND next_at_ms <= ? ORDER BY next_at_ms, seq LIMIT ?",
            vec![int(now), int((limit + in_flight.len()) as i64)],
        )?;
        Ok(rows
            .into_iter()
            .filter(|r| !in_flight.contains(&r.int(0)))
            .take(limit)
            .map(|r| Due {
                seq: r.int(0),
                webhook_id: r.text(1),
                reply_url: r.text(2),
                payload: r.text(3),
                attempts: u32::try_from(r.int(4)).unwrap_or(u32::MAX),
            })
            .collect())
    }

    /// Records what an attempt came to. Only a row still pending changes: an attempt
    /// that ran twice (alarms are at-least-once) cannot undo a later state.
    pub fn record_attempt(
        &self,
        seq: i64,
        attempts: u32,
        after: &AfterAttempt,
        now: i64,
    ) -> Result<(), String> {
        let sql = self.sql();
        let attempts = int(i64::from(attempts));
        match after {
            AfterAttempt::Delivered => sql::run(
                &sql,
                "UPDATE outbox SET status = 1, payload = NULL, attempts = ?, next_at_ms = NULL,
                   last_error = NULL, finished_ms = ? WHERE seq = ? AND status = 0",
                vec![attempts, int(now), int(seq)],
            ),
            AfterAttempt::Failed { error } => sql::run(
                &sql,
                "UPDATE outbox SET status = 2, attempts = ?, next_at_ms = NULL, last_error = ?,
                   finished_ms = ? WHERE seq = ? AND status = 0",
                vec![attempts, text(error), int(now), int(seq)],
            ),
            AfterAttempt::Retry { at_ms, error } => sql::run(
                &sql,
                "UPDATE outbox SET attempts = ?, next_at_ms = ?, last_error = ? WHERE seq = ? AND status = 0",
                vec![attempts, int(*at_ms), text(error), int(seq)],
            ),
        }
        .map(|_| ())
    }

    /// Drops what is past retention, then the oldest beyond the row caps, at most
    /// [`PRUNE_BATCH`] rows per kind and call. Returns how many rows went; when that is
    /// a whole batch, more may be left, and the next alarm is set at once.
    pub fn prune_outbox(&self, now: i64) -> Result<usize, String> {
        let sql = self.sql();
        let before = prune_before(now, self.settings.retention_ms);
        let mut pruned = 0;
        for status in FINISHED {
            pruned += sql::changed(
                &sql,
                "DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox
                   WHERE status = ? AND finished_ms < ? ORDER BY finished_ms LIMIT ?)
                 RETURNING seq",
                vec![int(status.as_i64()), int(before), int(PRUNE_BATCH)],
            )?;
        }
        for (status, cap) in FINISHED
            .into_iter()
            .zip([MAX_DELIVERED_ROWS, MAX_FAILED_ROWS])
        {
            let count = sql::scalar(
                &sql,
                "SELECT COUNT(*) FROM outbox WHERE status = ?",
                vec![int(status.as_i64())],
            )?
            .unwrap_or(0);
            if count > cap {
                pruned += sql::changed(
                    &sql,
                    "DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox
                       WHERE status = ? ORDER BY seq LIMIT ?) RETURNING seq",
                    vec![int(status.as_i64()), int((count - cap).min(PRUNE_BATCH))],
                )?;
            }
        }
        if pruned >= PRUNE_BATCH as usize {
            self.run_again.set(true);
        }
        Ok(pruned)
    }

    /// When outbox work is next due: the earliest pending attempt, and the earliest
    /// instant a finished row passes retention. (Rows over a cap appear in an alarm
    /// run, from its failed attempts, and that run prunes them at its end.)
    pub fn outbox_due(&self) -> Result<[Option<i64>; 2], String> {
        // One statement, three index lookups (`outbox_due`, `outbox_finished`): this
        // runs after every change to the account.
        let row = sql::first(
            &self.sql(),
            "SELECT (SELECT MIN(next_at_ms) FROM outbox WHERE status = 0),
                    (SELECT MIN(finished_ms) FROM outbox WHERE status = 1),
                    (SELECT MIN(finished_ms) FROM outbox WHERE status = 2)",
            vec![],
        )?;
        let [next_attempt, delivered, failed] =
            [0, 1, 2].map(|i| row.as_ref().and_then(|r| r.opt_int(i)));
        let oldest = match (delivered, failed) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let prune_at = oldest.map(|f| f.saturating_add(self.settings.retention_ms));
        Ok([next_attempt, prune_at])
    }
}
