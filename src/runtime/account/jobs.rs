//! The account's configuration (meta rows) and its executing jobs.
//!
//! Lists are the hot path, so the jobs live in memory too, each with its list item
//! already drawn (`ItemTemplate`): a snapshot only fills in the clocks. Only this object
//! writes its tables, and every write below updates the copy in the same synchronous
//! step, so the copy cannot go stale.

use crate::admission::Summary;
use crate::jobs::{extend_object, Ending, FinalStatus, ItemTemplate, JobFacts};
use crate::json::Object;
use crate::protocol::{self as p, AdmitOutcome, Ended, RowAndSummary, Snapshot};
use crate::providers::{completion_answer, Provider};
use crate::time::format_iso_millis;

use super::super::sql::{self, int, opt_int, opt_text, text};
use super::Account;

/// The most jobs an account tracks at once, slot-free ones (MiniMax images) included:
/// `maxJobs` bounds the others, this bounds storage whatever the gateway sends.
pub const MAX_TRACKED_JOBS: usize = 500;

/// The schema version these tables are in (the first version had other columns).
const SCHEMA_VERSION: &str = "2";

const SCHEMA: [&str; 8] = [
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS jobs2 (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,
        started_ms INTEGER NOT NULL, activity_ms INTEGER NOT NULL, counts INTEGER NOT NULL,
        reply_url TEXT, reply_ref TEXT, details TEXT NOT NULL, progress INTEGER, last_progress_ms INTEGER)",
    "CREATE INDEX IF NOT EXISTS jobs2_by_activity ON jobs2 (activity_ms)",
    "CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, webhook_id TEXT NOT NULL UNIQUE,
        reply_url TEXT NOT NULL, payload TEXT, status INTEGER NOT NULL, attempts INTEGER NOT NULL,
        next_at_ms INTEGER, last_error TEXT, created_ms INTEGER NOT NULL, finished_ms INTEGER)",
    "CREATE INDEX IF NOT EXISTS outbox_by_status ON outbox (status, seq)",
    "CREATE INDEX IF NOT EXISTS outbox_due ON outbox (status, next_at_ms)",
    "CREATE INDEX IF NOT EXISTS outbox_finished ON outbox (status, finished_ms)",
    "CREATE INDEX IF NOT EXISTS outbox_created ON outbox (status, created_ms)",
];

/// Moves the first version's rows (tables `jobs`, `deliveries`) into this one's.
const MIGRATE_V1: [&str; 4] = [
    "INSERT OR IGNORE INTO jobs2 (id, started_ms, activity_ms, counts, reply_url, reply_ref, details)
       SELECT id, started_ms, started_ms, 1, reply_url, reply_ref,
              CASE WHEN submit_id IS NULL THEN '' ELSE
                length(CAST(submit_id AS BLOB)) || ':' || submit_id ||
                length(CAST(model AS BLOB)) || ':' || model END
       FROM jobs ORDER BY seq",
    "INSERT OR IGNORE INTO outbox (webhook_id, reply_url, payload, status, attempts, next_at_ms, last_error, created_ms, finished_ms)
       SELECT webhook_id, reply_url, payload, CASE status WHEN 'pending' THEN 0 ELSE 2 END, attempts,
              next_at_ms, last_error, created_ms, CASE status WHEN 'pending' THEN NULL ELSE created_ms END
       FROM deliveries ORDER BY seq",
    "DROP TABLE jobs",
    "DROP TABLE deliveries",
];

/// Who the account is and how it may be used.
#[derive(Clone, Debug)]
pub struct Meta {
    pub provider: Provider,
    pub user: String,
    pub account: String,
    pub max_jobs: u32,
    pub paused: bool,
    pub paused_until_ms: Option<i64>,
    pub reason: Option<String>,
    pub rev: u64,
}

impl Meta {
    pub fn is_paused(&self, now_ms: i64) -> bool {
        crate::admission::pause_in_force(self.paused, self.paused_until_ms, now_ms)
    }
}

