//! Registrations: where a job goes, and waiting for a slot.
//!
//! A registration runs behind the directory's gate, one at a time: duplicate check,
//! then the account choice from the view, then one `Admit` on the chosen account (the
//! account object refuses when the view was wrong, and the next candidate is tried).
//!
//! A registration that may wait and finds no room joins the queue and is answered
//! "waiting" with a ticket; its worker asks again (`Poll`, held here up to a second)
//! until a slot is reserved for it ("reserved"), then confirms (`Confirm`), and only
//! then is the job admitted. Waiters are kept in memory only: when the object restarts
//! they are gone, their workers' next ask fails or finds no ticket, and their clients
//! get a 503. Nothing is ever admitted for a client that was answered.

use std::rc::Rc;

use crate::admission::{Left, Want, MAX_WAITERS, POLL_HOLD_MS};
use crate::errors::ApiError;
use crate::jobs::{extend_object, Registration};
use crate::protocol::{self as p, AdmitOutcome, Answer, NewJob};

use super::super::now_ms;
use super::super::turnstile::{wait_for, Signal};
use super::accounts::not_configured;
use super::{Directory, Scope};

/// How many departures are remembered for late asks.
const DEPARTURES_KEPT: usize = 1000;

fn want_of(registration: &Registration) -> Want {
    Want {
        account: registration.job.account.clone(),
        counts: registration.job.counts,
    }
}

impl Directory {
    pub(super) async fn register(
        self: &Rc<Self>,
        scope: &Scope,
        registration: Registration,
        now: i64,
    ) -> Result<Answer, ApiError> {
        let pass = self.gate.enter().await;
        self.ensure_view(scope, now).await?;
        if self.view.borrow().is_empty() {
            return Err(ApiError::NotFound("No accounts configured".to_owned()));
        }
        let want = want_of(&registration);
        if let Some(named) = &want.account {
            if !self.view.borrow().contains(named) {
                return Err(not_configured());
            }
        }
        if let Some(id) = &registration.job.id {
            self.check_duplicate(scope, id, now).await?;
        }
        // Waiters first: a new registration never takes a slot a waiter can use.
        self.sweep_and_assign(scope, now).await?;
        if let Some(answer) = self
            .try_admit(scope, &registration, want.account.as_deref(), now)
            .await?
        {
            return Ok(answer);
        }
        if registration.wait_ms == 0 {
            return Err(self.no_room(&want, now));
        }
        if self.queue.borrow().len() >= MAX_WAITERS {
            return Err(ApiError::TooManyRequests(format!(
                "All accounts are at maxJobs capacity, and {MAX_WAITERS} registrations are already waiting"
            )));
        }
        let deadline = now + registration.wait_ms;
        let ticket = self
            .queue
            .borrow_mut()
            .push(want, deadline, now, registration);
        drop(pass);
        self.hold(scope, ticket).await
    }

    /// A waiting registration's worker asks again.
    pub(super) async fn poll(
        self: &Rc<Self>,
        scope: &Scope,
        ticket: u64,
    ) -> Result<Answer, ApiError> {
        self.queue.borrow_mut().seen(ticket, now_ms());
        self.hold(scope, ticket).await
    }

    /// Holds a waiter's ask until a slot is reserved for it, its time runs out, or a
    /// second passes; then answers where it stands.
    async fn hold(self: &Rc<Self>, scope: &Scope, ticket: u64) -> Result<Answer, ApiError> {
        let signal = Signal::default();
        let wait = {
            let mut queue = self.queue.borrow_mut();
            let Some(waiter) = queue.get_mut(ticket) else {
                return Err(self.departure(ticket));
            };
            if waiter.reserved.is_some() {
                return Ok(Answer::new(Answer::RESERVED, ticket.to_string()));
            }
            waiter.attached = true;
            (waiter.deadline_ms - now_ms()).clamp(0, POLL_HOLD_MS)
        };
        self.held.borrow_mut().push((ticket, signal.clone()));
        wait_for(&signal, wait).await;
        self.held.borrow_mut().retain(|(t, _)| *t != ticket);
        let _pass = self.gate.enter().await;
        let now = now_ms();
        if let Some(waiter) = self.queue.borrow_mut().get_mut(ticket) {
            waiter.attached = false;
            waiter.last_seen_ms = now;
        }
        self.sweep_and_assign(scope, now).await?;
        let reserved = self
            .queue
            .borrow()
            .get(ticket)
            .map(|w| w.reserved.is_some());
        match reserved {
            None => Err(self.departure(ticket)),
            Some(true) => Ok(Answer::new(Answer::RESERVED, ticket.to_string())),
            Some(false) => Ok(Answer::new(Answer::WAITING, ticket.to_string())),
        }
    }

