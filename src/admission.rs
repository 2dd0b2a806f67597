//! Admission as the user's directory object decides it: which account a job goes to,
//! and who waits for a slot, in what order.
//!
//! The directory keeps a [`View`] of each account (its limit, how many of its slots are
//! taken, whether it is paused, which job ids run on it), built from the replies of
//! the account objects. Every admission, completion, cancel, pause and limit change
//! goes through the directory, so the view only drifts with time: a job reaching its
//! timeout, a timed pause running out. The view therefore knows when an entry may
//! have drifted ([`View::needs_refresh`]) and the directory asks that account again
//! before trusting it. The account object stays the authority: it refuses an
//! admission it has no room for, whatever the view said.
//!
//! Waiting registrations queue in a [`Queue`], first come first served. A freed slot
//! is *reserved* for the oldest waiter that can use it; the waiter's worker then
//! confirms (it is still there) and only then is the job admitted. A waiter that
//! stops asking loses its place and its reservation, so nothing is ever admitted for a
//! caller that has gone away.

use std::collections::VecDeque;

/// What an account object says about itself after every operation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Counts the account object's writes: a higher `rev` is a newer summary.
    pub rev: u64,
    pub max_jobs: u32,
    /// Executing jobs that take a slot (MiniMax image jobs do not).
    pub counted: u32,
    pub paused: bool,
    /// When a timed pause ends by itself.
    pub paused_until_ms: Option<i64>,
    /// The earliest instant one of its jobs reaches its timeout.
    pub next_deadline_ms: Option<i64>,
    /// Every executing job id.
    pub ids: Vec<String>,
}

crate::wire_struct!(Summary {
    rev,
    max_jobs,
    counted,
    paused,
    paused_until_ms,
    next_deadline_ms,
    ids,
});

impl Summary {
    pub fn is_paused(&self, now_ms: i64) -> bool {
        pause_in_force(self.paused, self.paused_until_ms, now_ms)
    }
}

/// Whether a pause holds at `now_ms`: set, and either untimed or not yet over.
pub fn pause_in_force(paused: bool, paused_until_ms: Option<i64>, now_ms: i64) -> bool {
    paused && paused_until_ms.is_none_or(|until| until > now_ms)
}

#[derive(Debug, Clone)]
struct Entry {
    summary: Summary,
    /// An account reported a newer state than this summary without sending it.
    stale: bool,
    /// Slots promised to waiters that have not confirmed yet.
    reserved: u32,
}

/// The directory's picture of every configured account.
#[derive(Debug, Default)]
pub struct View {
    /// Ascending by name (a sorted `Vec`: a user has at most a few dozen accounts).
    accounts: Vec<(String, Entry)>,
}