/// One executing job, as stored, with its list item drawn.
#[derive(Clone, Debug)]
pub struct Held {
    pub seq: i64,
    pub id: String,
    pub started_ms: i64,
    /// The start or the last progress report: the timeout counts from here.
    pub activity_ms: i64,
    pub counts: bool,
    pub reply_url: Option<String>,
    pub reply_ref: Option<String>,
    pub details: String,
    pub progress: Option<i64>,
    pub last_progress_ms: Option<i64>,
    pub item: ItemTemplate,
}

impl Held {
    pub fn facts<'a>(&'a self, account: &'a str) -> JobFacts<'a> {
        JobFacts {
            id: &self.id,
            account,
            started_ms: self.started_ms,
            reply_url: self.reply_url.as_deref(),
            reply_ref: self.reply_ref.as_deref(),
            details: &self.details,
        }
    }
}

const JOB_COLUMNS: &str =
    "seq, id, started_ms, activity_ms, counts, reply_url, reply_ref, details, progress, last_progress_ms";

impl Account {
    pub(super) fn create_schema(&self) -> Result<(), String> {
        let sql = self.sql();
        for statement in SCHEMA {
            sql::run(&sql, statement, vec![])?;
        }
        let version = sql::first(&sql, "SELECT value FROM meta WHERE key = 'schema'", vec![])?;
        if version.is_none() {
            let old = sql::scalar(
                &sql,
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'jobs'",
                vec![],
            )?;
            if old == Some(1) {
                for statement in MIGRATE_V1 {
                    sql::run(&sql, statement, vec![])?;
                }
            }
            self.set_meta("schema", SCHEMA_VERSION)?;
        }
        Ok(())
    }

    fn set_meta(&self, key: &str, value: &str) -> Result<(), String> {
        sql::run(
            &self.sql(),
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            vec![text(key), text(value)],
        )
        .map(|_| ())
    }

    /// The account's meta, `None` when it is not configured.
    pub fn meta(&self) -> Result<Option<Meta>, String> {
        if let Some(known) = self.meta.borrow().as_ref() {
            return Ok(known.clone());
        }
        let rows = sql::rows(&self.sql(), "SELECT key, value FROM meta", vec![])?;
        let get = |key: &str| rows.iter().find(|r| r.text(0) == key).map(|r| r.text(1));
        let meta = match (
            get("provider").and_then(|p| Provider::parse(&p)),
            get("user"),
            get("account"),
            get("max_jobs").and_then(|m| m.parse().ok()),
        ) {
            (Some(provider), Some(user), Some(account), Some(max_jobs)) => Some(Meta {
                provider,
                user,
                account,
                max_jobs,
                paused: get("paused").as_deref() == Some("1"),
                paused_until_ms: get("paused_until").and_then(|t| t.parse().ok()),
                reason: get("reason").filter(|r| !r.is_empty()),
                rev: get("rev").and_then(|r| r.parse().ok()).unwrap_or(0),
            }),
            _ => None,
        };
        *self.meta.borrow_mut() = Some(meta.clone());
        Ok(meta)
    }

    fn require_meta(&self) -> Result<Meta, String> {
        self.meta()?
            .ok_or_else(|| "account not configured".to_owned())
    }

    /// Writes meta changes and counts one more revision.
    fn write_meta(&self, changes: &[(&str, String)]) -> Result<Meta, String> {
        let mut meta = self.require_meta()?;
        meta.rev += 1;
        for (key, value) in changes {
            self.set_meta(key, value)?;
        }
        self.set_meta("rev", &meta.rev.to_string())?;
        *self.meta.borrow_mut() = None;
        self.require_meta()
    }

    /// Counts one more revision (jobs changed). Runs on every admission, ending and
    /// progress report, so it updates the cached meta instead of reading it back.
    fn bump(&self) -> Result<(), String> {
        let mut meta = self.require_meta()?;
        meta.rev += 1;
        self.set_meta("rev", &meta.rev.to_string())?;
        *self.meta.borrow_mut() = Some(Some(meta));
        Ok(())
    }

