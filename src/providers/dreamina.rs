//! Dreamina (`/v1/dreamina/scheduler`, the seed page
//! `shared/seeds/dreamina-scheduler.txt`).
//!
//! Accounts are `REGION:email` (`US:someone@example.com`). A job is a `jobid`, given by
//! the gateway or made here in the page's style; it also carries the upstream
//! `submitId` and the `model`. The list groups items by account, and its errors are
//! `{"error"}` without a code.

use crate::errors::ErrorStyle;
use crate::jobs::{Clock, Ending, ItemTemplate, JobFacts, JobSpec};
use crate::json::{char_len, Fields, Object};
use crate::time::{elapsed_seconds, format_compact_month_to_second};

use super::{email, ending_members, opaque_id, reply_tail, Layout, ProviderRules};

/// The longest `submitId` or `model`, in characters.
pub const MAX_NAME_CHARS: usize = 256;

pub struct Dreamina;

/// `submitId` and `model`, as the job's details (in the wire format).
fn details(submit_id: &str, model: &str) -> String {
    crate::wire::encode(&(submit_id.to_owned(), model.to_owned(), ()))
}

fn read_details(text: &str) -> (String, String) {
    crate::wire::decode::<(String, String, ())>(text)
        .map(|(submit_id, model, ())| (submit_id, model))
        .unwrap_or_default()
}

fn name_field(body: &Fields<'_>, key: &str) -> Result<String, String> {
    let value = body.required_string(key)?;
    let ok = !value.is_empty()
        && char_len(&value) <= MAX_NAME_CHARS
        && !value.chars().any(char::is_control);
    if ok {
        Ok(value)
    } else {
        Err(format!(
            "{key} must be a non-empty string of at most {MAX_NAME_CHARS} characters"
        ))
    }
}

