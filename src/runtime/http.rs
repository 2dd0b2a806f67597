//! Responses the worker writes itself (errors, the page, preflight), built directly
//! on the runtime's `Response` so no answer costs more crossings than it needs.

use worker::worker_sys::web_sys::Response;

use super::js::response;

use crate::errors::{ApiError, ErrorStyle};

/// The largest request body the operator API reads.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Who a response is for: public routes carry CORS headers so browsers can read them.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    Public,
    Operator,
}

pub fn json(status: u16, body: &str, audience: Audience) -> Response {
    match audience {
        Audience::Public => response(
            status,
            Some(body),
            &[
                ("content-type", "application/json"),
                ("access-control-allow-origin", "*"),
            ],
        ),
        Audience::Operator => response(status, Some(body), &[("content-type", "application/json")]),
    }
}

/// An error in the route's style. Internal details are logged, never sent.
pub fn error(error: &ApiError, style: ErrorStyle, audience: Audience) -> Response {
    if let ApiError::Internal(detail) = error {
        worker::console_error!("internal error: {detail}");
    }
    let mut headers = vec![("content-type", "application/json")];
    if audience == Audience::Public {
        headers.push(("access-control-allow-origin", "*"));
    }
    match error {
        ApiError::MethodNotAllowed { allow } => headers.push(("allow", allow)),
        ApiError::Unavailable(_) => headers.push(("retry-after", "1")),
        _ => {}
    }
    response(error.status(), Some(&error.body(style)), &headers)
}

/// CORS preflight of the public routes.
pub fn preflight() -> Response {
    response(
        204,
        None,
        &[
            ("access-control-allow-origin", "*"),
            ("access-control-allow-methods", "GET, DELETE, OPTIONS"),
            (
                "access-control-allow-headers",
                "Authorization, Content-Type",
            ),
            ("access-control-max-age", "86400"),
        ],
    )
}

pub fn html(body: &str) -> Response {
    response(
        200,
        Some(body),
        &[
            ("content-type", "text/html; charset=utf-8"),
            ("cache-control", "no-cache"),
            ("x-content-type-options", "nosniff"),
        ],
    )
}

pub fn empty(status: u16) -> Response {
    response(status, None, &[])
}
