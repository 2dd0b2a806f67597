//! The JavaScript helpers of `glue.js`, and small typed wrappers around them.
//!
//! Why JavaScript at all: every call from wasm into the runtime crosses the JS/wasm
//! boundary, and each `await` of a promise allocates a closure on the Rust side. A
//! fan-out over fifty account objects written with `worker`'s types is hundreds of
//! crossings; with `callEach` it is one call and one await. Likewise a directory's
//! answer becomes a `Response` in JavaScript, so the body of a list is never copied
//! into wasm and back.

use js_sys::{Array, JsString, Promise};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use worker::worker_sys::web_sys;

#[wasm_bindgen(module = "/src/runtime/glue.js")]
extern "C" {
    #[wasm_bindgen(js_name = callNamed)]
    fn call_named(namespace: &JsValue, name: &str, method: &str, arg: &JsValue) -> Promise;
    #[wasm_bindgen(js_name = callEach)]
    fn call_each(namespace: &JsValue, names: &Array, method: &str, arg: &JsValue) -> Promise;
    #[wasm_bindgen(js_name = callEachById)]
    fn call_each_by_id(namespace: &JsValue, ids: &Array, method: &str, arg: &JsValue) -> Promise;
    #[wasm_bindgen(js_name = fetchUnique)]
    fn fetch_unique(namespace: &JsValue, request: &web_sys::Request) -> Promise;
    #[wasm_bindgen(js_name = kvGet)]
    fn kv_get(namespace: &JsValue, key: &str) -> Promise;
    #[wasm_bindgen(js_name = kvPut)]
    fn kv_put(namespace: &JsValue, key: &str, value: &str) -> Promise;
    #[wasm_bindgen(js_name = kvDelete)]
    fn kv_delete(namespace: &JsValue, key: &str) -> Promise;
    #[wasm_bindgen(js_name = withinLimit)]
    fn within_limit(limiter: &JsValue, key: &str) -> Promise;
    #[wasm_bindgen(js_name = authenticate)]
    pub fn authenticate(
        request: &web_sys::Request,
        env: &JsValue,
        tokens: &JsValue,
        limiter: &JsValue,
        key: &str,
        refused: &JsValue,
        throttled: &JsValue,
        resume: &js_sys::Function,
    ) -> Promise;
    #[wasm_bindgen(js_name = userOfKey)]
    fn user_of_key(
        request: &web_sys::Request,
        tokens: &JsValue,
        limiter: &JsValue,
        key: &str,
    ) -> Promise;
    #[wasm_bindgen(js_name = refuse)]
    fn refuse(request: &web_sys::Request, limiter: &JsValue) -> Promise;
    #[wasm_bindgen(js_name = makeResponse)]
    fn make_response(status: u16, body: Option<&str>, headers: &str) -> web_sys::Response;
    #[wasm_bindgen(js_name = answerStatus)]
    pub fn answer_status(answer: &JsString) -> u16;
    #[wasm_bindgen(js_name = answerBody)]
    fn answer_body(answer: &JsString) -> JsString;
    #[wasm_bindgen(js_name = respond)]
    pub fn respond(answer: &JsString, cors: bool) -> web_sys::Response;
    #[wasm_bindgen(js_name = readText)]
    fn read_text(request: &web_sys::Request, limit: f64) -> Promise;
    #[wasm_bindgen(js_name = settleBody)]
    fn settle_body(request: &web_sys::Request) -> Promise;
    #[wasm_bindgen(js_name = urlProblem)]
    fn url_problem(text: &str) -> String;
    #[wasm_bindgen(js_name = post)]
    fn post(url: &str, body: &str, headers: &Array, timeout_ms: f64) -> Promise;
}

/// A failed call to another object or to the network, described for the log.
#[derive(Debug)]
pub struct CallFailed(pub String);

impl From<JsValue> for CallFailed {
    fn from(value: JsValue) -> CallFailed {
        let text = value
            .dyn_ref::<js_sys::Error>()
            .map(|e| String::from(e.message()))
            .or_else(|| value.as_string())
            .unwrap_or_else(|| "unknown JavaScript error".to_owned());
        CallFailed(text)
    }
}

