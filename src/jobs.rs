//! Executing jobs: the record an account object stores, and the operator's
//! registration and completion bodies parsed into it.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::domain::{validate_reply_url, AccountName, JobId, Provider, UserId};
use crate::errors::ApiError;
use crate::time::{format_compact_month_to_second, parse_iso8601};

/// How far in the future a registration's `started` may lie (clock skew allowance).
pub const MAX_FUTURE_START_MS: i64 = 5 * 60 * 1000;
/// The largest `result` a completion may carry, serialised.
pub const MAX_RESULT_BYTES: usize = 256 * 1024;
/// The longest `replyRef`, `submitId` or `model` we keep.
pub const MAX_REF_LEN: usize = 1024;
pub const MAX_NAME_LEN: usize = 256;

/// One executing job, as an account object stores it (field names are its SQL columns).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRecord {
    /// Kling task id (decimal digits) or Dreamina jobid.
    pub id: String,
    pub started_ms: i64,
    /// Registration order within the account: the tie-breaker for equal `started_ms`.
    #[serde(default)]
    pub seq: i64,
    #[serde(default)]
    pub submit_id: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub reply_url: Option<String>,
    #[serde(default)]
    pub reply_ref: Option<String>,
}

/// A parsed registration: what the operator asked for, before an account is chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// `None` for a Dreamina job whose jobid the scheduler generates.
    pub id: Option<JobId>,
    /// The account the operator named, if any.
    pub account: Option<AccountName>,
    pub started_ms: i64,
    pub submit_id: Option<String>,
    pub model: Option<String>,
    pub reply_url: Option<String>,
    pub reply_ref: Option<String>,
}

