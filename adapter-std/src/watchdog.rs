//! A deadline for blocking calls that have none of their own: a thread
//! that runs an action (shutting a stream down) unless disarmed in time.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// Runs its action after a timeout unless [`disarm`](Self::disarm)ed.
#[derive(Debug)]
pub(crate) struct Watchdog {
    disarm: mpsc::Sender<()>,
    thread: JoinHandle<bool>,
}

impl Watchdog {
    /// Runs `on_expiry` on a new thread once `timeout` has passed.
    pub(crate) fn arm(
        timeout: Duration,
        on_expiry: impl FnOnce() + Send + 'static,
    ) -> std::io::Result<Self> {
        let (disarm, rx) = mpsc::channel();
        let thread = thread::Builder::new()
            .name("weft-handshake-watchdog".into())
            .spawn(move || match rx.recv_timeout(timeout) {
                Err(RecvTimeoutError::Timeout) => {
                    on_expiry();
                    true
                }
                // Disarmed (a message or the sender dropped).
                _ => false,
            })?;
        Ok(Watchdog { disarm, thread })
    }

    /// Stops the watchdog; whether its action ran (then whatever it
    /// interrupted failed because of it).
    pub(crate) fn disarm(self) -> bool {
        let _ = self.disarm.send(());
        self.thread.join().unwrap_or(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    #[test]
    fn fires_only_when_not_disarmed() {
        let ran = Arc::new(AtomicBool::new(false));
        let r = ran.clone();
        let w = Watchdog::arm(Duration::from_secs(600), move || {
            r.store(true, Ordering::SeqCst)
        })
        .unwrap();
        assert!(!w.disarm());
        assert!(!ran.load(Ordering::SeqCst));

        let r = ran.clone();
        let w = Watchdog::arm(Duration::ZERO, move || r.store(true, Ordering::SeqCst)).unwrap();
        // Wait for it to fire (no timing assumption: poll the flag).
        while !ran.load(Ordering::SeqCst) {
            thread::yield_now();
        }
        assert!(w.disarm());
    }
}
