//! The messages between the worker and its Durable Objects, shared by both sides so
//! they cannot drift apart.
//!
//! - The worker (and the live sessions and account objects) send a user's directory
//!   object one [`DirectoryCall`]; every directory operation answers an [`Answer`]: the
//!   finished HTTP status and body, which the worker hands back as it is.
//! - The directory sends an account object one operation at a time. Each operation is
//!   its own struct implementing [`AccountCall`], which names its reply type: asking
//!   for the wrong reply does not compile.
//! - The hot path, a list, does not go through JSON at all: the directory calls the
//!   account objects' `snapshot` method, which answers the [`Snapshot`] text format.
//!
//! All calls are Durable Object RPC (`stub.call(text)`), not `fetch`: no Request or
//! Response objects, no header maps, no body streams on the way. Messages are written
//! in the compact [`crate::wire`] format.

use crate::admission::Summary;
use crate::jobs::{Completion, FinalStatus, Registration};
use crate::outbox::PageQuery;
use crate::providers::Provider;
use crate::webhook::DeliveryStatus;
use crate::wire::{self, Reader, Wire, WireError};
use crate::{wire_enum, wire_struct};

/// The Durable Object name of an account: every part is validated before it gets
/// here, and neither a provider nor a user id holds a `|`, so names cannot collide.
pub fn account_object_name(provider: Provider, user: &str, account: &str) -> String {
    format!("{provider}|{user}|{account}")
}

pub fn directory_object_name(provider: Provider, user: &str) -> String {
    format!("{provider}|{user}")
}

// ---------------------------------------------------------------------------------
// To the directory

/// One operation on a user's directory (one object per provider and user).
#[derive(Debug)]
pub struct DirectoryCall {
    pub provider: Provider,
    pub user: String,
    pub op: DirectoryOp,
}

#[derive(Debug)]
pub enum DirectoryOp {
    /// `GET …/scheduler`
    List {
        now_ms: i64,
    },
    /// `GET …/scheduler/available`
    Available {
        now_ms: i64,
    },
    /// `DELETE …/scheduler/{id}`: stop tracking, no webhook.
    Cancel {
        id: String,
    },
    /// Register a job (parsed at the edge). May answer [`Answer::WAITING`].
    Register {
        registration: Registration,
        now_ms: i64,
    },
    /// A waiting registration's worker asks again (and shows it is still there).
    Poll {
        ticket: u64,
    },
    /// A waiting registration's worker takes the slot reserved for it.
    Confirm {
        ticket: u64,
    },
    PutAccount {
        account: String,
        max_jobs: u32,
    },
    DeleteAccount {
        account: String,
    },
    ListAccounts {
        now_ms: i64,
    },
    Pause {
        account: String,
        until_ms: Option<i64>,
        reason: Option<String>,
        now_ms: i64,
    },
    Resume {
        account: String,
        now_ms: i64,
    },
    ListJobs {
        now_ms: i64,
    },
    Complete {
        id: String,
        completion: Completion,
    },
    Progress {
        id: String,
        progress: Option<u8>,
        now_ms: i64,
    },
    /// A page of the webhooks list; `path` is for the `Link` header.
    Webhooks {
        query: PageQuery,
        path: String,
    },
    RetryWebhook {
        webhook_id: String,
    },
    RetryWebhooksSince {
        since_ms: i64,
    },
    /// A live session starts following this user and provider.
    Subscribe {
        session: String,
        digest: String,
    },
    Unsubscribe {
        session: String,
    },
    /// A token was revoked: close its live sessions.
    TokenRevoked {
        digest: String,
    },
    /// An account object changed by itself (its alarm expired jobs or ended a pause).
    AccountChanged {
        account: String,
        summary: Summary,
    },
}

wire_struct!(DirectoryCall { provider, user, op });
wire_enum!(DirectoryOp {
    0 => List { now_ms },
    1 => Available { now_ms },
    2 => Cancel { id },
    3 => Register { registration, now_ms },
    4 => Poll { ticket },
    5 => Confirm { ticket },
    6 => PutAccount { account, max_jobs },
    7 => DeleteAccount { account },
    8 => ListAccounts { now_ms },
    9 => Pause { account, until_ms, reason, now_ms },
    10 => Resume { account, now_ms },
    11 => ListJobs { now_ms },
    12 => Complete { id, completion },
    13 => Progress { id, progress, now_ms },
    14 => Webhooks { query, path },
    15 => RetryWebhook { webhook_id },
    16 => RetryWebhooksSince { since_ms },
    17 => Subscribe { session, digest },
    18 => Unsubscribe { session },
    19 => TokenRevoked { digest },
    20 => AccountChanged { account, summary },
});

