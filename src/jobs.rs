//! Executing jobs: what a registration body says, what an account object keeps of a
//! job, how a list item is drawn from it, and how a job ends.
//!
//! The core knows the members every provider shares (`replyUrl`, `replyRef`,
//! `started`, `waitSeconds`); the provider reads its own (ids, account, kind) into a
//! [`JobSpec`] and keeps whatever else it needs in `details`, text only it reads.

use crate::json::{char_len, Fields};
use crate::providers::Provider;
use crate::time::{elapsed_seconds, format_elapsed, parse_iso8601};

/// How far in the future a registration's `started` may lie (clock skew allowance).
pub const MAX_FUTURE_START_MS: i64 = 5 * 60 * 1000;
/// The largest `result` a completion may carry, as JSON text.
pub const MAX_RESULT_BYTES: usize = 256 * 1024;
/// The longest `replyRef`, in characters.
pub const MAX_REF_CHARS: usize = 1024;
/// The longest `replyUrl`, in characters.
pub const MAX_URL_CHARS: usize = 2048;
/// The longest wait a registration may ask for.
pub const MAX_WAIT_SECONDS: i64 = 60;

/// What a provider reads from a registration body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobSpec {
    /// The job id; `None` when the provider makes one per account (Dreamina).
    pub id: Option<String>,
    /// The account the operator named (not yet checked against the configured ones).
    pub account: Option<String>,
    /// Whether the job takes one of the account's `maxJobs` slots (MiniMax images
    /// do not).
    pub counts: bool,
    /// The provider's own members, in a form only the provider reads.
    pub details: String,
}

crate::wire_struct!(JobSpec {
    id,
    account,
    counts,
    details
});

/// A parsed registration, before an account is chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    pub job: JobSpec,
    /// When the job started upstream; `None` means when it is admitted (a waiting
    /// registration starts when it gets its slot).
    pub started_ms: Option<i64>,
    pub reply_url: Option<String>,
    pub reply_ref: Option<String>,
    /// How long the operator is willing to wait for a slot (0: answer 429 at once).
    pub wait_ms: i64,
}

crate::wire_struct!(Registration {
    job,
    started_ms,
    reply_url,
    reply_ref,
    wait_ms
});

/// Parses a registration body. `check_url` applies the runtime's URL rules to a
/// `replyUrl` that passed the contract's own checks (see [`check_reply_url`]).
pub fn parse_registration(
    provider: Provider,
    body: &str,
    now_ms: i64,
    check_url: &dyn Fn(&str) -> Result<(), String>,
) -> Result<Registration, String> {
    let fields = Fields::parse(body)?;
    let job = provider.parse_job(&fields)?;
    if let Some(account) = &job.account {
        provider.check_account(account)?;
    }
    let reply_url = fields.string("replyUrl")?;
    if let Some(url) = &reply_url {
        check_reply_url(url, check_url)?;
    }
    let reply_ref = fields.string("replyRef")?;
    if reply_ref
        .as_deref()
        .is_some_and(|r| char_len(r) > MAX_REF_CHARS)
    {
        return Err(format!(
            "replyRef must be at most {MAX_REF_CHARS} characters"
        ));
    }
    let started_ms = match fields.string("started")? {
        None => None,
        Some(text) => {
            let ms = parse_iso8601(&text).map_err(str::to_owned)?;
            if ms > now_ms + MAX_FUTURE_START_MS {
                return Err("started must not be more than 5 minutes in the future".to_owned());
            }
            Some(ms)
        }
    };
    let wait_s = fields
        .integer_in("waitSeconds", 0..=MAX_WAIT_SECONDS)?
        .unwrap_or(0);
    Ok(Registration {
        job,
        started_ms,
        reply_url,
        reply_ref,
        wait_ms: wait_s * 1000,
    })
}

/// The contract's rules for a `replyUrl` (at most 2048 characters, http or https,
/// no user info), then the runtime's own URL parser (`check_url`): a URL is accepted
/// exactly when the `fetch` that delivers its webhook can parse it. Written forms the
/// URL standard calls errors but repairs silently (white space or control characters,
/// `https:host` without `//`) are refused, so the URL stored and shown is the one
/// that is called.
pub fn check_reply_url(
    url: &str,
    check_url: &dyn Fn(&str) -> Result<(), String>,
) -> Result<(), String> {
    if char_len(url) > MAX_URL_CHARS {
        return Err(format!(
            "replyUrl must be at most {MAX_URL_CHARS} characters"
        ));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("replyUrl must not contain white space or control characters".to_owned());
    }
    let scheme = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    if !scheme.starts_with("http://") && !scheme.starts_with("https://") {
        return Err("replyUrl must start with http:// or https://".to_owned());
    }
    check_url(url).map_err(|why| format!("replyUrl {why}"))
}

/// One executing job as the objects and providers see it.
#[derive(Debug, Clone, Copy)]
pub struct JobFacts<'a> {
    pub id: &'a str,
    pub account: &'a str,
    pub started_ms: i64,
    pub reply_url: Option<&'a str>,
    pub reply_ref: Option<&'a str>,
    pub details: &'a str,
}

