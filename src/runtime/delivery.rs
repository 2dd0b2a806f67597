//! Sending one webhook attempt: a signed POST with a 10 s limit.

use std::time::Duration;

use futures_util::future::{select, Either};
use wasm_bindgen::JsValue;
use worker::{
    AbortController, Delay, Fetch, Headers, Method, Request, RequestInit, RequestRedirect,
};

use crate::webhook::{WebhookSecret, DELIVERY_TIMEOUT_MS};

/// One attempt: `Ok(status)` for any HTTP answer, `Err(reason)` for a timeout or a
/// network error. Redirects are not followed: a 3xx is an answer like any other.
pub async fn attempt(
    url: &str,
    body: &str,
    webhook_id: &str,
    secret: Option<&WebhookSecret>,
    now_ms: i64,
) -> Result<u16, String> {
    let timestamp_s = now_ms.div_euclid(1000);
    let headers = Headers::new();
    let set = |name: &str, value: &str| {
        headers
            .set(name, value)
            .map_err(|e| format!("header {name}: {e}"))
    };
    set("content-type", "application/json")?;
    set("user-agent", "edge-scheduler-webhooks/1")?;
    set("webhook-id", webhook_id)?;
    set("webhook-timestamp", &timestamp_s.to_string())?;
    if let Some(secret) = secret {
        set(
            "webhook-signature",
            &secret.sign(webhook_id, timestamp_s, body),
        )?;
    }
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_headers(headers)
        .with_redirect(RequestRedirect::Manual)
        .with_body(Some(JsValue::from_str(body)));
    let request = Request::new_with_init(url, &init).map_err(|e| format!("bad request: {e}"))?;
    let controller = AbortController::default();
    let signal = controller.signal();
    let send = Fetch::Request(request);
    let send = send.send_with_signal(&signal);
    let limit = Delay::from(Duration::from_millis(DELIVERY_TIMEOUT_MS));
    futures_util::pin_mut!(send);
    match select(send, limit).await {
        Either::Left((Ok(response), _)) => Ok(response.status_code()),
        Either::Left((Err(e), _)) => Err(format!("network error: {e}")),
        Either::Right(((), _)) => {
            controller.abort();
            Err("no answer within 10 s".to_owned())
        }
    }
}
