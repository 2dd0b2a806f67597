//! The one error type of the HTTP surface and the two error shapes the API speaks.
//!
//! Handlers return `ApiError`; the glue turns it into a response with [`ApiError::status`]
//! and [`ApiError::body`]. Internal failures are logged by the glue and answered with a
//! generic message: a client never sees a Rust or JavaScript error string.

use crate::json::Object;

/// How a route's errors look on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorStyle {
    /// Dreamina public routes: `{"error": "<message>"}`.
    Plain,
    /// Every other provider's public routes and the operator API:
    /// `{"error": "<message>", "code": <status>}`.
    Coded,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// 400: the request is malformed (bad JSON, wrong types, invalid names or ids).
    BadRequest(String),
    /// 401: missing, malformed or unknown token (the reason is never told).
    Unauthorized,
    /// 403: the operator API is switched off because no `ADMIN_TOKEN` is set.
    OperatorDisabled,
    /// 404: no such route, account or job.
    NotFound(String),
    /// 405: the path exists but not with this method; `allow` lists the methods.
    MethodNotAllowed { allow: &'static str },
    /// 409: the job id is already executing for this user.
    Conflict(String),
    /// 426: the live view was asked for without a WebSocket upgrade.
    UpgradeRequired,
    /// 413: the body (1 MiB) or a job `result` (256 KiB) is too large.
    PayloadTooLarge(String),
    /// 429: no free slot, or too many failed authentications.
    TooManyRequests(String),
    /// 503: a part of the scheduler did not answer; nothing was changed that the
    /// message does not say. Safe to retry.
    Unavailable(String),
    /// 500: a failure on our side; the detail is logged, the client sees a generic text.
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> u16 {
        match self {
            ApiError::BadRequest(_) => 400,
            ApiError::Unauthorized => 401,
            ApiError::OperatorDisabled => 403,
            ApiError::NotFound(_) => 404,
            ApiError::MethodNotAllowed { .. } => 405,
            ApiError::Conflict(_) => 409,
            ApiError::PayloadTooLarge(_) => 413,
            ApiError::UpgradeRequired => 426,
            ApiError::TooManyRequests(_) => 429,
            ApiError::Unavailable(_) => 503,
            ApiError::Internal(_) => 500,
        }
    }

    /// The message the client sees.
    pub fn message(&self) -> &str {
        match self {
            ApiError::BadRequest(m)
            | ApiError::NotFound(m)
            | ApiError::Conflict(m)
            | ApiError::PayloadTooLarge(m)
            | ApiError::TooManyRequests(m)
            | ApiError::Unavailable(m) => m,
            ApiError::Unauthorized => "Unauthorized",
            ApiError::OperatorDisabled => "Operator API disabled: ADMIN_TOKEN is not set",
            ApiError::MethodNotAllowed { .. } => "Method not allowed",
            ApiError::UpgradeRequired => "Expected a WebSocket upgrade (Upgrade: websocket)",
            ApiError::Internal(_) => "Internal error",
        }
    }

    /// The JSON body in the route's style.
    pub fn body(&self, style: ErrorStyle) -> String {
        let mut body = String::new();
        let mut o = Object::new(&mut body);
        o.str("error", self.message());
        if style == ErrorStyle::Coded {
            o.int("code", i64::from(self.status()));
        }
        o.end();
        body
    }

    pub fn not_found() -> ApiError {
        ApiError::NotFound("Not found".to_owned())
    }

    pub fn capacity() -> ApiError {
        ApiError::TooManyRequests("All accounts are at maxJobs capacity".to_owned())
    }

    pub fn internal(detail: impl Into<String>) -> ApiError {
        ApiError::Internal(detail.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dreamina_unauthorized_is_exactly_the_seed_body() {
        assert_eq!(
            ApiError::Unauthorized.body(ErrorStyle::Plain),
            r#"{"error":"Unauthorized"}"#
        );
    }

    #[test]
    fn kling_unauthorized_carries_the_code() {
        assert_eq!(
            ApiError::Unauthorized.body(ErrorStyle::Coded),
            r#"{"error":"Unauthorized","code":401}"#
        );
    }

    #[test]
    fn capacity_error_matches_the_contract() {
        assert_eq!(
            ApiError::capacity().body(ErrorStyle::Coded),
            r#"{"error":"All accounts are at maxJobs capacity","code":429}"#
        );
    }

    #[test]
    fn internal_details_never_reach_the_client() {
        let e = ApiError::internal("js error: storage exploded");
        assert_eq!(e.status(), 500);
        assert!(!e.body(ErrorStyle::Coded).contains("exploded"));
    }
}