    /// The jobs, oldest first, read once.
    fn load_jobs(&self, meta: &Meta) -> Result<(), String> {
        if self.jobs.borrow().is_some() {
            return Ok(());
        }
        let query = format!("SELECT {JOB_COLUMNS} FROM jobs2 ORDER BY started_ms, seq");
        let rows = sql::rows(&self.sql(), &query, vec![])?;
        let held = rows
            .into_iter()
            .map(|r| {
                let mut job = Held {
                    seq: r.int(0),
                    id: r.text(1),
                    started_ms: r.int(2),
                    activity_ms: r.int(3),
                    counts: r.int(4) != 0,
                    reply_url: r.opt_text(5),
                    reply_ref: r.opt_text(6),
                    details: r.text(7),
                    progress: r.opt_int(8),
                    last_progress_ms: r.opt_int(9),
                    item: ItemTemplate {
                        head: String::new(),
                        clock: crate::jobs::Clock::None,
                        tail: String::new(),
                    },
                };
                job.item = meta.provider.item(&job.facts(&meta.account));
                job
            })
            .collect();
        *self.jobs.borrow_mut() = Some(held);
        Ok(())
    }

    fn with_jobs<T>(&self, meta: &Meta, f: impl FnOnce(&mut Vec<Held>) -> T) -> Result<T, String> {
        self.load_jobs(meta)?;
        let mut jobs = self.jobs.borrow_mut();
        Ok(f(jobs.get_or_insert_with(Vec::new)))
    }

    pub fn summary(&self, meta: &Meta) -> Result<Summary, String> {
        let timeout = self.settings.job_timeout_ms;
        self.with_jobs(meta, |jobs| Summary {
            rev: meta.rev,
            max_jobs: meta.max_jobs,
            counted: jobs.iter().filter(|j| j.counts).count() as u32,
            paused: meta.paused,
            paused_until_ms: meta.paused_until_ms,
            next_deadline_ms: jobs.iter().map(|j| j.activity_ms + timeout).min(),
            ids: jobs.iter().map(|j| j.id.clone()).collect(),
        })
    }

    /// Expires the jobs past their timeout (each with a `replyUrl` gets a
    /// `failed`/`timeout` webhook) and ends a timed pause that ran out. Returns whether
    /// anything changed. Every operation runs this first, so no answer ever shows a job
    /// that should have expired, however late the alarm is.
    pub fn catch_up(&self, now: i64) -> Result<bool, String> {
        let Some(meta) = self.meta()? else {
            return Ok(false);
        };
        let mut changed = false;
        if meta.paused && meta.paused_until_ms.is_some_and(|until| until <= now) {
            self.write_meta(&[
                ("paused", "0".into()),
                ("paused_until", String::new()),
                ("reason", String::new()),
            ])?;
            changed = true;
        }
        let timeout = self.settings.job_timeout_ms;
        let is_due = |j: &Held| j.activity_ms + timeout <= now;
        let due: Vec<Held> = self.with_jobs(&meta, |jobs| {
            if !jobs.iter().any(is_due) {
                return Vec::new();
            }
            let (due, keep): (Vec<Held>, Vec<Held>) = jobs.drain(..).partition(is_due);
            *jobs = keep;
            due
        })?;
        for job in &due {
            sql::run(
                &self.sql(),
                "DELETE FROM jobs2 WHERE seq = ?",
                vec![int(job.seq)],
            )?;
            // The job failed when its time ran out, however late this runs.
            let ending = Ending {
                status: FinalStatus::Failed,
                finished_ms: job.activity_ms + timeout,
                result: None,
                error: Some("timeout"),
            };
            self.queue_webhook(&meta, job, &ending, now)?;
        }
        if !due.is_empty() {
            self.bump()?;
            changed = true;
        }
        if changed {
            self.reschedule(now);
        }
        Ok(changed)
    }

