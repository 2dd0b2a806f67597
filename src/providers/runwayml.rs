//! RunwayML (`/v1/runwayml/scheduler`).
//!
//! Accounts are emails, at most 10 jobs each. A job is a `taskId`; its list item has
//! no time members, as its page shows: `{"taskId","replyUrl"?,"replyRef"?}`.

use crate::jobs::{Clock, ItemTemplate, JobFacts, JobSpec};
use crate::json::{Fields, Object};

use super::{email, opaque_id_field, reply_tail, ProviderRules};

pub struct RunwayMl;

impl ProviderRules for RunwayMl {
    fn name(&self) -> &'static str {
        "runwayml"
    }

    fn title(&self) -> &'static str {
        "RunwayML"
    }

    fn public_path(&self) -> &'static str {
        "/v1/runwayml/scheduler"
    }

    fn max_jobs_limit(&self) -> u32 {
        10
    }

    fn check_account(&self, name: &str) -> Result<(), String> {
        email(name)
    }

    fn account_key(&self) -> &'static str {
        "email"
    }

    fn not_running(&self, text: &str) -> String {
        format!("Unable to locate running taskId {text}")
    }

    fn parse_job(&self, body: &Fields<'_>) -> Result<JobSpec, String> {
        Ok(JobSpec {
            id: Some(opaque_id_field(body, "taskId")?),
            account: body.string("email")?,
            counts: true,
            details: String::new(),
        })
    }

    fn id_members(&self, o: &mut Object<'_>, job: &JobFacts<'_>) {
        o.str("taskId", job.id);
    }

    fn item(&self, job: &JobFacts<'_>) -> ItemTemplate {
        let mut head = String::new();
        let mut o = Object::new(&mut head);
        self.id_members(&mut o, job);
        ItemTemplate {
            head,
            clock: Clock::None,
            tail: reply_tail(job, true),
        }
    }

    // The webhook is the family's default (`ProviderRules::webhook`).
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::{Ending, FinalStatus};

    fn job(reply_url: Option<&str>) -> JobFacts<'_> {
        JobFacts {
            id: "t-1",
            account: "a@x.com",
            started_ms: 0,
            reply_url,
            reply_ref: None,
            details: "",
        }
    }

    #[test]
    fn runwayml_item_json_format_unchanged() {
        assert_eq!(
            RunwayMl
                .item(&job(Some("https://x.com/h")))
                .render(0, 99_000),
            r#"{"taskId":"t-1","replyUrl":"https://x.com/h"}"#
        );
        assert_eq!(
            RunwayMl.item(&job(None)).render(0, 0),
            r#"{"taskId":"t-1"}"#
        );
    }

    #[test]
    fn runwayml_payload_json_format_unchanged() {
        let end = Ending {
            status: FinalStatus::Completed,
            finished_ms: 1_000,
            result: None,
            error: None,
        };
        assert_eq!(
            RunwayMl.webhook(&job(None), &end),
            r#"{"taskId":"t-1","email":"a@x.com","status":"completed","started":"1970-01-01T00:00:00.000Z","finished":"1970-01-01T00:00:01.000Z"}"#
        );
    }

    #[test]
    fn registration_needs_a_task_id() {
        let spec = |body: &str| RunwayMl.parse_job(&Fields::parse(body).unwrap());
        assert_eq!(
            spec(r#"{"taskId":"t","email":"a@x.com"}"#)
                .unwrap()
                .id
                .as_deref(),
            Some("t")
        );
        assert!(spec(r#"{}"#).is_err());
    }
}
