//! A one-at-a-time gate for async work inside one Durable Object, and a one-shot
//! signal to wake a task held in it.
//!
//! An object runs one event at a time only between `await`s. A registration awaits
//! the account objects between its duplicate check and its admission, so without the
//! gate a second registration of the same id could run its check in the middle of the
//! first and both could be admitted on two accounts.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Poll, Waker};

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

/// A signal one task waits on and another fires, at most once.
#[derive(Clone, Default)]
pub struct Signal(Rc<SignalState>);

#[derive(Default)]
struct SignalState {
    fired: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

impl Signal {
    pub fn fire(&self) {
        self.0.fired.set(true);
        if let Some(waker) = self.0.waker.borrow_mut().take() {
            waker.wake();
        }
    }

    pub async fn wait(&self) {
        poll_fn(|cx| {
            if self.0.fired.get() {
                Poll::Ready(())
            } else {
                *self.0.waker.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }
}

/// Sleeps for `ms` milliseconds (setTimeout).
pub async fn sleep(ms: i64) {
    worker::Delay::from(std::time::Duration::from_millis(ms.max(0) as u64)).await
}

/// Waits for `signal` or `ms` milliseconds, whichever comes first; `true` if
/// signalled.
pub async fn wait_for(signal: &Signal, ms: i64) -> bool {
    use futures_util::future::{select, Either};
    let fired = signal.wait();
    let timeout = sleep(ms);
    futures_util::pin_mut!(fired, timeout);
    matches!(select(fired, timeout).await, Either::Left(_))
}
