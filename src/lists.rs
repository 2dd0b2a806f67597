//! The public list bodies, assembled from the account objects' snapshots.
//!
//! Every item arrives already written (each account object keeps its jobs' JSON and
//! only fills in the clock), so a list is a merge and a concatenation: no parsing, no
//! re-serialising. Field order inside items is each provider's (`providers/`), and the
//! golden tests below pin the containers against the seed pages.

use crate::json::{push_array, push_string, Object};
use crate::protocol::Snapshot;
use crate::providers::{Layout, Provider};

/// One configured account's snapshot; the slice is in ascending account order.
pub type AccountPart<'a> = (&'a str, Snapshot<'a>);

/// `GET …/scheduler`
pub fn list_body(provider: Provider, accounts: &[AccountPart<'_>]) -> String {
    let mut out = String::with_capacity(estimate(accounts));
    match provider.layout() {
        Layout::Flat => push_flat(&mut out, accounts),
        Layout::ByAccount => {
            out.push('{');
            push_grouped(&mut out, accounts);
            out.push('}');
        }
    }
    out
}

/// `GET …/scheduler/available`: the list, then a capacity row for every account.
pub fn available_body(provider: Provider, accounts: &[AccountPart<'_>]) -> String {
    let mut out = String::with_capacity(estimate(accounts) + 80 * accounts.len());
    out.push_str(r#"{"executing":"#);
    match provider.layout() {
        Layout::Flat => push_flat(&mut out, accounts),
        Layout::ByAccount => {
            // `{"executing":{…},"total":n,"available":[…]}`: the grouped list's members
            // sit at the top level.
            out.truncate(1);
            push_grouped(&mut out, accounts);
        }
    }
    out.push_str(r#","available":["#);
    for (i, (name, snapshot)) in accounts.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let mut o = Object::new(&mut out);
        o.str(provider.account_key(), name)
            .int("maxJobs", i64::from(snapshot.max_jobs))
            .int("executing", i64::from(snapshot.counted))
            .int("available", i64::from(snapshot.available()));
        o.end();
    }
    out.push_str("]}");
    out
}

fn estimate(accounts: &[AccountPart<'_>]) -> usize {
    accounts
        .iter()
        .map(|(_, s)| s.jobs.iter().map(|j| j.item.len() + 1).sum::<usize>())
        .sum::<usize>()
        + 64
}

/// Every item of every account, oldest first; ties by account, then registration.
fn push_flat(out: &mut String, accounts: &[AccountPart<'_>]) {
    let jobs = accounts
        .iter()
        .map(|(_, s)| s.jobs.iter().map(|j| (j.started_ms, j.seq, j.item)));
    push_oldest_first(out, jobs);
}

/// `[…]` of the items of several accounts, each given as `(started_ms, seq, item)`:
/// oldest first; ties by account (in the order given), then registration (`seq`).
/// The public flat list and the operator's jobs list.
pub fn push_oldest_first<'a, J>(out: &mut String, accounts: impl IntoIterator<Item = J>)
where
    J: IntoIterator<Item = (i64, i64, &'a str)>,
{
    let mut all: Vec<(i64, usize, i64, &str)> = accounts
        .into_iter()
        .enumerate()
        .flat_map(|(i, jobs)| {
            jobs.into_iter()
                .map(move |(started, seq, item)| (started, i, seq, item))
        })
        .collect();
    all.sort_unstable_by_key(|&(started, account, seq, _)| (started, account, seq));
    push_array(out, all.iter().map(|&(.., item)| item));
}

/// `"executing":{"<account>":[…]},"total":n` (without the outer braces); accounts
/// with no job are left out.
fn push_grouped(out: &mut String, accounts: &[AccountPart<'_>]) {
    out.push_str(r#""executing":{"#);
    let mut total = 0usize;
    let mut first = true;
    for (name, snapshot) in accounts.iter().filter(|(_, s)| !s.jobs.is_empty()) {
        if !first {
            out.push(',');
        }
        first = false;
        push_string(out, name);
        out.push(':');
        push_array(out, snapshot.jobs.iter().map(|j| j.item));
        total += snapshot.jobs.len();
    }
    out.push_str(r#"},"total":"#);
    crate::json::push_int(out, total as i64);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::SnapshotJob;

    fn p(name: &str) -> Provider {
        Provider::parse(name).unwrap()
    }

    fn snapshot<'a>(max_jobs: u32, jobs: &[(i64, i64, &'a str)]) -> Snapshot<'a> {
        Snapshot {
            rev: 1,
            max_jobs,
            counted: jobs.len() as u32,
            paused: false,
            jobs: jobs
                .iter()
                .map(|&(started_ms, seq, item)| SnapshotJob {
                    started_ms,
                    seq,
                    item,
                })
                .collect(),
        }
    }

    #[test]
    fn idle_dreamina_list_is_the_seed_idle_body() {
        assert_eq!(
            list_body(p("dreamina"), &[]),
            r#"{"executing":{},"total":0}"#
        );
        let idle = [("US:a@x.com", snapshot(5, &[]))];
        assert_eq!(
            list_body(p("dreamina"), &idle),
            r#"{"executing":{},"total":0}"#
        );
    }

    #[test]
    fn dreamina_groups_by_account_ascending_and_counts_the_total() {
        let accounts = [
            (
                "US:a@x.com",
                snapshot(
                    5,
                    &[(5, 1, r#"{"jobid":"a1"}"#), (9, 2, r#"{"jobid":"a2"}"#)],
                ),
            ),
            ("US:b@x.com", snapshot(5, &[(1, 1, r#"{"jobid":"b1"}"#)])),
            ("US:c@x.com", snapshot(5, &[])),
        ];
        assert_eq!(
            list_body(p("dreamina"), &accounts),
            r#"{"executing":{"US:a@x.com":[{"jobid":"a1"},{"jobid":"a2"}],"US:b@x.com":[{"jobid":"b1"}]},"total":3}"#
        );
        assert_eq!(
            available_body(p("dreamina"), &accounts),
            r#"{"executing":{"US:a@x.com":[{"jobid":"a1"},{"jobid":"a2"}],"US:b@x.com":[{"jobid":"b1"}]},"total":3,"available":[{"account":"US:a@x.com","maxJobs":5,"executing":2,"available":3},{"account":"US:b@x.com","maxJobs":5,"executing":1,"available":4},{"account":"US:c@x.com","maxJobs":5,"executing":0,"available":5}]}"#
        );
    }

    #[test]
    fn flat_lists_are_oldest_first_across_accounts() {
        let accounts = [
            ("a@x.com", snapshot(2, &[(20, 1, "1"), (30, 2, "2")])),
            ("b@x.com", snapshot(1, &[(10, 1, "3"), (20, 2, "4")])),
        ];
        assert_eq!(list_body(p("kling"), &accounts), "[3,1,4,2]");
        assert_eq!(list_body(p("kling"), &[]), "[]");
    }

    #[test]
    fn available_rows_use_the_providers_key_and_never_go_negative() {
        let mut lowered = snapshot(1, &[(1, 1, "1"), (2, 2, "2")]);
        let mut paused = snapshot(4, &[]);
        paused.paused = true;
        lowered.counted = 2;
        let accounts = [("a@x.com", lowered), ("b@x.com", paused)];
        assert_eq!(
            available_body(p("kling"), &accounts),
            r#"{"executing":[1,2],"available":[{"email":"a@x.com","maxJobs":1,"executing":2,"available":0},{"email":"b@x.com","maxJobs":4,"executing":0,"available":0}]}"#
        );
        assert_eq!(
            available_body(p("minimax"), &[]),
            r#"{"executing":[],"available":[]}"#
        );
    }
}
