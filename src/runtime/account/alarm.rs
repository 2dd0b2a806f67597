//! The account's one alarm: expire jobs past their timeout, end a timed pause, send
//! due webhooks, prune the outbox; then tell the directory if the account changed by
//! itself, and plan the next wake (`crate::alarm`).
//!
//! Alarms are at-least-once, so every step is idempotent: expiry deletes rows that
//! are still there, an attempt's outcome changes a row only while it is pending, and
//! a rerun after a crash at worst sends an attempt again with the same `webhook-id`.
//!
//! Deliveries run as a pump: at most [`IN_FLIGHT`] attempts at once (the runtime opens
//! at most six connections per invocation and queues the rest; keeping below that
//! means an attempt's 10 s limit starts when it is really sent), each next one starting
//! as soon as one ends. A hanging receiver therefore holds one place for 10 s and
//! costs only itself; a delivery queued while the pump runs starts at once.

use std::rc::Rc;

use futures_util::future::{select, Either};
use futures_util::stream::{FuturesUnordered, StreamExt};
use wasm_bindgen::JsValue;

use crate::alarm::{after_last_run, plan_wake};
use crate::protocol::{DirectoryCall, DirectoryOp};
use crate::webhook::{after_attempt, Answer, DELIVERY_TIMEOUT_MS};

use super::super::js;
use super::super::turnstile::Signal;
use super::super::{directory, now_ms};
use super::outbox::Due;
use super::Account;

/// Attempts in flight at once: below the runtime's six connections, leaving one for
/// the call to the directory.
const IN_FLIGHT: usize = 5;
/// Attempts one alarm run starts at most: each is a subrequest, and one invocation may
/// make 50 on the Workers Free plan. More wait for the next run, at once.
const ATTEMPTS_PER_RUN: usize = 40;

impl Account {
    pub async fn run_alarm(self: Rc<Self>) {
        // The time this run is for: the alarm this instance set, else (after a restart)
        // its start, which is never before the time the alarm was set for.
        let now = now_ms();
        let fired = self.alarm_at.get().map_or(now, |set| set.max(now));
        self.alarm_at.set(None);
        self.alarm_fired_ms.set(Some(fired));
        self.run_again.set(false);
        if let Err(e) = self.alarm_steps().await {
            worker::console_error!("account alarm: {e}");
        }
        self.reschedule(now_ms());
    }

    async fn alarm_steps(self: &Rc<Self>) -> Result<(), String> {
        let now = now_ms();
        let changed = self.catch_up(now)?;
        self.prune(now)?;
        if changed {
            self.tell_directory().await;
        }
        self.pump().await?;
        // The run's own failed attempts may have passed a cap: prune them now, not at a
        // next run that may never come.
        self.prune(now_ms())
    }

    fn prune(&self, now: i64) -> Result<(), String> {
        let pruned = self.prune_outbox(now)?;
        if pruned > 0 {
            worker::console_log!(
                "outbox: pruned {pruned} deliveries past retention or over the caps"
            );
        }
        Ok(())
    }

    /// Sends due deliveries, at most [`IN_FLIGHT`] at once, until none is due.
    async fn pump(self: &Rc<Self>) -> Result<(), String> {
        let mut attempts = FuturesUnordered::new();
        let mut in_flight: Vec<i64> = Vec::new();
        let mut started = 0;
        loop {
            // A fresh signal each round: a delivery queued from here on fires it.
            let queued = Signal::default();
            *self.pump.borrow_mut() = Some(queued.clone());
            let room = IN_FLIGHT
                .saturating_sub(in_flight.len())
                .min(ATTEMPTS_PER_RUN - started);
            if room > 0 {
                for due in self.due_deliveries(now_ms(), room, &in_flight)? {
                    in_flight.push(due.seq);
                    started += 1;
                    attempts.push(self.attempt(due));
                }
            }
            if attempts.is_empty() {
                break;
            }
            // Wait for an attempt to end, or for a new delivery while a place is free
            // (a hanging receiver must not hold back the others).
            let next = attempts.next();
            let woken = queued.wait();
            futures_util::pin_mut!(next, woken);
            if let Either::Left((Some((seq, result)), _)) = select(next, woken).await {
                in_flight.retain(|s| *s != seq);
                if let Err(e) = result {
                    worker::console_error!("delivery {seq}: {e}");
                }
            }
        }
        *self.pump.borrow_mut() = None;
        if started >= ATTEMPTS_PER_RUN {
            // Stopped at the run's limit: more may be due, and waits for no grid slot.
            self.run_again.set(true);
        }
        // A delivery queued after the last attempt ended is picked up by the next alarm,
        // planned at once by `reschedule`.
        Ok(())
    }