    /// The waiter's worker takes the slot reserved for it: the job is admitted now.
    pub(super) async fn confirm(
        self: &Rc<Self>,
        scope: &Scope,
        ticket: u64,
    ) -> Result<Answer, ApiError> {
        let pass = self.gate.enter().await;
        let now = now_ms();
        let (account, registration) = {
            let mut queue = self.queue.borrow_mut();
            queue.seen(ticket, now);
            match queue.get(ticket) {
                None => return Err(self.departure(ticket)),
                Some(w) => (w.reserved.clone(), w.registration.clone()),
            }
        };
        let Some(account) = account else {
            drop(pass);
            return self.hold(scope, ticket).await;
        };
        if let Some(id) = &registration.job.id {
            if let Err(e) = self.check_duplicate(scope, id, now).await {
                self.leave(ticket);
                return Err(e);
            }
        }
        // The reserved slot goes back to the view, and the job takes it at once.
        self.queue
            .borrow_mut()
            .unreserve(ticket, &mut self.view.borrow_mut());
        match self
            .try_admit(scope, &registration, Some(&account), now)
            .await
        {
            Ok(Some(answer)) => {
                self.leave(ticket);
                Ok(answer)
            }
            Ok(None) => {
                // The account changed meanwhile (paused, limit lowered, removed): keep
                // the place and wait on.
                self.sweep_and_assign(scope, now).await?;
                drop(pass);
                self.hold(scope, ticket).await
            }
            Err(e) => {
                self.leave(ticket);
                Err(e)
            }
        }
    }

    /// Wakes a waiter's held ask, if one is held.
    fn wake_held(&self, ticket: u64) {
        for (held, signal) in self.held.borrow().iter() {
            if *held == ticket {
                signal.fire();
            }
        }
    }

    fn leave(&self, ticket: u64) {
        self.queue
            .borrow_mut()
            .remove(ticket, &mut self.view.borrow_mut());
    }

    /// What a waiter that left the queue is answered.
    fn departure(&self, ticket: u64) -> ApiError {
        let left = self
            .departed
            .borrow()
            .iter()
            .find(|(t, _)| *t == ticket)
            .map(|(_, left)| *left);
        match left {
            Some(Left::TimedOut) => ApiError::capacity(),
            Some(Left::AccountRemoved) => not_configured(),
            Some(Left::Gone) | None => ApiError::Unavailable(
                "The registration lost its place while waiting (the scheduler restarted or stopped hearing from it); it was not admitted. Retry."
                    .to_owned(),
            ),
        }
    }

    /// Drops waiters that timed out or went away, asks again the accounts whose view
    /// may have drifted (jobs past their timeout, pauses past their end) that a waiter
    /// could use, then reserves free slots for waiters, oldest first, and wakes their
    /// held asks. Runs behind the gate.
    pub(super) async fn sweep_and_assign(&self, scope: &Scope, now: i64) -> Result<(), ApiError> {
        let departed = {
            let mut view = self.view.borrow_mut();
            self.queue.borrow_mut().sweep(&mut view, now)
        };
        if !departed.is_empty() {
            let mut memory = self.departed.borrow_mut();
            for (ticket, left) in departed {
                self.wake_held(ticket);
                memory.push_back((ticket, left));
                if memory.len() > DEPARTURES_KEPT {
                    memory.pop_front();
                }
            }
        }
        if self.queue.borrow().is_empty() {
            return Ok(());
        }
        let drifted: Vec<String> = {
            let view = self.view.borrow();
            let queue = self.queue.borrow();
            view.names()
                .filter(|a| view.needs_refresh(a, now) && queue.wants(a))
                .map(str::to_owned)
                .collect()
        };
        self.refresh(scope, &drifted, now).await?;
        let granted = {
            let mut view = self.view.borrow_mut();
            self.queue.borrow_mut().assign(&mut view, now)
        };
        for ticket in granted {
            self.wake_held(ticket);
        }
        Ok(())
    }