    /// The list's hot path: the header and every job's item with its clock at `now`.
    pub fn snapshot_text(&self, now: i64) -> Result<String, String> {
        self.catch_up(now)?;
        let Some(meta) = self.meta()? else {
            return Ok(String::new());
        };
        self.with_jobs(&meta, |jobs| {
            let mut out = String::with_capacity(
                64 + jobs
                    .iter()
                    .map(|j| j.item.head.len() + j.item.tail.len() + 40)
                    .sum::<usize>(),
            );
            let counted = jobs.iter().filter(|j| j.counts).count() as u32;
            Snapshot::push_header(
                &mut out,
                meta.rev,
                meta.max_jobs,
                counted,
                meta.is_paused(now),
                jobs.len(),
            );
            let mut item = String::new();
            for job in jobs.iter() {
                item.clear();
                job.item.render_into(&mut item, job.started_ms, now);
                Snapshot::push_job(&mut out, job.started_ms, job.seq, &item);
            }
            out
        })
    }

    pub fn configure(&self, c: p::Configure) -> Result<Summary, String> {
        let first = self.meta()?.is_none();
        if first {
            for (key, value) in [
                ("provider", c.provider.name()),
                ("user", &c.user),
                ("account", &c.account),
            ] {
                self.set_meta(key, value)?;
            }
            self.set_meta("max_jobs", &c.max_jobs.to_string())?;
            *self.meta.borrow_mut() = None;
        }
        let meta = self.write_meta(&[("max_jobs", c.max_jobs.to_string())])?;
        self.summary(&meta)
    }

    pub fn get_summary(&self, now: i64) -> Result<Option<Summary>, String> {
        self.catch_up(now)?;
        match self.meta()? {
            Some(meta) => self.summary(&meta).map(Some),
            None => Ok(None),
        }
    }

    /// The atomic step: check and insert with no `await` in between.
    pub fn admit(&self, c: p::Admit) -> Result<AdmitOutcome, String> {
        let now = c.now_ms;
        self.catch_up(now)?;
        let Some(meta) = self.meta()? else {
            return Ok(AdmitOutcome::NotConfigured);
        };
        let (tracked, counted, duplicate) = self.with_jobs(&meta, |jobs| {
            (
                jobs.len(),
                jobs.iter().filter(|j| j.counts).count() as u32,
                jobs.iter().any(|j| j.id == c.job.id),
            )
        })?;
        let no_room = meta.is_paused(now)
            || tracked >= MAX_TRACKED_JOBS
            || (c.job.counts && counted >= meta.max_jobs);
        let refusal = if duplicate {
            Some(AdmitOutcome::Duplicate as fn(Summary) -> AdmitOutcome)
        } else if no_room {
            Some(AdmitOutcome::NoRoom as fn(Summary) -> AdmitOutcome)
        } else {
            None
        };
        if let Some(refuse) = refusal {
            return Ok(refuse(self.summary(&meta)?));
        }
        let job = c.job;
        let seq = sql::scalar(
            &self.sql(),
            "INSERT INTO jobs2 (id, started_ms, activity_ms, counts, reply_url, reply_ref, details) VALUES (?, ?, ?, ?, ?, ?, ?)
             RETURNING seq",
            vec![
                text(&job.id),
                int(job.started_ms),
                int(job.started_ms),
                int(i64::from(job.counts)),
                opt_text(job.reply_url.as_deref()),
                opt_text(job.reply_ref.as_deref()),
                text(&job.details),
            ],
        )?
        .ok_or("insert returned no seq")?;
        let mut held = Held {
            seq,
            id: job.id,
            started_ms: job.started_ms,
            activity_ms: job.started_ms,
            counts: job.counts,
            reply_url: job.reply_url,
            reply_ref: job.reply_ref,
            details: job.details,
            progress: None,
            last_progress_ms: None,
            item: ItemTemplate {
                head: String::new(),
                clock: crate::jobs::Clock::None,
                tail: String::new(),
            },
        };
        held.item = meta.provider.item(&held.facts(&meta.account));
        let item = held.item.render(held.started_ms, now);
        self.with_jobs(&meta, |jobs| {
            let at = jobs.partition_point(|j| (j.started_ms, j.seq) < (held.started_ms, held.seq));
            jobs.insert(at, held);
        })?;
        self.bump()?;
        self.reschedule(now);
        let meta = self.require_meta()?;
        Ok(AdmitOutcome::Admitted {
            item,
            summary: self.summary(&meta)?,
        })
    }

