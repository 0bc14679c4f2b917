//! Blocking work (a name lookup, a blocking connect) on its own thread,
//! awaited as a future on any runtime; dropping the future tells the work
//! to stop.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

struct Slot<T> {
    value: Option<io::Result<T>>,
    waker: Option<Waker>,
}

/// Runs `work` on a new thread named `name`; the future gives its result.
/// `work` gets a flag that turns true once the future is dropped: work
/// that can stop early (a connect that polls) checks it and returns.
///
/// ```
/// let v = adapter_core::block_on(adapter_core::taps::on_thread("sum", |_stop| Ok(40 + 2)));
/// assert_eq!(v.unwrap(), 42);
/// ```
pub fn on_thread<T: Send + 'static>(
    name: &str,
    work: impl FnOnce(&AtomicBool) -> io::Result<T> + Send + 'static,
) -> ThreadResult<T> {
    let slot = Arc::new(Mutex::new(Slot {
        value: None,
        waker: None,
    }));
    let stop = Arc::new(AtomicBool::new(false));
    let (theirs, their_stop) = (slot.clone(), stop.clone());
    let spawned = std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            let v = work(&their_stop);
            let waker = {
                let mut s = theirs.lock().unwrap_or_else(|e| e.into_inner());
                s.value = Some(v);
                s.waker.take()
            };
            if let Some(w) = waker {
                w.wake();
            }
        });
    ThreadResult {
        slot,
        stop,
        spawn_failed: spawned.is_err(),
    }
}

/// A future of a value computed on another thread ([`on_thread`]).
pub struct ThreadResult<T> {
    slot: Arc<Mutex<Slot<T>>>,
    stop: Arc<AtomicBool>,
    spawn_failed: bool,
}

impl<T> Future for ThreadResult<T> {
    type Output = io::Result<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        if self.spawn_failed {
            return Poll::Ready(Err(io::Error::other("could not start a thread")));
        }
        let mut s = self.slot.lock().unwrap_or_else(|e| e.into_inner());
        match s.value.take() {
            Some(v) => Poll::Ready(v),
            None => {
                s.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

impl<T> Drop for ThreadResult<T> {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Whether `stop` was set: for work polling between steps.
pub fn stopped(stop: &AtomicBool) -> bool {
    stop.load(Ordering::Relaxed)
}
