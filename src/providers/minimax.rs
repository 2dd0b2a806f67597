//! MiniMax (`/v1/minimax/scheduler`).
//!
//! Accounts are account ids (`[A-Za-z0-9_-]{1,64}`), at most 10 jobs each. A job is a
//! video (`videoId`) or an image (`imageId`); the list item carries whichever id it
//! has. Image jobs are tracked and listed but take no slot: its page says "the
//! available capacity includes only videos".

use crate::jobs::{ItemTemplate, JobFacts, JobSpec};
use crate::json::{Fields, Object};

use super::{opaque_id_field, timed_item, ProviderRules};

pub struct MiniMax;

/// The id member of a job: its details are the kind, `video` or `image`.
fn id_key(details: &str) -> &'static str {
    if details == "image" {
        "imageId"
    } else {
        "videoId"
    }
}

impl ProviderRules for MiniMax {
    fn name(&self) -> &'static str {
        "minimax"
    }

    fn title(&self) -> &'static str {
        "MiniMax"
    }

    fn public_path(&self) -> &'static str {
        "/v1/minimax/scheduler"
    }

    fn max_jobs_limit(&self) -> u32 {
        10
    }

    fn check_account(&self, name: &str) -> Result<(), String> {
        let ok = (1..=64).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if ok {
            Ok(())
        } else {
            Err(format!(
                "invalid account \"{name}\": expected an account id of 1 to 64 characters [A-Za-z0-9_-]"
            ))
        }
    }

    fn account_key(&self) -> &'static str {
        "account"
    }

    fn not_running(&self, text: &str) -> String {
        format!("Unable to locate running {text}")
    }

    fn parse_job(&self, body: &Fields<'_>) -> Result<JobSpec, String> {
        let (key, kind) = match (body.has("videoId"), body.has("imageId")) {
            (true, false) => ("videoId", "video"),
            (false, true) => ("imageId", "image"),
            _ => return Err("exactly one of videoId and imageId is required".to_owned()),
        };
        Ok(JobSpec {
            id: Some(opaque_id_field(body, key)?),
            account: body.string("account")?,
            counts: kind == "video",
            details: kind.to_owned(),
        })
    }

    fn id_members(&self, o: &mut Object<'_>, job: &JobFacts<'_>) {
        o.str(id_key(job.details), job.id);
    }

    /// `{"videoId"|"imageId","started","elapsed","replyUrl"?,"replyRef"?}`
    fn item(&self, job: &JobFacts<'_>) -> ItemTemplate {
        timed_item(job, |o| self.id_members(o, job))
    }

    // The webhook is the family's default (`ProviderRules::webhook`).
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::{Ending, FinalStatus};

    fn job(details: &str) -> JobFacts<'_> {
        JobFacts {
            id: "v-123",
            account: "acc_1",
            started_ms: 1_000,
            reply_url: Some("https://x.com/h"),
            reply_ref: Some("r"),
            details,
        }
    }

    #[test]
    fn minimax_items_json_format_unchanged() {
        assert_eq!(
            MiniMax.item(&job("video")).render(1_000, 226_000),
            r#"{"videoId":"v-123","started":"1970-01-01T00:00:01.000Z","elapsed":"03:45","replyUrl":"https://x.com/h","replyRef":"r"}"#
        );
        assert_eq!(
            MiniMax.item(&job("image")).render(1_000, 1_000),
            r#"{"imageId":"v-123","started":"1970-01-01T00:00:01.000Z","elapsed":"00:00","replyUrl":"https://x.com/h","replyRef":"r"}"#
        );
    }

    #[test]
    fn minimax_payload_json_format_unchanged() {
        let end = Ending {
            status: FinalStatus::Completed,
            finished_ms: 61_000,
            result: Some("[1]"),
            error: None,
        };
        assert_eq!(
            MiniMax.webhook(&job("image"), &end),
            r#"{"imageId":"v-123","account":"acc_1","status":"completed","started":"1970-01-01T00:00:01.000Z","finished":"1970-01-01T00:01:01.000Z","replyRef":"r","result":[1]}"#
        );
    }

    #[test]
    fn image_jobs_take_no_slot_and_exactly_one_id_is_given() {
        let spec = |body: &str| MiniMax.parse_job(&Fields::parse(body).unwrap());
        let video = spec(r#"{"videoId":"v1","account":"a1"}"#).unwrap();
        assert!(video.counts);
        let image = spec(r#"{"imageId":"i1"}"#).unwrap();
        assert!(!image.counts);
        assert_eq!(image.details, "image");
        for bad in [
            r#"{}"#,
            r#"{"videoId":"v","imageId":"i"}"#,
            r#"{"videoId":5}"#,
            r#"{"imageId":".."}"#,
        ] {
            assert!(spec(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn accounts_are_ids() {
        assert!(MiniMax.check_account("acc_1-X").is_ok());
        for bad in ["", "a@x.com", "a b", &"x".repeat(65)] {
            assert!(MiniMax.check_account(bad).is_err(), "{bad:?}");
        }
    }
}