impl Registration {
    /// The record to store on `account`, with `id` the final job id.
    pub fn record(&self, id: &JobId) -> JobRecord {
        JobRecord {
            id: id.as_str().to_owned(),
            started_ms: self.started_ms,
            seq: 0,
            submit_id: self.submit_id.clone(),
            model: self.model.clone(),
            reply_url: self.reply_url.clone(),
            reply_ref: self.reply_ref.clone(),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct KlingBody {
    id: u64,
    email: Option<String>,
    reply_url: Option<String>,
    reply_ref: Option<String>,
    started: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DreaminaBody {
    submit_id: String,
    model: String,
    account: Option<String>,
    jobid: Option<String>,
    reply_url: Option<String>,
    reply_ref: Option<String>,
    started: Option<String>,
}

/// Parses a JSON object body into `T`. serde's derived structs also accept a JSON
/// array (fields by position); the API's bodies are objects, so anything else is a 400.
pub fn parse_object<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, ApiError> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        return Err(ApiError::BadRequest(
            "request body must be a JSON object".to_owned(),
        ));
    }
    serde_json::from_slice(body).map_err(|e| json_error(&e))
}

/// Turns a JSON parse error into a 400 that says what was wrong, without echoing input.
pub fn json_error(err: &serde_json::Error) -> ApiError {
    let what = match err.classify() {
        serde_json::error::Category::Data => format!("invalid request body: {err}"),
        _ => "request body must be valid JSON".to_owned(),
    };
    ApiError::BadRequest(what)
}

/// Parses a job registration body for `provider`.
pub fn parse_registration(
    provider: Provider,
    body: &[u8],
    now_ms: i64,
) -> Result<Registration, ApiError> {
    let bad = ApiError::BadRequest;
    let (id, account, started, submit_id, model, reply_url, reply_ref) = match provider {
        Provider::Kling => {
            let b: KlingBody = parse_object(body)?;
            let id = JobId::kling(b.id).map_err(bad)?;
            (
                Some(id),
                b.email,
                b.started,
                None,
                None,
                b.reply_url,
                b.reply_ref,
            )
        }
        Provider::Dreamina => {
            let b: DreaminaBody = parse_object(body)?;
            let id = b
                .jobid
                .as_deref()
                .map(JobId::parse_dreamina)
                .transpose()
                .map_err(bad)?;
            let submit_id = bounded("submitId", b.submit_id, MAX_NAME_LEN)?;
            let model = bounded("model", b.model, MAX_NAME_LEN)?;
            (
                id,
                b.account,
                b.started,
                Some(submit_id),
                Some(model),
                b.reply_url,
                b.reply_ref,
            )
        }
    };
    let account = account
        .map(|a| AccountName::parse(provider, &a))
        .transpose()
        .map_err(bad)?;
    if let Some(url) = &reply_url {
        validate_reply_url(url).map_err(bad)?;
    }
    let reply_ref = reply_ref.map(bounded_ref).transpose()?;
    let started_ms = match started {
        None => now_ms,
        Some(text) => {
            let ms = parse_iso8601(&text).map_err(|m| bad(m.to_owned()))?;
            if ms > now_ms + MAX_FUTURE_START_MS {
                return Err(bad(
                    "started must not be more than 5 minutes in the future".to_owned()
                ));
            }
            ms
        }
    };
    Ok(Registration {
        id,
        account,
        started_ms,
        submit_id,
        model,
        reply_url,
        reply_ref,
    })
}

fn bounded(field: &str, value: String, max: usize) -> Result<String, ApiError> {
    if value.is_empty() || value.len() > max || value.chars().any(char::is_control) {
        return Err(ApiError::BadRequest(format!(
            "{field} must be a non-empty string of at most {max} characters"
        )));
    }
    Ok(value)
}

fn bounded_ref(value: String) -> Result<String, ApiError> {
    if value.len() > MAX_REF_LEN {
        return Err(ApiError::BadRequest(format!(
            "replyRef must be at most {MAX_REF_LEN} characters"
        )));
    }
    Ok(value)
}

/// A jobid in the Dreamina page's style:
/// `j<MMDDHHmmss><milliseconds><6 random digits>v-u<user>-<account>:dreamina`.
pub fn generate_dreamina_jobid(
    now_ms: i64,
    random: u32,
    user: &UserId,
    account: &AccountName,
) -> String {
    format!(
        "j{}{:03}{:06}v-u{}-{}:dreamina",
        format_compact_month_to_second(now_ms),
        now_ms.rem_euclid(1000),
        random % 1_000_000,
        user.as_str(),
        account.as_str()
    )
}

/// How a job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FinalStatus {
    Completed,
    Failed,
}

impl FinalStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            FinalStatus::Completed => "completed",
            FinalStatus::Failed => "failed",
        }
    }
}

/// A completion: the final status and the optional `result`, kept as raw JSON so it
/// is forwarded byte for byte in the webhook.
#[derive(Debug, Deserialize)]
pub struct Completion {
    pub status: FinalStatus,
    #[serde(default)]
    pub result: Option<Box<RawValue>>,
}

