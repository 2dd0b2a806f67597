//! Webhooks: the payloads, the Standard Webhooks signature, the retry schedule and how
//! a delivery attempt's answer is judged. Pure; the account object sends and stores.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::Serialize;
use serde_json::value::RawValue;
use sha2::Sha256;

use crate::jobs::{FinalStatus, JobRecord};
use crate::time::{elapsed_seconds, format_iso_millis};

/// A delivery attempt that has no 2xx answer within this time counts as failed.
pub const DELIVERY_TIMEOUT_MS: u64 = 10_000;

/// The signing key of `WEBHOOK_SECRET` (`whsec_<base64>`), as raw bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(Vec<u8>);

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(..)")
    }
}

impl WebhookSecret {
    /// Reads `whsec_<base64>` as the Standard Webhooks libraries do: the prefix is
    /// optional, the rest is standard base64 of the key bytes.
    pub fn parse(text: &str) -> Result<WebhookSecret, String> {
        let encoded = text.strip_prefix("whsec_").unwrap_or(text);
        let key = STANDARD
            .decode(encoded)
            .map_err(|_| "the secret is not whsec_ followed by base64".to_owned())?;
        if key.is_empty() {
            return Err("the secret is empty".to_owned());
        }
        Ok(WebhookSecret(key))
    }

    /// `v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`.
    pub fn sign(&self, webhook_id: &str, timestamp_s: i64, body: &str) -> String {
        // HMAC accepts keys of any length, so `new_from_slice` cannot fail here.
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.0) else {
            return String::new();
        };
        mac.update(webhook_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp_s.to_string().as_bytes());
        mac.update(b".");
        mac.update(body.as_bytes());
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

/// Seconds to wait before each retry. A delivery is attempted once, then once more
/// after each delay: `1 + len` attempts in all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule(Vec<u64>);

impl Default for RetrySchedule {
    fn default() -> Self {
        RetrySchedule(vec![5, 30, 120, 600, 1800, 3600, 7200, 14400])
    }
}

impl RetrySchedule {
    /// Parses comma-separated whole seconds (`"5,30,120"`); white space is ignored.
    /// An empty schedule (`""` is not one: that means "unset") cannot be written, so
    /// "no retries" is `0`-free: use a single large delay instead.
    pub fn parse(text: &str) -> Result<RetrySchedule, String> {
        let delays = text
            .split(',')
            .map(|part| {
                let part = part.trim();
                part.parse::<u64>()
                    .ok()
                    .filter(|d| (1..=7 * 86_400).contains(d))
                    .ok_or_else(|| format!("{part:?} is not a delay of 1 to 604800 seconds"))
            })
            .collect::<Result<Vec<u64>, String>>()?;
        if delays.len() > 50 {
            return Err("at most 50 retries".to_owned());
        }
        Ok(RetrySchedule(delays))
    }

    pub fn delays_s(&self) -> &[u64] {
        &self.0
    }

    /// When to try again after `attempts` failed attempts, or `None` when the
    /// schedule is exhausted and the delivery is kept as failed.
    pub fn next_attempt_at(&self, attempts: u32, now_ms: i64) -> Option<i64> {
        let index = usize::try_from(attempts).ok()?.checked_sub(1)?;
        self.0
            .get(index)
            .map(|delay| now_ms + (*delay as i64) * 1000)
    }
}

/// What one delivery attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A 2xx answer: done.
    Delivered,
    /// 410 Gone: the receiver wants no more; stop without retrying.
    Gone,
    /// Anything else: retry per the schedule. The text is kept as `lastError`.
    Retry(String),
}

/// Judges an attempt: `Ok(status)` for an HTTP answer, `Err(reason)` for a timeout
/// or a network error.
pub fn judge(answer: Result<u16, String>) -> Outcome {
    match answer {
        Ok(status) if (200..300).contains(&status) => Outcome::Delivered,
        Ok(410) => Outcome::Gone,
        Ok(status) => Outcome::Retry(format!("HTTP {status}")),
        Err(reason) => Outcome::Retry(reason),
    }
}

/// How a job left the executing list, for its webhook.
#[derive(Debug, Clone, Copy)]
pub struct Ending<'a> {
    pub status: FinalStatus,
    pub finished_ms: i64,
    pub result: Option<&'a RawValue>,
    /// `Some("timeout")` for an expired job.
    pub error: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct KlingPayload<'a> {
    id: u64,
    email: &'a str,
    status: &'a str,
    started: String,
    finished: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    reply_ref: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DreaminaPayload<'a> {
    jobid: &'a str,
    account: &'a str,
    submit_id: &'a str,
    model: &'a str,
    status: &'a str,
    elapsed_seconds: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    reply_ref: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
}

