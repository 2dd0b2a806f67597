//! PixVerse v2 (`/v2/pixverse/scheduler`).
//!
//! Accounts are emails, at most 8 jobs each. A job has an `id` and a `type`: `video`,
//! `image` or `music`; every type takes a slot.

use crate::jobs::{ItemTemplate, JobFacts, JobSpec};
use crate::json::{Fields, Object};

use super::{email, opaque_id_field, timed_item, ProviderRules};

pub struct PixVerse;

const TYPES: [&str; 3] = ["video", "image", "music"];

impl ProviderRules for PixVerse {
    fn name(&self) -> &'static str {
        "pixverse"
    }

    fn title(&self) -> &'static str {
        "PixVerse"
    }

    fn public_path(&self) -> &'static str {
        "/v2/pixverse/scheduler"
    }

    fn max_jobs_limit(&self) -> u32 {
        8
    }

    fn check_account(&self, name: &str) -> Result<(), String> {
        email(name)
    }

    fn account_key(&self) -> &'static str {
        "email"
    }

    fn not_running(&self, text: &str) -> String {
        format!("Unable to locate running id {text}")
    }

    fn parse_job(&self, body: &Fields<'_>) -> Result<JobSpec, String> {
        let id = opaque_id_field(body, "id")?;
        let kind = body.required_string("type")?;
        if !TYPES.contains(&kind.as_str()) {
            return Err("type must be \"video\", \"image\" or \"music\"".to_owned());
        }
        Ok(JobSpec {
            id: Some(id),
            account: body.string("email")?,
            counts: true,
            details: kind,
        })
    }

    fn id_members(&self, o: &mut Object<'_>, job: &JobFacts<'_>) {
        o.str("id", job.id).str("type", job.details);
    }

    /// `{"id","type","started","elapsed","replyUrl"?,"replyRef"?}`
    fn item(&self, job: &JobFacts<'_>) -> ItemTemplate {
        timed_item(job, |o| self.id_members(o, job))
    }

    // The webhook is the family's default (`ProviderRules::webhook`).
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::{Ending, FinalStatus};

    fn job() -> JobFacts<'static> {
        JobFacts {
            id: "p-1",
            account: "a@x.com",
            started_ms: 0,
            reply_url: None,
            reply_ref: Some("r"),
            details: "music",
        }
    }

    #[test]
    fn pixverse_item_json_format_unchanged() {
        assert_eq!(
            PixVerse.item(&job()).render(0, 61_000),
            r#"{"id":"p-1","type":"music","started":"1970-01-01T00:00:00.000Z","elapsed":"01:01","replyRef":"r"}"#
        );
    }

    #[test]
    fn pixverse_payload_json_format_unchanged() {
        let end = Ending {
            status: FinalStatus::Failed,
            finished_ms: 7_200_000,
            result: None,
            error: Some("timeout"),
        };
        assert_eq!(
            PixVerse.webhook(&job(), &end),
            r#"{"id":"p-1","type":"music","email":"a@x.com","status":"failed","started":"1970-01-01T00:00:00.000Z","finished":"1970-01-01T02:00:00.000Z","replyRef":"r","error":"timeout"}"#
        );
    }

    #[test]
    fn jobs_are_typed() {
        let spec = |body: &str| PixVerse.parse_job(&Fields::parse(body).unwrap());
        assert_eq!(
            spec(r#"{"id":"p","type":"image"}"#).unwrap().details,
            "image"
        );
        for bad in [
            r#"{"id":"p"}"#,
            r#"{"id":"p","type":"gif"}"#,
            r#"{"type":"video"}"#,
            r#"{"id":5,"type":"video"}"#,
        ] {
            assert!(spec(bad).is_err(), "{bad}");
        }
    }
}
