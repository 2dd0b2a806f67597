//! Webhook deliveries: the Standard Webhooks signature, the retry schedule, and what
//! an attempt's answer does to a delivery (including `Retry-After`). Pure; the account
//! object sends and stores, and each provider writes its own payload.

use crate::base64::{decode_standard, encode_standard};
use hmac::{Hmac, Mac};
use sha2::Sha256;

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
        let key = decode_standard(encoded)
            .ok_or_else(|| "the secret is not whsec_ followed by base64".to_owned())?;
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
        format!("v1,{}", encode_standard(&mac.finalize().into_bytes()))
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
                    .ok_or_else(|| format!("\"{part}\" is not a delay of 1 to 604800 seconds"))
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

/// Where a delivery stands; stored as a small integer (`as_i64`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// Waiting for its next attempt.
    Pending,
    /// A 2xx answer came back; kept without its payload for the listing.
    Delivered,
    /// Gone (410) or out of retries; kept with its payload so it can be replayed.
    Failed,
}

crate::wire_enum!(DeliveryStatus { 0 => Pending, 1 => Delivered, 2 => Failed });

impl DeliveryStatus {
    pub const ALL: [DeliveryStatus; 3] = [
        DeliveryStatus::Pending,
        DeliveryStatus::Delivered,
        DeliveryStatus::Failed,
    ];

    pub fn as_i64(self) -> i64 {
        match self {
            DeliveryStatus::Pending => 0,
            DeliveryStatus::Delivered => 1,
            DeliveryStatus::Failed => 2,
        }
    }

