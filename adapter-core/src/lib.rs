//! Runtime-neutral machinery shared by weft's runtime adapters.
//!
//! An adapter does IO, timers and spawning, nothing else. Everything two
//! adapters would both need is here, written once:
//!
//! - the one [`Driver`]: a future, generic over a [`Layer`] (a machine
//!   from `proto-core`, composed there: `Secured<Recorded<mux>>`, or any
//!   byte-stream machine), a [`Transport`] and a [`Timer`], that moves
//!   bytes between the transport and the machine and fires its deadlines;
//! - [`Shared`]: a layer behind a mutex with its clock origin, which the
//!   driver and the layer's handles share;
//! - the mux's handles: [`Connection`] (clone-able) and [`Flow`], with poll
//!   functions an adapter wraps in its runtime's IO traits, and async
//!   methods that work on any executor; a [`Flow`] is itself a
//!   [`Transport`], so any byte-stream machine runs on one flow through
//!   the same driver;
//! - [`secure`]: credentials and what a handshake established;
//! - [`block_on`], for blocking adapters and tests;
//! - with the `conformance` feature, the conformance suite every adapter
//!   runs (`adapter_core::conformance`).
//!
//! # How the pieces meet
//!
//! After every command a handle issues (open, write, read, finish, ...),
//! [`Shared::with`] drains the layer's events into wake-ups and, when the
//! machine has bytes to send or a timer to move earlier, wakes the driver,
//! which drains `poll_transmit` into the transport and re-arms its timer
//! from `poll_timeout`: the machine contract's call order, kept in one
//! place.
//!
//! ```
//! use adapter_core::{Config, Connection, Side};
//! # use adapter_core::{Transport, Timer};
//! # use std::{io, task::{Context, Poll}, time::Instant};
//! # struct Io; struct NoTimer;
//! # impl Transport for Io {
//! #   fn poll_read(&mut self, _: &mut Context<'_>, _: &mut [u8]) -> Poll<io::Result<usize>> { Poll::Ready(Ok(0)) }
//! #   fn poll_write_vectored(&mut self, _: &mut Context<'_>, b: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> { Poll::Ready(Ok(b.iter().map(|s| s.len()).sum())) }
//! #   fn poll_flush(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> { Poll::Ready(Ok(())) }
//! #   fn poll_shutdown(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> { Poll::Ready(Ok(())) }
//! # }
//! # impl Timer for NoTimer { fn reset(&mut self, _: Instant) {} fn poll_expired(&mut self, _: &mut Context<'_>) -> Poll<()> { Poll::Pending } }
//! let (conn, driver) = Connection::new(Io, NoTimer, Config::default(), Side::Dialer).unwrap();
//! // The transport ends at once: the driver sees EOF and the connection closes.
//! adapter_core::block_on(driver).unwrap();
//! assert_eq!(adapter_core::block_on(conn.closed()), adapter_core::CloseReason::TransportEnded);
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod blocking;
mod budget;
mod connection;
mod driver;
mod error;
mod flow;
mod flow_transport;
pub mod listener;
mod mux_layer;
mod runtime;
pub mod secure;
mod security;
mod shared;
mod stack;
pub mod taps;

#[cfg(feature = "conformance")]
pub mod conformance;

pub use blocking::{block_on, ThreadWaker};
pub use budget::default_budget;
pub use connection::{Connection, Ping};
pub use driver::{Driver, LINGER, TRANSMIT_HIGH_WATER};
pub use error::{close_reason, reset_code, stop_code, ConnectionClosed, GoingAway};
pub use flow::{Flow, FlowReader, FlowWriter};
pub use listener::{ListenerCore, ListenerOptions, ListenerStats};
pub use mux_layer::MuxLayer;
pub use runtime::{RecvBuffer, Runtime, Timer, Transport};
pub use secure::{spawn_secure_connection, Credentials, Security};
pub use shared::{to_core, Layer, Shared, Wakeups};
pub use stack::MuxStack;

pub use proto_core;
pub use proto_core::budget::{BudgetConfig, BudgetStats, MemoryBudget};
pub use proto_core::mux::{
    CloseReason, Config, ConfigError, ConnectionStats, ErrorCode, FlowId, FlowStats, Profile, Side,
};

use std::io;

/// Starts a connection over `io` on `runtime`: creates it, spawns its
/// [`Driver`], and returns the handle. A bad `config` is `InvalidInput`.
///
/// ```
/// use adapter_core::{Config, Runtime, Side, Timer};
/// # use std::{future::Future, io, task::{Context, Poll}, time::Instant};
/// # struct Io;
/// # impl adapter_core::Transport for Io {
/// #   fn poll_read(&mut self, _: &mut Context<'_>, _: &mut [u8]) -> Poll<io::Result<usize>> { Poll::Ready(Ok(0)) }
/// #   fn poll_write_vectored(&mut self, _: &mut Context<'_>, b: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> { Poll::Ready(Ok(b.iter().map(|s| s.len()).sum())) }
/// #   fn poll_flush(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> { Poll::Ready(Ok(())) }
/// #   fn poll_shutdown(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> { Poll::Ready(Ok(())) }
/// # }
/// # struct NoTimer;
/// # impl Timer for NoTimer { fn reset(&mut self, _: Instant) {} fn poll_expired(&mut self, _: &mut Context<'_>) -> Poll<()> { Poll::Pending } }
/// struct Threads;
/// impl Runtime for Threads {
///     type Timer = NoTimer;
///     fn timer(&self) -> NoTimer { NoTimer }
///     fn spawn<F: Future<Output = ()> + Send + 'static>(&self, f: F) {
///         std::thread::spawn(move || adapter_core::block_on(f));
///     }
/// }
/// let conn = adapter_core::spawn_connection(&Threads, Io, Config::default(), Side::Dialer).unwrap();
/// let reason = adapter_core::block_on(conn.closed());
/// assert_eq!(reason, adapter_core::CloseReason::TransportEnded);
/// ```
pub fn spawn_connection<R: Runtime, T: Transport>(
    runtime: &R,
    io: T,
    config: Config,
    side: Side,
) -> io::Result<Connection> {
    let (conn, driver) =
        Connection::new(io, runtime.timer(), config, side).map_err(config_error)?;
    runtime.spawn(async move {
        let _ = driver.await;
    });
    Ok(conn)
}

/// Runs `layer`'s machine over `io` on `runtime` through the one
/// [`Driver`]; returns the state the layer's handles share with it. The
/// machine's clock starts now. This is how any byte-stream machine runs on
/// a socket, or on a mux [`Flow`] (itself a [`Transport`]).
pub fn spawn_layer<R: Runtime, L: Layer, T: Transport>(
    runtime: &R,
    io: T,
    layer: L,
) -> std::sync::Arc<Shared<L>> {
    let shared = std::sync::Arc::new(Shared::new(layer, std::time::Instant::now()));
    let driver = Driver::new(shared.clone(), io, runtime.timer());
    runtime.spawn(async move {
        let _ = driver.await;
    });
    shared
}

/// A [`ConfigError`] as an `InvalidInput` `io::Error`.
///
/// ```
/// let e = adapter_core::config_error(adapter_core::ConfigError::ZeroLimit);
/// assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
/// ```
pub fn config_error(e: ConfigError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, e)
}
