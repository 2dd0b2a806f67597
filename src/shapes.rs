//! The public JSON shapes, built from account snapshots. Field order in these structs
//! is the wire order of the published pages (`shared/seeds/`); optional fields that
//! are unset are left out, never sent as null.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::jobs::JobRecord;
use crate::time::{elapsed_seconds, format_elapsed, format_iso_millis};

/// What one account object holds, as it answers a snapshot request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountSnapshot {
    pub account: String,
    pub max_jobs: u32,
    /// Executing jobs, oldest first.
    pub jobs: Vec<JobRecord>,
}

impl AccountSnapshot {
    pub fn executing(&self) -> u32 {
        u32::try_from(self.jobs.len()).unwrap_or(u32::MAX)
    }

    pub fn free_slots(&self) -> u32 {
        self.max_jobs.saturating_sub(self.executing())
    }
}

/// A Kling list item: `{"id","email","started","elapsed","replyUrl"?,"replyRef"?}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KlingJob {
    pub id: u64,
    pub email: String,
    pub started: String,
    pub elapsed: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_ref: Option<String>,
}

/// A Dreamina list item: `{"jobid","submitId","model","elapsedSeconds","replyUrl"?}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DreaminaJob {
    pub jobid: String,
    pub submit_id: String,
    pub model: String,
    pub elapsed_seconds: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_url: Option<String>,
}

/// `GET /v1/dreamina/scheduler`: jobs grouped by account, accounts ascending.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DreaminaList {
    pub executing: BTreeMap<String, Vec<DreaminaJob>>,
    pub total: usize,
}

/// One row of an `available` list; `key` is `account` (Dreamina) or `email` (Kling).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capacity {
    pub account: String,
    pub max_jobs: u32,
    pub executing: u32,
    pub available: u32,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DreaminaCapacity<'a> {
    account: &'a str,
    max_jobs: u32,
    executing: u32,
    available: u32,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct KlingCapacity<'a> {
    email: &'a str,
    max_jobs: u32,
    executing: u32,
    available: u32,
}

/// A registered job as the public list shows it, plus the account it landed on.
#[derive(Serialize)]
pub struct Registered<T: Serialize> {
    #[serde(flatten)]
    pub job: T,
    pub account: String,
}

pub fn kling_job(account: &str, job: &JobRecord, now_ms: i64) -> KlingJob {
    KlingJob {
        // Kling ids are validated digits when stored; 0 would only show corrupt storage.
        id: job.id.parse().unwrap_or(0),
        email: account.to_owned(),
        started: format_iso_millis(job.started_ms),
        elapsed: format_elapsed(elapsed_seconds(job.started_ms, now_ms)),
        reply_url: job.reply_url.clone(),
        reply_ref: job.reply_ref.clone(),
    }
}

pub fn dreamina_job(job: &JobRecord, now_ms: i64) -> DreaminaJob {
    DreaminaJob {
        jobid: job.id.clone(),
        submit_id: job.submit_id.clone().unwrap_or_default(),
        model: job.model.clone().unwrap_or_default(),
        elapsed_seconds: elapsed_seconds(job.started_ms, now_ms),
        reply_url: job.reply_url.clone(),
    }
}

/// Every job of every account, oldest first (ties: account name, then registration).
fn oldest_first(accounts: &[AccountSnapshot]) -> Vec<(&str, &JobRecord)> {
    let mut all: Vec<(&str, &JobRecord)> = accounts
        .iter()
        .flat_map(|a| a.jobs.iter().map(move |j| (a.account.as_str(), j)))
        .collect();
    all.sort_by(|(a1, j1), (a2, j2)| (j1.started_ms, a1, j1.seq).cmp(&(j2.started_ms, a2, j2.seq)));
    all
}

pub fn kling_list(accounts: &[AccountSnapshot], now_ms: i64) -> Vec<KlingJob> {
    oldest_first(accounts)
        .into_iter()
        .map(|(account, job)| kling_job(account, job, now_ms))
        .collect()
}

pub fn dreamina_list(accounts: &[AccountSnapshot], now_ms: i64) -> DreaminaList {
    let mut executing: BTreeMap<String, Vec<DreaminaJob>> = BTreeMap::new();
    let mut total = 0;
    for (account, job) in oldest_first(accounts) {
        executing
            .entry(account.to_owned())
            .or_default()
            .push(dreamina_job(job, now_ms));
        total += 1;
    }
    DreaminaList { executing, total }
}