/// How a list item shows the time a job has been executing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clock {
    /// No time member (RunwayML).
    None,
    /// `"MM:SS"`, minutes past 59 keep counting (`"62:05"`).
    MinutesSeconds,
    /// Whole seconds, a number.
    Seconds,
}

/// A list item drawn once when a job is loaded and reused for every list: the JSON
/// before the clock, the clock, and the JSON after it (ending with `}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemTemplate {
    pub head: String,
    pub clock: Clock,
    pub tail: String,
}

impl ItemTemplate {
    pub fn render_into(&self, out: &mut String, started_ms: i64, now_ms: i64) {
        out.push_str(&self.head);
        let seconds = elapsed_seconds(started_ms, now_ms);
        match self.clock {
            Clock::None => {}
            Clock::MinutesSeconds => {
                out.push('"');
                out.push_str(&format_elapsed(seconds));
                out.push('"');
            }
            Clock::Seconds => crate::json::push_int(out, seconds),
        }
        out.push_str(&self.tail);
    }

    pub fn render(&self, started_ms: i64, now_ms: i64) -> String {
        let mut out = String::with_capacity(self.head.len() + self.tail.len() + 12);
        self.render_into(&mut out, started_ms, now_ms);
        out
    }
}

/// Appends members to a rendered JSON object (`{...}` → `{...,<members>}`): the
/// operator's views are the public item plus a few members.
pub fn extend_object(item: &mut String, members: impl FnOnce(&mut crate::json::Object<'_>)) {
    let mut extra = String::new();
    let mut o = crate::json::Object::new(&mut extra);
    members(&mut o);
    o.end();
    if extra.len() > 2 && item.ends_with('}') {
        item.pop();
        if !item.ends_with('{') {
            item.push(',');
        }
        item.push_str(&extra[1..]);
    }
}

/// How a job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinalStatus {
    Completed,
    Failed,
}

crate::wire_enum!(FinalStatus { 0 => Completed, 1 => Failed });

impl FinalStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            FinalStatus::Completed => "completed",
            FinalStatus::Failed => "failed",
        }
    }
}

/// How a job left the executing list, for its webhook.
#[derive(Debug, Clone, Copy)]
pub struct Ending<'a> {
    pub status: FinalStatus,
    pub finished_ms: i64,
    /// Raw JSON, forwarded byte for byte.
    pub result: Option<&'a str>,
    /// `Some("timeout")` for an expired job.
    pub error: Option<&'a str>,
}

/// A completion body: the final status and the optional raw `result`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    pub status: FinalStatus,
    pub result: Option<String>,
}

crate::wire_struct!(Completion { status, result });

/// Why a completion body was refused: a 400, or a 413 for a `result` too large.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompletionError {
    Invalid(String),
    TooLarge,
}

pub fn parse_completion(body: &str) -> Result<Completion, CompletionError> {
    let fields = Fields::parse(body).map_err(CompletionError::Invalid)?;
    let status = match fields
        .string("status")
        .map_err(CompletionError::Invalid)?
        .as_deref()
    {
        Some("completed") => FinalStatus::Completed,
        Some("failed") => FinalStatus::Failed,
        _ => {
            return Err(CompletionError::Invalid(
                "status must be \"completed\" or \"failed\"".to_owned(),
            ))
        }
    };
    let result = fields.raw("result").map(str::to_owned);
    if result.as_ref().is_some_and(|r| r.len() > MAX_RESULT_BYTES) {
        return Err(CompletionError::TooLarge);
    }
    Ok(Completion { status, result })
}