    /// Takes a job out of the list; `None` when it is not executing.
    fn take_job(&self, meta: &Meta, id: &str) -> Result<Option<Held>, String> {
        let taken = self.with_jobs(meta, |jobs| {
            let at = jobs.iter().position(|j| j.id == id)?;
            Some(jobs.remove(at))
        })?;
        if let Some(job) = &taken {
            sql::run(
                &self.sql(),
                "DELETE FROM jobs2 WHERE seq = ?",
                vec![int(job.seq)],
            )?;
            self.bump()?;
        }
        Ok(taken)
    }

    pub fn complete(&self, c: p::Complete) -> Result<Ended, String> {
        self.end(&c.id, c.now_ms, Some((c.status, c.result.as_deref())))
    }

    pub fn cancel(&self, c: p::Cancel) -> Result<Ended, String> {
        self.end(&c.id, c.now_ms, None)
    }

    /// Ends a job: completed or failed with its webhook queued (`completion`), or
    /// cancelled without one. A job past its timeout has already failed: too late.
    fn end(
        &self,
        id: &str,
        now: i64,
        completion: Option<(FinalStatus, Option<&str>)>,
    ) -> Result<Ended, String> {
        self.catch_up(now)?;
        let Some(meta) = self.meta()? else {
            return Ok(Ended::NotRunning(None));
        };
        let Some(job) = self.take_job(&meta, id)? else {
            return Ok(Ended::NotRunning(Some(self.summary(&meta)?)));
        };
        let webhook_id = match completion {
            Some((status, result)) => {
                let ending = Ending {
                    status,
                    finished_ms: now,
                    result,
                    error: None,
                };
                self.queue_webhook(&meta, &job, &ending, now)?
            }
            None => None,
        };
        self.reschedule(now);
        let answer = completion.map_or_else(String::new, |(status, _)| {
            completion_answer(
                meta.provider,
                &job.facts(&meta.account),
                status.as_str(),
                webhook_id.as_deref(),
            )
        });
        let meta = self.require_meta()?;
        Ok(Ended::Ended {
            answer,
            summary: self.summary(&meta)?,
        })
    }

