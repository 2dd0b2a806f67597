//! Calling the Durable Objects: one typed request/reply round trip, and the fan-outs
//! over a user's accounts that every read and most writes are made of.

use futures_util::future::join_all;
use serde::de::DeserializeOwned;
use wasm_bindgen::JsValue;
use worker::{Env, Method, Request, RequestInit};

use crate::domain::{AccountName, Provider, UserId};
use crate::errors::ApiError;
use crate::protocol::{
    account_object_name, directory_object_name, request_from_path, AccountRequest,
    DirectoryRequest, MaybeSnapshot, ObjectRequest,
};
use crate::shapes::AccountSnapshot;

pub const ACCOUNTS_BINDING: &str = "ACCOUNTS";
pub const DIRECTORY_BINDING: &str = "DIRECTORY";

/// A user's accounts of one provider: who they are and how to reach their objects.
pub struct UserScope<'a> {
    pub env: &'a Env,
    pub provider: Provider,
    pub user: &'a UserId,
}

impl UserScope<'_> {
    pub async fn account<Rep: DeserializeOwned>(
        &self,
        account: &str,
        request: &AccountRequest,
    ) -> Result<Rep, ApiError> {
        let name = account_object_name(self.provider.as_str(), self.user.as_str(), account);
        call(self.env, ACCOUNTS_BINDING, &name, request).await
    }

    pub async fn directory<Rep: DeserializeOwned>(
        &self,
        request: &DirectoryRequest,
    ) -> Result<Rep, ApiError> {
        let name = directory_object_name(self.provider.as_str(), self.user.as_str());
        call(self.env, DIRECTORY_BINDING, &name, request).await
    }

    /// The names of the user's configured accounts, ascending.
    pub async fn account_names(&self) -> Result<Vec<String>, ApiError> {
        self.directory(&DirectoryRequest::List).await
    }

    /// Sends the same request to every named account in parallel; replies keep the
    /// order of `names`.
    pub async fn fan_out<Rep: DeserializeOwned>(
        &self,
        names: &[String],
        request: &AccountRequest,
    ) -> Result<Vec<Rep>, ApiError> {
        join_all(names.iter().map(|name| self.account::<Rep>(name, request)))
            .await
            .into_iter()
            .collect()
    }

    /// Snapshots of every configured account, asked in parallel. An account the
    /// directory lists but whose object holds no configuration (a half-finished
    /// removal) is left out.
    pub async fn snapshots(&self) -> Result<Vec<AccountSnapshot>, ApiError> {
        let names = self.account_names().await?;
        let replies: Vec<MaybeSnapshot> = self.fan_out(&names, &AccountRequest::Snapshot).await?;
        Ok(replies.into_iter().flatten().collect())
    }

    pub fn parse_account(&self, text: &str) -> Result<AccountName, ApiError> {
        AccountName::parse(self.provider, text).map_err(ApiError::BadRequest)
    }
}

/// One round trip to a Durable Object: POST the JSON request (or `GET /<op>` for a
/// request that is its op alone), read the JSON reply.
pub async fn call<Req: ObjectRequest, Rep: DeserializeOwned>(
    env: &Env,
    binding: &str,
    object_name: &str,
    request: &Req,
) -> Result<Rep, ApiError> {
    let message = match request.bodiless_op() {
        Some(op) => Message::Get(op),
        None => Message::Post(
            serde_json::to_string(request)
                .map_err(|e| ApiError::internal(format!("{binding} encode: {e}")))?,
        ),
    };
    let reply = round_trip(env, binding, object_name, message).await?;
    serde_json::from_str(&reply).map_err(|e| ApiError::internal(format!("{binding} decode: {e}")))
}

/// A request as it goes on the wire.
enum Message {
    /// `GET /<op>`, no body.
    Get(&'static str),
    /// `POST /` with the JSON request as the body.
    Post(String),
}

/// The untyped part of [`call`], kept out of the generic function so the async
/// machinery is compiled once rather than once per reply type (wasm size).
async fn round_trip(
    env: &Env,
    binding: &str,
    object_name: &str,
    message: Message,
) -> Result<String, ApiError> {
    let internal = |what: &str, e: &dyn std::fmt::Display| {
        ApiError::internal(format!("{binding} {what}: {e}"))
    };
    let namespace = env
        .durable_object(binding)
        .map_err(|e| internal("binding", &e))?;
    let stub = namespace
        .get_by_name(object_name)
        .map_err(|e| internal("stub", &e))?;
    let mut init = RequestInit::new();
    let url = match &message {
        Message::Get(op) => format!("https://object.internal/{op}"),
        Message::Post(body) => {
            init.with_method(Method::Post)
                .with_body(Some(JsValue::from_str(body)));
            "https://object.internal/".to_owned()
        }
    };
    let req = Request::new_with_init(&url, &init).map_err(|e| internal("request", &e))?;
    let mut response = stub
        .fetch_with_request(req)
        .await
        .map_err(|e| internal("fetch", &e))?;
    let text = response.text().await.map_err(|e| internal("read", &e))?;
    if response.status_code() != 200 {
        return Err(ApiError::internal(format!(
            "{binding} answered {}: {text}",
            response.status_code()
        )));
    }
    Ok(text)
}

/// The object side of [`call`]: the request a worker sent, from `GET /<op>` or from a
/// POSTed JSON body. `Err` says what was wrong (the object answers it with a 400).
pub async fn read_request<Req: DeserializeOwned>(req: &mut Request) -> Result<Req, String> {
    let text = if req.method() == Method::Get {
        let path = req.path();
        request_from_path(&path).ok_or_else(|| format!("bad request path {path}"))?
    } else {
        req.text()
            .await
            .map_err(|e| format!("unreadable body: {e}"))?
    };
    serde_json::from_str(&text).map_err(|e| format!("bad request: {e}"))
}