impl View {
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.accounts.iter().map(|(name, _)| name.as_str())
    }

    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty()
    }

    pub fn contains(&self, account: &str) -> bool {
        self.entry(account).is_some()
    }

    fn position(&self, account: &str) -> Result<usize, usize> {
        self.accounts
            .binary_search_by(|(name, _)| name.as_str().cmp(account))
    }

    fn entry(&self, account: &str) -> Option<&Entry> {
        self.position(account).ok().map(|i| &self.accounts[i].1)
    }

    fn entry_mut(&mut self, account: &str) -> Option<&mut Entry> {
        self.position(account).ok().map(|i| &mut self.accounts[i].1)
    }

    /// Takes an account's summary unless the view already holds a newer one (replies
    /// of concurrent operations may arrive out of order).
    pub fn apply(&mut self, account: &str, summary: Summary) {
        match self.position(account) {
            Ok(i) => {
                let entry = &mut self.accounts[i].1;
                if entry.summary.rev <= summary.rev || entry.stale {
                    entry.summary = summary;
                    entry.stale = false;
                }
            }
            Err(i) => {
                let entry = Entry {
                    summary,
                    stale: false,
                    reserved: 0,
                };
                self.accounts.insert(i, (account.to_owned(), entry));
            }
        }
    }

    /// An account was seen at revision `rev` (in a list) without its full summary.
    pub fn saw_revision(&mut self, account: &str, rev: u64) {
        if let Some(entry) = self.entry_mut(account) {
            if rev > entry.summary.rev {
                entry.stale = true;
            }
        }
    }

    pub fn remove(&mut self, account: &str) {
        if let Ok(i) = self.position(account) {
            self.accounts.remove(i);
        }
    }

    /// Whether the view of `account` may have drifted: a newer revision was seen, a
    /// job may have reached its timeout, or a timed pause may have ended.
    pub fn needs_refresh(&self, account: &str, now_ms: i64) -> bool {
        self.entry(account).is_some_and(|e| {
            e.stale
                || e.summary.next_deadline_ms.is_some_and(|d| d <= now_ms)
                || (e.summary.paused && e.summary.paused_until_ms.is_some_and(|u| u <= now_ms))
        })
    }

    /// Slots free for a new job: none while paused; never negative after `maxJobs`
    /// was lowered below the executing count.
    pub fn free(&self, account: &str, now_ms: i64) -> u32 {
        self.entry(account).map_or(0, |e| {
            if e.summary.is_paused(now_ms) {
                0
            } else {
                e.summary
                    .max_jobs
                    .saturating_sub(e.summary.counted)
                    .saturating_sub(e.reserved)
            }
        })
    }

    pub fn is_paused(&self, account: &str, now_ms: i64) -> bool {
        self.entry(account)
            .is_some_and(|e| e.summary.is_paused(now_ms))
    }

    /// The account a job id is executing on, if any.
    pub fn holder_of(&self, id: &str) -> Option<&str> {
        self.accounts
            .iter()
            .find(|(_, e)| e.summary.ids.iter().any(|i| i == id))
            .map(|(name, _)| name.as_str())
    }

    /// Accounts a job may start on now, best first: those with a free slot (any
    /// unpaused one for a job that takes no slot), most free slots first, then the
    /// ones fewer waiters named, then by name.
    pub fn candidates(
        &self,
        want: &Want,
        now_ms: i64,
        named_demand: &dyn Fn(&str) -> usize,
    ) -> Vec<String> {
        let mut open: Vec<(&str, u32)> = self
            .names()
            .filter(|name| want.account.as_deref().is_none_or(|n| n == *name))
            .filter(|name| !self.is_paused(name, now_ms))
            .map(|name| (name, self.free(name, now_ms)))
            .filter(|(_, free)| !want.counts || *free > 0)
            .collect();
        open.sort_unstable_by(|(a, fa), (b, fb)| {
            fb.cmp(fa)
                .then_with(|| named_demand(a).cmp(&named_demand(b)))
                .then_with(|| a.cmp(b))
        });
        open.into_iter().map(|(name, _)| name.to_owned()).collect()
    }

    fn reserve(&mut self, account: &str) {
        if let Some(entry) = self.entry_mut(account) {
            entry.reserved += 1;
        }
    }

    fn unreserve(&mut self, account: &str) {
        if let Some(entry) = self.entry_mut(account) {
            entry.reserved = entry.reserved.saturating_sub(1);
        }
    }
}

/// What a registration needs from an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Want {
    /// The account the operator named, or any.
    pub account: Option<String>,
    /// Whether the job takes a slot.
    pub counts: bool,
}

/// How long a waiter may go without asking before it is taken for gone: a held
/// poll lasts at most [`POLL_HOLD_MS`], and its worker asks again at once.
pub const LEASE_MS: i64 = 1_500;
/// The longest a poll is held before it is answered "still waiting".
pub const POLL_HOLD_MS: i64 = 1_000;
/// The most registrations that may wait at once for one user and provider.
pub const MAX_WAITERS: usize = 1_000;

/// One waiting registration. `T` is the registration itself, which only the runtime
/// reads.
#[derive(Debug)]
pub struct Waiter<T> {
    pub ticket: u64,
    pub want: Want,
    pub deadline_ms: i64,
    /// The last time its worker asked (a poll or a confirmation).
    pub last_seen_ms: i64,
    /// A poll of this waiter is being held right now.
    pub attached: bool,
    /// The account a slot is reserved on, waiting for the confirmation.
    pub reserved: Option<String>,
    pub registration: T,
}

/// The waiting registrations of one user and provider, oldest first.
#[derive(Debug)]
pub struct Queue<T> {
    waiters: VecDeque<Waiter<T>>,
    next_ticket: u64,
}

