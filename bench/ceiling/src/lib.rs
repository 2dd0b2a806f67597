//! The benchmark ceiling: one fixed JSON body per request, nothing else.

use std::cell::RefCell;

use worker::{event, Context, Env, Headers, Request, Response, Result};

thread_local! {
    /// The body, built on the first request from the BODY_BYTES var and kept for the
    /// life of the isolate, so every measured request only copies it out.
    static BODY: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// `{"pad":"xxx…"}`, exactly `bytes` long (at least the 11 bytes of the frame).
fn body_of_size(bytes: usize) -> String {
    let frame = r#"{"pad":""}"#.len();
    let mut body = String::with_capacity(bytes.max(frame));
    body.push_str(r#"{"pad":""#);
    body.extend(std::iter::repeat_n('x', bytes.saturating_sub(frame)));
    body.push_str(r#""}"#);
    body
}

#[event(fetch)]
async fn fetch(_req: Request, env: Env, _ctx: Context) -> Result<Response> {
    let body = BODY.with(|cell| {
        cell.borrow_mut()
            .get_or_insert_with(|| {
                let bytes = env
                    .var("BODY_BYTES")
                    .ok()
                    .and_then(|v| v.to_string().parse().ok())
                    .unwrap_or(16_384);
                body_of_size(bytes)
            })
            .clone()
    });
    let headers = Headers::new();
    headers.set("content-type", "application/json")?;
    headers.set("access-control-allow-origin", "*")?;
    Ok(Response::ok(body)?.with_headers(headers))
}
