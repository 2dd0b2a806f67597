//! Turning handler results into `worker::Response`s, and reading request bodies within
//! their size limit.

use worker::{Headers, Request, Response};

use crate::errors::{ApiError, ErrorStyle};

/// The largest request body the operator API reads.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// What a handler answers on success.
pub enum Reply {
    /// A JSON body (already serialised by the pure shape writers) and its status.
    Json(u16, String),
    /// 204 No Content.
    Empty,
}

/// Which CORS headers a response carries.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// Public routes: browsers on any origin may read them.
    Public,
    /// Operator routes: no CORS.
    Operator,
}

fn headers(audience: Audience, json: bool) -> Headers {
    let headers = Headers::new();
    // Setting well-formed constant header names and values cannot fail.
    if json {
        let _ = headers.set("content-type", "application/json");
    }
    if audience == Audience::Public {
        let _ = headers.set("access-control-allow-origin", "*");
    }
    headers
}

pub fn reply(
    result: Result<Reply, ApiError>,
    style: ErrorStyle,
    audience: Audience,
) -> worker::Result<Response> {
    match result {
        Ok(Reply::Json(status, body)) => json_response(status, body, audience),
        Ok(Reply::Empty) => Ok(Response::empty()?
            .with_status(204)
            .with_headers(headers(audience, false))),
        Err(error) => error_response(&error, style, audience),
    }
}

pub fn json_response(status: u16, body: String, audience: Audience) -> worker::Result<Response> {
    Ok(Response::ok(body)?
        .with_status(status)
        .with_headers(headers(audience, true)))
}

pub fn error_response(
    error: &ApiError,
    style: ErrorStyle,
    audience: Audience,
) -> worker::Result<Response> {
    if let ApiError::Internal(detail) = error {
        worker::console_error!("internal error: {detail}");
    }
    let response = json_response(error.status(), error.body(style), audience)?;
    if let ApiError::MethodNotAllowed { allow } = error {
        response.headers().set("allow", allow)?;
    }
    Ok(response)
}

/// CORS preflight for the public routes.
pub fn preflight() -> worker::Result<Response> {
    let h = headers(Audience::Public, false);
    h.set("access-control-allow-methods", "GET, DELETE, OPTIONS")?;
    h.set(
        "access-control-allow-headers",
        "Authorization, Content-Type",
    )?;
    h.set("access-control-max-age", "86400")?;
    Ok(Response::empty()?.with_status(204).with_headers(h))
}

/// Reads the body, refusing more than [`MAX_BODY_BYTES`] (by `Content-Length` before
/// reading, and by the bytes actually read, for chunked bodies).
pub async fn read_body(req: &mut Request) -> Result<Vec<u8>, ApiError> {
    let too_large = || ApiError::PayloadTooLarge("request body must be at most 1 MiB".to_owned());
    let declared = req
        .headers()
        .get("content-length")
        .ok()
        .flatten()
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(too_large());
    }
    let body = req
        .bytes()
        .await
        .map_err(|e| ApiError::BadRequest(format!("could not read the request body: {e}")))?;
    if body.len() > MAX_BODY_BYTES {
        return Err(too_large());
    }
    Ok(body)
}