#[cfg(test)]
impl<T> Default for Queue<T> {
    fn default() -> Self {
        Queue::starting_at(1)
    }
}

/// Why a waiter left the queue without a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Left {
    /// Its `waitSeconds` ran out: a 429.
    TimedOut,
    /// Its worker stopped asking (the client went away).
    Gone,
    /// The account it named was removed: a 404.
    AccountRemoved,
}

impl<T> Queue<T> {
    /// An empty queue whose first ticket is `first`.
    pub fn starting_at(first: u64) -> Queue<T> {
        Queue {
            waiters: VecDeque::new(),
            next_ticket: first,
        }
    }

    pub fn len(&self) -> usize {
        self.waiters.len()
    }

    pub fn is_empty(&self) -> bool {
        self.waiters.is_empty()
    }

    /// Adds a waiter at the back; returns its ticket.
    pub fn push(&mut self, want: Want, deadline_ms: i64, now_ms: i64, registration: T) -> u64 {
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        self.waiters.push_back(Waiter {
            ticket,
            want,
            deadline_ms,
            last_seen_ms: now_ms,
            attached: false,
            reserved: None,
            registration,
        });
        ticket
    }

    pub fn get(&self, ticket: u64) -> Option<&Waiter<T>> {
        self.waiters.iter().find(|w| w.ticket == ticket)
    }

    pub fn get_mut(&mut self, ticket: u64) -> Option<&mut Waiter<T>> {
        self.waiters.iter_mut().find(|w| w.ticket == ticket)
    }

    /// The waiter's worker is still there.
    pub fn seen(&mut self, ticket: u64, now_ms: i64) {
        if let Some(w) = self.get_mut(ticket) {
            w.last_seen_ms = now_ms;
        }
    }

    /// How many waiters still looking for a slot named `account`.
    pub fn named_demand(&self, account: &str) -> usize {
        self.waiters
            .iter()
            .filter(|w| w.reserved.is_none() && w.want.account.as_deref() == Some(account))
            .count()
    }

    /// Whether some waiter could start on `account` if it had room.
    pub fn wants(&self, account: &str) -> bool {
        self.waiters
            .iter()
            .any(|w| w.reserved.is_none() && w.want.account.as_deref().is_none_or(|a| a == account))
    }

    /// Reserves free slots for waiters, oldest first: each takes the best account it
    /// may use that has room. Returns the tickets that got a reservation.
    pub fn assign(&mut self, view: &mut View, now_ms: i64) -> Vec<u64> {
        let mut granted = Vec::new();
        for i in 0..self.waiters.len() {
            if self.waiters[i].reserved.is_some() || self.waiters[i].deadline_ms <= now_ms {
                continue;
            }
            let demand = |account: &str| {
                self.waiters
                    .iter()
                    .skip(i + 1)
                    .filter(|w| w.reserved.is_none() && w.want.account.as_deref() == Some(account))
                    .count()
            };
            let best = view
                .candidates(&self.waiters[i].want, now_ms, &demand)
                .into_iter()
                .next();
            if let Some(account) = best {
                if self.waiters[i].want.counts {
                    view.reserve(&account);
                }
                self.waiters[i].reserved = Some(account);
                granted.push(self.waiters[i].ticket);
            }
        }
        granted
    }

    /// Gives a reservation back (the confirmation failed); the waiter keeps its place.
    pub fn unreserve(&mut self, ticket: u64, view: &mut View) {
        if let Some(w) = self.get_mut(ticket) {
            if let Some(account) = w.reserved.take() {
                if w.want.counts {
                    view.unreserve(&account);
                }
            }
        }
    }

    /// Takes a waiter out of the queue (admitted, refused, or gone), releasing its
    /// reservation.
    pub fn remove(&mut self, ticket: u64, view: &mut View) -> Option<Waiter<T>> {
        self.unreserve(ticket, view);
        let index = self.waiters.iter().position(|w| w.ticket == ticket)?;
        self.waiters.remove(index)
    }

