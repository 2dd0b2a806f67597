//! Settings read from the Worker's vars and secrets, parsed from plain strings so the
//! rules (defaults, bounds, error messages) are tested natively.

use crate::webhook::{RetrySchedule, WebhookSecret};

pub const DEFAULT_JOB_TIMEOUT_SECONDS: u64 = 7200;
pub const DEFAULT_RETRY_SCHEDULE: &str = "5,30,120,600,1800,3600,7200,14400";

/// What an account object needs to expire jobs and deliver webhooks.
#[derive(Debug, Clone)]
pub struct Settings {
    pub job_timeout_ms: i64,
    pub retry_schedule: RetrySchedule,
    pub webhook_secret: Option<WebhookSecret>,
}

impl Settings {
    /// Builds settings from the raw var values. A malformed value falls back to the
    /// default and is reported in `warnings` (logged by the caller): a typo in a var
    /// must not take the scheduler down.
    pub fn from_vars(
        job_timeout: Option<&str>,
        retry_schedule: Option<&str>,
        webhook_secret: Option<&str>,
    ) -> (Settings, Vec<String>) {
        let mut warnings = Vec::new();
        let timeout_s = match job_timeout.map(str::trim).filter(|s| !s.is_empty()) {
            None => DEFAULT_JOB_TIMEOUT_SECONDS,
            Some(text) => match text.parse::<u64>() {
                Ok(n) if (1..=30 * 86_400).contains(&n) => n,
                _ => {
                    warnings.push(format!(
                        "JOB_TIMEOUT_SECONDS {text:?} is not 1..2592000; using the default"
                    ));
                    DEFAULT_JOB_TIMEOUT_SECONDS
                }
            },
        };
        let retry_schedule = match retry_schedule.map(str::trim).filter(|s| !s.is_empty()) {
            None => RetrySchedule::default(),
            Some(text) => RetrySchedule::parse(text).unwrap_or_else(|e| {
                warnings.push(format!("WEBHOOK_RETRY_SCHEDULE: {e}; using the default"));
                RetrySchedule::default()
            }),
        };
        let webhook_secret = match webhook_secret.map(str::trim).filter(|s| !s.is_empty()) {
            None => None,
            Some(text) => match WebhookSecret::parse(text) {
                Ok(secret) => Some(secret),
                Err(e) => {
                    warnings.push(format!("WEBHOOK_SECRET: {e}; webhooks are sent unsigned"));
                    None
                }
            },
        };
        let settings = Settings {
            job_timeout_ms: (timeout_s as i64) * 1000,
            retry_schedule,
            webhook_secret,
        };
        (settings, warnings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_vars_give_the_contract_defaults() {
        let (s, warnings) = Settings::from_vars(None, None, None);
        assert_eq!(s.job_timeout_ms, 7_200_000);
        assert_eq!(
            s.retry_schedule.delays_s(),
            [5, 30, 120, 600, 1800, 3600, 7200, 14400]
        );
        assert!(s.webhook_secret.is_none());
        assert!(warnings.is_empty());
    }

    #[test]
    fn malformed_vars_fall_back_with_a_warning() {
        let (s, warnings) = Settings::from_vars(Some("soon"), Some("1,x"), Some("whsec_!!"));
        assert_eq!(s.job_timeout_ms, 7_200_000);
        assert_eq!(s.retry_schedule, RetrySchedule::default());
        assert!(s.webhook_secret.is_none());
        assert_eq!(warnings.len(), 3);
    }

    #[test]
    fn short_test_settings_are_taken() {
        let (s, _) = Settings::from_vars(
            Some("3"),
            Some("1, 2"),
            Some("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"),
        );
        assert_eq!(s.job_timeout_ms, 3000);
        assert_eq!(s.retry_schedule.delays_s(), [1, 2]);
        assert!(s.webhook_secret.is_some());
    }
}
