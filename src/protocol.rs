//! The internal protocol between the worker and its Durable Objects: request and
//! reply bodies, shared by both sides so they cannot drift apart.
//!
//! The worker POSTs one JSON [`AccountRequest`] to an account object (one per
//! provider|user|account) or one [`DirectoryRequest`] to a user's directory object
//! (one per provider|user). Each request names its operation in `op`.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::jobs::{FinalStatus, JobRecord};
use crate::shapes::AccountSnapshot;

/// The Durable Object name of an account: every part is validated before it gets here,
/// and `|` occurs in none of them, so names cannot collide.
pub fn account_object_name(provider: &str, user: &str, account: &str) -> String {
    format!("{provider}|{user}|{account}")
}

pub fn directory_object_name(provider: &str, user: &str) -> String {
    format!("{provider}|{user}")
}

/// A request to a Durable Object. Requests that carry no data (the reads every list
/// makes) travel as `GET /<op>` with no body: a request body is a stream on both sides
/// of the round trip, and skipping it is measurably cheaper on the hot path.
pub trait ObjectRequest: Serialize {
    /// The `op` name when the request is that name alone.
    fn bodiless_op(&self) -> Option<&'static str>;
}

/// The JSON request a `GET /<op>` stands for: `{"op":"<op>"}`, parsed as usual. `None`
/// when the path is not a plain op name (lower-case letters and `_`).
pub fn request_from_path(path: &str) -> Option<String> {
    let op = path.strip_prefix('/')?;
    let plain = !op.is_empty() && op.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
    plain.then(|| format!(r#"{{"op":"{op}"}}"#))
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum AccountRequest {
    /// Create the account or change its maxJobs. Reply: [`AccountSnapshot`].
    Configure {
        provider: String,
        user: String,
        account: String,
        max_jobs: u32,
    },
    /// Reply: `Option<AccountSnapshot>` (`null` when the account is not configured).
    Snapshot,
    /// Admit one job if there is room. Reply: [`AdmitReply`].
    Admit { job: JobRecord },
    /// End an executing job and queue its webhook. Reply: [`CompleteReply`].
    /// `result` is raw JSON text (a `RawValue` cannot sit in an internally tagged enum).
    Complete {
        id: String,
        status: FinalStatus,
        result: Option<String>,
    },
    /// Stop tracking a job, without webhook. Reply: `bool` (whether it was executing).
    Cancel { id: String },
    /// Forget the account's configuration and jobs. Reply: `bool` (whether it existed).
    Remove,
    /// Undelivered webhooks. Reply: `Vec<DeliveryRow>`.
    Webhooks { failed: bool, pending: bool },
}

impl ObjectRequest for AccountRequest {
    fn bodiless_op(&self) -> Option<&'static str> {
        match self {
            AccountRequest::Snapshot => Some("snapshot"),
            AccountRequest::Remove => Some("remove"),
            _ => None,
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum AdmitReply {
    Admitted { job: JobRecord },
    Full,
    Duplicate,
    NotConfigured,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum CompleteReply {
    Completed { webhook_id: Option<String> },
    NotFound,
}

/// A webhook delivery as the operator lists it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryRow {
    pub webhook_id: String,
    pub account: String,
    pub reply_url: String,
    pub status: String,
    pub attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_attempt: Option<String>,
    pub created: String,
    pub payload: Box<RawValue>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum DirectoryRequest {
    /// Reply: `Vec<String>`, the configured account names, ascending.
    List,
    /// Reply: `Vec<String>`, every account ever configured and not since re-used,
    /// removed ones included (their objects may still hold undelivered webhooks).
    ListAll,
    /// Reply: `bool`, whether it was new.
    Add { account: String },
    /// Reply: `bool`, whether it was configured.
    Remove { account: String },
    /// Register a job: parse `body`, choose the account, admit. The directory runs one
    /// registration at a time. Reply: [`RegisterReply`].
    Register {
        provider: String,
        user: String,
        body: String,
        now_ms: i64,
    },
}

impl ObjectRequest for DirectoryRequest {
    fn bodiless_op(&self) -> Option<&'static str> {
        match self {
            DirectoryRequest::List => Some("list"),
            DirectoryRequest::ListAll => Some("list_all"),
            _ => None,
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum RegisterReply {
    Admitted {
        account: String,
        job: JobRecord,
    },
    /// A 4xx for the operator (400, 404, 409, 429) with its message.
    Refused {
        status: u16,
        message: String,
    },
}

pub type MaybeSnapshot = Option<AccountSnapshot>;

#[cfg(test)]
mod tests {
    use super::*;

    /// A bodiless request, rebuilt from its path, parses to the same request: the
    /// `GET /<op>` form cannot drift from the JSON form.
    fn round_trips<R: ObjectRequest + serde::de::DeserializeOwned>(request: R) {
        let op = request.bodiless_op().expect("bodiless");
        let rebuilt = request_from_path(&format!("/{op}")).expect("plain op");
        let parsed: R = serde_json::from_str(&rebuilt).expect("parses");
        assert_eq!(
            serde_json::to_string(&parsed).unwrap(),
            serde_json::to_string(&request).unwrap()
        );
    }

    #[test]
    fn bodiless_requests_rebuilt_from_their_path_are_the_same_request() {
        round_trips(AccountRequest::Snapshot);
        round_trips(AccountRequest::Remove);
        round_trips(DirectoryRequest::List);
        round_trips(DirectoryRequest::ListAll);
    }

    #[test]
    fn requests_with_data_always_carry_a_body() {
        let cancel = AccountRequest::Cancel { id: "1".into() };
        assert_eq!(cancel.bodiless_op(), None);
        let add = DirectoryRequest::Add {
            account: "a@x.com".into(),
        };
        assert_eq!(add.bodiless_op(), None);
    }

    #[test]
    fn only_plain_op_names_become_requests() {
        assert_eq!(
            request_from_path("/snapshot").as_deref(),
            Some(r#"{"op":"snapshot"}"#)
        );
        assert_eq!(request_from_path("/"), None);
        assert_eq!(request_from_path("snapshot"), None);
        assert_eq!(request_from_path(r#"/x","a":"b"#), None);
        assert_eq!(request_from_path("/Snapshot"), None);
    }
}
