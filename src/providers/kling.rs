//! Kling (`/v1/kling/scheduler`, the seed page `shared/seeds/kling-scheduler.txt`).
//!
//! Accounts are emails; a job is a task id, a positive integer that JavaScript clients
//! read exactly (at most 2^53 - 1). Items: `{"id","email","started","elapsed",
//! "replyUrl"?,"replyRef"?}`, oldest first across accounts.

use crate::jobs::{ItemTemplate, JobFacts, JobSpec};
use crate::json::{integer_value, Fields, Object};

use super::{email, timed_item, PathId, ProviderRules};

/// The largest integer a JSON number keeps exactly in JavaScript (2^53 - 1).
pub const MAX_SAFE_INTEGER: u64 = 9_007_199_254_740_991;

pub struct Kling;

impl ProviderRules for Kling {
    fn name(&self) -> &'static str {
        "kling"
    }

    fn title(&self) -> &'static str {
        "Kling"
    }

    fn public_path(&self) -> &'static str {
        "/v1/kling/scheduler"
    }

    fn max_jobs_limit(&self) -> u32 {
        50
    }

    fn check_account(&self, name: &str) -> Result<(), String> {
        email(name)
    }

    fn account_key(&self) -> &'static str {
        "email"
    }

    /// Digits only, no sign, no leading zero. A positive integer too large to be a
    /// task id is simply not running (404), not malformed.
    fn path_id(&self, text: &str) -> PathId {
        let digits = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
        if !digits || text.starts_with('0') {
            return PathId::Invalid("task_id must be a positive integer");
        }
        match text.parse::<u64>() {
            Ok(id) if id <= MAX_SAFE_INTEGER => PathId::Id(text.to_owned()),
            _ => PathId::NeverRunning,
        }
    }

    fn not_running(&self, text: &str) -> String {
        format!("Unable to locate running task_id {text}")
    }

    fn parse_job(&self, body: &Fields<'_>) -> Result<JobSpec, String> {
        const BAD: &str = "id must be a positive integer of at most 9007199254740991";
        let raw = body.raw("id").ok_or("id is required")?;
        let id = integer_value(raw)
            .and_then(|n| u64::try_from(n).ok())
            .filter(|n| (1..=MAX_SAFE_INTEGER).contains(n))
            .ok_or(BAD)?;
        Ok(JobSpec {
            id: Some(id.to_string()),
            account: body.string("email")?,
            counts: true,
            details: String::new(),
        })
    }

    fn id_members(&self, o: &mut Object<'_>, job: &JobFacts<'_>) {
        o.raw("id", job.id);
    }

    fn item(&self, job: &JobFacts<'_>) -> ItemTemplate {
        timed_item(job, |o| {
            self.id_members(o, job);
            o.str("email", job.account);
        })
    }

    // The webhook is the family's default:
    // `{"id","email","status","started","finished","replyRef"?,"result"?,"error"?}`.
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::{Ending, FinalStatus};
    use crate::time::parse_iso8601;

    fn job<'a>(reply_url: Option<&'a str>, reply_ref: Option<&'a str>) -> JobFacts<'a> {
        JobFacts {
            id: "123456789",
            account: "user@example.com",
            started_ms: parse_iso8601("2025-04-18T12:34:56.789Z").unwrap(),
            reply_url,
            reply_ref,
            details: "",
        }
    }

    #[test]
    fn kling_item_json_format_unchanged() {
        let j = job(Some("https://example.com/webhook"), Some("reference-id"));
        let now = j.started_ms + 225_000;
        assert_eq!(
            Kling.item(&j).render(j.started_ms, now),
            r#"{"id":123456789,"email":"user@example.com","started":"2025-04-18T12:34:56.789Z","elapsed":"03:45","replyUrl":"https://example.com/webhook","replyRef":"reference-id"}"#
        );
    }

    #[test]
    fn unset_optional_members_are_left_out() {
        let j = job(None, None);
        assert_eq!(
            Kling
                .item(&j)
                .render(j.started_ms, j.started_ms + 3_725_000),
            r#"{"id":123456789,"email":"user@example.com","started":"2025-04-18T12:34:56.789Z","elapsed":"62:05"}"#
        );
    }

    #[test]
    fn kling_payload_json_format_unchanged() {
        let j = JobFacts {
            started_ms: 1_000,
            ..job(Some("https://x.com/h"), Some("ref"))
        };
        let end = Ending {
            status: FinalStatus::Completed,
            finished_ms: 61_000,
            result: Some(r#"{"url":"v.mp4"}"#),
            error: None,
        };
        assert_eq!(
            Kling.webhook(&j, &end),
            r#"{"id":123456789,"email":"user@example.com","status":"completed","started":"1970-01-01T00:00:01.000Z","finished":"1970-01-01T00:01:01.000Z","replyRef":"ref","result":{"url":"v.mp4"}}"#
        );
    }

    #[test]
    fn task_ids_in_paths_are_canonical_positive_integers() {
        assert_eq!(Kling.path_id("123"), PathId::Id("123".to_owned()));
        assert_eq!(
            Kling.path_id("9007199254740991"),
            PathId::Id("9007199254740991".to_owned())
        );
        assert_eq!(Kling.path_id("9007199254740992"), PathId::NeverRunning);
        assert_eq!(
            Kling.path_id("99999999999999999999999"),
            PathId::NeverRunning
        );
        for bad in ["", "0", "-1", "1.5", "abc", "007", "+5", " 5"] {
            assert!(matches!(Kling.path_id(bad), PathId::Invalid(_)), "{bad:?}");
        }
    }

    #[test]
    fn registration_ids_are_json_integers_in_range() {
        let spec = |body: &str| Kling.parse_job(&Fields::parse(body).unwrap());
        assert_eq!(
            spec(r#"{"id":5,"email":"a@x.com"}"#).unwrap().id.as_deref(),
            Some("5")
        );
        // A whole number written as 5.0 is the same id, echoed as 5.
        assert_eq!(spec(r#"{"id":5.0}"#).unwrap().id.as_deref(), Some("5"));
        for bad in [
            r#"{"id":"5"}"#,
            r#"{"id":0}"#,
            r#"{"id":-1}"#,
            r#"{"id":1.5}"#,
            r#"{}"#,
            r#"{"id":9007199254740992}"#,
        ] {
            assert!(spec(bad).is_err(), "{bad}");
        }
    }
}