    /// Removes the waiters whose time ran out (not those holding a reservation: the
    /// slot was theirs in time), those whose worker stopped asking, and those whose
    /// named account is gone.
    pub fn sweep(&mut self, view: &mut View, now_ms: i64) -> Vec<(u64, Left)> {
        let leaving: Vec<(u64, Left)> = self
            .waiters
            .iter()
            .filter_map(|w| {
                if w.want.account.as_deref().is_some_and(|a| !view.contains(a)) {
                    Some((w.ticket, Left::AccountRemoved))
                } else if !w.attached && w.last_seen_ms + LEASE_MS < now_ms {
                    Some((w.ticket, Left::Gone))
                } else if w.reserved.is_none() && w.deadline_ms <= now_ms {
                    Some((w.ticket, Left::TimedOut))
                } else {
                    None
                }
            })
            .collect();
        for (ticket, _) in &leaving {
            self.remove(*ticket, view);
        }
        leaving
    }

    /// The tickets of every waiter, oldest first.
    #[cfg(test)]
    pub fn tickets(&self) -> Vec<u64> {
        self.waiters.iter().map(|w| w.ticket).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(max_jobs: u32, ids: &[&str]) -> Summary {
        Summary {
            rev: 1,
            max_jobs,
            counted: ids.len() as u32,
            ids: ids.iter().map(|s| s.to_string()).collect(),
            ..Summary::default()
        }
    }

    fn any() -> Want {
        Want {
            account: None,
            counts: true,
        }
    }

    fn named(a: &str) -> Want {
        Want {
            account: Some(a.to_owned()),
            counts: true,
        }
    }

    fn no_demand(_: &str) -> usize {
        0
    }

    #[test]
    fn the_automatic_choice_takes_the_most_free_slots_then_the_name() {
        let mut v = View::default();
        v.apply("b", summary(5, &["1"]));
        v.apply("a", summary(3, &[]));
        v.apply("c", summary(4, &[]));
        v.apply("full", summary(1, &["2"]));
        assert_eq!(v.candidates(&any(), 0, &no_demand), ["b", "c", "a"]);
        assert_eq!(
            v.candidates(&named("full"), 0, &no_demand),
            Vec::<String>::new()
        );
        assert_eq!(v.holder_of("2"), Some("full"));
        assert_eq!(v.holder_of("3"), None);
    }

    #[test]
    fn paused_accounts_have_no_room_until_their_pause_ends() {
        let mut v = View::default();
        let mut s = summary(5, &[]);
        s.paused = true;
        s.paused_until_ms = Some(1_000);
        v.apply("a", s);
        assert_eq!(v.free("a", 999), 0);
        assert!(v.candidates(&any(), 999, &no_demand).is_empty());
        assert!(v.needs_refresh("a", 1_000));
        assert_eq!(v.free("a", 1_000), 5);
        // A job that takes no slot still cannot start on a paused account.
        let image = Want {
            account: None,
            counts: false,
        };
        assert!(v.candidates(&image, 0, &no_demand).is_empty());
    }

    #[test]
    fn jobs_that_take_no_slot_start_on_a_full_account() {
        let mut v = View::default();
        v.apply("a", summary(1, &["v1"]));
        let image = Want {
            account: None,
            counts: false,
        };
        assert_eq!(v.candidates(&image, 0, &no_demand), ["a"]);
    }

    #[test]
    fn lowering_max_jobs_below_the_executing_count_leaves_no_room() {
        let mut v = View::default();
        v.apply("a", summary(1, &["1", "2", "3"]));
        assert_eq!(v.free("a", 0), 0);
    }

    #[test]
    fn older_summaries_never_overwrite_newer_ones() {
        let mut v = View::default();
        let mut newer = summary(5, &["1"]);
        newer.rev = 7;
        v.apply("a", newer);
        let mut older = summary(5, &[]);
        older.rev = 6;
        v.apply("a", older);
        assert_eq!(v.holder_of("1"), Some("a"));
        v.saw_revision("a", 9);
        assert!(v.needs_refresh("a", 0));
        let mut older_but_fresh = summary(5, &[]);
        older_but_fresh.rev = 6;
        v.apply("a", older_but_fresh);
        assert!(!v.needs_refresh("a", 0));
    }

    #[test]
    fn a_job_past_its_deadline_makes_its_account_worth_asking_again() {
        let mut v = View::default();
        let mut s = summary(1, &["1"]);
        s.next_deadline_ms = Some(500);
        v.apply("a", s);
        assert!(!v.needs_refresh("a", 499));
        assert!(v.needs_refresh("a", 500));
    }

    #[test]
    fn freed_slots_go_to_the_oldest_waiter_that_can_use_them() {
        let mut v = View::default();
        v.apply("a", summary(1, &["1"]));
        v.apply("b", summary(1, &["2"]));
        let mut q: Queue<&str> = Queue::default();
        let w1 = q.push(named("a"), 10_000, 0, "first, wants a");
        let w2 = q.push(any(), 10_000, 0, "second, any");
        let w3 = q.push(any(), 10_000, 0, "third, any");
        assert!(q.assign(&mut v, 0).is_empty());
        // A slot frees on b: the first waiter cannot use it, the second can.
        v.apply(
            "b",
            Summary {
                rev: 2,
                ..summary(1, &[])
            },
        );
        assert_eq!(q.assign(&mut v, 0), [w2]);
        assert_eq!(q.get(w2).unwrap().reserved.as_deref(), Some("b"));
        assert_eq!(v.free("b", 0), 0, "the reservation holds the slot");
        // Then one on a: the first waiter's.
        v.apply(
            "a",
            Summary {
                rev: 2,
                ..summary(1, &[])
            },
        );
        assert_eq!(q.assign(&mut v, 0), [w1]);
        assert!(q.get(w3).unwrap().reserved.is_none());
    }

    #[test]
    fn an_unnamed_waiter_leaves_the_slot_a_later_named_waiter_needs() {
        let mut v = View::default();
        v.apply("a", summary(1, &[]));
        v.apply("b", summary(1, &[]));
        let mut q: Queue<()> = Queue::default();
        let w1 = q.push(any(), 10_000, 0, ());
        let w2 = q.push(named("a"), 10_000, 0, ());
        assert_eq!(q.assign(&mut v, 0), [w1, w2]);
        assert_eq!(q.get(w1).unwrap().reserved.as_deref(), Some("b"));
        assert_eq!(q.get(w2).unwrap().reserved.as_deref(), Some("a"));
    }

    #[test]
    fn a_failed_confirmation_keeps_the_waiters_place() {
        let mut v = View::default();
        v.apply("a", summary(1, &[]));
        let mut q: Queue<()> = Queue::default();
        let w1 = q.push(any(), 10_000, 0, ());
        let w2 = q.push(any(), 10_000, 0, ());
        assert_eq!(q.assign(&mut v, 0), [w1]);
        q.unreserve(w1, &mut v);
        assert_eq!(q.tickets(), [w1, w2]);
        assert_eq!(q.assign(&mut v, 0), [w1]);
    }

    #[test]
    fn waiters_time_out_or_are_dropped_when_their_worker_stops_asking() {
        let mut v = View::default();
        v.apply("a", summary(1, &[]));
        v.apply("nope", summary(0, &[]));
        let mut q: Queue<()> = Queue::default();
        let timing_out = q.push(named("nope"), 1_000, 0, ());
        let reserved = q.push(any(), 1_000, 0, ());
        assert_eq!(q.assign(&mut v, 0), [reserved]);
        q.seen(timing_out, 900);
        q.seen(reserved, 900);
        assert_eq!(q.sweep(&mut v, 1_000), [(timing_out, Left::TimedOut)]);
        // The reserved one had its slot in time, but its worker never confirms.
        assert_eq!(
            q.sweep(&mut v, 900 + LEASE_MS + 1),
            [(reserved, Left::Gone)]
        );
        assert_eq!(v.free("a", 0), 1, "the reservation went back");
        assert!(q.is_empty());
    }

    #[test]
    fn waiters_for_a_removed_account_leave() {
        let mut v = View::default();
        v.apply("a", summary(1, &["1"]));
        let mut q: Queue<()> = Queue::starting_at(500);
        let w = q.push(named("a"), 100_000, 0, ());
        assert_eq!(w, 500);
        v.remove("a");
        assert_eq!(q.sweep(&mut v, 1), [(w, Left::AccountRemoved)]);
    }

    #[test]
    fn a_held_poll_keeps_its_waiter() {
        let mut v = View::default();
        let mut q: Queue<()> = Queue::default();
        let w = q.push(any(), 100_000, 0, ());
        q.get_mut(w).unwrap().attached = true;
        assert!(q.sweep(&mut v, 10 * LEASE_MS).is_empty());
    }
}