/// What a directory operation answers: the finished HTTP answer.
///
/// On the wire it is one string: three status digits, then either a space and the
/// body, or `L` + the `Link` header + a newline + the body. Two internal statuses
/// never reach a client: [`Answer::WAITING`] and [`Answer::RESERVED`], whose body is the
/// waiter's ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub link: Option<String>,
    pub body: String,
}

impl Answer {
    /// The registration waits for a slot; the worker polls with the ticket.
    pub const WAITING: u16 = 102;
    /// A slot is reserved for the registration; the worker confirms with the ticket.
    pub const RESERVED: u16 = 103;

    pub fn new(status: u16, body: impl Into<String>) -> Answer {
        Answer {
            status,
            link: None,
            body: body.into(),
        }
    }

    pub fn empty() -> Answer {
        Answer::new(204, String::new())
    }

    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(self.body.len() + 4);
        out.push_str(&format!("{:03}", self.status.min(999)));
        match &self.link {
            Some(link) => {
                out.push('L');
                out.push_str(link);
                out.push('\n');
            }
            None => out.push(' '),
        }
        out.push_str(&self.body);
        out
    }

    pub fn decode(text: &str) -> Option<Answer> {
        let status = text.get(..3)?.parse::<u16>().ok()?;
        let rest = text.get(3..)?;
        let (link, body) = match rest.strip_prefix('L') {
            Some(tail) => {
                let (link, body) = tail.split_once('\n')?;
                (Some(link.to_owned()), body)
            }
            None => (None, rest.strip_prefix(' ')?),
        };
        Some(Answer {
            status,
            link,
            body: body.to_owned(),
        })
    }
}

// ---------------------------------------------------------------------------------
// To an account object

/// An operation on one account object; `Reply` is what it answers.
pub trait AccountCall: Wire {
    /// The operation's name on the wire.
    const OP: &'static str;
    type Reply: Wire;
}

/// The wire form of an account call: its name, then its arguments.
pub fn encode_call<C: AccountCall>(call: &C) -> String {
    let mut out = String::new();
    C::OP.to_owned().put(&mut out);
    call.put(&mut out);
    out
}

/// The receiving side reads the op name first, then the arguments of that op.
pub fn split_call(text: &str) -> Result<(String, Reader<'_>), WireError> {
    let mut r = wire::reader(text);
    let op = String::get(&mut r)?;
    Ok((op, r))
}

/// Names an account operation and its reply type.
macro_rules! account_call {
    ($name:ident, $op:literal, $reply:ty) => {
        impl AccountCall for $name {
            const OP: &'static str = $op;
            type Reply = $reply;
        }
    };
}

/// Create the account or change its `maxJobs`.
#[derive(Debug)]
pub struct Configure {
    pub provider: Provider,
    pub user: String,
    pub account: String,
    pub max_jobs: u32,
}
wire_struct!(Configure {
    provider,
    user,
    account,
    max_jobs
});
account_call!(Configure, "configure", Summary);

/// The account's summary; `None` when it is not configured.
#[derive(Debug)]
pub struct GetSummary {
    pub now_ms: i64,
}
wire_struct!(GetSummary { now_ms });
account_call!(GetSummary, "summary", Option<Summary>);

/// A job ready to be stored: its id is final.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub id: String,
    pub started_ms: i64,
    pub reply_url: Option<String>,
    pub reply_ref: Option<String>,
    pub counts: bool,
    pub details: String,
}

wire_struct!(NewJob {
    id,
    started_ms,
    reply_url,
    reply_ref,
    counts,
    details
});

/// Admit one job if there is room.
#[derive(Debug)]
pub struct Admit {
    pub job: NewJob,
    pub now_ms: i64,
}
wire_struct!(Admit { job, now_ms });
account_call!(Admit, "admit", AdmitOutcome);

#[derive(Debug)]
pub enum AdmitOutcome {
    /// Stored; `item` is the job as the public list shows it.
    Admitted {
        item: String,
        summary: Summary,
    },
    /// No room: the account is paused, full, or tracks as many jobs as it may
    /// (slot-free jobs included). The directory treats all three alike; the summary
    /// shows which, and its view picks the 429's message.
    NoRoom(Summary),
    Duplicate(Summary),
    NotConfigured,
}

wire_enum!(AdmitOutcome {
    0 => Admitted { item, summary },
    1 => NoRoom(s),
    2 => Duplicate(s),
    3 => NotConfigured,
});

/// End an executing job and queue its webhook.
#[derive(Debug)]
pub struct Complete {
    pub id: String,
    pub status: FinalStatus,
    pub result: Option<String>,
    pub now_ms: i64,
}
wire_struct!(Complete {
    id,
    status,
    result,
    now_ms
});
account_call!(Complete, "complete", Ended);

