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