    /// One attempt of one delivery, and its outcome recorded.
    async fn attempt(self: &Rc<Self>, due: Due) -> (i64, Result<(), String>) {
        let now = now_ms();
        let timestamp = now.div_euclid(1000).to_string();
        let signature = self
            .settings
            .webhook_secret
            .as_ref()
            .map(|secret| secret.sign(&due.webhook_id, now.div_euclid(1000), &due.payload));
        let mut headers = vec![
            ("content-type", "application/json"),
            ("user-agent", "edge-scheduler-webhooks/2"),
            ("webhook-id", due.webhook_id.as_str()),
            ("webhook-timestamp", timestamp.as_str()),
        ];
        if let Some(signature) = &signature {
            headers.push(("webhook-signature", signature.as_str()));
        }
        let answer = match js::post_json(
            &due.reply_url,
            &due.payload,
            &headers,
            DELIVERY_TIMEOUT_MS,
        )
        .await
        {
            Ok((status, retry_after)) => Answer::Http {
                status,
                retry_after,
            },
            Err(reason) => Answer::NoAnswer(reason),
        };
        let attempts = due.attempts.saturating_add(1);
        let done = now_ms();
        let after = after_attempt(&self.settings.retry_schedule, attempts, &answer, done);
        (
            due.seq,
            self.record_attempt(due.seq, attempts, &after, done),
        )
    }

    /// A delivery was queued: the running pump picks it up when a place frees.
    pub fn wake_pump(&self) {
        if let Some(signal) = self.pump.borrow().as_ref() {
            signal.fire();
        }
    }

    /// Sets the alarm to the next planned wake, or deletes it when nothing is due.
    /// Not awaited: the output gate keeps every reply until the write is durable.
    ///
    /// An alarm already set is only ever moved earlier: one that is due (or overdue
    /// and about to run) and moved later by each request of a steady stream would
    /// never run, and the deliveries would wait. One that fires with nothing to do
    /// only plans the next.
    pub fn reschedule(&self, now: i64) {
        let due = match (self.next_deadline(), self.outbox_due(), self.meta()) {
            (Ok(deadline), Ok([attempt, prune]), Ok(meta)) => {
                let pause_end = meta.and_then(|m| m.paused.then_some(m.paused_until_ms).flatten());
                [deadline, attempt, prune, pause_end]
            }
            (deadline, outbox, meta) => {
                let e = deadline
                    .err()
                    .or(outbox.err())
                    .or(meta.err())
                    .unwrap_or_default();
                worker::console_error!("account reschedule: {e}");
                return;
            }
        };
        let storage = self.state.storage();
        let raw = storage.as_raw();
        let planned = if self.run_again.get() {
            Some(now)
        } else {
            plan_wake(&due, now)
        }
        .map(|at| after_last_run(at, self.alarm_fired_ms.get()));
        match planned {
            Some(at) if self.alarm_at.get().is_none_or(|set| at < set) => {
                let when = js_sys::Date::new(&JsValue::from_f64(at as f64));
                let _ = raw.set_alarm(when, js_sys::Object::new());
                self.alarm_at.set(Some(at));
            }
            Some(_) => {}
            None => {
                if self.alarm_at.get().is_some() {
                    let _ = raw.delete_alarm(js_sys::Object::new());
                }
                self.alarm_at.set(None);
            }
        }
    }

    /// Tells the user's directory that this account changed by itself (jobs expired,
    /// a pause ended), so it frees the slots for waiters and updates live viewers. A
    /// directory that misses this finds out at its next read of the account.
    async fn tell_directory(&self) {
        let Ok(Some(meta)) = self.meta() else {
            return;
        };
        let Ok(summary) = self.summary(&meta) else {
            return;
        };
        let call = DirectoryCall {
            provider: meta.provider,
            user: meta.user.clone(),
            op: DirectoryOp::AccountChanged {
                account: meta.account.clone(),
                summary,
            },
        };
        if let Err(e) = directory::call(&self.env, &call).await {
            worker::console_warn!("account {}: directory not told: {}", meta.account, e.0);
        }
    }
}
