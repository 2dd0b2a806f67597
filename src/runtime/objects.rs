//! Calling the Durable Objects: one typed request/reply round trip, and the fan-outs
//! over a user's accounts that every read and most writes are made of.

use futures_util::future::join_all;
use serde::de::DeserializeOwned;
use serde::Serialize;
use wasm_bindgen::JsValue;
use worker::{Env, Method, Request, RequestInit};

use crate::domain::{AccountName, Provider, UserId};
use crate::errors::ApiError;
use crate::protocol::{
    account_object_name, directory_object_name, AccountRequest, DirectoryRequest, MaybeSnapshot,
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

/// One round trip to a Durable Object: POST the JSON request, read the JSON reply.
pub async fn call<Req: Serialize, Rep: DeserializeOwned>(
    env: &Env,
    binding: &str,
    object_name: &str,
    request: &Req,
) -> Result<Rep, ApiError> {
    let body = serde_json::to_string(request)
        .map_err(|e| ApiError::internal(format!("{binding} encode: {e}")))?;
    let reply = round_trip(env, binding, object_name, body).await?;
    serde_json::from_str(&reply).map_err(|e| ApiError::internal(format!("{binding} decode: {e}")))
}

/// The untyped part of [`call`], kept out of the generic function so the async
/// machinery is compiled once rather than once per reply type (wasm size).
async fn round_trip(
    env: &Env,
    binding: &str,
    object_name: &str,
    body: String,
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
    init.with_method(Method::Post)
        .with_body(Some(JsValue::from_str(&body)));
    let req = Request::new_with_init("https://object.internal/", &init)
        .map_err(|e| internal("request", &e))?;
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