/// Stop tracking a job, without webhook.
#[derive(Debug)]
pub struct Cancel {
    pub id: String,
    pub now_ms: i64,
}
wire_struct!(Cancel { id, now_ms });
account_call!(Cancel, "cancel", Ended);

#[derive(Debug)]
pub enum Ended {
    /// The job left the list; `answer` is the operator's answer to a completion
    /// (`providers::completion_answer`), empty for a cancel.
    Ended {
        answer: String,
        summary: Summary,
    },
    NotRunning(Option<Summary>),
}

wire_enum!(Ended {
    0 => Ended { answer, summary },
    1 => NotRunning(s),
});

/// A job reported progress: its timeout restarts.
#[derive(Debug)]
pub struct Progress {
    pub id: String,
    pub progress: Option<u8>,
    pub now_ms: i64,
}
wire_struct!(Progress {
    id,
    progress,
    now_ms
});
account_call!(Progress, "progress", Option<String>);

/// Pause the account (until `until_ms`, or until resumed).
#[derive(Debug)]
pub struct Pause {
    pub until_ms: Option<i64>,
    pub reason: Option<String>,
    pub now_ms: i64,
}
wire_struct!(Pause {
    until_ms,
    reason,
    now_ms
});
account_call!(Pause, "pause", Option<RowAndSummary>);

#[derive(Debug)]
pub struct Resume {
    pub now_ms: i64,
}
wire_struct!(Resume { now_ms });
account_call!(Resume, "resume", Option<RowAndSummary>);

/// The operator's row of the account and its summary.
#[derive(Debug)]
pub struct RowAndSummary {
    pub row: String,
    pub summary: Summary,
}

wire_struct!(RowAndSummary { row, summary });

/// The operator's row: `{"account","maxJobs","executing","paused","pausedUntil"?,
/// "reason"?}`; `None` when not configured.
#[derive(Debug)]
pub struct Row {
    pub now_ms: i64,
}
wire_struct!(Row { now_ms });
account_call!(Row, "row", Option<String>);

/// Forget the account's configuration and jobs (its webhooks are still delivered).
#[derive(Debug)]
pub struct Remove;
wire_struct!(Remove {});
account_call!(Remove, "remove", bool);

/// Every executing job as the operator sees it: `(started_ms, seq, item)`.
#[derive(Debug)]
pub struct AdminJobs {
    pub now_ms: i64,
}
wire_struct!(AdminJobs { now_ms });
account_call!(AdminJobs, "jobs", Vec<(i64, i64, String)>);

/// Up to `limit` deliveries of `status` after `after_seq`, at most `max_bytes` of
/// rows (at least one row).
#[derive(Debug)]
pub struct Deliveries {
    pub status: DeliveryStatus,
    pub after_seq: i64,
    pub limit: usize,
    pub max_bytes: usize,
}
wire_struct!(Deliveries {
    status,
    after_seq,
    limit,
    max_bytes
});
account_call!(Deliveries, "deliveries", DeliveryPage);

#[derive(Debug, Default)]
pub struct DeliveryPage {
    /// Rows as JSON objects, in sequence order.
    pub rows: Vec<String>,
    pub last_seq: Option<i64>,
    /// More rows of this status follow `last_seq`.
    pub more: bool,
}

wire_struct!(DeliveryPage {
    rows,
    last_seq,
    more
});

/// Put one failed delivery back to pending, same webhook id, fresh schedule.
#[derive(Debug)]
pub struct RetryDelivery {
    pub webhook_id: String,
    pub now_ms: i64,
}
wire_struct!(RetryDelivery { webhook_id, now_ms });
account_call!(RetryDelivery, "retry", RetryOutcome);

#[derive(Debug, PartialEq, Eq)]
pub enum RetryOutcome {
    Requeued,
    StillPending,
    /// It was delivered; only failed deliveries are retried.
    Delivered,
    NotFound,
}

wire_enum!(RetryOutcome {
    0 => Requeued,
    1 => StillPending,
    2 => Delivered,
    3 => NotFound,
});

/// Put every failed delivery created since `since_ms` back to pending.
#[derive(Debug)]
pub struct RetrySince {
    pub since_ms: i64,
    pub now_ms: i64,
}
wire_struct!(RetrySince { since_ms, now_ms });
account_call!(RetrySince, "retry_since", u64);

// ---------------------------------------------------------------------------------
// The list's text format

/// One account's part of a list, as its `snapshot` method answers it: a header line
/// `rev max_jobs counted paused n` (tab-separated), then `n` lines
/// `started_ms seq item` where `item` is the job's public JSON (JSON text never holds
/// a raw newline or tab... outside strings, and inside strings they are escaped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot<'a> {
    pub rev: u64,
    pub max_jobs: u32,
    pub counted: u32,
    pub paused: bool,
    pub jobs: Vec<SnapshotJob<'a>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotJob<'a> {
    pub started_ms: i64,
    pub seq: i64,
    pub item: &'a str,
}