impl ProviderRules for Dreamina {
    fn name(&self) -> &'static str {
        "dreamina"
    }

    fn title(&self) -> &'static str {
        "Dreamina"
    }

    fn public_path(&self) -> &'static str {
        "/v1/dreamina/scheduler"
    }

    fn error_style(&self) -> ErrorStyle {
        ErrorStyle::Plain
    }

    fn max_jobs_limit(&self) -> u32 {
        50
    }

    fn check_account(&self, name: &str) -> Result<(), String> {
        let ok = match name.split_once(':') {
            Some((region, rest)) => {
                region.len() == 2
                    && region.bytes().all(|b| b.is_ascii_uppercase())
                    && email(rest).is_ok()
            }
            None => false,
        };
        if ok {
            Ok(())
        } else {
            Err(format!(
                "invalid account \"{name}\": expected REGION:email, e.g. US:someone@example.com"
            ))
        }
    }

    fn account_key(&self) -> &'static str {
        "account"
    }

    fn not_running(&self, text: &str) -> String {
        format!("Unable to locate running jobid {text}")
    }

    fn parse_job(&self, body: &Fields<'_>) -> Result<JobSpec, String> {
        let submit_id = name_field(body, "submitId")?;
        let model = name_field(body, "model")?;
        let id = body.string("jobid")?;
        if let Some(id) = &id {
            opaque_id(id).map_err(|rule| format!("jobid {rule}"))?;
        }
        Ok(JobSpec {
            id,
            account: body.string("account")?,
            counts: true,
            details: details(&submit_id, &model),
        })
    }

    /// `j<MMDDHHmmss><milliseconds><6 random digits>v-u<user>-<account>:dreamina`.
    fn generate_id(&self, user: &str, account: &str, now_ms: i64, random: u32) -> Option<String> {
        Some(format!(
            "j{}{:03}{:06}v-u{user}-{account}:dreamina",
            format_compact_month_to_second(now_ms),
            now_ms.rem_euclid(1000),
            random % 1_000_000,
        ))
    }

    fn layout(&self) -> Layout {
        Layout::ByAccount
    }

    /// `{"jobid","submitId","model","elapsedSeconds","replyUrl"?}`: the page shows no
    /// `replyRef` (it is kept for the webhook).
    fn id_members(&self, o: &mut Object<'_>, job: &JobFacts<'_>) {
        o.str("jobid", job.id);
    }

    fn item(&self, job: &JobFacts<'_>) -> ItemTemplate {
        let (submit_id, model) = read_details(job.details);
        let mut head = String::new();
        let mut o = Object::new(&mut head);
        self.id_members(&mut o, job);
        o.str("submitId", &submit_id).str("model", &model);
        o.key("elapsedSeconds");
        ItemTemplate {
            head,
            clock: Clock::Seconds,
            tail: reply_tail(job, false),
        }
    }

    /// `{"jobid","account","submitId","model","status","elapsedSeconds","replyRef"?,
    /// "result"?,"error"?}`
    fn webhook(&self, job: &JobFacts<'_>, ending: &Ending<'_>) -> String {
        let (submit_id, model) = read_details(job.details);
        let mut out = String::new();
        let mut o = Object::new(&mut out);
        self.id_members(&mut o, job);
        o.str("account", job.account)
            .str("submitId", &submit_id)
            .str("model", &model)
            .str("status", ending.status.as_str())
            .int(
                "elapsedSeconds",
                elapsed_seconds(job.started_ms, ending.finished_ms),
            );
        ending_members(&mut o, job, ending);
        o.end();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::FinalStatus;

    const SEED_JOBID: &str = "j0223140530123456789v-u12345-US:someone@example.com:dreamina";

    fn job<'a>(details: &'a str, reply_url: Option<&'a str>) -> JobFacts<'a> {
        JobFacts {
            id: SEED_JOBID,
            account: "US:someone@example.com",
            started_ms: 1_000,
            reply_url,
            reply_ref: Some("kept-for-the-webhook"),
            details,
        }
    }

    #[test]
    fn dreamina_item_json_format_unchanged() {
        let d = details("a1b2c3d4-e5f6-7890-abcd-ef1234567890", "seedance-2.0");
        let j = job(&d, Some("https://your-domain.com/webhook"));
        assert_eq!(
            Dreamina.item(&j).render(1_000, 46_999),
            format!(
                r#"{{"jobid":"{SEED_JOBID}","submitId":"a1b2c3d4-e5f6-7890-abcd-ef1234567890","model":"seedance-2.0","elapsedSeconds":45,"replyUrl":"https://your-domain.com/webhook"}}"#
            )
        );
        let without = job(&d, None);
        assert!(Dreamina
            .item(&without)
            .render(1_000, 1_000)
            .ends_with(r#""elapsedSeconds":0}"#));
    }

    #[test]
    fn dreamina_timeout_payload_json_format_unchanged() {
        let d = details("s", "m");
        let mut j = job(&d, Some("https://x.com/h"));
        j.reply_ref = None;
        let end = Ending {
            status: FinalStatus::Failed,
            finished_ms: 46_999,
            result: None,
            error: Some("timeout"),
        };
        assert_eq!(
            Dreamina.webhook(&j, &end),
            format!(
                r#"{{"jobid":"{SEED_JOBID}","account":"US:someone@example.com","submitId":"s","model":"m","status":"failed","elapsedSeconds":45,"error":"timeout"}}"#
            )
        );
    }

    #[test]
    fn generated_jobids_follow_the_seed_pattern() {
        let at = crate::time::parse_iso8601("2026-02-23T14:05:30.123Z").unwrap();
        assert_eq!(
            Dreamina
                .generate_id("12345", "US:someone@example.com", at, 456_789)
                .as_deref(),
            Some(SEED_JOBID)
        );
        assert!(opaque_id(SEED_JOBID).is_ok());
    }

    #[test]
    fn accounts_carry_a_two_letter_region() {
        assert!(Dreamina.check_account("US:someone@example.com").is_ok());
        for bad in [
            "someone@example.com",
            "us:a@x.com",
            "USA:a@x.com",
            "US:",
            "US:a",
        ] {
            assert!(Dreamina.check_account(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn registration_needs_submit_id_and_model_and_refuses_unreachable_jobids() {
        let spec = |body: &str| Dreamina.parse_job(&Fields::parse(body).unwrap());
        let s = spec(r#"{"submitId":"s","model":"m","account":"US:a@x.com"}"#).unwrap();
        assert_eq!((s.id, s.account.as_deref()), (None, Some("US:a@x.com")));
        for bad in [
            r#"{"model":"m"}"#,
            r#"{"submitId":"","model":"m"}"#,
            r#"{"submitId":"s","model":5}"#,
            r#"{"submitId":"s","model":"m","jobid":".."}"#,
            r#"{"submitId":"s","model":"m","jobid":"."}"#,
            r#"{"submitId":"s","model":"m","jobid":"a/b"}"#,
        ] {
            assert!(spec(bad).is_err(), "{bad}");
        }
        let long = format!(
            r#"{{"submitId":"{}","model":"m"}}"#,
            "ü".repeat(MAX_NAME_CHARS)
        );
        assert!(spec(&long).is_ok());
    }
}