pub fn parse_completion(body: &[u8]) -> Result<Completion, ApiError> {
    let completion: Completion = parse_object(body)?;
    if let Some(result) = &completion.result {
        if result.get().len() > MAX_RESULT_BYTES {
            return Err(ApiError::PayloadTooLarge(format!(
                "result must be at most {MAX_RESULT_BYTES} bytes of JSON"
            )));
        }
    }
    Ok(completion)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_745_000_000_000;

    #[test]
    fn a_minimal_kling_registration_starts_now() {
        let r = parse_registration(Provider::Kling, br#"{"id": 123456789}"#, NOW).unwrap();
        assert_eq!(r.id.unwrap().as_str(), "123456789");
        assert_eq!(r.started_ms, NOW);
        assert_eq!(r.account, None);
    }

    #[test]
    fn a_full_dreamina_registration_keeps_every_field() {
        let body = br#"{"submitId":"s-1","model":"seedance-2.0","account":"US:a@x.com",
            "jobid":"j1","replyUrl":"https://x.com/h","replyRef":"r","started":"2025-04-18T12:34:56.789Z"}"#;
        let r = parse_registration(Provider::Dreamina, body, NOW).unwrap();
        assert_eq!(r.account.unwrap().as_str(), "US:a@x.com");
        assert_eq!(r.submit_id.as_deref(), Some("s-1"));
        assert_eq!(r.reply_ref.as_deref(), Some("r"));
        assert_eq!(
            r.started_ms,
            parse_iso8601("2025-04-18T12:34:56.789Z").unwrap()
        );
    }

    #[test]
    fn wrong_types_and_missing_fields_are_400s() {
        for (provider, body) in [
            (Provider::Kling, &br#"{"id":"123"}"#[..]),
            (Provider::Kling, br#"{"id":-1}"#),
            (Provider::Kling, br#"{"id":0}"#),
            (Provider::Kling, br#"{"id":1.5}"#),
            (Provider::Kling, br#"{}"#),
            (Provider::Kling, br#"[]"#),
            (Provider::Kling, br#"not json"#),
            (Provider::Kling, br#"{"id":1,"email":"nope"}"#),
            (Provider::Kling, br#"{"id":1,"replyUrl":"ftp://x.com"}"#),
            (Provider::Kling, br#"{"id":1,"replyRef":5}"#),
            (Provider::Dreamina, br#"{"model":"m"}"#),
            (Provider::Dreamina, br#"{"submitId":"","model":"m"}"#),
            (
                Provider::Dreamina,
                br#"{"submitId":"s","model":"m","account":"a@x.com"}"#,
            ),
        ] {
            let err = parse_registration(provider, body, NOW).unwrap_err();
            assert_eq!(err.status(), 400, "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn a_start_more_than_five_minutes_ahead_is_refused() {
        let ahead = crate::time::format_iso_millis(NOW + MAX_FUTURE_START_MS + 1000);
        let body = format!(r#"{{"id":1,"started":"{ahead}"}}"#);
        assert_eq!(
            parse_registration(Provider::Kling, body.as_bytes(), NOW)
                .unwrap_err()
                .status(),
            400
        );
        let near = crate::time::format_iso_millis(NOW + 60_000);
        let body = format!(r#"{{"id":1,"started":"{near}"}}"#);
        assert!(parse_registration(Provider::Kling, body.as_bytes(), NOW).is_ok());
    }

    #[test]
    fn generated_jobids_follow_the_seed_pattern() {
        let user = UserId::parse("12345").unwrap();
        let account = AccountName::parse(Provider::Dreamina, "US:a@x.com").unwrap();
        let at = parse_iso8601("2026-02-23T14:05:30.123Z").unwrap();
        assert_eq!(
            generate_dreamina_jobid(at, 456_789, &user, &account),
            "j0223140530123456789v-u12345-US:a@x.com:dreamina"
        );
    }

    #[test]
    fn array_bodies_are_refused_even_where_fields_would_line_up() {
        assert_eq!(
            parse_registration(Provider::Kling, b"[1]", NOW)
                .unwrap_err()
                .status(),
            400
        );
        assert_eq!(
            parse_completion(br#"["completed"]"#).unwrap_err().status(),
            400
        );
        assert!(parse_completion(b" \n{\"status\":\"failed\"}").is_ok());
    }

    #[test]
    fn completion_results_are_kept_raw_and_bounded() {
        let c = parse_completion(br#"{"status":"completed","result":{"url":"https://v/1.mp4"}}"#)
            .unwrap();
        assert_eq!(c.status, FinalStatus::Completed);
        assert_eq!(c.result.unwrap().get(), r#"{"url":"https://v/1.mp4"}"#);
        let big = format!(
            r#"{{"status":"failed","result":"{}"}}"#,
            "x".repeat(MAX_RESULT_BYTES)
        );
        assert_eq!(parse_completion(big.as_bytes()).unwrap_err().status(), 413);
        assert_eq!(
            parse_completion(br#"{"status":"done"}"#)
                .unwrap_err()
                .status(),
            400
        );
    }
}