impl<'a> Snapshot<'a> {
    /// Writes the header line; the caller appends one [`push_job`] per job.
    pub fn push_header(
        out: &mut String,
        rev: u64,
        max_jobs: u32,
        counted: u32,
        paused: bool,
        jobs: usize,
    ) {
        use std::fmt::Write;
        let _ = writeln!(
            out,
            "{rev}\t{max_jobs}\t{counted}\t{}\t{jobs}",
            u8::from(paused)
        );
    }

    pub fn push_job(out: &mut String, started_ms: i64, seq: i64, item: &str) {
        use std::fmt::Write;
        let _ = write!(out, "{started_ms}\t{seq}\t");
        out.push_str(item);
        out.push('\n');
    }

    /// Reads a snapshot; `None` for an unconfigured account (an empty text) or
    /// anything malformed.
    pub fn parse(text: &'a str) -> Option<Snapshot<'a>> {
        let mut lines = text.split('\n');
        let mut header = lines.next()?.split('\t');
        let mut next = || header.next()?.parse::<u64>().ok();
        let (rev, max_jobs, counted, paused, n) = (next()?, next()?, next()?, next()?, next()?);
        let mut jobs = Vec::with_capacity(usize::try_from(n).ok()?.min(1024));
        for _ in 0..n {
            let mut parts = lines.next()?.splitn(3, '\t');
            jobs.push(SnapshotJob {
                started_ms: parts.next()?.parse().ok()?,
                seq: parts.next()?.parse().ok()?,
                item: parts.next()?,
            });
        }
        Some(Snapshot {
            rev,
            max_jobs: u32::try_from(max_jobs).ok()?,
            counted: u32::try_from(counted).ok()?,
            paused: paused == 1,
            jobs,
        })
    }

    /// Free slots as `available` shows them: none while paused, never negative.
    pub fn available(&self) -> u32 {
        if self.paused {
            0
        } else {
            self.max_jobs.saturating_sub(self.counted)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_round_trip_with_and_without_a_link() {
        for a in [
            Answer::new(200, r#"[{"id":1}]"#),
            Answer::empty(),
            Answer {
                status: 200,
                link: Some(r#"</x?cursor=abc>; rel="next""#.to_owned()),
                body: "[\n]".to_owned(),
            },
            Answer::new(Answer::WAITING, "17"),
        ] {
            assert_eq!(Answer::decode(&a.encode()), Some(a));
        }
        assert_eq!(Answer::decode("20"), None);
        assert_eq!(Answer::decode("abc body"), None);
        assert_eq!(Answer::decode("200x"), None);
    }

    #[test]
    fn snapshots_round_trip_items_with_tabs_and_newlines_escaped() {
        let item = crate::json::string("a\tb\nc");
        let mut text = String::new();
        Snapshot::push_header(&mut text, 9, 5, 2, true, 2);
        Snapshot::push_job(&mut text, 1_000, 1, &item);
        Snapshot::push_job(&mut text, 2_000, 3, "{}");
        let s = Snapshot::parse(&text).unwrap();
        assert_eq!((s.rev, s.max_jobs, s.counted, s.paused), (9, 5, 2, true));
        assert_eq!(s.jobs[0].item, item);
        assert_eq!(
            s.jobs[1],
            SnapshotJob {
                started_ms: 2_000,
                seq: 3,
                item: "{}"
            }
        );
        assert_eq!(s.available(), 0);
        assert_eq!(Snapshot::parse(""), None);
        assert_eq!(
            Snapshot::parse("1\t2\t3\t0\t1\n"),
            None,
            "a job line is missing"
        );
    }

    #[test]
    fn account_calls_travel_with_their_op_name() {
        let text = encode_call(&Cancel {
            id: "7".into(),
            now_ms: 5,
        });
        let (op, mut args) = split_call(&text).unwrap();
        assert_eq!(op, "cancel");
        let back = Cancel::get(&mut args).unwrap();
        assert_eq!((back.id.as_str(), back.now_ms), ("7", 5));
    }

    #[test]
    fn directory_calls_round_trip() {
        let call = DirectoryCall {
            provider: Provider::parse("minimax").unwrap(),
            user: "u1".into(),
            op: DirectoryOp::Pause {
                account: "acc".into(),
                until_ms: Some(9),
                reason: None,
                now_ms: 1,
            },
        };
        let back: DirectoryCall = wire::decode(&wire::encode(&call)).unwrap();
        assert_eq!(format!("{back:?}"), format!("{call:?}"));
    }
}
