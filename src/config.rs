//! Settings read from the Worker's vars and secrets, parsed from plain strings so the
//! rules (defaults, bounds, error messages) are tested natively.

use crate::webhook::{RetrySchedule, WebhookSecret};

pub const DEFAULT_JOB_TIMEOUT_SECONDS: u64 = 7200;
pub const DEFAULT_RETENTION_DAYS: i64 = 30;
const DAY_MS: i64 = 86_400_000;
/// Accounts one user may configure for one provider. A list asks every one of them
/// from one Durable Object invocation, which may make at most 50 subrequests on the
/// Workers Free plan; 40 leaves room for the few calls a registration adds (README,
/// "Limits").
pub const DEFAULT_MAX_ACCOUNTS: usize = 40;
/// The most `MAX_ACCOUNTS` may be raised to (Workers Paid: 10,000 subrequests).
pub const MAX_ACCOUNTS_CEILING: usize = 1000;

/// What the objects need to run: timeouts, the retry schedule, the signing key, how
/// long deliveries are kept and how many accounts a user may have.
#[derive(Debug, Clone)]
pub struct Settings {
    pub job_timeout_ms: i64,
    pub retry_schedule: RetrySchedule,
    pub webhook_secret: Option<WebhookSecret>,
    pub retention_ms: i64,
    pub max_accounts: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings::from_vars(&|_| None).0
    }
}

impl Settings {
    /// Builds settings from the raw var values (`var(name)`). A malformed value falls
    /// back to the default and is reported in `warnings` (logged by the caller): a typo
    /// in a var must not take the scheduler down.
    pub fn from_vars(var: &dyn Fn(&str) -> Option<String>) -> (Settings, Vec<String>) {
        let mut warnings = Vec::new();
        let get = |name: &str| {
            var(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let timeout_s = match get("JOB_TIMEOUT_SECONDS") {
            None => DEFAULT_JOB_TIMEOUT_SECONDS,
            Some(text) => match text.parse::<u64>() {
                Ok(n) if (1..=30 * 86_400).contains(&n) => n,
                _ => {
                    warnings.push(format!(
                        "JOB_TIMEOUT_SECONDS \"{text}\" is not 1..2592000; using the default"
                    ));
                    DEFAULT_JOB_TIMEOUT_SECONDS
                }
            },
        };
        let retry_schedule = match get("WEBHOOK_RETRY_SCHEDULE") {
            None => RetrySchedule::default(),
            Some(text) => RetrySchedule::parse(&text).unwrap_or_else(|e| {
                warnings.push(format!("WEBHOOK_RETRY_SCHEDULE: {e}; using the default"));
                RetrySchedule::default()
            }),
        };
        let webhook_secret = match get("WEBHOOK_SECRET") {
            None => None,
            Some(text) => match WebhookSecret::parse(&text) {
                Ok(secret) => Some(secret),
                Err(e) => {
                    warnings.push(format!("WEBHOOK_SECRET: {e}; webhooks are sent unsigned"));
                    None
                }
            },
        };
        let retention_ms = match get("WEBHOOK_RETENTION_DAYS") {
            None => DEFAULT_RETENTION_DAYS * DAY_MS,
            Some(text) => match days_to_ms(&text) {
                Some(ms) if ms > 0 && ms <= 3650 * DAY_MS => ms,
                _ => {
                    warnings.push(format!(
                        "WEBHOOK_RETENTION_DAYS \"{text}\" is not a number of days above 0 and up to 3650; using the default"
                    ));
                    DEFAULT_RETENTION_DAYS * DAY_MS
                }
            },
        };
        let max_accounts = match get("MAX_ACCOUNTS") {
            None => DEFAULT_MAX_ACCOUNTS,
            Some(text) => match text.parse::<usize>() {
                Ok(n) if (1..=MAX_ACCOUNTS_CEILING).contains(&n) => n,
                _ => {
                    warnings.push(format!(
                        "MAX_ACCOUNTS \"{text}\" is not 1..{MAX_ACCOUNTS_CEILING}; using the default"
                    ));
                    DEFAULT_MAX_ACCOUNTS
                }
            },
        };
        let settings = Settings {
            job_timeout_ms: (timeout_s as i64) * 1000,
            retry_schedule,
            webhook_secret,
            retention_ms,
            max_accounts,
        };
        (settings, warnings)
    }
}

/// Days as a decimal number (`30`, `0.5`, `0.0001`) in whole milliseconds, without
/// floating point (a float parser alone would add kilobytes to the wasm).
fn days_to_ms(text: &str) -> Option<i64> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let empty = whole.is_empty() && fraction.is_empty();
    if empty || !digits(whole) || !digits(fraction) || fraction.len() > 9 {
        return None;
    }
    let whole: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let mut ms = whole.checked_mul(DAY_MS)?;
    let mut scale = DAY_MS;
    for digit in fraction.bytes() {
        scale /= 10;
        ms += i64::from(digit - b'0') * scale;
    }
    Some(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn unset_vars_give_the_contract_defaults() {
        let (s, warnings) = Settings::from_vars(&vars(&[]));
        assert_eq!(s.job_timeout_ms, 7_200_000);
        assert_eq!(
            s.retry_schedule.delays_s(),
            [5, 30, 120, 600, 1800, 3600, 7200, 14400]
        );
        assert!(s.webhook_secret.is_none());
        assert_eq!(s.retention_ms, 30 * 86_400_000);
        assert_eq!(s.max_accounts, 40);
        assert!(warnings.is_empty());
    }

    #[test]
    fn malformed_vars_fall_back_with_a_warning() {
        let (s, warnings) = Settings::from_vars(&vars(&[
            ("JOB_TIMEOUT_SECONDS", "soon"),
            ("WEBHOOK_RETRY_SCHEDULE", "1,x"),
            ("WEBHOOK_SECRET", "whsec_!!"),
            ("WEBHOOK_RETENTION_DAYS", "-1"),
            ("MAX_ACCOUNTS", "0"),
        ]));
        assert_eq!(s.job_timeout_ms, 7_200_000);
        assert_eq!(s.retry_schedule, RetrySchedule::default());
        assert!(s.webhook_secret.is_none());
        assert_eq!(s.retention_ms, 30 * 86_400_000);
        assert_eq!(s.max_accounts, DEFAULT_MAX_ACCOUNTS);
        assert_eq!(warnings.len(), 5);
    }

    #[test]
    fn short_test_settings_are_taken() {
        let (s, warnings) = Settings::from_vars(&vars(&[
            ("JOB_TIMEOUT_SECONDS", "3"),
            ("WEBHOOK_RETRY_SCHEDULE", "1, 2"),
            ("WEBHOOK_SECRET", "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"),
            ("WEBHOOK_RETENTION_DAYS", "0.0001"),
            ("MAX_ACCOUNTS", "3"),
        ]));
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(s.job_timeout_ms, 3000);
        assert_eq!(s.retry_schedule.delays_s(), [1, 2]);
        assert!(s.webhook_secret.is_some());
        assert_eq!(s.retention_ms, 8_640);
        assert_eq!(s.max_accounts, 3);
    }

    #[test]
    fn retention_days_read_as_decimals() {
        assert_eq!(days_to_ms("30"), Some(30 * DAY_MS));
        assert_eq!(days_to_ms("0.5"), Some(DAY_MS / 2));
        assert_eq!(days_to_ms(".25"), Some(DAY_MS / 4));
        for bad in ["", ".", "-1", "1e3", "x", "1.2.3"] {
            assert_eq!(days_to_ms(bad), None, "{bad}");
        }
    }
}
