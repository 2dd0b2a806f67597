//! Admission decisions. The account object applies [`decide`] inside one synchronous
//! storage step, which is what makes admission atomic; the worker uses
//! [`candidates`] to pick accounts when the operator names none.

use crate::shapes::AccountSnapshot;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Admit,
    /// The account is at (or, after maxJobs was lowered, over) capacity.
    Full,
    /// This job id is already executing on the account.
    Duplicate,
}

/// Whether one more job may start on an account with `max_jobs` and `executing` jobs.
pub fn decide(max_jobs: u32, executing: u32, already_executing: bool) -> Decision {
    if already_executing {
        Decision::Duplicate
    } else if executing >= max_jobs {
        Decision::Full
    } else {
        Decision::Admit
    }
}

/// Accounts to try for an automatic choice: those with a free slot, most free slots
/// first, ties by name so the choice is deterministic. The worker tries them in order;
/// an account that fills up in the meantime refuses and the next is tried.
pub fn candidates(accounts: &[AccountSnapshot]) -> Vec<&AccountSnapshot> {
    let mut open: Vec<&AccountSnapshot> = accounts.iter().filter(|a| a.free_slots() > 0).collect();
    open.sort_by(|a, b| {
        b.free_slots()
            .cmp(&a.free_slots())
            .then_with(|| a.account.cmp(&b.account))
    });
    open
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::JobRecord;

    fn snapshot(account: &str, max_jobs: u32, executing: usize) -> AccountSnapshot {
        let job = |i: usize| JobRecord {
            id: i.to_string(),
            started_ms: 0,
            seq: i as i64,
            submit_id: None,
            model: None,
            reply_url: None,
            reply_ref: None,
        };
        AccountSnapshot {
            account: account.to_owned(),
            max_jobs,
            jobs: (0..executing).map(job).collect(),
        }
    }

    #[test]
    fn admits_until_max_jobs_then_refuses() {
        assert_eq!(decide(2, 0, false), Decision::Admit);
        assert_eq!(decide(2, 1, false), Decision::Admit);
        assert_eq!(decide(2, 2, false), Decision::Full);
    }

    #[test]
    fn lowered_max_jobs_admits_nothing_until_there_is_room() {
        assert_eq!(decide(1, 3, false), Decision::Full);
    }

    #[test]
    fn a_duplicate_is_reported_before_capacity() {
        assert_eq!(decide(1, 1, true), Decision::Duplicate);
    }

    #[test]
    fn candidates_put_the_most_free_slots_first_and_skip_full_accounts() {
        let accounts = [
            snapshot("c@x.com", 5, 4),
            snapshot("a@x.com", 3, 3),
            snapshot("b@x.com", 4, 1),
            snapshot("d@x.com", 3, 0),
        ];
        let order: Vec<&str> = candidates(&accounts)
            .iter()
            .map(|a| a.account.as_str())
            .collect();
        assert_eq!(order, ["b@x.com", "d@x.com", "c@x.com"]);
    }
}