async fn resolve(promise: Promise) -> Result<JsValue, CallFailed> {
    Ok(JsFuture::from(promise).await?)
}

/// A Durable Object namespace binding.
#[derive(Clone)]
pub struct Namespace(JsValue);

impl Namespace {
    pub fn from_env(env: &worker::Env, name: &'static str) -> Namespace {
        Namespace(binding(env, name))
    }

    /// `method(arg)` on the object named `name`; the answer stays a JavaScript string.
    pub async fn call_named(
        &self,
        name: &str,
        method: &str,
        arg: &str,
    ) -> Result<JsString, CallFailed> {
        let value = resolve(call_named(&self.0, name, method, &JsValue::from_str(arg))).await?;
        value
            .dyn_into::<JsString>()
            .map_err(|_| CallFailed(format!("{method} answered no string")))
    }

    /// Like [`Namespace::call_named`], with the answer copied into a Rust string.
    pub async fn call_named_text(
        &self,
        name: &str,
        method: &str,
        arg: &str,
    ) -> Result<String, CallFailed> {
        Ok(self.call_named(name, method, arg).await?.into())
    }

    /// `method(arg)` on every named object at once. Each answer is its text, or
    /// `None` for a call that failed.
    pub async fn call_each(
        &self,
        names: &[&str],
        method: &str,
        arg: &JsValue,
    ) -> Result<Vec<Option<String>>, CallFailed> {
        let array: Array = names.iter().map(|n| JsValue::from_str(n)).collect();
        let answers: Array = resolve(call_each(&self.0, &array, method, arg))
            .await?
            .unchecked_into();
        Ok(answers.iter().map(|a| a.as_string()).collect())
    }

    /// `method(arg)` on every object of `ids` at once; whether each call succeeded
    /// (and answered `true`).
    pub async fn call_each_by_id(
        &self,
        ids: &[String],
        method: &str,
        arg: &str,
    ) -> Result<Vec<bool>, CallFailed> {
        let array: Array = ids.iter().map(|n| JsValue::from_str(n)).collect();
        let answers: Array = resolve(call_each_by_id(
            &self.0,
            &array,
            method,
            &JsValue::from_str(arg),
        ))
        .await?
        .unchecked_into();
        Ok(answers.iter().map(|a| a.as_bool() == Some(true)).collect())
    }

    /// Hands a request to a new object of its own (a live session).
    pub async fn fetch_unique(
        &self,
        request: &web_sys::Request,
    ) -> Result<web_sys::Response, CallFailed> {
        Ok(resolve(fetch_unique(&self.0, request))
            .await?
            .unchecked_into())
    }
}