/// Capacity of every configured account, ascending by name.
pub fn capacities(accounts: &[AccountSnapshot]) -> Vec<Capacity> {
    let mut rows: Vec<Capacity> = accounts
        .iter()
        .map(|a| Capacity {
            account: a.account.clone(),
            max_jobs: a.max_jobs,
            executing: a.executing(),
            available: a.free_slots(),
        })
        .collect();
    rows.sort_by(|x, y| x.account.cmp(&y.account));
    rows
}

/// `GET /v1/kling/scheduler` body.
pub fn kling_list_json(accounts: &[AccountSnapshot], now_ms: i64) -> String {
    to_json(&kling_list(accounts, now_ms))
}

/// `GET /v1/dreamina/scheduler` body.
pub fn dreamina_list_json(accounts: &[AccountSnapshot], now_ms: i64) -> String {
    to_json(&dreamina_list(accounts, now_ms))
}

/// `GET /v1/kling/scheduler/available` body.
pub fn kling_available_json(accounts: &[AccountSnapshot], now_ms: i64) -> String {
    #[derive(Serialize)]
    struct Body<'a> {
        executing: Vec<KlingJob>,
        available: Vec<KlingCapacity<'a>>,
    }
    let rows = capacities(accounts);
    to_json(&Body {
        executing: kling_list(accounts, now_ms),
        available: rows
            .iter()
            .map(|c| KlingCapacity {
                email: &c.account,
                max_jobs: c.max_jobs,
                executing: c.executing,
                available: c.available,
            })
            .collect(),
    })
}

/// `GET /v1/dreamina/scheduler/available` body.
pub fn dreamina_available_json(accounts: &[AccountSnapshot], now_ms: i64) -> String {
    #[derive(Serialize)]
    struct Body<'a> {
        executing: BTreeMap<String, Vec<DreaminaJob>>,
        total: usize,
        available: Vec<DreaminaCapacity<'a>>,
    }
    let list = dreamina_list(accounts, now_ms);
    let rows = capacities(accounts);
    to_json(&Body {
        executing: list.executing,
        total: list.total,
        available: rows
            .iter()
            .map(|c| DreaminaCapacity {
                account: &c.account,
                max_jobs: c.max_jobs,
                executing: c.executing,
                available: c.available,
            })
            .collect(),
    })
}

/// `GET /admin/v1/users/{user}/{provider}/accounts` body.
pub fn accounts_json(accounts: &[AccountSnapshot]) -> String {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Row<'a> {
        account: &'a str,
        max_jobs: u32,
        executing: u32,
    }
    let rows = capacities(accounts);
    to_json(
        &rows
            .iter()
            .map(|c| Row {
                account: &c.account,
                max_jobs: c.max_jobs,
                executing: c.executing,
            })
            .collect::<Vec<_>>(),
    )
}