    pub fn from_i64(n: i64) -> Option<DeliveryStatus> {
        DeliveryStatus::ALL.into_iter().find(|s| s.as_i64() == n)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<DeliveryStatus> {
        DeliveryStatus::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// What came back from one delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// An HTTP answer, with its `Retry-After` header if it had one.
    Http {
        status: u16,
        retry_after: Option<String>,
    },
    /// No answer: a timeout or a network error, described.
    NoAnswer(String),
}

/// What an attempt does to its delivery row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterAttempt {
    /// Delivered: keep the row without its payload.
    Delivered,
    /// Failed for good (410, or the schedule ran out): kept for replay.
    Failed { error: String },
    /// Try again at `at_ms`.
    Retry { at_ms: i64, error: String },
}

/// The most a `Retry-After` may push an attempt back.
pub const MAX_RETRY_AFTER_MS: i64 = 24 * 3600 * 1000;

/// Decides the row's next state after attempt number `attempts` (counting this one)
/// came back with `answer` at `now_ms`.
///
/// A 2xx is success; 410 stops at once; anything else is retried after the next delay
/// of the schedule. A 429 or 503 with `Retry-After` (seconds or an HTTP date) puts the
/// next attempt no earlier than it says, at most 24 hours later; the schedule goes on
/// from there.
pub fn after_attempt(
    schedule: &RetrySchedule,
    attempts: u32,
    answer: &Answer,
    now_ms: i64,
) -> AfterAttempt {
    let (error, not_before) = match answer {
        Answer::Http { status, .. } if (200..300).contains(status) => {
            return AfterAttempt::Delivered
        }
        Answer::Http { status: 410, .. } => {
            return AfterAttempt::Failed {
                error: "HTTP 410: receiver gone, not retried".to_owned(),
            }
        }
        Answer::Http {
            status,
            retry_after,
        } => {
            let asked = match (status, retry_after) {
                (429 | 503, Some(value)) => parse_retry_after(value, now_ms),
                _ => None,
            };
            (format!("HTTP {status}"), asked)
        }
        Answer::NoAnswer(reason) => (reason.clone(), None),
    };
    match schedule.next_attempt_at(attempts, now_ms) {
        None => AfterAttempt::Failed { error },
        Some(at) => {
            let at = not_before.map_or(at, |nb| at.max(nb.min(now_ms + MAX_RETRY_AFTER_MS)));
            AfterAttempt::Retry { at_ms: at, error }
        }
    }
}

/// The instant a `Retry-After` value names: whole seconds from now, or an HTTP date
/// (IMF-fixdate, RFC 850 or asctime). `None` for anything else.
pub fn parse_retry_after(value: &str, now_ms: i64) -> Option<i64> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        let seconds: i64 = value.parse().unwrap_or(i64::MAX / 2000);
        return Some(now_ms.saturating_add(seconds.saturating_mul(1000)));
    }
    crate::time::parse_http_date(value)
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

    fn http(status: u16, retry_after: Option<&str>) -> Answer {
        Answer::Http {
            status,
            retry_after: retry_after.map(str::to_owned),
        }
    }

    fn retry(at_ms: i64, error: &str) -> AfterAttempt {
        AfterAttempt::Retry {
            at_ms,
            error: error.to_owned(),
        }
    }

    #[test]
    fn answers_move_the_row_as_the_contract_says() {
        let s = RetrySchedule::parse("5,30").unwrap();
        assert_eq!(
            after_attempt(&s, 1, &http(204, None), 0),
            AfterAttempt::Delivered
        );
        assert!(matches!(
            after_attempt(&s, 1, &http(410, None), 0),
            AfterAttempt::Failed { .. }
        ));
        assert_eq!(
            after_attempt(&s, 1, &http(500, None), 0),
            retry(5_000, "HTTP 500")
        );
        let timeout = Answer::NoAnswer("no answer within 10 s".into());
        assert_eq!(
            after_attempt(&s, 2, &timeout, 1_000),
            retry(31_000, "no answer within 10 s")
        );
        assert_eq!(
            after_attempt(&s, 3, &http(301, None), 0),
            AfterAttempt::Failed {
                error: "HTTP 301".into()
            }
        );
    }

    #[test]
    fn retry_after_pushes_the_next_attempt_back_on_429_and_503_only() {
        let s = RetrySchedule::parse("5,30").unwrap();
        assert_eq!(
            after_attempt(&s, 1, &http(429, Some("7")), 0),
            retry(7_000, "HTTP 429")
        );
        // Sooner than the schedule: the schedule wins.
        assert_eq!(
            after_attempt(&s, 1, &http(503, Some("1")), 0),
            retry(5_000, "HTTP 503")
        );
        assert_eq!(
            after_attempt(&s, 1, &http(500, Some("60")), 0),
            retry(5_000, "HTTP 500")
        );
        // At most a day.
        assert_eq!(
            after_attempt(&s, 1, &http(429, Some("999999999")), 0),
            retry(MAX_RETRY_AFTER_MS, "HTTP 429")
        );
        let date = crate::time::parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").unwrap();
        let answer = http(503, Some("Wed, 21 Oct 2015 07:28:00 GMT"));
        assert_eq!(
            after_attempt(&s, 1, &answer, date - 60_000),
            retry(date, "HTTP 503")
        );
        // Garbage is ignored.
        assert_eq!(
            after_attempt(&s, 1, &http(429, Some("soon")), 0),
            retry(5_000, "HTTP 429")
        );
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        assert_eq!(parse_retry_after(" 120 ", 1_000), Some(121_000));
        assert_eq!(parse_retry_after("-5", 0), None);
        assert_eq!(parse_retry_after("", 0), None);
        let imf = parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 0).unwrap();
        assert_eq!(
            parse_retry_after("Sunday, 06-Nov-94 08:49:37 GMT", 0),
            Some(imf)
        );
        assert_eq!(parse_retry_after("Sun Nov  6 08:49:37 1994", 0), Some(imf));
    }

    #[test]
    fn delivery_statuses_round_trip() {
        for s in DeliveryStatus::ALL {
            assert_eq!(DeliveryStatus::from_i64(s.as_i64()), Some(s));
            assert_eq!(DeliveryStatus::parse(s.as_str()), Some(s));
        }
    }
}
