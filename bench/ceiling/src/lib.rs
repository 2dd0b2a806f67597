//! The benchmark ceilings: the least work the runtime allows for each kind of request.
//!
//! - `GET /` answers one fixed JSON body (BODY_BYTES long), nothing else: the floor of
//!   a request with no I/O.
//! - `GET /fanout/N` asks N Durable Objects (`SLICES`, names `s0`..`sN-1`) in parallel,
//!   each answering a fixed body of SLICE_BYTES, and joins the N bodies into one JSON
//!   array: the floor of the contract's list, which must ask every account object.
//!   Each round trip is a bodiless GET and a fixed reply: no serde, no storage.

use std::cell::RefCell;

use futures_util::future::join_all;
use worker::{
    durable_object, event, Context, DurableObject, Env, Headers, Request, Response, Result,
    State,
};

thread_local! {
    /// The bodies, built on first use from the vars and kept for the life of the
    /// isolate, so every measured request only copies them out.
    static BODY: RefCell<Option<String>> = const { RefCell::new(None) };
    static SLICE: RefCell<Option<String>> = const { RefCell::new(None) };
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

fn cached_body(
    cell: &'static std::thread::LocalKey<RefCell<Option<String>>>,
    env: &Env,
    var: &str,
    default: usize,
) -> String {
    cell.with(|cell| {
        cell.borrow_mut()
            .get_or_insert_with(|| {
                let bytes = env
                    .var(var)
                    .ok()
                    .and_then(|v| v.to_string().parse().ok())
                    .unwrap_or(default);
                body_of_size(bytes)
            })
            .clone()
    })
}

fn json(body: String) -> Result<Response> {
    let headers = Headers::new();
    headers.set("content-type", "application/json")?;
    headers.set("access-control-allow-origin", "*")?;
    Ok(Response::ok(body)?.with_headers(headers))
}

/// N parallel Durable Object round trips, their bodies joined into a JSON array.
async fn fan_out(env: &Env, n: usize) -> Result<String> {
    let namespace = env.durable_object("SLICES")?;
    let calls = (0..n).map(|i| {
        let stub = namespace.get_by_name(&format!("s{i}"));
        async move { stub?.fetch_with_str("https://slice.internal/").await?.text().await }
    });
    let mut joined = String::from("[");
    for (i, body) in join_all(calls).await.into_iter().enumerate() {
        if i > 0 {
            joined.push(',');
        }
        joined.push_str(&body?);
    }
    joined.push(']');
    Ok(joined)
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    let path = req.path();
    if let Some(n) = path.strip_prefix("/fanout/") {
        let n = n.parse::<usize>().unwrap_or(0).min(100);
        return json(fan_out(&env, n).await?);
    }
    json(cached_body(&BODY, &env, "BODY_BYTES", 16_384))
}

/// One account object's stand-in: a fixed body, no storage.
#[durable_object]
pub struct Slice {
    env: Env,
}

impl DurableObject for Slice {
    fn new(_state: State, env: Env) -> Self {
        Slice { env }
    }

    async fn fetch(&self, _req: Request) -> Result<Response> {
        Response::ok(cached_body(&SLICE, &self.env, "SLICE_BYTES", 1_792))
    }
}