pub fn kling_payload(account: &str, job: &JobRecord, end: &Ending<'_>) -> String {
    crate::shapes::to_json(&KlingPayload {
        id: job.id.parse().unwrap_or(0),
        email: account,
        status: end.status.as_str(),
        started: format_iso_millis(job.started_ms),
        finished: format_iso_millis(end.finished_ms),
        reply_ref: job.reply_ref.as_deref(),
        result: end.result,
        error: end.error,
    })
}

pub fn dreamina_payload(account: &str, job: &JobRecord, end: &Ending<'_>) -> String {
    crate::shapes::to_json(&DreaminaPayload {
        jobid: &job.id,
        account,
        submit_id: job.submit_id.as_deref().unwrap_or_default(),
        model: job.model.as_deref().unwrap_or_default(),
        status: end.status.as_str(),
        elapsed_seconds: elapsed_seconds(job.started_ms, end.finished_ms),
        reply_ref: job.reply_ref.as_deref(),
        result: end.result,
        error: end.error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_reproduces_the_standard_webhooks_known_answer() {
        let secret = WebhookSecret::parse("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").unwrap();
        let body = r#"{"email":"test@example.com","username":"test_user"}"#;
        assert_eq!(
            secret.sign("msg_27UH4WbU6Z5A5EzD8u03UvzRbpk", 1_649_367_553, body),
            "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="
        );
    }

    #[test]
    fn secrets_that_are_not_base64_are_refused() {
        assert!(WebhookSecret::parse("whsec_***").is_err());
        assert!(WebhookSecret::parse("whsec_").is_err());
        assert!(!format!("{:?}", WebhookSecret::parse("whsec_AAAA").unwrap()).contains("AAAA"));
    }

    #[test]
    fn retry_schedule_parses_and_runs_out() {
        let s = RetrySchedule::parse(" 5, 30 ,120").unwrap();
        assert_eq!(s.next_attempt_at(1, 0), Some(5_000));
        assert_eq!(s.next_attempt_at(2, 1_000), Some(31_000));
        assert_eq!(s.next_attempt_at(3, 0), Some(120_000));
        assert_eq!(s.next_attempt_at(4, 0), None);
        assert_eq!(s.next_attempt_at(0, 0), None);
    }

    #[test]
    fn retry_schedule_refuses_garbage() {
        for bad in ["", "5,,6", "-1", "0", "1.5", "x", "5;30"] {
            assert!(RetrySchedule::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn answers_are_judged_as_the_contract_says() {
        assert_eq!(judge(Ok(200)), Outcome::Delivered);
        assert_eq!(judge(Ok(204)), Outcome::Delivered);
        assert_eq!(judge(Ok(410)), Outcome::Gone);
        assert_eq!(judge(Ok(500)), Outcome::Retry("HTTP 500".to_owned()));
        assert_eq!(judge(Ok(301)), Outcome::Retry("HTTP 301".to_owned()));
        assert_eq!(
            judge(Err("timeout".to_owned())),
            Outcome::Retry("timeout".to_owned())
        );
    }

    fn record() -> JobRecord {
        JobRecord {
            id: "123".to_owned(),
            started_ms: 1_000,
            seq: 1,
            submit_id: Some("s".to_owned()),
            model: Some("m".to_owned()),
            reply_url: Some("https://x.com/h".to_owned()),
            reply_ref: Some("ref".to_owned()),
        }
    }

    #[test]
    fn kling_payload_json_format_unchanged() {
        let result = RawValue::from_string(r#"{"url":"v.mp4"}"#.to_owned()).unwrap();
        let end = Ending {
            status: FinalStatus::Completed,
            finished_ms: 61_000,
            result: Some(&result),
            error: None,
        };
        assert_eq!(
            kling_payload("a@x.com", &record(), &end),
            r#"{"id":123,"email":"a@x.com","status":"completed","started":"1970-01-01T00:00:01.000Z","finished":"1970-01-01T00:01:01.000Z","replyRef":"ref","result":{"url":"v.mp4"}}"#
        );
    }

    #[test]
    fn dreamina_timeout_payload_json_format_unchanged() {
        let mut job = record();
        job.reply_ref = None;
        let end = Ending {
            status: FinalStatus::Failed,
            finished_ms: 46_999,
            result: None,
            error: Some("timeout"),
        };
        assert_eq!(
            dreamina_payload("US:a@x.com", &job, &end),
            r#"{"jobid":"123","account":"US:a@x.com","submitId":"s","model":"m","status":"failed","elapsedSeconds":45,"error":"timeout"}"#
        );
    }
}
