//! A deterministic virtual network, scheduler and trace/replay (feature
//! `sim`), modelled on go123's `xnet/virtnet` and going past it.
//!
//! - [`Net`]: named hosts with a registry, stream and datagram sockets,
//!   links with latency, bandwidth, re-chunking, holds, partitions, resets,
//!   crashes and restarts, datagram loss/duplication/reordering/corruption
//!   and MTU drops, per-host clock skew; a discrete-event scheduler ordered
//!   by (time, sequence). Maps are `BTreeMap`s: nothing depends on hash
//!   order, so a seed means the same run everywhere.
//! - [`SimCore`]: what the simulator needs from any state machine that
//!   follows the crate's contract (the mux implements it). The simulator
//!   knows no protocol.
//! - [`world`]: the standard scenario — hosts dialing each other and running
//!   echo streams under swarm-chosen faults, with a chaos phase, a heal and
//!   a liveness deadline — checking that bytes received are a prefix of
//!   bytes sent, that nothing cleanly finished is short, and that everything
//!   finishes or fails in time.
//! - [`trace`]: a canonical binary trace of every event and its hash; the
//!   same seed and configuration give the same bytes, in any process.
//!   [`driver::replay`] feeds one core's recorded inputs into a fresh core
//!   and checks its outputs byte for byte.
//! - [`rng`]: xoshiro256** seeded by SplitMix64, with independent named
//!   streams (network, workload, each link and host).
//!
//! - [`Recorded`]: any machine with every call logged in the same trace
//!   format; the adapters wrap every connection in it (turned on by
//!   `WEFT_RECORD_DIR`), so [`driver::replay`] reproduces a production run
//!   offline. [`echo`]: the reference byte-stream machine.
//!
//! Outside this crate:
//! `adapter_tokio::lonet` offers the same named-host API over loopback TCP
//! with the registry in a file.
//!
//! ```
//! use proto_core::sim::{Net, NetConfig, NetEvent, Accept};
//!
//! let mut net = Net::new(NetConfig::default(), 1, false);
//! let a = net.add_host("a").unwrap();
//! let b = net.add_host("b").unwrap();
//! let l = net.listen(b, ":0").unwrap();
//! assert_eq!(net.format_addr(net.listener_addr(l).unwrap()).unwrap(), "b:1");
//! let op = net.dial(a, "b:1").unwrap();
//! while net.step() {}
//! let mut dialed = None;
//! while let Some(ev) = net.poll_event() {
//!     if let NetEvent::Dialed { op: o, result } = ev {
//!         assert_eq!(o, op);
//!         dialed = Some(result.unwrap());
//!     }
//! }
//! let c = dialed.unwrap();
//! assert_eq!(net.format_addr(net.local_addr(c).unwrap()).unwrap(), "a:1");
//! let Ok(Accept::Ready(s)) = net.accept(l) else { panic!() };
//! assert_eq!(net.format_addr(net.local_addr(s).unwrap()).unwrap(), "b:1"); // keeps the listening port
//! assert_eq!(net.format_addr(net.remote_addr(s).unwrap()).unwrap(), "a:1");
//! ```

mod core;
pub mod driver;
pub mod echo;
mod error;
pub mod net;
mod network;
mod recorded;
pub mod rng;
pub mod trace;
pub mod world;

pub use self::core::{
    BudgetUse, CmdError, CoreEvent, DeliveryMismatch, ReadOutcome, Rejected, Role, SimCore,
    StreamId,
};
pub use error::NetError;
pub use net::{
    Accept, Addr, ConnId, FaultKind, HostId, LinkConfig, ListenerId, Net, NetConfig, NetEvent,
    NetStats, OpId, SocketId, TimerId,
};
pub use network::Network;
pub use recorded::{RecordOptions, Recorded, TraceSink, REDACTED_NOTE};
pub use world::{Outcome, Swarm};