    /// Something may have freed slots (a job ended, a limit rose, an account resumed
    /// or changed by itself): give them to the waiters, without holding up the caller.
    pub(super) fn slots_may_have_freed(self: &Rc<Self>, scope: &Scope) {
        if self.queue.borrow().is_empty() {
            return;
        }
        let directory = self.clone();
        let scope = scope.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let _pass = directory.gate.enter().await;
            if let Err(e) = directory.sweep_and_assign(&scope, now_ms()).await {
                worker::console_warn!("assigning freed slots: {}", e.message());
            }
        });
    }

    /// A 409 when the id is executing on any account of the user. The view is asked
    /// first; an account it names is asked again if its view may have drifted (the
    /// job may have expired).
    async fn check_duplicate(&self, scope: &Scope, id: &str, now: i64) -> Result<(), ApiError> {
        let holder = self.view.borrow().holder_of(id).map(str::to_owned);
        let Some(holder) = holder else {
            return Ok(());
        };
        if self.view.borrow().needs_refresh(&holder, now) {
            self.refresh(scope, std::slice::from_ref(&holder), now)
                .await?;
            if self.view.borrow().holder_of(id).is_none() {
                return Ok(());
            }
        }
        Err(duplicate(id))
    }

    /// Tries the candidate accounts in order (only `only` when given); `None` when
    /// none has room.
    async fn try_admit(
        self: &Rc<Self>,
        scope: &Scope,
        registration: &Registration,
        only: Option<&str>,
        now: i64,
    ) -> Result<Option<Answer>, ApiError> {
        let want = Want {
            account: only.map(str::to_owned),
            counts: registration.job.counts,
        };
        let drifted: Vec<String> = {
            let view = self.view.borrow();
            view.names()
                .filter(|a| only.is_none_or(|o| o == *a) && view.needs_refresh(a, now))
                .map(str::to_owned)
                .collect()
        };
        self.refresh(scope, &drifted, now).await?;
        let candidates = {
            let queue = self.queue.borrow();
            self.view
                .borrow()
                .candidates(&want, now, &|a| queue.named_demand(a))
        };
        for account in candidates {
            let id = match &registration.job.id {
                Some(id) => id.clone(),
                None => {
                    let random = u32::from_le_bytes(super::super::random_bytes::<4>());
                    scope
                        .provider
                        .generate_id(&scope.user, &account, now, random)
                        .ok_or_else(|| ApiError::internal("provider made no job id"))?
                }
            };
            let job = NewJob {
                id: id.clone(),
                started_ms: registration.started_ms.unwrap_or(now),
                reply_url: registration.reply_url.clone(),
                reply_ref: registration.reply_ref.clone(),
                counts: registration.job.counts,
                details: registration.job.details.clone(),
            };
            match self
                .ask(scope, &account, &p::Admit { job, now_ms: now })
                .await?
            {
                AdmitOutcome::Admitted { mut item, summary } => {
                    self.take_summary(&account, summary);
                    self.changed(scope);
                    extend_object(&mut item, |o| {
                        o.str("account", &account);
                    });
                    return Ok(Some(Answer::new(201, item)));
                }
                AdmitOutcome::Duplicate(summary) => {
                    self.take_summary(&account, summary);
                    return Err(duplicate(&id));
                }
                AdmitOutcome::NoRoom(summary) => {
                    self.take_summary(&account, summary);
                }
                AdmitOutcome::NotConfigured => self.view.borrow_mut().remove(&account),
            }
        }
        Ok(None)
    }

    /// The 429 of a registration that found no room.
    fn no_room(&self, want: &Want, now: i64) -> ApiError {
        match &want.account {
            Some(named) if self.view.borrow().is_paused(named, now) => {
                ApiError::TooManyRequests(format!("Account {named} is paused"))
            }
            _ => ApiError::capacity(),
        }
    }
}

fn duplicate(id: &str) -> ApiError {
    ApiError::Conflict(format!("Job {id} is already executing"))
}
