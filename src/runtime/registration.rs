//! Job registration: choosing the account and admitting the job there. Run by a
//! user's `UserDirectory` object, one registration at a time (see [`Turnstile`]), which
//! is what makes the duplicate check across accounts atomic: two registrations of the
//! same id cannot both pass it and land on two different accounts.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::poll_fn;
use std::task::{Poll, Waker};

use crate::admission::candidates;
use crate::domain::{AccountName, JobId, UserId};
use crate::errors::ApiError;
use crate::jobs::{generate_dreamina_jobid, parse_registration, JobRecord, Registration};
use crate::protocol::{AccountRequest, AdmitReply};
use crate::shapes::AccountSnapshot;

use super::objects::UserScope;
use super::random_bytes;

/// Parses a registration body and admits the job. Returns the account and the stored job.
pub async fn register(
    scope: &UserScope<'_>,
    body: &str,
    now_ms: i64,
) -> Result<(String, JobRecord), ApiError> {
    let registration = parse_registration(scope.provider, body.as_bytes(), now_ms)?;
    let accounts = scope.snapshots().await?;
    if accounts.is_empty() {
        return Err(ApiError::NotFound("No accounts configured".to_owned()));
    }
    if let Some(id) = &registration.id {
        let taken = accounts
            .iter()
            .any(|a| a.jobs.iter().any(|j| j.id == id.as_str()));
        if taken {
            return Err(duplicate(id.as_str()));
        }
    }
    let order: Vec<&AccountSnapshot> = match &registration.account {
        Some(named) => {
            let account = accounts.iter().find(|a| a.account == named.as_str());
            vec![account.ok_or_else(|| ApiError::NotFound("Account not configured".to_owned()))?]
        }
        None => candidates(&accounts),
    };
    // Registrations are serialised, so the snapshots stay true except for jobs that
    // expire or end meanwhile (which only frees room); an account that refuses anyway
    // is skipped for the next candidate.
    for snapshot in order {
        let account = scope.parse_account(&snapshot.account)?;
        let id = job_id_on(&registration, scope.user, &account, now_ms)?;
        let admit = AccountRequest::Admit {
            job: registration.record(&id),
        };
        match scope
            .account::<AdmitReply>(account.as_str(), &admit)
            .await?
        {
            AdmitReply::Admitted { job } => return Ok((snapshot.account.clone(), job)),
            AdmitReply::Duplicate => return Err(duplicate(id.as_str())),
            AdmitReply::Full | AdmitReply::NotConfigured => continue,
        }
    }
    Err(ApiError::capacity())
}

/// The job's id on `account`: the operator's, or a generated Dreamina jobid (which
/// names the account, so it is made per candidate).
fn job_id_on(
    registration: &Registration,
    user: &UserId,
    account: &AccountName,
    now_ms: i64,
) -> Result<JobId, ApiError> {
    match &registration.id {
        Some(id) => Ok(id.clone()),
        None => {
            let random = u32::from_le_bytes(random_bytes::<4>()?);
            let jobid = generate_dreamina_jobid(now_ms, random, user, account);
            JobId::parse_dreamina(&jobid).map_err(ApiError::BadRequest)
        }
    }
}

fn duplicate(id: &str) -> ApiError {
    ApiError::Conflict(format!("Job {id} is already executing"))
}

/// A one-at-a-time gate for async work inside one Durable Object. An object runs one
/// event at a time only between `await`s; a registration awaits the account objects,
/// so without this gate a second registration could run its duplicate check in the
/// middle of the first.
#[derive(Default)]
pub struct Turnstile {
    busy: Cell<bool>,
    waiting: RefCell<VecDeque<Waker>>,
}

/// Holding a `Pass` means being the one inside; dropping it lets the next one in,
/// also when the work inside failed. Every waiter is woken (one gets in, the rest
/// queue again): waking only one could strand the queue if that one's request had
/// been cancelled meanwhile.
pub struct Pass<'a>(&'a Turnstile);

impl Turnstile {
    pub async fn enter(&self) -> Pass<'_> {
        poll_fn(|cx| {
            if self.busy.get() {
                self.waiting.borrow_mut().push_back(cx.waker().clone());
                Poll::Pending
            } else {
                self.busy.set(true);
                Poll::Ready(())
            }
        })
        .await;
        Pass(self)
    }
}

impl Drop for Pass<'_> {
    fn drop(&mut self) {
        self.0.busy.set(false);
        let waiting: Vec<Waker> = self.0.waiting.borrow_mut().drain(..).collect();
        for waker in waiting {
            waker.wake();
        }
    }
}