/// Serialises one of our own shapes. They hold only strings and integers, which
/// serde_json always writes; the fallback keeps a bug from becoming a panic.
pub fn to_json<T: Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::parse_iso8601;

    fn job(id: &str, started: &str, seq: i64) -> JobRecord {
        JobRecord {
            id: id.to_owned(),
            started_ms: parse_iso8601(started).unwrap(),
            seq,
            submit_id: Some("a1b2c3d4-e5f6-7890-abcd-ef1234567890".to_owned()),
            model: Some("seedance-2.0".to_owned()),
            reply_url: Some("https://your-domain.com/webhook".to_owned()),
            reply_ref: None,
        }
    }

    #[test]
    fn dreamina_list_json_format_unchanged() {
        let accounts = vec![AccountSnapshot {
            account: "US:user@example.com".to_owned(),
            max_jobs: 5,
            jobs: vec![job(
                "j0223140530123456789v-u12345-US:user@example.com:dreamina",
                "2026-02-23T14:05:30.000Z",
                1,
            )],
        }];
        let now = parse_iso8601("2026-02-23T14:06:15.500Z").unwrap();
        assert_eq!(
            dreamina_list_json(&accounts, now),
            concat!(
                r#"{"executing":{"US:user@example.com":[{"jobid":"j0223140530123456789v-u12345-US:user@example.com:dreamina","#,
                r#""submitId":"a1b2c3d4-e5f6-7890-abcd-ef1234567890","model":"seedance-2.0","elapsedSeconds":45,"#,
                r#""replyUrl":"https://your-domain.com/webhook"}]},"total":1}"#
            )
        );
    }

    #[test]
    fn idle_dreamina_list_is_the_seed_idle_body() {
        assert_eq!(dreamina_list_json(&[], 0), r#"{"executing":{},"total":0}"#);
        let idle = AccountSnapshot {
            account: "US:a@x.com".to_owned(),
            max_jobs: 3,
            jobs: vec![],
        };
        assert_eq!(
            dreamina_list_json(&[idle], 0),
            r#"{"executing":{},"total":0}"#
        );
    }

    #[test]
    fn kling_list_json_format_unchanged() {
        let mut j = job("123456789", "2025-04-18T12:34:56.789Z", 1);
        j.reply_ref = Some("reference-id".to_owned());
        j.reply_url = Some("https://example.com/webhook".to_owned());
        let accounts = vec![AccountSnapshot {
            account: "user@example.com".to_owned(),
            max_jobs: 2,
            jobs: vec![j],
        }];
        let now = parse_iso8601("2025-04-18T12:38:41.789Z").unwrap();
        assert_eq!(
            kling_list_json(&accounts, now),
            r#"[{"id":123456789,"email":"user@example.com","started":"2025-04-18T12:34:56.789Z","elapsed":"03:45","replyUrl":"https://example.com/webhook","replyRef":"reference-id"}]"#
        );
    }

    #[test]
    fn unset_optional_fields_are_left_out() {
        let mut j = job("7", "2025-04-18T12:34:56.789Z", 1);
        j.reply_url = None;
        let accounts = vec![AccountSnapshot {
            account: "a@x.com".to_owned(),
            max_jobs: 1,
            jobs: vec![j],
        }];
        let text = kling_list_json(&accounts, 0);
        assert!(!text.contains("replyUrl") && !text.contains("replyRef") && !text.contains("null"));
        let text = dreamina_list_json(&accounts, 0);
        assert!(!text.contains("replyUrl") && !text.contains("null"));
    }

    #[test]
    fn lists_are_oldest_first_across_accounts_and_dreamina_keys_ascend() {
        let accounts = vec![
            AccountSnapshot {
                account: "US:b@x.com".to_owned(),
                max_jobs: 5,
                jobs: vec![job("b1", "2025-01-01T00:00:01.000Z", 1)],
            },
            AccountSnapshot {
                account: "US:a@x.com".to_owned(),
                max_jobs: 5,
                jobs: vec![
                    job("a2", "2025-01-01T00:00:03.000Z", 2),
                    job("a1", "2025-01-01T00:00:02.000Z", 1),
                ],
            },
        ];
        let ids: Vec<String> = kling_list(&accounts, 0)
            .iter()
            .map(|k| k.email.clone())
            .collect();
        assert_eq!(ids, ["US:b@x.com", "US:a@x.com", "US:a@x.com"]);
        let d = dreamina_list(&accounts, 0);
        assert_eq!(
            d.executing.keys().collect::<Vec<_>>(),
            ["US:a@x.com", "US:b@x.com"]
        );
        assert_eq!(d.executing["US:a@x.com"][0].jobid, "a1");
        assert_eq!(d.total, 3);
    }

    #[test]
    fn available_rows_never_go_negative_after_lowering_max_jobs() {
        let accounts = vec![AccountSnapshot {
            account: "a@x.com".to_owned(),
            max_jobs: 1,
            jobs: vec![
                job("1", "2025-01-01T00:00:01.000Z", 1),
                job("2", "2025-01-01T00:00:02.000Z", 2),
            ],
        }];
        let text = kling_available_json(&accounts, 0);
        assert!(
            text.ends_with(
                r#""available":[{"email":"a@x.com","maxJobs":1,"executing":2,"available":0}]}"#
            ),
            "{text}"
        );
    }

    #[test]
    fn registered_job_adds_the_account_after_the_public_fields() {
        let j = job("j1", "2025-01-01T00:00:00.000Z", 1);
        let text = to_json(&Registered {
            job: dreamina_job(&j, 0),
            account: "US:a@x.com".to_owned(),
        });
        assert!(
            text.starts_with(r#"{"jobid":"j1","#) && text.ends_with(r#","account":"US:a@x.com"}"#),
            "{text}"
        );
    }
}