    /// The operator's view of a job: the public item plus `account`, and once reported
    /// `lastProgress` and `progress`.
    fn admin_item(&self, meta: &Meta, job: &Held, now: i64) -> String {
        let mut item = job.item.render(job.started_ms, now);
        extend_object(&mut item, |o: &mut Object<'_>| {
            o.str("account", &meta.account);
            if let Some(at) = job.last_progress_ms {
                o.str("lastProgress", &format_iso_millis(at));
            }
            if let Some(progress) = job.progress {
                o.int("progress", progress);
            }
        });
        item
    }

    pub fn progress(&self, c: p::Progress) -> Result<Option<String>, String> {
        let now = c.now_ms;
        self.catch_up(now)?;
        let Some(meta) = self.meta()? else {
            return Ok(None);
        };
        let updated = self.with_jobs(&meta, |jobs| {
            let job = jobs.iter_mut().find(|j| j.id == c.id)?;
            job.activity_ms = now;
            job.last_progress_ms = Some(now);
            if let Some(progress) = c.progress {
                job.progress = Some(i64::from(progress));
            }
            Some(job.clone())
        })?;
        let Some(job) = updated else {
            return Ok(None);
        };
        sql::run(
            &self.sql(),
            "UPDATE jobs2 SET activity_ms = ?, last_progress_ms = ?, progress = ? WHERE seq = ?",
            vec![int(now), int(now), opt_int(job.progress), int(job.seq)],
        )?;
        self.bump()?;
        self.reschedule(now);
        Ok(Some(self.admin_item(&meta, &job, now)))
    }

    pub fn pause(&self, c: p::Pause) -> Result<Option<RowAndSummary>, String> {
        self.catch_up(c.now_ms)?;
        if self.meta()?.is_none() {
            return Ok(None);
        }
        let until = c.until_ms.map(|u| u.to_string()).unwrap_or_default();
        self.write_meta(&[
            ("paused", "1".into()),
            ("paused_until", until),
            ("reason", c.reason.unwrap_or_default()),
        ])?;
        self.reschedule(c.now_ms);
        self.row_and_summary(c.now_ms)
    }

    pub fn resume(&self, c: p::Resume) -> Result<Option<RowAndSummary>, String> {
        self.catch_up(c.now_ms)?;
        if self.meta()?.is_none() {
            return Ok(None);
        }
        self.write_meta(&[
            ("paused", "0".into()),
            ("paused_until", String::new()),
            ("reason", String::new()),
        ])?;
        self.reschedule(c.now_ms);
        self.row_and_summary(c.now_ms)
    }

    fn row_and_summary(&self, now: i64) -> Result<Option<RowAndSummary>, String> {
        let Some(meta) = self.meta()? else {
            return Ok(None);
        };
        Ok(Some(RowAndSummary {
            row: self.row_json(&meta, now)?,
            summary: self.summary(&meta)?,
        }))
    }

    pub fn row(&self, now: i64) -> Result<Option<String>, String> {
        self.catch_up(now)?;
        match self.meta()? {
            Some(meta) => self.row_json(&meta, now).map(Some),
            None => Ok(None),
        }
    }

    /// `{"account","maxJobs","executing","paused","pausedUntil"?,"reason"?}`
    fn row_json(&self, meta: &Meta, now: i64) -> Result<String, String> {
        let counted = self.with_jobs(meta, |jobs| jobs.iter().filter(|j| j.counts).count())?;
        let paused = meta.is_paused(now);
        let mut out = String::new();
        let mut o = Object::new(&mut out);
        o.str("account", &meta.account)
            .int("maxJobs", i64::from(meta.max_jobs))
            .int("executing", counted as i64)
            .bool("paused", paused);
        if paused {
            if let Some(until) = meta.paused_until_ms {
                o.str("pausedUntil", &format_iso_millis(until));
            }
            o.opt_str("reason", meta.reason.as_deref());
        }
        o.end();
        Ok(out)
    }

    /// Forgets the configuration and the jobs (no webhooks); queued webhooks are
    /// still delivered and failed ones stay listable.
    pub fn remove(&self) -> Result<bool, String> {
        let existed = self.meta()?.is_some();
        let sql = self.sql();
        sql::run(&sql, "DELETE FROM jobs2", vec![])?;
        // Who the object is stays (its outbox still names the account); what makes it
        // configured goes.
        sql::run(
            &sql,
            "DELETE FROM meta WHERE key NOT IN ('schema', 'provider', 'user', 'account', 'rev')",
            vec![],
        )?;
        *self.meta.borrow_mut() = Some(None);
        *self.jobs.borrow_mut() = None;
        self.reschedule(super::super::now_ms());
        Ok(existed)
    }

    pub fn admin_jobs(&self, now: i64) -> Result<Vec<(i64, i64, String)>, String> {
        self.catch_up(now)?;
        let Some(meta) = self.meta()? else {
            return Ok(Vec::new());
        };
        let jobs: Vec<Held> = self.with_jobs(&meta, |jobs| jobs.clone())?;
        Ok(jobs
            .iter()
            .map(|j| (j.started_ms, j.seq, self.admin_item(&meta, j, now)))
            .collect())
    }

    /// The earliest instant a job reaches its timeout.
    pub fn next_deadline(&self) -> Result<Option<i64>, String> {
        let Some(meta) = self.meta()? else {
            return Ok(None);
        };
        let timeout = self.settings.job_timeout_ms;
        self.with_jobs(&meta, |jobs| {
            jobs.iter().map(|j| j.activity_ms + timeout).min()
        })
    }
}