thread_local! {
    /// Binding names already made into JS strings (a handful, for the isolate's life).
    static NAMES: std::cell::RefCell<Vec<(&'static str, JsValue)>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A binding of the environment (a KV namespace, a rate limiter, …). Its name becomes
/// a JS string once per isolate, not on every request.
pub fn binding(env: &worker::Env, name: &'static str) -> JsValue {
    NAMES.with(|names| {
        let mut names = names.borrow_mut();
        let key = match names.iter().find(|(n, _)| *n == name) {
            Some((_, key)) => key.clone(),
            None => {
                let key = JsValue::from_str(name);
                names.push((name, key.clone()));
                key
            }
        };
        js_sys::Reflect::get(env, &key).unwrap_or(JsValue::UNDEFINED)
    })
}

/// Workers KV: the text under `key`, if any.
pub async fn kv_get_text(namespace: &JsValue, key: &str) -> Result<Option<String>, CallFailed> {
    Ok(resolve(kv_get(namespace, key)).await?.as_string())
}

pub async fn kv_put_text(namespace: &JsValue, key: &str, value: &str) -> Result<(), CallFailed> {
    resolve(kv_put(namespace, key, value)).await.map(|_| ())
}

pub async fn kv_remove(namespace: &JsValue, key: &str) -> Result<(), CallFailed> {
    resolve(kv_delete(namespace, key)).await.map(|_| ())
}

/// Workers Rate Limiting: whether `key` is still under the limiter's limit.
pub async fn limiter_allows(limiter: &JsValue, key: &str) -> Result<bool, CallFailed> {
    Ok(resolve(within_limit(limiter, key))
        .await?
        .as_bool()
        .unwrap_or(true))
}

/// What KV and the rate limiter say about a presented token.
pub enum TokenCheck {
    User(String),
    Unknown,
    Throttled,
}

fn token_check(text: Option<String>) -> TokenCheck {
    match text.as_deref() {
        Some(user) if user.starts_with('=') => TokenCheck::User(user[1..].to_owned()),
        Some("throttled") => TokenCheck::Throttled,
        _ => TokenCheck::Unknown,
    }
}

/// Looks a token's KV key up and, when unknown, counts the failure for the client.
pub async fn check_token(
    request: &web_sys::Request,
    tokens: &JsValue,
    limiter: &JsValue,
    key: &str,
) -> Result<TokenCheck, CallFailed> {
    Ok(token_check(
        resolve(user_of_key(request, tokens, limiter, key))
            .await?
            .as_string(),
    ))
}

/// Counts a failed authentication that needed no lookup.
pub async fn refuse_token(request: &web_sys::Request, limiter: &JsValue) -> TokenCheck {
    match resolve(refuse(request, limiter)).await {
        Ok(text) => token_check(text.as_string()),
        Err(_) => TokenCheck::Unknown,
    }
}

/// A response with a status, an optional body and headers, built in one call.
pub fn response(status: u16, body: Option<&str>, headers: &[(&str, &str)]) -> web_sys::Response {
    // One string for all the headers (names and values on alternate lines): one
    // crossing, where a JS array of pairs took two per header and one per value.
    let mut lines = String::new();
    for (i, (name, value)) in headers.iter().enumerate() {
        if i > 0 {
            lines.push('\n');
        }
        lines.push_str(name);
        lines.push('\n');
        lines.push_str(value);
    }
    make_response(status, body, &lines)
}

/// The body of an answer, copied into wasm (only for the rare answers wasm reads).
pub fn answer_text(answer: &JsString) -> String {
    answer_body(answer).into()
}

/// Why a request body could not be read.
pub enum BodyError {
    TooLarge,
    NotUtf8,
    Unreadable(String),
}

/// Reads a request body of at most `limit` bytes, counting as it reads.
pub async fn read_body(request: &web_sys::Request, limit: usize) -> Result<String, BodyError> {
    match resolve(read_text(request, limit as f64)).await {
        Ok(text) if text.is_null() => Err(BodyError::TooLarge),
        Ok(text) => Ok(text.as_string().unwrap_or_default()),
        Err(CallFailed(message)) if message.contains("decode") || message.contains("encoded") => {
            Err(BodyError::NotUtf8)
        }
        Err(CallFailed(message)) => Err(BodyError::Unreadable(message)),
    }
}

/// Finishes with a request body nothing read (see `settleBody` in glue.js).
pub async fn finish_body(request: &web_sys::Request) {
    let _ = resolve(settle_body(request)).await;
}

/// The runtime's verdict on a webhook URL: `Err` says what is wrong with it.
pub fn check_url(text: &str) -> Result<(), String> {
    let problem = url_problem(text);
    if problem.is_empty() {
        Ok(())
    } else {
        Err(problem)
    }
}

/// One webhook POST with `headers` (name, value pairs): `Ok((status, retry_after))`
/// for an answer, `Err(reason)` for none within `timeout_ms`.
pub async fn post_json(
    url: &str,
    body: &str,
    headers: &[(&str, &str)],
    timeout_ms: u64,
) -> Result<(u16, Option<String>), String> {
    let pairs: Array = headers
        .iter()
        .map(|(name, value)| Array::of2(&JsValue::from_str(name), &JsValue::from_str(value)))
        .collect();
    let answer: Array = resolve(post(url, body, &pairs, timeout_ms as f64))
        .await
        .map_err(|e| e.0)?
        .unchecked_into();
    let status = answer.get(0).as_f64().unwrap_or(0.0) as u16;
    let detail = answer.get(1).as_string();
    if status == 0 {
        Err(detail.unwrap_or_else(|| "no answer".to_owned()))
    } else {
        Ok((status, detail))
    }
}
