//! Transport services on tokio: a client races `localhost` (`::1` and
//! `127.0.0.1`) to a message server and prints every attempt with its
//! timing and the winner.
//!
//! ```text
//! cargo run --release -p adapter-tokio --example taps
//! ```
//!
//! The server listens on 127.0.0.1 only; `[::1]` at the same port is a tar
//! pit (a listener whose accept queue is full, so connects to it hang as to
//! a blackholed address). Happy Eyeballs tries IPv6 first, starts IPv4
//! after the connection attempt delay (250 ms without history), and
//! cancels the IPv6 attempt when IPv4 connects. Then messages go both
//! ways (priorities, a lifetime that expires), a Clone races again, and a
//! second race uses the RTT the first one measured (its delay drops to the
//! 100 ms floor).

mod shared;

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    match shared::taps_tour::tour().await {
        Ok(t) => {
            println!("taps: raced localhost\n{}", t.report);
            println!("taps: winner {}", t.winner);
            for r in &t.replies {
                println!("taps: reply {r:?}");
            }
            println!(
                "taps: the message with a zero lifetime expired: {}",
                t.expired
            );
            println!(
                "taps: the next race's attempt delay, from the cached RTT: {:?}",
                t.cached_delay
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("taps: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}