/// A progress report: `{"progress"?: 0..100}`.
pub fn parse_progress(body: &str) -> Result<Option<u8>, String> {
    let fields = Fields::parse(body)?;
    Ok(fields
        .integer_in("progress", 0..=100)?
        .map(|p| u8::try_from(p).unwrap_or(100)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_745_000_000_000;

    fn any_url(_: &str) -> Result<(), String> {
        Ok(())
    }

    fn kling() -> Provider {
        Provider::parse("kling").unwrap()
    }

    #[test]
    fn a_minimal_registration_starts_when_admitted_and_does_not_wait() {
        let r = parse_registration(kling(), r#"{"id": 123456789}"#, NOW, &any_url).unwrap();
        assert_eq!(r.job.id.as_deref(), Some("123456789"));
        assert_eq!(r.started_ms, None);
        assert_eq!(r.wait_ms, 0);
    }

    #[test]
    fn common_members_are_checked_for_every_provider() {
        for body in [
            r#"{"id":1,"replyRef":5}"#,
            r#"{"id":1,"started":"yesterday"}"#,
            r#"{"id":1,"waitSeconds":61}"#,
            r#"{"id":1,"waitSeconds":1.5}"#,
            r#"{"id":1,"waitSeconds":-1}"#,
            r#"{"id":1,"email":"nope"}"#,
            r#"[]"#,
        ] {
            assert!(
                parse_registration(kling(), body, NOW, &any_url).is_err(),
                "{body}"
            );
        }
        let long_ref = format!(r#"{{"id":1,"replyRef":"{}"}}"#, "é".repeat(MAX_REF_CHARS));
        assert!(parse_registration(kling(), &long_ref, NOW, &any_url).is_ok());
        let longer = format!(
            r#"{{"id":1,"replyRef":"{}"}}"#,
            "é".repeat(MAX_REF_CHARS + 1)
        );
        assert!(parse_registration(kling(), &longer, NOW, &any_url).is_err());
    }

    #[test]
    fn reply_urls_go_through_the_runtime_rules_after_the_contract_ones() {
        let refuse = |_: &str| Err("is not a URL".to_owned());
        let body = r#"{"id":1,"replyUrl":"http://x:99999/"}"#;
        assert_eq!(
            parse_registration(kling(), body, NOW, &refuse).unwrap_err(),
            "replyUrl is not a URL"
        );
        let long = format!(
            r#"{{"id":1,"replyUrl":"https://x.com/{}"}}"#,
            "a".repeat(2040)
        );
        assert!(parse_registration(kling(), &long, NOW, &any_url)
            .unwrap_err()
            .contains("2048 characters"));
    }

    #[test]
    fn urls_the_standard_would_repair_silently_are_refused() {
        for written_wrong in [
            "https:x.com/",
            "https://exa\tmple.com/",
            "https://x.com/a b",
            "ftp://x.com/",
        ] {
            let body = format!(
                r#"{{"id":1,"replyUrl":{}}}"#,
                crate::json::string(written_wrong)
            );
            assert!(
                parse_registration(kling(), &body, NOW, &any_url).is_err(),
                "{written_wrong}"
            );
        }
        let fine = r#"{"id":1,"replyUrl":"HTTPS://münchen.example/ünï?a=1#f"}"#;
        assert!(parse_registration(kling(), fine, NOW, &any_url).is_ok());
    }

    #[test]
    fn a_start_more_than_five_minutes_ahead_is_refused() {
        let ahead = crate::time::format_iso_millis(NOW + MAX_FUTURE_START_MS + 1000);
        let body = format!(r#"{{"id":1,"started":"{ahead}"}}"#);
        assert!(parse_registration(kling(), &body, NOW, &any_url).is_err());
        let near = crate::time::format_iso_millis(NOW + 60_000);
        let body = format!(r#"{{"id":1,"started":"{near}","waitSeconds":60}}"#);
        let r = parse_registration(kling(), &body, NOW, &any_url).unwrap();
        assert_eq!(r.wait_ms, 60_000);
    }

    #[test]
    fn templates_render_the_clock_between_head_and_tail() {
        let t = ItemTemplate {
            head: r#"{"a":1,"elapsed":"#.to_owned(),
            clock: Clock::MinutesSeconds,
            tail: "}".to_owned(),
        };
        assert_eq!(t.render(0, 3_725_999), r#"{"a":1,"elapsed":"62:05"}"#);
        let t = ItemTemplate {
            head: r#"{"s":"#.to_owned(),
            clock: Clock::Seconds,
            tail: "}".to_owned(),
        };
        assert_eq!(t.render(10_000, 5_000), r#"{"s":0}"#);
    }

    #[test]
    fn objects_are_extended_in_place() {
        let mut item = r#"{"id":1}"#.to_owned();
        extend_object(&mut item, |o| {
            o.str("account", "a@x.com").opt_str("x", None);
        });
        assert_eq!(item, r#"{"id":1,"account":"a@x.com"}"#);
        let mut empty = "{}".to_owned();
        extend_object(&mut empty, |o| {
            o.int("n", 1);
        });
        assert_eq!(empty, r#"{"n":1}"#);
    }

    #[test]
    fn completion_results_are_kept_raw_and_bounded() {
        let c = parse_completion(r#"{"status":"completed","result":{"url": "v.mp4"}}"#).unwrap();
        assert_eq!(c.status, FinalStatus::Completed);
        assert_eq!(c.result.as_deref(), Some(r#"{"url": "v.mp4"}"#));
        let big = format!(
            r#"{{"status":"failed","result":"{}"}}"#,
            "x".repeat(MAX_RESULT_BYTES)
        );
        assert_eq!(
            parse_completion(&big).unwrap_err(),
            CompletionError::TooLarge
        );
        assert!(matches!(
            parse_completion(r#"{"status":"done"}"#),
            Err(CompletionError::Invalid(_))
        ));
        assert!(matches!(
            parse_completion(r#"["completed"]"#),
            Err(CompletionError::Invalid(_))
        ));
    }

    #[test]
    fn progress_is_an_optional_percentage() {
        assert_eq!(parse_progress("{}").unwrap(), None);
        assert_eq!(parse_progress(r#"{"progress":42}"#).unwrap(), Some(42));
        for bad in [
            r#"{"progress":101}"#,
            r#"{"progress":"5"}"#,
            r#"{"progress":-1}"#,
            "5",
        ] {
            assert!(parse_progress(bad).is_err(), "{bad}");
        }
    }
}
