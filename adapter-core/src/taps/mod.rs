//! Transport services on any runtime: the adapter half of
//! [`proto_core::taps`]. The core decides (which candidates, in which
//! order, when to start and cancel each attempt, how messages are framed
//! and scheduled); this module only resolves names, connects sockets,
//! brings stacks up, fires timers and runs the message connection through
//! the one [`Driver`](crate::Driver).

mod context;
mod establish;
mod initiate;
mod listen;
mod message;
mod net;
mod racer;
mod rendezvous;
mod resolve;
mod tar_pit;
mod thread_future;

pub use context::{Context, Settings, DEFAULT_LISTEN_BACKLOG};
pub use establish::{establish, Established, StackOptions};
pub use initiate::{initiate, initiate_with_send, Initiated};
pub use listen::{listen, Listener};
pub use message::{
    Ended, MessageConnection, MessageLayer, MessageMachine, Notice, Received, SendOutcome,
};
pub use net::{Accept, Connected, Net};
pub use racer::{
    race, AttemptOutcome, AttemptReport, RaceFailed, RaceReport, ResolutionReport, Won,
};
pub use rendezvous::{rendezvous, rendezvous_with, RendezvousOptions, Rendezvoused};
pub use resolve::{Resolver, SystemResolver};
pub use tar_pit::TarPit;
pub use thread_future::{on_thread, stopped, ThreadResult};

use std::future::Future;
use std::pin::Pin;

/// A boxed, sendable future: what runtime and resolver hooks return.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;
